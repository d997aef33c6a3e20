"""``module-dropped`` / ``module-replaced`` of a module the scope imported: the copies check.

A module imported in the scope that left ``sys.modules`` before it ended while a class or
function of its is still held from outside it: the next import makes a second copy. (An
entry of ``sys.modules`` present before the scope is compared by the snapshot and judged
with the other process-wide resources, in :mod:`.resources`, in the comparison's order.)
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Final

from ..._vocab import NOTHING, Kind
from ...analysis import copies as _copies
from ...analysis import oracle as _oracle
from ...leak import Leak
from ...values import summarize
from .._holders import Holders
from .._read import summary

if TYPE_CHECKING:
    from ...ledger import Mutation
    from . import Context

__all__ = ["OPS", "check"]

OPS: Final[frozenset[str]] = frozenset()


def check(records: list[Mutation], ctx: Context) -> list[Leak]:
    """Modules imported in the scope that left ``sys.modules`` before it ended
    (``patch.dict(sys.modules)`` or a snapshot restore undoing the import) while a
    class or function of theirs is still held from outside them: the next import
    makes a second copy (``module-dropped``; ``module-replaced`` when the scope already
    imported it again). A module absent before and after whose objects nobody holds
    is nothing (rule 1). Present before the scope: the snapshot comparison reports it."""
    fresh, handled, scope = ctx.fresh, ctx.handled, ctx.scope
    if not fresh:
        return []
    before = ctx.snapshot.modules
    gone: list[tuple[str, ModuleType, object]] = []
    for name, ref in fresh.items():
        module = ref()
        if module is None or name in before or ("sys.modules", name) in handled:
            continue
        now: object = sys.modules.get(name, NOTHING)
        if now is not module:
            gone.append((name, module, now))
    if not gone:
        return []
    defined_by = {name: _copies.defined_in(module, name) for name, module, _ in gone}
    # One walk for all of them (~2 ms on a pytest-sized process): the dropped copies
    # are out of sys.modules, and a copy imported again holds its own new objects.
    holders = Holders("", (obj for objs in defined_by.values() for obj in objs.values()))
    out = []
    for name, module, now in gone:
        defined = defined_by[name]
        held = sorted((q, h) for q, obj in defined.items()
                      if (h := holders.of(obj)) is not None)
        if not held:
            continue
        handled.add(("sys.modules", name))
        kind: Kind = "module-dropped" if now is NOTHING else "module-replaced"
        setter = next((m for m in reversed(records) if m.op == "patch"
                       and m.target == "sys.modules" and m.name in (None, name)), None)
        if setter is not None:
            leak = ctx.leak_from(setter, kind, now)
            leak.target, leak.name = "sys.modules", name
        else:
            leak = Leak(kind, scope.test, scope.phase if scope.phase != "teardown"
                        else "call", "sys.modules", name, fixture=scope.fixture,
                        value=summary(now), obj=now)
            found = _oracle.find_modules_edit(scope.test, ctx.rootdir, name,
                                              ctx.fixtures_of(scope.test))
            if found is not None:
                leak.where, leak.stack = found, [found]
        qualname, holder = held[0]
        leak.desc = f"{name}.{qualname} of the dropped copy is still held by {holder}" + (
            f" (and {len(held) - 1} more)" if len(held) > 1 else "")
        leak.before = summarize(module)
        ctx.pending_copies[id(leak)] = (name, module)
        out.append(leak)
    return out
