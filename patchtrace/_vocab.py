"""The typed vocabulary, once: what a record says happened, who saw it, what a leak is.

Every other module imports these names from here; the strings are the ones the ledger,
the JSON report (CONTRACT.md) and the debugger show, so changing one is a contract change.
Imports nothing but ``typing``: ``.pth`` start-up reads this module.
"""

from __future__ import annotations

from typing import Final, Literal, final, get_args

__all__ = [
    "ATOMS", "KINDS", "NOTHING", "OPS", "SOURCE_NAMES", "UNKNOWN", "Kind", "Op", "SourceName",
]

#: What a :class:`~patchtrace.ledger.Mutation` says happened.
Op = Literal[
    "set",  # a binding stored (attribute, key, variable)
    "delete",  # a binding removed
    "patch",  # a mock.patch / MonkeyPatch change applied (``token`` pairs it with its undo)
    "unpatch",  # that change undone
    "chdir",  # the working directory changed
    "reload",  # importlib.reload
    "class-assign",  # ``obj.__class__ = ...``
    "code-assign",  # ``func.__code__`` / ``__defaults__`` / ... swapped
    "call",  # a call that changes a resource (signal.signal, Logger.addHandler, ...)
]

#: Who saw it: a source's ``name`` (``Tracer.source(name)``), or ``scan`` for a boundary
#: comparison of the watch source.
SourceName = Literal["audit", "mock", "monkeypatch", "reload", "watch", "scan", "calls",
                     "reads"]

#: What a leak is (the JSON report's ``kind``; CONTRACT.md lists the contract's ones).
Kind = Literal[
    "patch-not-stopped",
    "binding-changed",
    "restore-mismatch",
    "mock-survived",
    "module-replaced",
    "module-reloaded",
    "module-dropped",
    "resource-changed",
    "patch-dormant",
]

OPS: Final[tuple[Op, ...]] = get_args(Op)
SOURCE_NAMES: Final[tuple[SourceName, ...]] = get_args(SourceName)
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)


@final
class _Nothing:
    """Marks "there was no binding" (attribute or key absent)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<nothing>"


NOTHING: Final = _Nothing()


@final
class _Unknown:
    """A sealed record no longer knows the object (it was not weak-referenceable)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Final = _Unknown()

#: Immutable atoms: they cannot hold a user object, so they are kept strongly after a scope
#: is sealed (``None`` included: ``sys.modules[name] = None`` blocks an import), and their
#: ``__eq__`` is the interpreter's, so they are compared by ``==`` without running user code.
#: Checked with ``type(obj) in ATOMS`` (exact type: a subclass may define its own ``__eq__``).
ATOMS: Final[frozenset[type]] = frozenset(
    {int, float, str, bytes, bool, complex, type(None), type(...)})
