"""Process-wide resources, compared at boundaries.

The list follows CPython's regression-test runner (``Lib/test/libregrtest/save_env.py``,
"environment changed"): cwd, argv, the import system, standard streams, sys hooks, trace
and profile functions, recursion limit, environment, warnings, logging, signal handlers,
threads, the asyncio policy, the socket timeout and the locale; plus ``sys.modules`` (by
identity: added, replaced, removed) and ``builtins``.

A snapshot copies references, not objects: comparing is by identity (``is``), never by
``==`` on user objects (a MagicMock's ``__eq__`` would record a call).
"""

from __future__ import annotations

import builtins
import ctypes
import operator
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, final

from ..ledger import NOTHING
from ..values import is_mock
from ._imports import is_ours

__all__ = ["Change", "Snapshot", "diff", "take"]


@final
class Change:
    """One difference between two snapshots."""

    __slots__ = ("after", "before", "kind", "name", "target")

    def __init__(self, kind: str, target: str, name: str | None, before: object, after: object):
        self.kind = kind
        self.target = target
        self.name = name
        self.before = before
        self.after = after

    def __repr__(self) -> str:
        return f"Change({self.kind}, {self.target}, {self.name!r})"


#: The signals programs and tests install handlers for. Reading all ~60 costs ~70 µs per
#: boundary (measured); these cost ~10 µs.
_COMMON_SIGNALS: Final = (
    "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD",
    "SIGPIPE", "SIGWINCH", "SIGCONT", "SIGTSTP", "SIGVTALRM", "SIGPROF", "SIGXCPU",
)


def _signals() -> list[signal.Signals]:
    valid = signal.valid_signals()
    out: list[signal.Signals] = []
    for name in _COMMON_SIGNALS:
        sig = getattr(signal.Signals, name, None)
        if sig is not None and sig in valid:
            out.append(sig)
    return out


_SIGNALS: Final = _signals()
_ENV_SKIP: Final = frozenset({b"PYTEST_CURRENT_TEST", "PYTEST_CURRENT_TEST"})


def _cwd() -> object:
    try:
        return os.getcwd()
    except OSError:
        return NOTHING


def _signal_handlers() -> tuple[object, ...]:
    out: list[object] = []
    for sig in _SIGNALS:
        try:
            out.append(signal.getsignal(sig))
        except (ValueError, OSError):
            out.append(NOTHING)
    return tuple(out)


def _logging() -> object:
    logging = sys.modules.get("logging")
    if logging is None:
        return NOTHING
    root = logging.root
    return (tuple(root.handlers), root.level, logging.root.manager.disable)


def _warnings() -> object:
    warnings = sys.modules.get("warnings")
    if warnings is None:
        return NOTHING
    return (tuple(warnings.filters), warnings.showwarning)


def _asyncio_policy() -> object:
    events = sys.modules.get("asyncio.events")
    if events is None:
        return NOTHING
    return events.__dict__.get("_event_loop_policy", NOTHING)


def _socket_timeout() -> object:
    socket = sys.modules.get("socket")
    return NOTHING if socket is None else socket.getdefaulttimeout()


def _locale() -> object:
    locale = sys.modules.get("locale")
    if locale is None:
        return NOTHING
    try:
        return locale.setlocale(locale.LC_ALL, None)
    except Exception:
        return NOTHING


def _threads() -> object:
    return tuple(t for t in threading.enumerate() if t is not threading.main_thread())


class _Copier:
    """Copies a dict only when it changed since the last copy (PEP 509 version tag).

    ``ma_version_tag`` still moves on every change in 3.10-3.13; reading it costs ~0.1 µs
    where copying sys.modules costs ~10 µs. An unchanged dict hands back the same copy,
    which :func:`diff` then skips by identity.
    """

    __slots__ = ("_copy", "_dict", "_tag", "_version")

    def __init__(self, target: dict[Any, Any]) -> None:
        self._dict = target
        self._tag = -1
        self._copy: dict[Any, Any] = {}
        try:
            self._version: Any = ctypes.c_uint64.from_address(
                id(target) + 3 * ctypes.sizeof(ctypes.c_ssize_t))
        except Exception:
            self._version = None

    def __call__(self) -> dict[Any, Any]:
        version = self._version
        if version is None:
            return dict(self._dict)
        tag = version.value
        if tag != self._tag:
            self._copy = dict(self._dict)
            self._tag = tag
        return self._copy


