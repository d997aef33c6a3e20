"""Calls that change process-wide resources: the line that made each change.

The boundary snapshot (``resources``) sees *that* a logger, a signal handler or the event
loop changed, not *who* changed it. The functions users call to change them are wrapped
here, so a ``resource-changed`` leak gets the user's line as patches and stores do:

* ``signal.signal``;
* ``logging.Logger.addHandler`` / ``removeHandler`` / ``setLevel``, ``logging.basicConfig``,
  ``logging.config.dictConfig`` / ``fileConfig`` (their own inner calls are not recorded
  again: one record per call the user made);
* ``asyncio``: the policy's ``set_event_loop`` (``asyncio.set_event_loop`` and the loop
  ``get_event_loop()`` creates both go through it) and ``set_event_loop_policy``;
* ``sys.setrecursionlimit``, ``socket.setdefaulttimeout``, ``locale.setlocale``.

A record here is ``op="call"``: it changes no binding by itself; the detector uses it only
to name the line of a change the snapshot found. A call is recorded only when a user frame
made it (the innermost frame outside the standard library, pytest and patchtrace is a
user's): pytest's log capture, adding and removing its handler around every phase, is not
recorded, nor is a call made by a module's import-time code (a library configuring its
logger). ``sys.path`` is a list: its methods
cannot be wrapped (see ``_oracle.find_path_edit``).

Wrapping goes through :func:`_wrap`: guarded, idempotent (a wrapper is never wrapped
again), undone in reverse order by ``uninstall``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from ..ledger import NOTHING
from ._imports import cancel, when_imported

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["CallsSource"]

#: (what was called) -> (target, name or None, (args, kwargs) -> after value)
_Describe = Callable[[tuple[Any, ...], dict[str, Any]], "tuple[str, str | None, object] | None"]


def _signal_name(number: object) -> str | None:
    import signal

    if not issubclass(type(number), int):
        return None
    try:
        return signal.Signals(int(number)).name  # type: ignore[call-overload]
    except (ValueError, TypeError):
        return None


def _logger_name(logger: object) -> str | None:
    try:
        namespace = object.__getattribute__(logger, "__dict__")
    except (AttributeError, TypeError):
        return None
    name = namespace.get("name") if type(namespace) is dict else None
    return name if type(name) is str else None


class CallsSource:
    name = "calls"

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        #: (owner, attribute, original) in the order wrapped; undone in reverse
        self._originals: list[tuple[Any, str, Any]] = []
        self._local = threading.local()
        self._hooks: list[tuple[str, Callable[[ModuleType], None]]] = [
            ("signal", self._instrument_signal),
            ("logging", self._instrument_logging),
            ("logging.config", self._instrument_logging_config),
            ("asyncio", self._instrument_asyncio),
            ("socket", self._instrument_socket),
            ("locale", self._instrument_locale),
        ]

    # -- install ----------------------------------------------------------------------------
    def install(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._wrap(sys, "setrecursionlimit", "sys.setrecursionlimit",
                   lambda a, k: ("module:sys", "recursionlimit", a[0] if a else NOTHING))
        for module, hook in self._hooks:
            when_imported(module, hook)

    def uninstall(self) -> None:
        for module, hook in self._hooks:
            cancel(module, hook)
        for owner, attr, original in reversed(self._originals):
            try:
                setattr(owner, attr, original)
            except Exception:
                pass
        self._originals.clear()
        self._tracer = None

    def _instrument_signal(self, module: ModuleType) -> None:
        self._wrap(module, "signal", "signal.signal", lambda a, k: (
            "signal", _signal_name(a[0]) if a else None, a[1] if len(a) > 1 else NOTHING))

    def _instrument_logging(self, module: ModuleType) -> None:
        logger = module.__dict__.get("Logger")
        if isinstance(logger, type):
            for method in ("addHandler", "removeHandler", "setLevel"):
                self._wrap(logger, method, f"Logger.{method}", lambda a, k: (
                    "logging", _logger_name(a[0]) if a else None,
                    a[1] if len(a) > 1 else NOTHING))
        self._wrap(module, "basicConfig", "logging.basicConfig",
                   lambda a, k: ("logging", "root", NOTHING))

    def _instrument_logging_config(self, module: ModuleType) -> None:
        for function in ("dictConfig", "fileConfig"):
            self._wrap(module, function, f"logging.config.{function}",
                       lambda a, k: ("logging", None, NOTHING))

    def _instrument_asyncio(self, package: ModuleType) -> None:
        events = sys.modules.get("asyncio.events")
        if not isinstance(events, ModuleType):
            return
        # The policy's method: asyncio.set_event_loop() calls it, and so does the loop that
        # get_event_loop() creates when there is none. The platform's default policy
        # overrides it (and calls super()): both are wrapped, only the outer one records.
        for cls in (events.__dict__.get("BaseDefaultEventLoopPolicy"),
                    package.__dict__.get("DefaultEventLoopPolicy")):
            if isinstance(cls, type) and "set_event_loop" in cls.__dict__:
                self._wrap(cls, "set_event_loop", "asyncio.set_event_loop", lambda a, k: (
                    "asyncio", "event_loop", a[1] if len(a) > 1 else NOTHING))
        original = events.__dict__.get("set_event_loop_policy")
        self._wrap(events, "set_event_loop_policy", "asyncio.set_event_loop_policy",
                   lambda a, k: ("asyncio", "policy", a[0] if a else NOTHING))
        wrapper = events.__dict__.get("set_event_loop_policy")
        # asyncio re-exports it (``from .events import *``): the same wrapper there too
        if original is not None and wrapper is not original and \
                package.__dict__.get("set_event_loop_policy") is original:
            self._originals.append((package, "set_event_loop_policy", original))
            package.set_event_loop_policy = wrapper  # type: ignore[attr-defined]

    def _instrument_socket(self, module: ModuleType) -> None:
        self._wrap(module, "setdefaulttimeout", "socket.setdefaulttimeout", lambda a, k: (
            "module:socket", "getdefaulttimeout()", a[0] if a else NOTHING))

    def _instrument_locale(self, module: ModuleType) -> None:
        def describe(a: tuple[Any, ...],
                     k: dict[str, Any]) -> tuple[str, str | None, object] | None:
            value = a[1] if len(a) > 1 else k.get("locale")
            if value is None:
                return None  # a query: setlocale(category)
            return ("module:locale", "setlocale()", value)

        self._wrap(module, "setlocale", "locale.setlocale", describe)

    # -- the one wrapper --------------------------------------------------------------------
    def _wrap(self, owner: Any, attr: str, label: str, describe: _Describe) -> None:
        try:
            namespace = owner.__dict__
            original = namespace.get(attr)
            if original is None or getattr(original, "__patchtrace__", False):
                return
            wrapper = self._make(original, label, describe)
            try:
                wrapper.__name__ = original.__name__
                wrapper.__qualname__ = original.__qualname__
                wrapper.__doc__ = original.__doc__
            except (AttributeError, TypeError):
                pass
            wrapper.__wrapped__ = original  # type: ignore[attr-defined]
            wrapper.__patchtrace__ = True  # type: ignore[attr-defined]
            setattr(owner, attr, wrapper)
            self._originals.append((owner, attr, original))
        except Exception as exc:
            if self._tracer is not None:
                self._tracer.internal_error(f"calls source ({label})", exc)

    def _make(self, original: Callable[..., Any], label: str,
              describe: _Describe) -> Callable[..., Any]:
        source = self
        local = self._local

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled or tracer.busy or \
                    local.__dict__.get("depth", 0):
                return original(*args, **kwargs)
            stack = source._caller_stack(label)
            local.depth = 1  # the calls it makes (basicConfig -> addHandler) are its own
            try:
                result = original(*args, **kwargs)
            finally:
                local.depth = 0
            if stack is not None:
                source._record(tracer, label, describe, args, kwargs, stack)
            return result

        return wrapper

    def _caller_stack(self, label: str) -> _stack.Stack | None:
        """The caller's stack, or None when no user frame made the call (pytest's log
        capture adds and removes its handler around every phase) or when it was made by a
        module's import-time code (a library configuring its own logger)."""
        try:
            first = _stack._getframe(2)  # captured: a test may delete sys._getframe
            caller: FrameType | None = first
            # the innermost frame outside the standard library, pytest and patchtrace
            # (asyncio.set_event_loop calls the policy's method) must be a user's
            while caller is not None:
                filename = _stack.frame_file(caller)
                if _stack.is_driver(filename):
                    return None  # pytest itself (its log capture, around every phase)
                if not _stack.is_hidden(filename):
                    break
                caller = caller.f_back
            if caller is None:
                return None
            from .watch import importing

            if importing(first):
                return None
            return _stack.capture(2)
        except Exception as exc:
            if self._tracer is not None:
                self._tracer.internal_error(f"calls source ({label})", exc)
            return None

    def _record(self, tracer: Tracer, label: str, describe: _Describe, args: tuple[Any, ...],
                kwargs: dict[str, Any], stack: _stack.Stack) -> None:
        try:
            described = describe(args, kwargs)
            if described is None:
                return
            target, name, after = described
            tracer.record("call", "calls", target, name, NOTHING, after,
                          desc=f"{label}(...)", stack=stack)
        except Exception as exc:
            tracer.internal_error(f"calls source ({label})", exc)


#: the names of the functions wrapped, for the documentation and tests
WRAPPED: Final = (
    "signal.signal", "logging.Logger.addHandler", "logging.Logger.removeHandler",
    "logging.Logger.setLevel", "logging.basicConfig", "logging.config.dictConfig",
    "logging.config.fileConfig", "asyncio.set_event_loop", "asyncio.set_event_loop_policy",
    "sys.setrecursionlimit", "socket.setdefaulttimeout", "locale.setlocale",
)
