"""``module-reloaded``: a module reloaded in the scope left other than it was before.

What later code sees: a plain value changed, added or removed, or a class or function
replaced while the old one is still held from outside the module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, Final

from ..._vocab import NOTHING
from ...values import is_plain, safe_repr, same_value, summarize
from .._holders import Holders

if TYPE_CHECKING:
    from ...leak import Leak
    from ...ledger import Mutation
    from . import Context

__all__ = ["OPS", "check"]

OPS: Final = frozenset({"reload"})


def check(records: Iterable[Mutation], ctx: Context) -> list[Leak]:
    """Modules reloaded in the scope whose namespace now differs from before the
    first reload in a way later code sees (``_reload_differences``). The line is the
    reload that made the final state: the last one."""
    handled, reloaded = ctx.handled, ctx.reloaded
    last: dict[str, Mutation] = {}
    for mutation in records:
        if mutation.op == "reload" and mutation.name is not None:
            last[mutation.name] = mutation
    out = []
    for name, mutation in last.items():
        key = ("sys.modules", name)
        state = reloaded.get(name)
        if key in handled or state is None:
            continue
        module, before = state
        if sys.modules.get(name) is not module:
            continue  # replaced or dropped since: the snapshot comparison reports it
        differences = _reload_differences(name, module, before)
        if not differences:
            continue  # put back as it was, or nothing anyone else holds changed
        handled.add(key)
        leak = ctx.leak_from(mutation, "module-reloaded", module)
        leak.desc = "; ".join(differences[:4]) + (
            f" (and {len(differences) - 4} more)" if len(differences) > 4 else "")
        leak.before = leak.value = summarize(module)
        out.append(leak)
    return out


#: Names a reload rebinds without anyone noticing: the import system's bookkeeping.
_RELOAD_METADATA: Final = frozenset({
    "__loader__", "__spec__", "__file__", "__cached__", "__builtins__", "__package__",
    "__path__", "__name__", "__doc__", "__warningregistry__", "__annotations__",
})
def _reload_differences(name: str, module: ModuleType, before: dict[str, Any]) -> list[str]:
    """What a reload changed that later code sees, in words: a plain value (number,
    string, path, ...) other than before, or added or removed; a class or function (or any
    other object) replaced while the old one is still held from outside the module (an
    instance of the old class, another module's ``from m import C``, a registry, a
    subclass elsewhere). Empty when the reload put the module back as it was."""
    now = module.__dict__
    out: list[str] = []
    replaced: list[tuple[str, object]] = []
    for key in list(before.keys() | now.keys()):
        if type(key) is not str or key in _RELOAD_METADATA:
            continue
        old, new = before.get(key, NOTHING), now.get(key, NOTHING)
        if same_value(old, new):
            continue
        if old is NOTHING and not is_plain(new):
            continue  # a new function or class: nobody holds it yet
        if new is None and old is not NOTHING:
            # Reset to None by the module's own code: a cache it fills on first use
            # (tempfile.tempdir, tempfile._name_sequence), as in a fresh import.
            continue
        if old is NOTHING or new is NOTHING or is_plain(old) or is_plain(new):
            out.append(f"{key} {_short(old)} -> {_short(new)}")
        else:
            replaced.append((key, old))
    if replaced:
        holders = Holders(name, (old for _, old in replaced))
        for key, old in sorted(replaced, key=lambda item: item[0]):
            holder = holders.of(old)
            if holder is not None:
                what = "class" if issubclass(type(old), type) else (
                    "function" if type(old) is FunctionType else "object")
                out.append(f"{key}: a new {what}, while {holder} still holds the old one")
    return sorted(out)


def _short(obj: object) -> str:
    return "<missing>" if obj is NOTHING else safe_repr(obj, 60)