_copiers: dict[int, _Copier] = {}


def _copy_of(target: object) -> dict[Any, Any]:
    if type(target) is not dict:
        return dict(target)  # type: ignore[call-overload, no-any-return]
    copier = _copiers.get(id(target))
    if copier is None or copier._dict is not target:
        copier = _copiers[id(target)] = _Copier(target)
    return copier()


def _env() -> object:
    data = getattr(os.environ, "_data", None)
    return _copy_of(data) if isinstance(data, dict) else dict(os.environ)


#: name -> (probe, target, entry name); probes return references, compared with ``is``.
_SCALARS: Final[dict[str, tuple[Callable[[], object], str, str | None]]] = {
    "cwd": (_cwd, "cwd", None),
    "stdin": (lambda: sys.stdin, "module:sys", "stdin"),
    "stdout": (lambda: sys.stdout, "module:sys", "stdout"),
    "stderr": (lambda: sys.stderr, "module:sys", "stderr"),
    "displayhook": (lambda: sys.displayhook, "module:sys", "displayhook"),
    "excepthook": (lambda: sys.excepthook, "module:sys", "excepthook"),
    "breakpointhook": (lambda: sys.breakpointhook, "module:sys", "breakpointhook"),
    "trace": (sys.gettrace, "module:sys", "settrace"),
    "profile": (sys.getprofile, "module:sys", "setprofile"),
    "recursionlimit": (sys.getrecursionlimit, "module:sys", "recursionlimit"),
    "asyncio_policy": (_asyncio_policy, "module:asyncio.events", "_event_loop_policy"),
    "socket_timeout": (_socket_timeout, "module:socket", "getdefaulttimeout()"),
    "locale": (_locale, "module:locale", "setlocale()"),
}
_LISTS: Final = {
    "argv": ("module:sys", "argv", lambda: sys.argv),
    "path": ("sys.path", None, lambda: sys.path),
    "meta_path": ("sys.meta_path", None, lambda: sys.meta_path),
    "path_hooks": ("sys.path_hooks", None, lambda: sys.path_hooks),
}
_EQUAL_BY_VALUE: Final = frozenset({"cwd", "recursionlimit", "socket_timeout", "locale"})


@final
class Snapshot:
    __slots__ = ("builtins", "env", "lists", "logging", "modules", "scalars", "signals",
                 "threads", "warnings")

    def __init__(self) -> None:
        self.scalars: dict[str, object] = {}
        self.lists: dict[str, tuple[object, ...]] = {}
        self.env: dict[Any, Any] = {}
        self.modules: dict[str, object] = {}
        self.builtins: dict[str, object] = {}
        self.signals: tuple[object, ...] = ()
        self.logging: object = NOTHING
        self.warnings: object = NOTHING
        self.threads: object = ()


def take() -> Snapshot:
    snap = Snapshot()
    for key, (probe, _, _) in _SCALARS.items():
        try:
            snap.scalars[key] = probe()
        except Exception:
            snap.scalars[key] = NOTHING
    for key, (_, _, get) in _LISTS.items():
        snap.lists[key] = tuple(x for x in get() if not is_ours(x))  # type: ignore[no-untyped-call, attr-defined]
    snap.env = _env()  # type: ignore[assignment]
    snap.modules = _copy_of(sys.modules)
    snap.builtins = _copy_of(builtins.__dict__)
    snap.signals = _signal_handlers()
    snap.logging = _logging()
    snap.warnings = _warnings()
    snap.threads = _threads()
    return snap


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(sys.getfilesystemencoding(), "surrogateescape")
    return value if isinstance(value, str) else repr(value)


