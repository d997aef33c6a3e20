"""patchtrace: which test polluted the process, and how? Why is that mock still alive?

Public API (importing this module is cheap: nothing heavy is imported until used)::

    patchtrace.start() / patchtrace.stop()    trace global mutations in this process
    with patchtrace.tracing(): ...             the same, as a context manager
    patchtrace.ledger()                        every mutation recorded so far
    patchtrace.history(target, name=None)      the mutations of one target
    patchtrace.active_patches()                patches applied and not undone, with stacks
    patchtrace.explain(obj) / patchtrace.why(obj)   why is ``obj`` still alive?
    patchtrace.graph(obj, "out.svg")           draw it

PYTEST_DONT_REWRITE: the .pth may import us before pytest registers the plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

# The submodule ``patchtrace.ledger`` shares its name with the ``ledger()`` function below.
# Importing a submodule sets it as an attribute of its package, once, when it is first
# loaded: loading it here, before ``def ledger``, keeps ``patchtrace.ledger`` the function
# for good (the module stays importable as ``from patchtrace.ledger import Mutation``).
# It is light: the standard library's bisect, threading and weakref, and our stack/values.
from . import ledger as _ledger_module  # noqa: F401

if TYPE_CHECKING:
    from .config import Config
    from .ledger import ActivePatch, Ledger, Mutation

__all__ = [
    "__version__",
    "active_patches",
    "explain",
    "graph",
    "history",
    "ledger",
    "post_mortem",
    "start",
    "stop",
    "tracing",
    "why",
]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from ._version import __version__

        return __version__
    raise AttributeError(f"module 'patchtrace' has no attribute {name!r}")


def start(config: Config | None = None) -> None:
    """Start tracing global mutations in this process (idempotent)."""
    from . import _tracer

    _tracer.start(config)


def stop() -> None:
    """Stop tracing and undo our instrumentation; the ledger is kept."""
    from . import _tracer

    _tracer.stop()


@contextmanager
def tracing(config: Config | None = None) -> Iterator[Ledger]:
    """Trace inside a ``with`` block; yields the ledger.

    Tracing that was already running (``PATCHTRACE=1``) is left running afterwards.
    """
    from . import _tracer

    was_running = _tracer.current() is not None
    tracer = _tracer.start(config)
    try:
        yield tracer.ledger
    finally:
        if not was_running:
            tracer.stop()


def ledger() -> Ledger:
    """The ledger of the current (or last) tracer."""
    from . import _tracer

    return _tracer.get_or_create().ledger


def history(target: object, name: str | None = None) -> list[Mutation]:
    """Every recorded mutation of ``target`` (an object or a target string), oldest first.

    ``history(mymodule, "func")``, ``history("os.environ", "HOME")``,
    ``history("module:pkg.mod")``.
    """
    from .naming import target_of

    key = target if isinstance(target, str) else target_of(target)
    if isinstance(target, str) and ":" not in target and not target.startswith(
        ("os.", "sys.", "builtins", "cwd", "logging", "signal", "warnings")
    ):
        key = f"module:{target}"
    return ledger().history(key, name)


def active_patches() -> list[ActivePatch]:
    """Patches (mock and MonkeyPatch) applied and not undone, oldest first."""
    return ledger().active()


def explain(obj: object, **kwargs: Any) -> Any:
    """The reference chains that keep ``obj`` alive (see :mod:`patchtrace.refs`)."""
    from . import refs

    return refs.explain(obj, **kwargs)


def graph(obj: object, path: str, **kwargs: Any) -> str:
    """Draw the reference graph of ``obj`` to ``path``; returns the path written.

    The format follows the suffix: ``.svg``, ``.png`` or ``.dot``; any other name gets
    ``.svg`` appended (``"why"`` writes ``why.svg``). Uses graphviz ``dot`` when installed,
    a built-in layout otherwise; a ``.png`` without graphviz becomes an ``.svg`` beside it.
    """
    from .render import graph as _graph

    return _graph.graph(obj, path, **kwargs)


def post_mortem(tb: Any = None) -> None:
    """``pdb.post_mortem`` with patchtrace's ``pt`` commands (``pt help`` lists them)."""
    from . import debugger

    debugger.post_mortem(tb)


def why(obj: object, **kwargs: Any) -> None:
    """Print why ``obj`` is alive, as a tree: one branch per chain of references.

    Returns nothing, so that a REPL shows the tree once; :func:`explain` returns the chains
    as data. ``file=`` prints elsewhere; other keywords go to :func:`explain`.
    """
    from . import refs
    from .render.terminal import print_why

    file = kwargs.pop("file", None)
    print_why(refs.explain(obj, **kwargs), file)
