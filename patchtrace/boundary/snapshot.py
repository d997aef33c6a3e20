"""Process-wide resources, taken and compared at boundaries (not a source: it records nothing).

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
import importlib
import operator
import os
import signal
import struct
import sys
import threading
from collections.abc import Callable, Collection
from itertools import compress
from operator import ne
from types import ModuleType
from typing import Any, Final, final

from .._vocab import Kind
from ..ledger import NOTHING
from ..sources._imports import is_ours
from ..sources.audit import chdirs as audit_chdirs
from ..sources.audit import events as audit_events
from ..values import LoggerState, identity_key, is_mock

__all__ = ["Change", "LoggerState", "Snapshot", "diff", "planted", "reads", "take"]


@final
class Change:
    """One difference between two snapshots."""

    __slots__ = ("added", "after", "before", "entry", "kind", "name", "needs_line", "target")

    def __init__(self, kind: Kind, target: str, name: str | None, before: object, after: object,
                 *, needs_line: bool = False, added: bool | None = None,
                 entry: object = NOTHING):
        self.kind = kind
        self.target = target
        self.name = name
        self.before = before
        self.after = after
        #: for a list (sys.path, sys.meta_path, sys.path_hooks): whether the entry was added
        #: (or one more copy of it) or removed, and the entry itself, for the source oracle
        self.added = added
        self.entry = entry
        #: a leak only when a user line is known for it (a record of the call that made
        #: it, or a statement in the polluter's source): a logger a library created and
        #: configured as it was imported, a sys.path entry pytest inserted once more
        self.needs_line = needs_line

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
_SIGNAL_NUMBERS: Final = tuple(int(sig) for sig in _SIGNALS)
_getsignal: Final[Callable[[int], object]] = importlib.import_module("_signal").getsignal
_ENV_SKIP: Final = frozenset({b"PYTEST_CURRENT_TEST", "PYTEST_CURRENT_TEST"})
try:
    import _locale as _locale_module

    _setlocale: Callable[[int], str] = _locale_module.setlocale
    _LC_ALL: int = _locale_module.LC_ALL
except (ImportError, AttributeError):  # a build without locale support
    def _setlocale(category: int) -> str:
        raise OSError("no locale support")

    _LC_ALL = 0


_last_cwd: object = NOTHING
_chdirs_seen = -1


def _cwd() -> object:
    """The working directory; the ``os.getcwd()`` system call is made again only after an
    ``os.chdir``/``os.fchdir`` audit event (counted by the audit source), since those are
    the only ways Python code changes it."""
    global _last_cwd, _chdirs_seen
    chdirs = audit_chdirs()
    if chdirs is not None and chdirs == _chdirs_seen:
        return _last_cwd
    try:
        _last_cwd = os.getcwd()
    except OSError:
        _last_cwd = NOTHING
    _chdirs_seen = chdirs if chdirs is not None else -1
    return _last_cwd


def _signal_handlers() -> tuple[object, ...]:
    # _signal.getsignal: signal.getsignal converts every answer into an enum (~1 µs each).
    out: list[object] = []
    for sig in _SIGNAL_NUMBERS:
        try:
            out.append(_getsignal(sig))
        except (ValueError, OSError):
            out.append(NOTHING)
    return tuple(out)


def _asyncio_policy() -> object:
    """The policy a test set; the default one asyncio creates on first use counts as none
    (``asyncio.get_event_loop_policy()`` fills in ``None`` lazily)."""
    events = sys.modules.get("asyncio.events")
    if events is None:
        return None
    policy = events.__dict__.get("_event_loop_policy")
    if policy is not None:
        default = sys.modules.get("asyncio")
        cls = default.__dict__.get("DefaultEventLoopPolicy") if default is not None else None
        if cls is not None and type(policy) is cls:
            return None
    return policy


_thread_local_getattribute: Final = threading.local.__getattribute__


def _asyncio_loop() -> object:
    """The event loop ``asyncio.set_event_loop`` left as current for this thread, read from
    the policy's thread-local state: never ``get_event_loop()``, which creates a loop (and
    warns) when there is none."""
    events = sys.modules.get("asyncio.events")
    if events is None:
        return None
    policy = events.__dict__.get("_event_loop_policy")
    if policy is None:
        return None
    try:
        local = object.__getattribute__(policy, "__dict__").get("_local")
        if local is None:
            return None
        # this thread's attributes: the thread-local type's own lookup (object's would give
        # the dict of no thread)
        state = _thread_local_getattribute(local, "__dict__")
    except (AttributeError, TypeError):
        return None
    return state.get("_loop") if type(state) is dict else None


def _locale() -> object:
    # _locale.setlocale: locale.setlocale is a Python wrapper around it (~1 µs more).
    if "locale" not in sys.modules:
        return NOTHING
    try:
        return _setlocale(_LC_ALL)
    except Exception:
        return NOTHING


_threads_seen: tuple[dict[Any, Any] | None, tuple[object, ...]] = (None, ())


def _threads() -> tuple[object, ...]:
    """Running threads but the main one: from ``threading._active``, re-read only when that
    dict changed (``threading.enumerate()`` takes a lock and builds lists: ~1.5 µs)."""
    global _threads_seen
    active = getattr(threading, "_active", None)
    if type(active) is not dict:
        main = threading.main_thread()
        return tuple(t for t in threading.enumerate() if t is not main)
    copy = _copy_of(active)
    seen, threads = _threads_seen
    if seen is not copy:
        main = threading.main_thread()
        threads = tuple(t for t in copy.values() if t is not main)
        _threads_seen = (copy, threads)
    return threads


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
    copier = _copiers.get(identity_key(target))
    if copier is None or copier._dict is not target:
        copier = _copiers[identity_key(target)] = _Copier(target)
    return copier()


def _env() -> dict[Any, Any]:
    """os.environ without pytest's PYTEST_CURRENT_TEST, for an ``os.environ`` without the
    ``_data`` dict that :func:`take` reads directly.

    Compared by content, with the keys and values ``_data`` would hold (bytes on POSIX): a
    test that rebinds ``os.environ`` to an equal plain dict (sh's tests restore it with
    ``os.environ = saved_copy``) changes the binding ``os.environ``, reported as such, not
    every variable. A dict is read as a dict (no user code); anything else as before."""
    env: Any = os.environ  # a test may have rebound it to anything
    if type(env) is dict and os.name == "posix":
        encoding = sys.getfilesystemencoding()
        out: dict[Any, Any] = {}
        for key, value in env.items():
            if type(key) is str:
                key = key.encode(encoding, "surrogateescape")
            if type(value) is str:
                value = value.encode(encoding, "surrogateescape")
            if key not in _ENV_SKIP:
                out[key] = value
        return out
    return {k: v for k, v in env.items() if k not in _ENV_SKIP}


#: A logger as ``logging.getLogger()`` makes it: no handler, NOTSET, propagating, enabled.
_DEFAULT_LOGGER: Final = ((), 0, True, False)
#: 3.10-3.12 move a dict's ``ma_version_tag`` on every change (PEP 509); 3.13 stores an
#: instance's attributes in its inline values even once ``__dict__`` exists, so from 3.13
#: the attributes are read for every logger instead (~80 ns each).
_TAGS_MOVE: Final = sys.version_info < (3, 13)


def _logger_attrs(namespace: object) -> tuple[object, object, object]:
    """(level, propagate, disabled) from a logger's ``__dict__``, never through the logger."""
    if type(namespace) is not dict:
        return (NOTHING, NOTHING, NOTHING)
    return (namespace.get("level", NOTHING), namespace.get("propagate", NOTHING),
            namespace.get("disabled", NOTHING))


