"""Reference analysis: why is this (mock) object still alive?

``explain(obj)`` returns plain data (chains of named steps from a root down to ``obj``),
``explain_all(objects)`` the same for many objects in one search; ``why(obj)`` prints it as a
tree.  Importing this package imports neither rich nor objgraph.
"""

from __future__ import annotations

from ._explain import explain, explain_all, why
from ._graph import ignore_container
from ._model import Chain, Explanation, Step

__all__ = ["Chain", "Explanation", "Step", "explain", "explain_all", "ignore_container", "why"]
