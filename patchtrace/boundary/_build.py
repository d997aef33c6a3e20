"""Building :class:`~patchtrace.leak.Leak` records from ledger records and mock creations,
and finding the line of a change only a comparison saw."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from .. import stack as _stack
from ..analysis import oracle as _oracle
from ..leak import Leak
from ..ledger import COLLECTION, NOTHING, Mutation
from ..naming import UNRESOLVED, find_path
from ..stack import Frame
from ..values import MISSING, summarize
from ._read import summary

if TYPE_CHECKING:
    from .._tracer import Tracer
    from .._vocab import Kind
    from ..sources.mock import MockCreation

__all__ = ["Builder", "find_store"]


def find_store(test: str, rootdir: str | None, collected_files: list[str], name: str, *,
               last: bool = False, subscript: bool = False,
               target: str | None = None) -> Frame | None:
    """The line of ``test``'s source that stores ``name``; for ``<collection>``, a
    top-level store in a conftest or test module pytest imported."""
    if test == COLLECTION.test:
        return _oracle.find_module_store(collected_files, rootdir, name,
                                         subscript=subscript, target=target)
    return _oracle.find_store(test, rootdir, name, last=last, subscript=subscript,
                              target=target)


@final
class Builder:
    """Makes leaks: frames relative to the root directory, the undo's patch for a stale
    undo, the target of an instance named by its path."""

    __slots__ = ("rootdir", "tracer")

    def __init__(self, tracer: Tracer, rootdir: str | None) -> None:
        self.tracer = tracer
        self.rootdir = rootdir

    def frames(self, stack: _stack.Stack) -> tuple[Frame | None, list[Frame]]:
        frames = [f.relative_to(self.rootdir) for f in stack.frames()]
        where = stack.where()
        return (where.relative_to(self.rootdir) if where else None), frames

    def leak_from(self, mutation: Mutation, kind: Kind, obj: object) -> Leak:
        stack = mutation.stack
        if mutation.op == "unpatch" and mutation.token is not None and stack.where() is None:
            # An undo run by pytest's finalizer (monkeypatch) that put back a stale value:
            # the line to show is the patch it undid.
            patch = self.tracer.ledger.get(mutation.token)
            if patch is not None:
                stack = patch.stack
        where, frames = self.frames(stack)
        scope = mutation.scope
        return Leak(
            kind, scope.test, scope.phase, _named_target(mutation), mutation.name,
            fixture=scope.fixture, where=where, stack=frames, before=mutation.before,
            value=mutation.after if obj is NOTHING else summary(obj), obj=obj,
            desc=mutation.desc, source=mutation.source, token=mutation.token,
        )

    def leak_from_creation(self, obj: object, record: MockCreation) -> Leak:
        where, frames = self.frames(record.stack)
        return Leak(
            "mock-survived", record.scope.test, record.scope.phase, None, None,
            fixture=record.scope.fixture, where=where, stack=frames, before=MISSING,
            value=summarize(obj), obj=obj,
        )


def _named_target(mutation: Mutation) -> str:
    """``object:?`` made readable, when the instance is still reachable from a module."""
    target = mutation.target
    holder = mutation.holder() if mutation.holder is not None else None
    if target != UNRESOLVED or holder is None:
        return target
    try:
        path = find_path(holder)
    except Exception:
        return target
    return f"object:{path}" if path else target
