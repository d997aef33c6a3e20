"""Reference analysis: why is this (mock) object still alive?

``explain(obj)`` returns plain data (chains of named steps from a root down to ``obj``);
``why(obj)`` prints it as a tree.  Importing this package imports neither rich nor objgraph.
"""

from __future__ import annotations

from ._explain import explain, why
from ._graph import ignore_container
from ._model import Chain, Explanation, Step

__all__ = ["Chain", "Explanation", "Step", "explain", "ignore_container", "why"]
