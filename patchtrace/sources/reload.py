"""``importlib.reload``: the module object stays, but its classes and functions are new.

Other modules still hold the old classes (``isinstance`` against the old class fails, a
patch on the old function no longer applies). No audit event marks a reload and the
module's own code rebinds its globals, so we wrap ``importlib.reload`` itself.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .. import stack as _stack

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["ReloadSource"]


class ReloadSource:
    name = "reload"

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._original: Any = None

    def install(self, tracer: Tracer) -> None:
        self._tracer = tracer
        original = importlib.__dict__["reload"]
        if getattr(original, "__patchtrace__", False):
            return
        source = self

        @functools.wraps(original)
        def reload(module: ModuleType) -> ModuleType:
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return original(module)  # type: ignore[no-any-return]
            before = dict(module.__dict__) if isinstance(module, ModuleType) else {}
            result = original(module)
            try:
                name = module.__dict__.get("__name__", "?")
                replaced = sorted(
                    key for key, value in before.items()
                    if isinstance(value, type) and module.__dict__.get(key) is not value
                )
                desc = f"importlib.reload({name})" + (
                    f": new classes {', '.join(replaced[:5])}" if replaced else "")
                tracer.record("reload", "reload", "sys.modules", str(name), module, result,
                              desc=desc, stack=_stack.capture(1))
            except Exception as exc:
                tracer.internal_error("reload source", exc)
            return result  # type: ignore[no-any-return]

        reload.__patchtrace__ = True  # type: ignore[attr-defined]
        self._original = original
        importlib.reload = reload

    def uninstall(self) -> None:
        if self._original is not None:
            importlib.reload = self._original
            self._original = None
        self._tracer = None
