"""``patch-not-stopped`` and ``patch-dormant``: patches started in the scope still applied.

A patch the ledger still has applied at the boundary was never stopped (or undone, for
monkeypatch). A mock patch whose binding holds the value from before the scope again (an
enclosing patch put it back) is *dormant*: harmless until a later ``patch.stopall()``
re-applies what it saved.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from ..._vocab import UNKNOWN
from ...values import same_value
from .._read import current_value, namespace_of, summary

if TYPE_CHECKING:
    from ...leak import Leak
    from ...ledger import Mutation
    from . import Context

__all__ = ["OPS", "check"]

OPS: Final = frozenset({"patch"})


def check(records: Iterable[Mutation], ctx: Context) -> list[Leak]:
    applied = ctx.build.tracer.ledger.applied
    handled = ctx.handled
    include_wide = ctx.wide
    out = []
    first_before: dict[tuple[str, str | None], object] = {}
    for mutation in records:  # in order of application, like ledger.active()
        key = (mutation.target, mutation.name)
        if mutation.op == "patch" and key not in first_before:
            first_before[key] = mutation.before_value()
        if mutation.op != "patch" or mutation.token is None or \
                applied(mutation.token) is not mutation:
            continue
        if mutation.scope.wide and not include_wide:
            continue
        handled.add(key)
        after = mutation.after_value()
        if mutation.source == "mock":
            original = UNKNOWN if include_wide else ctx.at_start(*key)
            if original is UNKNOWN:
                original = first_before.get(key, UNKNOWN)
            dormant = _dormant(ctx, mutation, original, after)
            if dormant is not None:
                if dormant:
                    # Its object is what stopall() would put back (the enclosing
                    # patch's mock, kept alive by the patcher): not a survivor too.
                    leak = ctx.leak_from(mutation, "patch-dormant", mutation.before_value())
                    leak.value = summary(current_value(*key))
                    leak.alive_via = ["class unittest.mock._patch",
                                      "class attribute _active_patches", "[patcher]",
                                      "attribute temp_original"]
                    out.append(leak)
                continue
        if mutation.source == "mock" and _unobservable(ctx, mutation):
            continue
        leak = ctx.leak_from(mutation, "patch-not-stopped", after)
        ctx.pending[id(leak)] = (mutation.before_value(), after)
        out.append(leak)
    return out


def _unobservable(ctx: Context, mutation: Mutation) -> bool:
    """A patch left on a class or object that only its patcher still reaches (a class
    the test defined, patched with ``patch.object(Foo, ...).start()`` and never
    stopped): no later code can see the patched attribute, and a later
    ``patch.stopall()`` would put it back where nobody looks. Not a leak."""
    if not mutation.target.startswith(("class:", "object:")):
        return False  # a module, the environment, sys.modules: reachable by name
    active = next((a for a in ctx.build.tracer.ledger.active()
                   if a.mutation is mutation), None)
    patcher = active.patcher() if active is not None else None
    if patcher is None:
        return False
    from ...refs._reach import patched_object_unreachable

    return patched_object_unreachable(patcher)


def _dormant(ctx: Context, mutation: Mutation, original: object, after: object) -> bool | None:
    """A patch still applied by the ledger whose binding holds the value from before
    the scope again: an enclosing patch put it back (``with patch("time.sleep")`` in
    an autouse fixture around a test's ``patch("time.sleep").start()``). Nothing is
    wrong with the binding, but ``_patch.stop()`` restores the value the patch saved
    (the enclosing patch's mock), so while the patcher is in mock's active list a
    later ``patch.stopall()`` would set that mock again: True. False when it is not in
    that list (nothing will ever re-apply it), None when the patch is in place (or we
    cannot tell)."""
    target, name = mutation.target, mutation.name
    if original is UNKNOWN or name is None or (
            target != "os.environ" and namespace_of(target) is None):
        return None
    now = current_value(target, name)
    if now is after or not same_value(original, now):
        return None
    active = next((a for a in ctx.build.tracer.ledger.active()
                   if a.mutation is mutation), None)
    patcher = active.patcher() if active is not None else None
    module = sys.modules.get("unittest.mock")
    cls = module.__dict__.get("_patch") if module is not None else None
    started = cls.__dict__.get("_active_patches") if isinstance(cls, type) else None
    if patcher is None or type(started) is not list:
        return None
    return any(p is patcher for p in started)