def diff(before: Snapshot, after: Snapshot) -> list[Change]:
    """Everything that differs; the detector decides what is a leak."""
    changes: list[Change] = []
    for key, (_, target, name) in _SCALARS.items():
        old, new = before.scalars.get(key, NOTHING), after.scalars.get(key, NOTHING)
        same = old == new if key in _EQUAL_BY_VALUE else old is new
        if not same:
            changes.append(Change("resource-changed", target, name, old, new))
    for key, (target, name, _) in _LISTS.items():
        old_items, new_items = before.lists.get(key, ()), after.lists.get(key, ())
        if len(old_items) == len(new_items) and all(map(operator.is_, old_items, new_items)):
            continue
        if name is not None:  # sys.argv: one change for the whole list
            changes.append(Change("resource-changed", target, name, list(old_items),
                                  list(new_items)))
            continue
        old_ids = {id(x) for x in old_items}
        new_ids = {id(x) for x in new_items}
        for item in new_items:
            if id(item) not in old_ids:
                changes.append(Change("resource-changed", target, _entry(item), NOTHING, item))
        for item in old_items:
            if id(item) not in new_ids:
                changes.append(Change("resource-changed", target, _entry(item), item, NOTHING))
        if not changes or changes[-1].target != target:
            # same members, other order
            changes.append(Change("resource-changed", target, "order", list(old_items),
                                  list(new_items)))
    if before.env is not after.env and before.env != after.env:
        for key in before.env.keys() | after.env.keys():
            if key in _ENV_SKIP:
                continue
            old, new = before.env.get(key, NOTHING), after.env.get(key, NOTHING)
            if old != new:
                changes.append(Change(
                    "binding-changed", "os.environ", _text(key),
                    NOTHING if old is NOTHING else _text(old),
                    NOTHING if new is NOTHING else _text(new)))
    changes.extend(_namespace_changes("builtins", before.builtins, after.builtins))
    changes.extend(_module_changes(before.modules, after.modules))
    if not all(map(operator.is_, before.signals, after.signals)):  # never == on a handler
        for sig, old, new in zip(_SIGNALS, before.signals, after.signals, strict=False):
            if old is not new:
                changes.append(Change("resource-changed", "signal", sig.name, old, new))
    if not _same(before.logging, after.logging):
        changes.append(Change("resource-changed", "logging", "root", before.logging,
                              after.logging))
    if not _same(before.warnings, after.warnings):
        changes.append(Change("resource-changed", "warnings", "filters", before.warnings,
                              after.warnings))
    old_threads = before.threads if isinstance(before.threads, tuple) else ()
    new_threads = after.threads if isinstance(after.threads, tuple) else ()
    old_ids = {id(t) for t in old_threads}
    for thread in new_threads:
        if id(thread) not in old_ids and thread.is_alive():
            changes.append(Change("resource-changed", "module:threading", thread.name,
                                  NOTHING, thread))
    return changes


def _same(a: object, b: object) -> bool:
    if a is b:
        return True
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b, strict=False))
    # ints/strings (levels) compare by value; everything else by identity
    return type(a) in (int, str) and a == b


def _entry(item: object) -> str:
    from ..values import safe_repr

    return safe_repr(item, 80)


def _unchanged(before: dict[str, object], after: dict[str, object]) -> bool:
    """Same keys in the same order, each value the same object: at C speed, and without
    ever calling ``==`` on a value (a MagicMock records ``__eq__`` calls)."""
    return before is after or (
        len(before) == len(after)
        and all(map(operator.is_, before, after))  # keys: str, in insertion order
        and all(map(operator.is_, before.values(), after.values()))
    )


def _namespace_changes(
    target: str, before: dict[str, object], after: dict[str, object]
) -> list[Change]:
    if _unchanged(before, after):
        return []
    out = []
    for key in before.keys() | after.keys():
        old, new = before.get(key, NOTHING), after.get(key, NOTHING)
        if old is not new:
            out.append(Change("binding-changed", target, key, old, new))
    return out


def _module_changes(before: dict[str, object], after: dict[str, object]) -> list[Change]:
    if _unchanged(before, after):
        return []
    out: list[Change] = []
    removed = 0
    for name, old in before.items():
        new = after.get(name, NOTHING)
        if new is old:
            continue
        if new is NOTHING:
            removed += 1
            out.append(Change("module-dropped", "sys.modules", name, old, NOTHING))
        elif isinstance(new, ModuleType) and isinstance(old, ModuleType):
            out.append(Change("module-replaced", "sys.modules", name, old, new))
        else:
            out.append(Change("binding-changed", "sys.modules", name, old, new))
    if len(after) - len(before) + removed > 0:  # something was added
        for name, new in after.items():
            # A new non-module entry is what a test plants (a mock, or None to block an
            # import); libraries that install lazy module objects use ModuleType subclasses.
            if name not in before and (new is None or is_mock(new)):
                out.append(Change("binding-changed", "sys.modules", name, NOTHING, new))
    return out
