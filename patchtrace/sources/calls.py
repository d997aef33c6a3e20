"""Calls that change process-wide resources: the line that made each change.

The boundary snapshot (``boundary/snapshot.py``) sees *that* a logger, a signal handler or the event
loop changed, not *who* changed it. The functions users call to change them are wrapped
here, so a ``resource-changed`` leak gets the user's line as patches and stores do:

* ``signal.signal``;
* ``logging.Logger.addHandler`` / ``removeHandler`` / ``setLevel``, ``logging.basicConfig``,
  ``logging.config.dictConfig`` / ``fileConfig`` (their own inner calls are not recorded
  again: one record per call the user made);
* ``asyncio``: the policy's ``set_event_loop`` (``asyncio.set_event_loop`` and the loop
  ``get_event_loop()`` creates both go through it) and ``set_event_loop_policy``;
* ``sys.setrecursionlimit``, ``socket.setdefaulttimeout``, ``locale.setlocale``;
* ``warnings.filterwarnings`` / ``simplefilter`` / ``resetwarnings`` (a call inside a
  ``catch_warnings`` block is recorded too, and never used: see :func:`explains`).

``sys.settrace``/``sys.setprofile`` are seen by their audit events instead (``audit.py``):
a wrapper's own frame would be traced or profiled by the function it just installed (a
debugger's ``set_trace`` would stop in it, a profiler would see its return).

A record here is ``op="call"``: it changes no binding by itself; the detector uses it only
to name the line of a change the snapshot found. A call is recorded only when a user frame
made it (the innermost frame outside the standard library, pytest and patchtrace is a
user's): pytest's log capture, adding and removing its handler around every phase, is not
recorded, nor is a call made by a module's import-time code (a library configuring its
logger). ``sys.path``, ``sys.meta_path`` and ``sys.path_hooks`` are plain lists: their
methods cannot be wrapped (see ``_oracle.find_path_edit``).

A record names a line only when it explains the change found (:func:`explains`: the
handler it added is there, the level it set is the level now, the filter it inserted is
still in the list); otherwise the change is "not seen as it happened" rather than blamed
on the wrong line. Wrapping goes through :func:`._wrap.around`: guarded, transparent,
idempotent, undone in reverse order by ``uninstall``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from ..ledger import NOTHING, UNKNOWN
from ..values import LoggerState
from ._imports import cancel, when_imported
from ._wrap import SKIP, Group, around

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["CallsSource"]

#: (args, kwargs, result, what ``prepare`` said before the call) -> (target, name or None,
#: what the call made), or None: nothing to record
_Describe = Callable[[tuple[Any, ...], dict[str, Any], object, object],
                     "tuple[str, str | None, object] | None"]
#: (args, kwargs) -> something to read before the call (the length of a list it grows)
_Prepare = Callable[[tuple[Any, ...], dict[str, Any]], object]


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
        self._group = Group("calls")
        self._hooks: list[tuple[str, Callable[[ModuleType], None]]] = [
            ("signal", self._instrument_signal),
            ("logging", self._instrument_logging),
            ("logging.config", self._instrument_logging_config),
            ("asyncio", self._instrument_asyncio),
            ("socket", self._instrument_socket),
            ("locale", self._instrument_locale),
            ("warnings", self._instrument_warnings),
        ]

    @property
    def _tracer(self) -> Tracer | None:
        return self._group.tracer

    # -- install ----------------------------------------------------------------------------
    def install(self, tracer: Tracer) -> None:
        self._group.tracer = tracer
        self._wrap(sys, "setrecursionlimit", "sys.setrecursionlimit",
                   lambda a, k, r, p: ("module:sys", "recursionlimit", a[0] if a else NOTHING))
        for module, hook in self._hooks:
            when_imported(module, hook)

    def uninstall(self) -> None:
        for module, hook in self._hooks:
            cancel(module, hook)
        self._group.undo()

    def _instrument_signal(self, module: ModuleType) -> None:
        self._wrap(module, "signal", "signal.signal", lambda a, k, r, p: (
            "signal", _signal_name(a[0]) if a else None, a[1] if len(a) > 1 else NOTHING))

    def _instrument_logging(self, module: ModuleType) -> None:
        logger = module.__dict__.get("Logger")
        if isinstance(logger, type):
            for method in ("addHandler", "removeHandler", "setLevel"):
                self._wrap(logger, method, f"Logger.{method}", lambda a, k, r, p: (
                    "logging", _logger_name(a[0]) if a else None,
                    a[1] if len(a) > 1 else k.get("level", k.get("hdlr", NOTHING))))
        self._wrap(module, "basicConfig", "logging.basicConfig",
                   lambda a, k, r, p: ("logging", "root", NOTHING))

    def _instrument_logging_config(self, module: ModuleType) -> None:
        for function in ("dictConfig", "fileConfig"):
            self._wrap(module, function, f"logging.config.{function}",
                       lambda a, k, r, p: ("logging", None, NOTHING))

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
                self._wrap(cls, "set_event_loop", "asyncio.set_event_loop", lambda a, k, r, p: (
                    "asyncio", "event_loop", a[1] if len(a) > 1 else NOTHING))
        # asyncio re-exports it (``from .events import *``): the same wrapper there too
        self._wrap(events, "set_event_loop_policy", "asyncio.set_event_loop_policy",
                   lambda a, k, r, p: ("asyncio", "policy", a[0] if a else NOTHING),
                   also=(package,))

    def _instrument_socket(self, module: ModuleType) -> None:
        self._wrap(module, "setdefaulttimeout", "socket.setdefaulttimeout", lambda a, k, r, p: (
            "module:socket", "getdefaulttimeout()", a[0] if a else NOTHING))

    def _instrument_locale(self, module: ModuleType) -> None:
        def describe(a: tuple[Any, ...], k: dict[str, Any], result: object,
                     prepared: object) -> tuple[str, str | None, object] | None:
            value = a[1] if len(a) > 1 else k.get("locale")
            if value is None:
                return None  # a query: setlocale(category)
            return ("module:locale", "setlocale()", value)

        self._wrap(module, "setlocale", "locale.setlocale", describe)

    def _instrument_warnings(self, module: ModuleType) -> None:
        """``filterwarnings``/``simplefilter`` insert one filter tuple (or move an equal
        one to the front); the record keeps that tuple, so the detector can tell a call
        whose filter is still in place at the boundary from one made inside a
        ``catch_warnings`` block (whose list is gone by then). ``resetwarnings`` empties
        the list."""
        namespace = module.__dict__

        def length(a: tuple[Any, ...], k: dict[str, Any]) -> object:
            filters = namespace.get("filters")
            return len(filters) if type(filters) is list else -1

        def added(position: int) -> _Describe:
            def describe(a: tuple[Any, ...], k: dict[str, Any], result: object,
                         prepared: object) -> tuple[str, str | None, object] | None:
                filters = namespace.get("filters")
                if type(filters) is not list or not filters:
                    return None
                if not k.get("append", a[position] if len(a) > position else False):
                    return ("warnings", "filters", filters[0])
                if len(filters) == prepared:
                    return None  # append=True and an equal filter was there: no change
                return ("warnings", "filters", filters[-1])

            return describe

        # filterwarnings(action, message, category, module, lineno, append);
        # simplefilter(action, category, lineno, append)
        self._wrap(module, "filterwarnings", "warnings.filterwarnings", added(5),
                   prepare=length)
        self._wrap(module, "simplefilter", "warnings.simplefilter", added(3), prepare=length)
        self._wrap(module, "resetwarnings", "warnings.resetwarnings",
                   lambda a, k, r, p: ("warnings", "filters", NOTHING))

    # -- the one wrapper --------------------------------------------------------------------
    def _wrap(self, owner: Any, attr: str, label: str, describe: _Describe,
              prepare: _Prepare | None = None, also: tuple[object, ...] = ()) -> None:
        part = f"calls source ({label})"

        def before(args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
            stack = _user_stack(1)
            if stack is None:
                return SKIP
            return (stack, prepare(args, kwargs) if prepare is not None else None)

        def after(ticket: object, args: tuple[Any, ...], kwargs: dict[str, Any],
                  result: object) -> None:
            tracer = self._group.tracer
            if tracer is None:
                return
            stack: _stack.Stack = ticket[0]  # type: ignore[index]
            prepared: object = ticket[1]  # type: ignore[index]
            described = describe(args, kwargs, result, prepared)
            if described is None:
                return
            target, name, made = described
            tracer.record("call", "calls", target, name, NOTHING, made, desc=f"{label}(...)",
                          stack=stack)

        # skip_driver: pytest's own calls (its log capture, its warning filters) leave at
        # once, as _user_stack would say
        around(owner, attr, part=part, group=self._group, before=before, after=after, also=also,
               skip_driver=True)


def _user_stack(skip: int) -> _stack.Stack | None:
    """The stack of the call being made, or None when no user frame made it (pytest's log
    capture adds and removes its handler around every phase) or when a module's
    import-time code made it (a library configuring its own logger).

    ``skip``: frames between the caller of this function and the frame that made the call
    (1 for a ``before`` hook: the wrapper). Raises nothing the wrapper would not catch."""
    first = _stack._getframe(skip + 2)  # captured: a test may delete sys._getframe
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
    return _stack.capture(skip + 2)


#: the names of the functions wrapped, for the documentation and tests
WRAPPED: Final = (
    "signal.signal", "logging.Logger.addHandler", "logging.Logger.removeHandler",
    "logging.Logger.setLevel", "logging.basicConfig", "logging.config.dictConfig",
    "logging.config.fileConfig", "asyncio.set_event_loop", "asyncio.set_event_loop_policy",
    "sys.setrecursionlimit", "socket.setdefaulttimeout", "locale.setlocale",
    "warnings.filterwarnings", "warnings.simplefilter", "warnings.resetwarnings",
)


# -- which record explains which change ----------------------------------------------------
def _contains(items: object, obj: object) -> bool:
    """``obj`` is one of ``items``, by identity (never ``==`` on a user object)."""
    return type(items) is tuple and any(item is obj for item in items)


def _state(value: object, field: str) -> object:
    """A field of a :class:`~patchtrace.values.LoggerState`, or NOTHING for anything else."""
    return getattr(value, field) if type(value) is LoggerState else NOTHING


def _level_number(level: object) -> object:
    """What ``Logger.setLevel(level)`` stores: an int as it is, a name through the level
    table read raw (``logging.addLevelName`` levels included); NOTHING when unknown."""
    if type(level) is int:
        return level
    if type(level) is str:
        logging = sys.modules.get("logging")
        names = logging.__dict__.get("_nameToLevel") if logging is not None else None
        if type(names) is dict:
            number = names.get(level, NOTHING)
            return number if type(number) is int else NOTHING
    return NOTHING


def _atom_equal(a: object, b: object) -> bool:
    """Identity, or equal plain numbers (a signal handler read back as an int, a timeout
    given as an int and read back as a float)."""
    if a is b:
        return True
    numbers = (int, float, bool)
    if type(a) not in numbers or type(b) not in numbers:
        import signal

        a = int(a) if type(a) is signal.Handlers else a
        b = int(b) if type(b) is signal.Handlers else b
        if type(a) not in numbers or type(b) not in numbers:
            return False
    return bool(a == b)


def _explains_level(made: object, before: object, after: object) -> bool:
    level = _level_number(made)
    now = _state(after, "level")
    return level is not NOTHING and type(now) is int and now == level and \
        _state(before, "level") != now


def _explains_added(made: object, before: object, after: object) -> bool:
    return _contains(_state(after, "handlers"), made) and \
        not _contains(_state(before, "handlers"), made)


def _explains_removed(made: object, before: object, after: object) -> bool:
    return _contains(_state(before, "handlers"), made) and \
        not _contains(_state(after, "handlers"), made)


def _explains_basic(made: object, before: object, after: object) -> bool:
    old, new = _state(before, "handlers"), _state(after, "handlers")
    handlers_moved = type(old) is tuple and type(new) is tuple and (
        len(old) != len(new) or any(a is not b for a, b in zip(old, new, strict=False)))
    return handlers_moved or _state(before, "level") != _state(after, "level")


def _filters(value: object) -> object:
    return value[0] if type(value) is tuple and len(value) == 2 else NOTHING


def _explains_filter(made: object, before: object, after: object) -> bool:
    return _contains(_filters(after), made) and not _contains(_filters(before), made)


def _explains_reset(made: object, before: object, after: object) -> bool:
    old, new = _filters(before), _filters(after)
    return type(old) is tuple and type(new) is tuple and \
        not any(_contains(old, item) for item in new)


def _explains_policy(made: object, before: object, after: object) -> bool:
    # a policy of asyncio's default class counts as none (snapshot._asyncio_policy)
    return after is made or after is None


#: label -> (what the call made, before, after) -> the change is that call's doing
_EXPLAINS: Final[dict[str, Callable[[object, object, object], bool]]] = {
    "Logger.setLevel": _explains_level,
    "Logger.addHandler": _explains_added,
    "Logger.removeHandler": _explains_removed,
    "logging.basicConfig": _explains_basic,
    "signal.signal": lambda made, before, after: _atom_equal(made, after),
    "asyncio.set_event_loop": lambda made, before, after: made is after,
    "asyncio.set_event_loop_policy": _explains_policy,
    "sys.setrecursionlimit": lambda made, before, after: _atom_equal(made, after),
    "socket.setdefaulttimeout": lambda made, before, after: (
        after is None if made is None else _atom_equal(made, after)),
    "warnings.filterwarnings": _explains_filter,
    "warnings.simplefilter": _explains_filter,
    "warnings.resetwarnings": _explains_reset,
}


def explains(desc: str | None, made: object, before: object, after: object) -> bool:
    """Whether a ``call`` record (its ``desc`` and what the call made) explains a change
    from ``before`` to ``after`` found at a boundary: only then is the call's line the
    change's line. Calls whose effect cannot be checked this way (``dictConfig``,
    ``setlocale``, ``settrace``: the only ways to change what they change) explain any
    change of their resource; a record whose value is gone (sealed, not weakly
    referenceable) too."""
    if desc is None or made is UNKNOWN:
        return True
    check = _EXPLAINS.get(desc[:-5] if desc.endswith("(...)") else desc)
    if check is None:
        return True
    try:
        return check(made, before, after)
    except Exception:
        return False
