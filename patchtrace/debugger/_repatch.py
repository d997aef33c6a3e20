"""``pt repatch`` and ``pt unpatch``: put back, while the prompt is open, the patches that a
``with patch(...)`` block or a ``@patch`` decorator undid while the exception propagated, so
that expressions see what the failing code saw; and restore exactly what was there before.

Re-applied patches never outlive the prompt: the hooks (``_hooks``) call
:func:`restore` when the interaction that re-applied them ends, and an ``atexit`` hook
restores anything left as a last resort.
"""

from __future__ import annotations

import atexit
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import IO, Any, final

from .. import _tracer
from ..ledger import NOTHING, UNKNOWN, Mutation
from ..values import safe_repr
from ._context import CommandError, _Context, _exc_name, _ledger, _undone_while_raising, _what
from ._state import STATE

__all__ = ["restore"]


@final
class _Reapplied:
    """One binding we changed: what it held before we touched it, and what we put there."""

    __slots__ = ("applied", "label", "name", "previous", "where")

    def __init__(self, where: _Binding, name: str, previous: object, applied: object,
                 label: str) -> None:
        self.where = where
        self.name = name
        self.previous = previous
        self.applied = applied
        self.label = label


@final
class _Binding:
    """A place a name is bound: a mapping (module dict, os.environ, ...) or a class."""

    __slots__ = ("cls", "mapping")

    def __init__(self, mapping: Any = None, cls: type | None = None) -> None:
        self.mapping = mapping
        self.cls = cls

    def get(self, name: str) -> object:
        if self.cls is not None:
            return self.cls.__dict__.get(name, NOTHING)
        try:
            return self.mapping.get(name, NOTHING)
        except Exception:
            return NOTHING

    def put(self, name: str, value: object) -> None:
        if self.cls is not None:
            # type.__setattr__ stores the raw value and invalidates the type's method cache
            # (writing into the class's dict behind its back would not).
            if value is NOTHING:
                if name in self.cls.__dict__:
                    type.__delattr__(self.cls, name)
            else:
                type.__setattr__(self.cls, name, value)
            return
        if value is NOTHING:
            if name in self.mapping:
                del self.mapping[name]
        else:
            self.mapping[name] = value


def _resolve_path(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if not isinstance(module, ModuleType):
            continue
        obj: object = module
        for part in parts[cut:]:
            try:
                namespace = object.__getattribute__(obj, "__dict__")
            except Exception:
                return NOTHING
            if part not in namespace:
                return NOTHING
            obj = namespace[part]
        return obj
    return NOTHING


def _binding_of(target: str) -> _Binding | None:
    from ..boundary._read import namespace_of
    from ..boundary._read import resolve_class as _resolve_class

    if target == "os.environ":
        return _Binding(mapping=os.environ)
    if target.startswith("class:"):
        cls = _resolve_class(target[6:])
        return _Binding(cls=cls) if cls is not None else None
    namespace = namespace_of(target)
    if namespace is not None:
        return _Binding(mapping=namespace)
    if target.startswith("object:") and target != "object:?":
        obj = _resolve_path(target[7:])
        if obj is NOTHING:
            return None
        if issubclass(type(obj), dict):
            return _Binding(mapping=obj)
        if issubclass(type(obj), type):
            return _Binding(cls=obj)  # type: ignore[arg-type]
        try:
            namespace = object.__getattribute__(obj, "__dict__")
        except Exception:
            return None
        return _Binding(mapping=namespace) if isinstance(namespace, dict) else None
    return None


@contextmanager
def _suppressed() -> Iterator[None]:
    """Keep our sources quiet while we write raw values (one change, not a mutation)."""
    tracer = _tracer.current()
    if tracer is not None:
        tracer.busy += 1
    try:
        yield
    finally:
        if tracer is not None:
            tracer.busy -= 1


def _cmd_repatch(ctx: _Context, arg: str) -> None:
    if STATE.reapplied:
        ctx.write(f"already re-applied ({len(STATE.reapplied)} binding"
                  f"{'s' * (len(STATE.reapplied) != 1)}); pt unpatch restores")
        return
    if not ctx.exceptions:
        raise CommandError("no exception is being debugged: nothing was undone by unwinding")
    ledger = _ledger()
    entries = _undone_while_raising(ledger, ctx.exceptions)
    if not entries:
        ctx.write(f"no patch was undone while {_exc_name(ctx.exceptions[0])} propagated; "
                  "the patches active now are the ones it saw")
        return
    plan: list[tuple[_Binding, str, object, Mutation]] = []
    for entry in entries:
        undo = entry.undo
        assert undo is not None
        if undo.name is None:
            ctx.write(f"  skipped #{entry.patch.seq} {_what(entry.patch)}: a patch of a whole "
                      "mapping cannot be re-applied")
            continue
        value = undo.before_value()  # what the binding held just before the undo
        if value is UNKNOWN:
            value = entry.patch.after_value()
        if value is UNKNOWN:
            ctx.write(f"  skipped #{entry.patch.seq} {_what(entry.patch)}: the patched value "
                      "is gone")
            continue
        binding = _binding_of(undo.target)
        if binding is None:
            ctx.write(f"  skipped #{entry.patch.seq} {_what(entry.patch)}: cannot find "
                      f"{undo.target} now")
            continue
        plan.append((binding, undo.name, value, entry.patch))
    if not STATE.atexit_registered:
        atexit.register(restore)
        STATE.atexit_registered = True
    with _suppressed():
        for binding, name, value, patch in plan:
            previous = binding.get(name)
            binding.put(name, value)
            STATE.reapplied.append(_Reapplied(binding, name, previous, value, patch.label))
            ctx.write(f"  re-applied #{patch.seq} {_what(patch)}: {patch.label} = "
                      f"{safe_repr(value)}")
    if plan:
        ctx.write(f"{len(plan)} patch{'es' * (len(plan) != 1)} re-applied as when "
                  f"{_exc_name(ctx.exceptions[0])} was raised; pt unpatch (or leaving the "
                  "prompt) restores")


def restore(out: IO[str] | None = None) -> int:
    """Undo ``pt repatch``: put back exactly what each binding held before. Idempotent.

    Returns how many bindings were restored. Called on leaving the debugger prompt and at exit.
    """
    count = 0
    with _suppressed():
        while STATE.reapplied:
            item = STATE.reapplied.pop()
            try:
                now = item.where.get(item.name)
                item.where.put(item.name, item.previous)
                count += 1
                if out is not None and now is not item.applied:
                    out.write(f"patchtrace: {item.label} was changed while re-applied; "
                              "restored it to what it was before pt repatch anyway\n")
            except Exception as exc:
                stream = out if out is not None else sys.__stderr__
                if stream is not None:
                    stream.write(f"patchtrace: could not restore {item.label}: {exc!r}\n")
    return count


def _cmd_unpatch(ctx: _Context, arg: str) -> None:
    if not STATE.reapplied:
        ctx.write("nothing is re-applied (pt repatch first)")
        return
    count = restore(ctx.out)
    ctx.write(f"restored {count} binding{'s' * (count != 1)} as they were before pt repatch")