class _Loggers:
    """The state of every logger (``Logger.manager.loggerDict`` and the root), taken cheaply.

    The loggers are listed again only when ``loggerDict`` changed (a version-tag copy);
    the loggers that have handlers are found in one C pass (``compress`` over the lists)
    and only theirs are compared, by identity; level, propagate and disabled are read again only for
    loggers whose ``__dict__`` version tag moved (one ``struct`` call reads all the tags),
    on 3.10-3.12. An unchanged process yields the same tuples, which ``diff`` skips by
    identity. Measured with 2,000 loggers: see docs/performance.md.
    """

    __slots__ = ("attrs", "current", "dicts", "handlers", "lengths", "lists", "loggers_copy",
                 "names", "nonempty", "read_tags", "rebuilds", "root", "tags", "total")

    def __init__(self) -> None:
        self.loggers_copy: object = None
        self.root: object = None
        self.names: tuple[str, ...] = ()
        self.dicts: list[dict[str, Any]] = []
        self.lists: list[list[object] | tuple[object, ...]] = []
        self.nonempty: tuple[int, ...] = (-1,)
        self.current: list[tuple[object, ...]] = []
        self.handlers: tuple[tuple[object, ...], ...] = ()
        self.attrs: tuple[tuple[object, object, object], ...] = ()
        self.read_tags: Callable[[], tuple[int, ...]] | None = None
        self.tags: tuple[int, ...] = ()
        self.total = 0
        #: how often the loggers were listed again (``loggerDict`` changed)
        self.rebuilds = 0
        #: the length of every handler list at the last read (``unchanged``)
        self.lengths: tuple[int, ...] = ()

    def _rebuild(self, root: object, loggers: dict[Any, Any], placeholder: object) -> None:
        entries: list[tuple[int, str, dict[str, Any]]] = []
        namespace = _raw_dict(root)
        if namespace is not None:
            entries.append((id(namespace), "root", namespace))
        for name, logger in loggers.items():
            if type(logger) is placeholder or type(name) is not str:
                continue
            namespace = _raw_dict(logger)
            if namespace is not None:
                entries.append((id(namespace), name, namespace))
        # In address order, so one struct format reads every tag in place (see _tags_reader).
        entries.sort(key=operator.itemgetter(0))
        self.rebuilds += 1
        self.root = root
        self.names = tuple(name for _, name, _ in entries)
        self.dicts = [namespace for _, _, namespace in entries]
        self.read_tags = _tags_reader(self.dicts) if _TAGS_MOVE and entries else None
        self.tags = self.read_tags() if self.read_tags is not None else ()
        self.total = sum(self.tags)
        self.lists = [_handler_list(d) for d in self.dicts]
        self.attrs = _all_attrs(self.dicts)
        self.nonempty = (-1,)  # read the handlers afresh
        self._read_handlers()

    def __call__(self, logging: ModuleType) -> tuple[object, ...]:
        root = logging.__dict__.get("root")
        logger_cls = logging.__dict__.get("Logger")
        cls_dict = _raw_dict(logger_cls) if isinstance(logger_cls, type) else None
        manager = cls_dict.get("manager") if cls_dict is not None else None
        state = _raw_dict(manager) if manager is not None else None
        loggers = state.get("loggerDict") if state is not None else None
        if state is None or type(loggers) is not dict or root is None:
            return (NOTHING,)
        copy = _copy_of(loggers)
        if copy is not self.loggers_copy or root is not self.root:
            self.loggers_copy = copy
            self._rebuild(root, copy, logging.__dict__.get("PlaceHolder"))
        else:
            self._refresh()
        disable = state.get("_disable", state.get("disable"))  # a property over _disable (3.7+)
        return (self.names, self.handlers, self.attrs, disable)

    def unchanged(self, logging: ModuleType) -> bool:
        """The catch-all of :func:`take`: the same ``loggerDict`` (version tag) and root, no
        logger's ``__dict__`` tag moved (an attribute store: ``logger.handlers = [...]``,
        ``logger.propagate = False``), every handler list as long as it was. Only where
        tags move (3.10-3.12); a handler replaced in place (``handlers[0] = h``) is
        found at the next full read."""
        read = self.read_tags
        if read is None:
            return False
        namespace = logging.__dict__
        root = namespace.get("root")
        logger_cls = namespace.get("Logger")
        cls_dict = _raw_dict(logger_cls) if isinstance(logger_cls, type) else None
        manager = cls_dict.get("manager") if cls_dict is not None else None
        state = _raw_dict(manager) if manager is not None else None
        loggers = state.get("loggerDict") if state is not None else None
        if type(loggers) is not dict or root is not self.root or \
                _copy_of(loggers) is not self.loggers_copy:
            return False
        if sum(read()) != self.total:
            return False
        return tuple(map(len, self.lists)) == self.lengths

    def _refresh(self) -> None:
        read = self.read_tags
        moved: list[int] | None = None
        if read is not None:
            tags = read()
            total = sum(tags)
            if total != self.total:
                moved = [i for i in compress(range(len(tags)), map(ne, self.tags, tags))]
                self.tags, self.total = tags, total
        else:
            # No tag reader (3.13+, or dicts too far apart to read in one pass): read the
            # attributes and the handler lists again; a rebound ``logger.handlers`` is a
            # new list (compared by identity in _read_handlers).
            attrs = _all_attrs(self.dicts)
            if not all(map(_same_atoms, attrs, self.attrs)):
                self.attrs = attrs
            self.lists = [_handler_list(d) for d in self.dicts]
        if moved:
            attrs_list = list(self.attrs)
            for i in moved:
                attrs_list[i] = _logger_attrs(self.dicts[i])
                self.lists[i] = _handler_list(self.dicts[i])  # logger.handlers = [...]
            self.attrs = tuple(attrs_list)
        self._read_handlers()

    def _read_handlers(self) -> None:
        lists = self.lists
        self.lengths = tuple(map(len, lists))
        # Most loggers have no handler: find the few that do in C (a list's truth is its
        # size), then compare those by identity.
        nonempty = tuple(compress(range(len(lists)), lists))
        current = [_user_handlers(lists[i]) for i in nonempty]
        if nonempty == self.nonempty and all(map(_identical, current, self.current)):
            return
        handlers: list[tuple[object, ...]] = [()] * len(lists)
        for i, items in zip(nonempty, current, strict=True):
            handlers[i] = items
        self.nonempty, self.current = nonempty, current
        self.handlers = tuple(handlers)


