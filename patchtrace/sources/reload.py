"""``importlib.reload``: the module object stays, and its code runs again in its own dict.

What later code sees may differ (a constant read from the environment, new classes and
functions while other modules or instances still hold the old ones), or not at all (a
reload used to put a module back). No audit event marks a reload and the module's own code
rebinds its globals, so we wrap ``importlib.reload`` itself, and keep, per module, its
namespace as it was before the first reload since the last boundary: the detector compares
it with the namespace at the boundary (``take_reloaded``) and drops it there.
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
        #: module name -> (module, a copy of its namespace before its first reload since
        #: the last take_reloaded()): strong references, dropped at the next boundary
        self._states: dict[str, tuple[ModuleType, dict[str, Any]]] = {}

    def take_reloaded(self) -> dict[str, tuple[ModuleType, dict[str, Any]]]:
        """Modules reloaded since the last call, each with its namespace before the first
        of those reloads; forgets them."""
        states, self._states = self._states, {}
        return states

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
                if isinstance(module, ModuleType) and str(name) not in source._states:
                    source._states[str(name)] = (module, before)
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
        self._states = {}
