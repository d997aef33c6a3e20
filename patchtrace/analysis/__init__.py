"""After the boundary: which failing test used what a leak changed (``victims``), what a
failing test's code could have read (``reads``), the line of a change only a comparison saw
(``oracle``), the copies of a module that left ``sys.modules`` (``copies``), and hints for
a failing test (``hints``: a patch that never took effect)."""

from __future__ import annotations