_read_attrs: Final = operator.itemgetter("level", "propagate", "disabled")


def _all_attrs(dicts: list[dict[str, Any]]) -> tuple[tuple[object, object, object], ...]:
    """(level, propagate, disabled) of every logger: one C call per logger while each has
    the three (``Logger.__init__`` sets them), a guarded read otherwise."""
    try:
        return tuple(map(_read_attrs, dicts))
    except KeyError:
        return tuple(map(_logger_attrs, dicts))


def _same_atoms(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Identity, or equal ints/bools (what logging stores): never a user ``__eq__``."""
    if a is b:
        return True
    for x, y in zip(a, b, strict=False):
        if x is not y and not (type(x) in (int, bool) and type(y) in (int, bool) and x == y):
            return False
    return len(a) == len(b)


def _raw_dict(obj: object) -> dict[str, Any] | None:
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return None
    if type(namespace) is dict:
        return namespace
    if type(obj) is type or isinstance(obj, type):  # a class: the dict behind its mappingproxy
        global _class_dict
        if _class_dict is None:  # looked up once, not per call
            from ..sources.watch import _class_dict as found

            _class_dict = found
        return _class_dict(obj)
    return None


_class_dict: Callable[[type], dict[str, Any] | None] | None = None


#: handler class -> made by pytest's logging plugin (it adds a new one around every phase)
_pytest_handler: dict[type, bool] = {}


def _user_handlers(handlers: list[object] | tuple[object, ...]) -> tuple[object, ...]:
    """The handlers, without pytest's own (``_pytest.logging``: LogCaptureHandler and the
    live-log and log-file handlers, attached around every phase, a new one each time)."""
    items = tuple(handlers)
    if any(map(_by_pytest, items)):
        return tuple(h for h in items if not _by_pytest(h))
    return items


def _by_pytest(handler: object) -> bool:
    cls = type(handler)
    mine = _pytest_handler.get(cls)
    if mine is None:
        mine = _pytest_handler[cls] = str(
            type.__dict__["__module__"].__get__(cls)) == "_pytest.logging"
    return mine


def _handler_list(namespace: dict[str, Any]) -> list[object] | tuple[object, ...]:
    handlers = namespace.get("handlers", ())
    if type(handlers) in (list, tuple):
        return handlers  # type: ignore[no-any-return]
    return (handlers,)  # something else bound to logger.handlers: compared as it is


def _tags_reader(dicts: list[dict[str, Any]]) -> Callable[[], tuple[int, ...]] | None:
    """One ``struct`` read of the version tag of every dict, given in address order (the
    caller keeps them alive: no address is reused while it reads them)."""
    try:
        offset = 3 * ctypes.sizeof(ctypes.c_ssize_t)
        addresses = [id(d) + offset for d in dicts]
        base = addresses[0]
        parts = ["<"]
        position = base
        for address in addresses:
            if address < position:
                raise ValueError("not in address order")
            if address > position:
                parts.append(f"{address - position}x")
            parts.append("Q")
            position = address + 8
        if position - base > 1 << 26:  # spread over more than 64 MB: read them apart
            raise ValueError("too sparse")
        unpack = struct.Struct("".join(parts)).unpack_from
        view = memoryview((ctypes.c_char * (position - base)).from_address(base))
        return lambda: unpack(view)
    except Exception:
        return None


_loggers: Final = _Loggers()


#: the environment seen last (see take)
_env_seen: dict[Any, Any] = {}
#: Compared by identity, in this order: (target, entry name) of each.
_IDENTITY: Final[tuple[tuple[str, str], ...]] = (
    ("module:sys", "stdin"), ("module:sys", "stdout"), ("module:sys", "stderr"),
    ("module:sys", "displayhook"), ("module:sys", "excepthook"),
    ("module:sys", "breakpointhook"), ("module:sys", "settrace"),
    ("module:sys", "setprofile"), ("asyncio", "policy"), ("asyncio", "event_loop"),
)
#: Compared by value (strings and numbers made by the interpreter, never user objects).
_VALUE: Final[tuple[tuple[str, str | None], ...]] = (
    ("cwd", None), ("module:sys", "recursionlimit"),
    ("module:socket", "getdefaulttimeout()"), ("module:locale", "setlocale()"),
)
_LISTS: Final[tuple[tuple[str, str | None], ...]] = (
    ("module:sys", "argv"), ("sys.path", None), ("sys.meta_path", None),
    ("sys.path_hooks", None),
)


def _lists() -> tuple[tuple[object, ...], ...]:
    meta = tuple(sys.meta_path)
    if any(map(is_ours, meta)):
        meta = tuple(x for x in meta if not is_ours(x))
    return (tuple(sys.argv), tuple(sys.path), meta, tuple(sys.path_hooks))


@final
class Snapshot:
    """References to the state of the process at one moment (flat tuples: cheap to take,
    cheap to compare by identity)."""

    __slots__ = ("builtins", "env", "identity", "lists", "logging", "modules", "namespaces",
                 "signals", "threads", "values", "warnings")

    def __init__(self) -> None:
        self.identity: tuple[object, ...] = ()
        self.values: tuple[object, ...] = ()
        self.lists: tuple[tuple[object, ...], ...] = ()
        self.env: dict[Any, Any] = {}
        self.modules: dict[str, object] = {}
        self.builtins: dict[str, object] = {}
        self.signals: tuple[object, ...] = ()
        self.logging: object = NOTHING
        self.warnings: object = NOTHING
        self.threads: tuple[object, ...] = ()
        #: copies of the sys and warnings module dicts (see _NAMESPACES)
        self.namespaces: tuple[dict[str, object], ...] = ()


#: Module namespaces compared here rather than watched (pytest rebinds some of their
#: attributes around every test), with the names that are resources of their own above,
#: or pytest's bookkeeping, and so not compared as bindings.
_NAMESPACES: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("sys", frozenset({
        "stdin", "stdout", "stderr", "displayhook", "excepthook", "breakpointhook", "argv",
        "path", "meta_path", "path_hooks", "path_importer_cache", "modules", "last_type",
        "last_value", "last_traceback", "last_exc", "ps1", "ps2",
        # pytest's unraisableexception plugin swaps it around every phase (pytest < 9)
        "unraisablehook",
    })),
    ("warnings", frozenset({"filters", "showwarning", "defaultaction", "onceregistry"})),
)


class _Compared:
    """The compared names of one namespace, read with one ``itemgetter`` call: pytest's
    capture swaps ``sys.stdout`` around every phase, so sys's dict changes every time, but
    its compared entries almost never do (~20 µs less per boundary than copying and
    filtering it)."""

    __slots__ = ("keys", "names", "read", "result", "skip", "values")

    def __init__(self, skip: frozenset[str]) -> None:
        self.skip = skip
        self.keys: tuple[object, ...] = ()
        self.names: tuple[str, ...] = ()
        self.read: Callable[[dict[str, object]], tuple[object, ...]] = lambda ns: ()
        self.values: tuple[object, ...] = ()
        self.result: dict[str, object] = {}

    def __call__(self, namespace: dict[str, object]) -> dict[str, object]:
        keys = tuple(namespace)
        # Module dict keys are strings, whose == runs no user code; a key added or removed
        # changes the length, so == only ever meets the strings already seen.
        if len(keys) != len(self.keys) or keys != self.keys:
            self.keys = keys
            self.names = tuple(key for key in keys if type(key) is str
                               and key not in self.skip and not key.startswith("_"))
            getter = operator.itemgetter(*self.names) if self.names else None
            if getter is None:
                self.read = lambda ns: ()
            elif len(self.names) == 1:
                self.read = lambda ns: (getter(ns),)
            else:
                self.read = getter
            self.values = self.read(namespace)
            self.result = dict(zip(self.names, self.values, strict=True))
            return self.result
        try:
            values = self.read(namespace)
        except KeyError:  # another thread deleted a name since tuple(namespace) was read
            self.keys = ()
            return self(namespace)
        if not _identical(values, self.values):
            self.values = values
            self.result = dict(zip(self.names, values, strict=True))
        return self.result


_compared: Final = tuple((name, _Compared(skip)) for name, skip in _NAMESPACES)


def _namespaces() -> tuple[dict[str, object], ...]:
    """The compared part of each namespace: the same dict object while nothing in it
    changed, so two snapshots compare by identity."""
    modules = sys.modules
    out: list[dict[str, object]] = []
    for name, compared in _compared:
        module = modules.get(name)
        namespace = getattr(module, "__dict__", None) if module is not None else None
        if type(namespace) is not dict:
            out.append({})
            continue
        out.append(compared(namespace))
    return tuple(out)


class _Seen:
    """What the last snapshot read, and under which events: the parts that only an event
    can change are read again only after one (see :func:`take`)."""

    __slots__ = ("env", "env_key", "identity", "lists", "locale", "locale_key", "logging",
                 "logging_key", "reads", "values")

    def __init__(self) -> None:
        self.env: dict[Any, Any] = {}
        self.env_key: object = None
        self.logging: object = NOTHING
        self.logging_key: object = None
        self.locale: object = NOTHING
        self.locale_key: object = None
        self.identity: tuple[object, ...] = ()
        self.values: tuple[object, ...] = ()
        self.lists: tuple[tuple[object, ...], ...] = ()
        #: part -> how often it was read in full (the rest of the time it was reused)
        self.reads: dict[str, int] = {"env": 0, "logging": 0, "locale": 0}


_seen: Final = _Seen()


def reads() -> dict[str, int]:
    """How often each event-driven part was read in full so far (for tests, benchmarks)."""
    return dict(_seen.reads)


def take(calls: int | None = None) -> Snapshot:
    """A snapshot (~10 µs): one flat function, since it runs at every boundary and each
    Python call costs as much as several of its probes. Probes never raise: a probe that
    cannot answer gives NOTHING.

    Driven by events where events exist: the environment is copied again only after an
    ``os.putenv``/``os.unsetenv`` audit event (pytest's own variable aside) or when its
    ``_data`` dict is another one or has another length (the catch-all for a write behind
    the hook's back); the loggers are re-read only after a wrapped logging call (``calls``,
    the tracer's count of the calls source's records) or an import, or when the
    catch-all moved (the loggers' version tags and handler-list lengths, see
    ``_Loggers``); the locale only after a wrapped call or an import. Without the audit
    hook, or without ``calls``, every part is read. The rest (streams and hooks, the
    ``sys.path`` lists, the signal table, the ``sys`` and ``warnings`` namespaces, threads)
    is read every time: it is the cheap catch-all, and a part that did not change is
    handed back as the same object, which :func:`diff` skips by identity.
    """
    global _env_seen
    seen = _seen
    snap = Snapshot()
    modules = sys.modules
    events = audit_events()
    try:
        identity: tuple[object, ...] = (
            sys.stdin, sys.stdout, sys.stderr, sys.displayhook, sys.excepthook,
            sys.breakpointhook, sys.gettrace(), sys.getprofile(), _asyncio_policy(),
            _asyncio_loop())
        if _identical(identity, seen.identity):
            identity = seen.identity
        else:
            seen.identity = identity
        snap.identity = identity
    except Exception:
        snap.identity = (NOTHING,) * len(_IDENTITY)
    try:
        # cwd: the system is asked again only after an os.chdir/os.fchdir audit event.
        chdirs = None if events is None else events[0]
        if chdirs is None or chdirs != _chdirs_seen:
            _cwd()
        socket = modules.get("socket")
        if "locale" in modules:
            key = None if events is None or calls is None else (calls, events[2])
            if key is None or key != seen.locale_key:
                seen.locale = _locale()
                seen.locale_key = key
                seen.reads["locale"] += 1
            locale = seen.locale
        else:
            locale = NOTHING
        values = (_last_cwd, sys.getrecursionlimit(),
                  None if socket is None else socket.getdefaulttimeout(),  # None: default
                  locale)
        if values == seen.values:  # str/int/float/None: == runs no user code
            values = seen.values
        else:
            seen.values = values
        snap.values = values
    except Exception:
        snap.values = (NOTHING,) * len(_VALUE)
    lists = _lists()
    previous = seen.lists
    if len(previous) == len(lists) and all(map(_identical, lists, previous)):
        lists = previous
    else:
        seen.lists = lists
    snap.lists = lists
    data = getattr(os.environ, "_data", None)
    if type(data) is dict:
        env_key = None if events is None else (events[1], id(data), len(data))
        if env_key is not None and env_key == seen.env_key:
            env = _env_seen  # no write since: the same object as last time
        else:
            seen.reads["env"] += 1
            env = dict(data)  # C speed; pytest's PYTEST_CURRENT_TEST is left out
            env.pop(b"PYTEST_CURRENT_TEST", None)
            env.pop("PYTEST_CURRENT_TEST", None)
            if env == _env_seen:  # bytes (str on Windows) on both sides: == runs no user code
                env = _env_seen  # the same object as last time, for diff's identity check
            else:
                _env_seen = env
            seen.env_key = env_key
        snap.env = env
    else:
        snap.env = _env()
    snap.modules = _copy_of(modules)
    snap.builtins = _copy_of(builtins.__dict__)
    try:
        # _signal.getsignal: signal.getsignal converts every answer into an enum.
        snap.signals = tuple(map(_getsignal, _SIGNAL_NUMBERS))
    except (ValueError, OSError):
        snap.signals = _signal_handlers()
    logging = modules.get("logging")
    if type(logging) is ModuleType:
        try:
            log_key = None if events is None or calls is None or not _TAGS_MOVE \
                else (calls, events[2])
            if log_key is not None and log_key == seen.logging_key and \
                    _loggers.unchanged(logging):
                snap.logging = seen.logging
            else:
                seen.reads["logging"] += 1
                snap.logging = seen.logging = _loggers(logging)
                seen.logging_key = log_key
        except Exception:
            snap.logging = NOTHING
            seen.logging_key = None
    warnings = modules.get("warnings")
    if warnings is not None:
        snap.warnings = (tuple(warnings.filters), warnings.showwarning)
    snap.threads = _threads()
    snap.namespaces = _namespaces()
    return snap


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(sys.getfilesystemencoding(), "surrogateescape")
    return value if isinstance(value, str) else repr(value)


def _identical(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return a is b or (len(a) == len(b) and all(map(operator.is_, a, b)))


def diff(before: Snapshot, after: Snapshot) -> list[Change]:
    """Everything that differs; the detector decides what is a leak.

    Every part has an identity fast path, so two snapshots of an unchanged process compare
    in a few microseconds; user objects are never compared with ``==``.
    """
    changes: list[Change] = []
    if not _identical(before.identity, after.identity):
        for (target, name), old, new in zip(_IDENTITY, before.identity, after.identity,
                                            strict=False):
            if old is not new:
                changes.append(Change("resource-changed", target, name, old, new))
    if before.values != after.values:  # str/int/float/None from the interpreter
        for (target, maybe), old, new in zip(_VALUE, before.values, after.values, strict=False):
            if old != new:
                changes.append(Change("resource-changed", target, maybe, old, new))
    for (target, entry), old_items, new_items in zip(_LISTS, before.lists, after.lists,
                                                    strict=False):
        if _identical(old_items, new_items):
            continue
        if entry is not None:  # sys.argv: one change for the whole list
            changes.append(Change("resource-changed", target, entry, list(old_items),
                                  list(new_items)))
            continue
        if target == "sys.path":
            changes.extend(_path_changes(old_items, new_items))
            continue
        old_ids = {identity_key(x) for x in old_items}
        new_ids = {identity_key(x) for x in new_items}
        count = len(changes)
        for item in new_items:
            if identity_key(item) not in old_ids:
                changes.append(Change("resource-changed", target, _entry(item), NOTHING, item,
                                      added=True, entry=item))
        for item in old_items:
            if identity_key(item) not in new_ids:
                changes.append(Change("resource-changed", target, _entry(item), item, NOTHING,
                                      added=False, entry=item))
        if len(changes) == count:  # same members, other order
            changes.append(Change("resource-changed", target, "order", list(old_items),
                                  list(new_items)))
    if before.env is not after.env and before.env != after.env:  # bytes or str: safe to ==
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
    if not _identical(before.signals, after.signals):  # never == on a handler
        for sig, old, new in zip(_SIGNALS, before.signals, after.signals, strict=False):
            if old is not new:
                changes.append(Change("resource-changed", "signal", sig.name, old, new))
    if not _same_logging(before.logging, after.logging):
        changes.extend(_logging_changes(before.logging, after.logging))
    if not _same_warnings(before.warnings, after.warnings):
        changes.append(Change("resource-changed", "warnings", "filters", before.warnings,
                              after.warnings))
    for (module, _), old_ns, new_ns in zip(_NAMESPACES, before.namespaces, after.namespaces,
                                           strict=False):
        changes.extend(_namespace_changes(f"module:{module}", old_ns, new_ns))
    if not _identical(before.threads, after.threads):
        old_keys = {identity_key(t) for t in before.threads}
        for thread in after.threads:
            if identity_key(thread) not in old_keys and thread.is_alive():  # type: ignore[attr-defined]
                changes.append(Change("resource-changed", "module:threading",
                                      thread.name, NOTHING, thread))  # type: ignore[attr-defined]
    return changes


def _path_changes(old_items: tuple[object, ...], new_items: tuple[object, ...]) -> list[Change]:
    """sys.path as a sequence of values: an entry that appears or disappears, or one more
    (or one fewer) copy of an entry (a fixture that ``sys.path.insert(0, p)``s an entry
    already there adds a copy on every test). A copy rebound in place of the list changes
    nothing that imports see. An extra copy needs a user line (``needs_line``): pytest's
    ``import_path`` inserts a package root again when it is not ``sys.path[0]``."""
    def text(item: object) -> object:
        return item if type(item) is str else identity_key(item)

    old_counts: dict[object, int] = {}
    for item in old_items:
        key = text(item)
        old_counts[key] = old_counts.get(key, 0) + 1
    new_counts: dict[object, int] = {}
    for item in new_items:
        key = text(item)
        new_counts[key] = new_counts.get(key, 0) + 1
    if old_counts == new_counts:  # str and int keys, int values: == runs no user code
        return []
    changes: list[Change] = []
    for items, counts, others, added in ((new_items, new_counts, old_counts, True),
                                         (old_items, old_counts, new_counts, False)):
        seen: set[object] = set()
        for item in items:
            key = text(item)
            if key in seen:
                continue
            seen.add(key)
            mine, theirs = counts[key], others.get(key, 0)
            if mine <= theirs:
                continue
            # a str entry is named whole: two long paths cut at the same 80 characters
            # would be one binding (and the second leak taken for a repair of the first)
            name = repr(item) if type(item) is str else _entry(item)
            if theirs == 0:
                before, after = (NOTHING, item) if added else (item, NOTHING)
                changes.append(Change("resource-changed", "sys.path", name, before, after,
                                      added=added, entry=item))
            else:
                old_n, new_n = (theirs, mine) if added else (mine, theirs)
                changes.append(Change(
                    "resource-changed", "sys.path", name,
                    f"{name} x{old_n}", f"{name} x{new_n}", needs_line=True,
                    added=added, entry=item))
    return changes


def _same_logging(a: object, b: object) -> bool:
    """(names, handlers, attributes, manager.disable): the first three are the same tuples
    while nothing changed (see _Loggers); ``disable`` is an int."""
    if a is b:
        return True
    if type(a) is not tuple or type(b) is not tuple or len(a) != 4 or len(b) != 4:
        return a == b if type(a) is type(b) is tuple else False
    return a[0] is b[0] and a[1] is b[1] and a[2] is b[2] and a[3] == b[3]


def _logging_changes(before: object, after: object) -> list[Change]:
    """One change per logger whose handlers (by identity), level, propagate or disabled
    differ; a logger that did not exist before is compared with a fresh logger's state,
    and needs a user line (libraries configure their loggers as they are imported)."""
    if type(before) is not tuple or type(after) is not tuple or len(before) != 4 \
            or len(after) != 4:
        return []
    old = _logger_map(before)
    new = _logger_map(after)
    out: list[Change] = []
    disabled: list[tuple[str, tuple[Any, ...], tuple[Any, ...]]] = []
    for name, state in new.items():
        previous = old.get(name)
        fresh = previous is None
        if previous is None:
            previous = _DEFAULT_LOGGER
        if _same_state(previous, state):
            continue
        if fresh and all(_type_name(h) == "NullHandler" for h in state[0]) and \
                _same_atoms(state[1:], _DEFAULT_LOGGER[1:]):
            continue  # the library idiom: getLogger(__name__).addHandler(NullHandler())
        if not fresh and previous[3] is False and state[3] is True and \
                _same_state((*previous[:3], True), state):
            disabled.append((name, previous, state))
            continue
        out.append(Change("resource-changed", "logging", name, LoggerState(name, previous),
                          LoggerState(name, state), needs_line=fresh))
    if len(disabled) == 1:
        name, previous, state = disabled[0]
        out.append(Change("resource-changed", "logging", name, LoggerState(name, previous),
                          LoggerState(name, state)))
    elif disabled:
        # One call disabled them all (dictConfig/fileConfig without
        # disable_existing_loggers=False): one finding, named by the first logger.
        disabled.sort(key=operator.itemgetter(0))
        names = ", ".join(repr(name) for name, _, _ in disabled[:8])
        more = f" and {len(disabled) - 8} more" if len(disabled) > 8 else ""
        out.append(Change("resource-changed", "logging", disabled[0][0],
                          f"{len(disabled)} loggers enabled: {names}{more}",
                          f"{len(disabled)} loggers disabled: {names}{more}"))
    for name, state in old.items():
        if name not in new and not _same_state(state, _DEFAULT_LOGGER):
            out.append(Change("resource-changed", "logging", name, LoggerState(name, state),
                              NOTHING))
    if before[3] != after[3]:  # logging.disable(level): a state of the whole tree
        out.append(Change("resource-changed", "logging", "root",
                          f"logging.disable({before[3]!r})", f"logging.disable({after[3]!r})"))
    return out


def _type_name(obj: object) -> str:
    return str(type.__dict__["__name__"].__get__(type(obj)))


def _logger_map(snapshot: tuple[Any, ...]) -> dict[str, tuple[Any, ...]]:
    names, handlers, attrs = snapshot[0], snapshot[1], snapshot[2]
    return {name: (h, *a) for name, h, a in zip(names, handlers, attrs, strict=False)}


def _same_state(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    # Handlers by identity; level, propagate and disabled are ints and bools set by
    # logging (compared by identity first, then by value only when both are atoms).
    return _identical(a[0], b[0]) and _same_atoms(a[1:], b[1:])


def _same_warnings(a: object, b: object) -> bool:
    """(filters, showwarning). pytest re-adds its configured filters for every test, as new
    but equal tuples, so filters compare by value: each is ``(action, message regex,
    category, module regex, lineno)``, made by the warnings module from strings, compiled
    patterns, classes and ints; no user object's ``__eq__`` is reached."""
    if a is b:
        return True
    if type(a) is not tuple or type(b) is not tuple:
        return False
    return a[1] is b[1] and (_identical(a[0], b[0]) or a[0] == b[0])


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


def planted(before: dict[str, object], after: dict[str, object],
            asked: Collection[str]) -> list[Change]:
    """New ``sys.modules`` entries that are not modules (``None`` and mocks are in
    :func:`diff` already) and whose name no import of the scope asked for (``asked``: the
    audit source's ``import`` events): planted, so that ``import name`` finds them for the
    rest of the session (pyfakefs' ``DynamicPatcher`` leaves ``sys.modules['Path']``). A
    module that puts an object in its own place as it is imported (``sys.modules[__name__]
    = wrapper``) was asked for; an object a module imported in the scope (asked for, or
    new in ``sys.modules``) holds in its namespace was built by that import (zipp's
    ``sys.modules['zipp.compat.overlay.zipfile'] = zipfile``, cffi's ``_openssl.lib`` for
    cryptography's bindings): how the library is built, which any later import makes the
    same."""
    if _unchanged(before, after):
        return []
    candidates = [(name, new) for name, new in after.items()
                  if name not in before and new is not None
                  and not issubclass(type(new), ModuleType) and name not in asked]
    candidates = [(name, new) for name, new in candidates if not is_mock(new)]
    if not candidates:
        return []
    built: set[int] = set()
    # the modules the scope imported: those it asked for, and every module new in
    # sys.modules (importlib.import_module, entry points and plugin loaders raise no
    # "import" audit event)
    imported = [after.get(name) for name in asked]
    imported.extend(module for name, module in after.items() if name not in before)
    for module in imported:
        if module is None or not issubclass(type(module), ModuleType):
            continue
        try:
            namespace = object.__getattribute__(module, "__dict__")
        except Exception:
            continue
        if type(namespace) is dict:
            built.update(map(id, list(namespace.values())))
    return [Change("binding-changed", "sys.modules", name, NOTHING, new)
            for name, new in candidates if id(new) not in built]
