"""Which live leak a failing test used, and the words that say how (CONTRACT: a victim is
never linked without evidence; ``victim_evidence`` names it).

The detector (``Detector.victim_of``) asks here for the kinds beyond a patched or rebound
name that the failing code read (see ``_reads``):

* **mocks** — a leaked mock, a module replaced by a mock (``sys.modules['x']``) or a mock
  that survived its test: called during the failing test (its calls as the read log saw
  them, ``sources/reads.py``), held by a failing frame (a local, ``self``'s attribute, a
  global the frame's code names), or shown in the failure's message (mock reprs carry
  ``id='...'``) — the mock itself, or a child or return value of it;
* **resources** — a leaked environment key read (``os.environ[...]``, ``.get``,
  ``os.getenv``); the leaked working directory read (``os.getcwd()``, a relative path
  opened or listed); a leaked ``sys.path`` entry an import of the failing test resolved
  through (or, for a removed entry, an import that failed and would have found its module
  there); ``sys.modules['x'] = None`` met by a failing ``import x``; a leaked logger the
  failing frames hold or the reached code logs through (a module's
  ``log = logging.getLogger(...)``), or read by name (``logging.getLogger('app')``); a
  leaked signal handler read (``signal.getsignal``), held, or failed inside.

It also says whether a resource leak is still in place (``in_place``): the leak holds
strings and summaries, not the resource's objects.

Every read is of raw ``__dict__`` entries, type slots and identities; nothing here calls a
user object's method (a mock's ``call_count`` is its own property: the read log counts
calls instead).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, Final

from ..ledger import NOTHING
from ..sources.reads import LOG
from ..values import identity_key, is_mock, summarize
from .reads import Reads

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = ["Failure", "arm", "freeze", "in_place", "mock_evidence", "pollution_lines",
           "resource_evidence"]

_OURS: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MOCK_ID: Final = re.compile(r"id='(\d+)'")
#: descendants of a mock looked at (children, return values) for "held" and "shown"
_FAMILY: Final = 200


def arm(live: list[Leak]) -> None:
    """A test starts: watch what it reads of the resources these live leaks changed."""
    env: set[str] = set()
    numbers: set[int] = set()
    mocks: set[int] = set()
    cwd = False
    for leak in live:
        obj = leak.obj()
        if obj is not NOTHING and is_mock(obj):
            mocks.add(identity_key(_inner(obj)))  # the key mock_evidence looks up
        if leak.target == "os.environ" and leak.name:
            env.add(leak.name)
        elif leak.target == "cwd":
            cwd = True
        elif leak.target == "signal" and leak.name:
            number = _signal_number(leak.name)
            if number is not None:
                numbers.add(number)
    obj = None  # no strong reference kept
    LOG.arm(env_keys=frozenset(env), cwd=cwd, signal_numbers=frozenset(numbers),
            mock_keys=frozenset(mocks))


def pollution_lines(live: list[Leak], used: list[Leak], test: str) -> list[str]:
    """A failing test's "pollution present" section: every live leak, the ones it used
    marked (their evidence is in the leak's ``victim_evidence``)."""
    lines = []
    for leak in live:
        mark = " (used by this test)" if any(leak is hit for hit in used) else ""
        lines.append(f"{leak.id} {leak.kind}: {leak.label} from {leak.polluter}{mark}")
    return lines


def freeze() -> None:
    """Stop recording: a failure is being judged, or the test has ended."""
    LOG.freeze()


class Failure:
    """One failing test as the evidence sees it: built per failure, dropped right after
    (it holds the traceback)."""

    __slots__ = ("_held", "_reads", "exc", "imported", "packages", "reads_of", "tb", "test",
                 "text")

    def __init__(self, test: str, reads_of: Callable[[frozenset[str]], Reads | set[str]],
                 text: str, tb: Any, exc: object, packages: Callable[[], frozenset[str]],
                 imported: list[str]) -> None:
        self.test = test
        self.reads_of = reads_of
        self.text = text
        self.tb = tb
        self.exc = exc
        self.packages = packages
        #: modules imported during the failing test (the audit source's, not taken)
        self.imported = imported
        self._reads: Reads | set[str] | None = None
        self._held: dict[int, str] | None = None

    def reads(self) -> Reads | set[str]:
        if self._reads is None:
            self._reads = self.reads_of(self.packages())
        return self._reads

    def held(self) -> dict[int, str]:
        """identity key -> where a failing frame holds it, for every object the frames of
        the traceback hold: their locals, the raw attributes of a ``self``, and (in user
        frames) the globals their code names."""
        if self._held is None:
            self._held = _held_by(self.tb)
        return self._held


def _held_by(tb: Any) -> dict[int, str]:
    from .. import stack as _stack

    out: dict[int, str] = {}
    seen = 0
    while tb is not None and seen < 100:
        seen += 1
        frame = tb.tb_frame
        tb = tb.tb_next
        code = frame.f_code
        filename = code.co_filename
        if type(filename) is not str or filename.startswith(_OURS):
            continue
        function = code.co_name
        try:
            local_items = list(frame.f_locals.items())
        except Exception:
            continue
        for name, value in local_items:
            if type(name) is not str or not name.isidentifier():
                continue  # pytest's assertion temporaries (``@py_assert2``) are not the test's
            out.setdefault(identity_key(value), f"local {name!r} of {function}")
            if name == "self":
                for attr, inner in _raw(value).items():
                    if type(attr) is str:
                        out.setdefault(identity_key(inner), f"self.{attr} in {function}")
        if not _stack.is_hidden(filename):
            namespace = frame.f_globals
            for name in code.co_names:
                value = namespace.get(name, NOTHING)
                if value is not NOTHING:
                    out.setdefault(identity_key(value), f"global {name!r} read by {function}")
    return out


def _raw(obj: object) -> dict[Any, Any]:
    try:
        state = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return {}
    return state if type(state) is dict else {}


# -- mocks ------------------------------------------------------------------------------------
def _inner(obj: object) -> object:
    """The mock behind an autospecced function (``create_autospec(func)``)."""
    if type(obj) is FunctionType:
        inner = obj.__dict__.get("mock")
        if inner is not None:
            return inner
    return obj


def _family(obj: object) -> list[object]:
    """The mock, its children and return values (raw ``__dict__`` entries), breadth first."""
    out: list[object] = [obj]
    first = _inner(obj)
    if first is not obj:
        out.append(first)
    index = len(out) - 1
    seen = {identity_key(o) for o in out}
    while index < len(out) < _FAMILY:
        state = _raw(out[index])
        index += 1
        children = state.get("_mock_children")
        nodes = list(children.values()) if type(children) is dict else []
        nodes.append(state.get("_mock_return_value"))
        for node in nodes:
            if node is not None and is_mock(node) and identity_key(node) not in seen:
                seen.add(identity_key(node))
                out.append(node)
    return out


def _calls_text(prefix: str, names: list[str], count: int) -> str:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    parts = []
    for name, times in list(counts.items())[:4]:
        joined = prefix + name if name.startswith("(") or not prefix else f"{prefix}.{name}"
        parts.append(f"{joined} {times}x")
    more = ", ..." if len(counts) > 4 else ""
    return f"called the {{what}} {count}x: {', '.join(parts)}{more}"


def mock_name(obj: object) -> str:
    """The name a mock was given (``MagicMock(name='FakeClient')``), raw, or ``''``."""
    state = _raw(_inner(obj))
    name = state.get("_mock_name")
    if type(name) is not str:
        name = state.get("_mock_new_name")
    return name if type(name) is str else ""


def mock_evidence(obj: object, failure: Failure, what: str, prefix: str,
                  *, calls_only: bool = False) -> str:
    """How the failing test used mock ``obj``: called it (or a child of it) during the
    test, holds it (or a child, a return value) in a failing frame, or shows it in the
    failure's message; ``''`` for none of these. ``prefix`` names its calls
    (``sys.modules['gateway']`` -> ``sys.modules['gateway'].send()``)."""
    entry = LOG.mock_calls.get(identity_key(_inner(obj)))
    if entry:
        return _calls_text(prefix, entry[1], entry[0]).format(what=what)
    if calls_only:
        return ""
    family = _family(obj)
    held = failure.held()
    for node in family:
        where = held.get(identity_key(node))
        if where is not None:
            shown = "" if node is obj or node is _inner(obj) else " (a child of it)"
            return f"held the {what}{shown}: {where}"
    if failure.text and "id='" in failure.text:
        ids = {int(m) for m in _MOCK_ID.findall(failure.text)}
        for node in family:
            if id(node) in ids:
                return f"its failure message shows the {what}"
    return ""


# -- resources --------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _signal_number(name: str) -> int | None:
    import signal

    member = signal.Signals.__members__.get(name)
    return int(member) if member is not None else None


def _literal(text: str | None) -> str | None:
    """The string a ``repr`` names (``"'/tmp/lib'"`` -> ``/tmp/lib``), or None."""
    if not text or text[0] not in "'\"":
        return None
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if type(value) is str else None


def _logger(name: str) -> object:
    logging = sys.modules.get("logging")
    if type(logging) is not ModuleType:
        return NOTHING
    if name == "root":
        return logging.__dict__.get("root", NOTHING)
    logger_cls = logging.__dict__.get("Logger")
    manager = logger_cls.__dict__.get("manager") if isinstance(logger_cls, type) else None
    loggers = _raw(manager).get("loggerDict") if manager is not None else None
    if type(loggers) is not dict:
        return NOTHING
    logger = loggers.get(name, NOTHING)
    placeholder = logging.__dict__.get("PlaceHolder")
    return NOTHING if placeholder is not None and type(logger) is placeholder else logger


def _logger_state(logger: object, name: str) -> str | None:
    from ..boundary import snapshot as resources

    namespace = _raw(logger)
    if not namespace:
        return None
    handlers = resources._user_handlers(resources._handler_list(namespace))
    state = (handlers, *resources._logger_attrs(namespace))
    return summarize(resources.LoggerState(name, state)).repr


#: id(leak) -> (the logger's state as identities and atoms, whether that is the leaked
#: state): live() runs at every test's start, and a repr costs ~10 µs
_logger_seen: dict[int, tuple[tuple[object, ...], bool]] = {}


def _logger_in_place(leak: Leak, logger: object, name: str) -> bool:
    namespace = _raw(logger)
    handlers = namespace.get("handlers")
    key = (id(logger), tuple(map(id, handlers)) if type(handlers) is list else id(handlers),
           *(namespace.get(k) if type(namespace.get(k)) in (int, bool) else id(namespace.get(k))
             for k in ("level", "propagate", "disabled")))
    seen = _logger_seen.get(id(leak))
    if seen is not None and seen[0] == key:
        return seen[1]
    result = _logger_state(logger, name) == leak.value.repr
    if len(_logger_seen) > 10_000:
        _logger_seen.clear()
    _logger_seen[id(leak)] = (key, result)
    return result


def _getsignal(number: int) -> object:
    try:
        from ..boundary.snapshot import _getsignal

        return _getsignal(number)
    except Exception:
        return NOTHING


def in_place(leak: Leak) -> bool:
    """A resource leak (or a removed environment key) still in place now."""
    target, name = leak.target, leak.name
    obj = leak.obj()
    try:
        if target == "os.environ":
            if obj is not NOTHING or leak.value.type != "<missing>" or not name:
                return False
            state = _raw(os.environ)  # a removed key still absent: os's own encoding
            data, encode = state.get("_data"), state.get("encodekey")
            return type(data) is dict and callable(encode) and encode(name) not in data
        if leak.kind != "resource-changed":
            return False
        if target == "cwd":
            from .. import _captured

            return type(obj) is str and _captured.getcwd() == obj
        if target == "sys.path":
            entry = _path_entry(leak)
            if entry is None or (type(obj) is str and name is not None
                                 and not name.startswith(repr(entry)[:40])):
                return False  # a count of copies ("'p' x3"): not judged here
            present = any(type(item) is str and item == entry for item in sys.path)
            return present if type(obj) is str else not present
        if target == "signal" and name:
            number = _signal_number(name)
            if number is None:
                return False
            now = _getsignal(number)
            if type(obj) is int:
                return type(now) is int and now == obj
            if obj is not NOTHING:
                return now is obj
            return now is not NOTHING and summarize(now).repr == leak.value.repr
        if target == "logging" and name:
            logger = _logger(name)
            if logger is NOTHING:
                return False
            if leak.value.type == "str" and "loggers disabled" in leak.value.repr:
                return _raw(logger).get("disabled") is True
            return _logger_in_place(leak, logger, name)
    except Exception:
        return False
    return False


def resource_evidence(leak: Leak, failure: Failure) -> str:
    """What the failing test read of the resource ``leak`` changed, in words; ``''``."""
    target, name = leak.target, leak.name
    if target == "os.environ" and name:
        if LOG.env.get(name):
            return f"read os.environ[{name!r}]"
        return ""
    if target == "cwd":
        if LOG.cwd_calls:
            return "called os.getcwd() in the leaked working directory"
        if LOG.paths:
            return f"opened the relative path {LOG.paths[0]!r} in the leaked working directory"
        return ""
    if target == "signal" and name:
        return _signal_evidence(leak, name, failure)
    if target == "sys.path":
        return _path_evidence(leak, failure)
    if target == "sys.modules" and name:
        return _module_evidence(leak, name, failure)
    if target == "logging" and name:
        return _logging_evidence(name, failure)
    return ""


def _signal_evidence(leak: Leak, name: str, failure: Failure) -> str:
    number = _signal_number(name)
    if number is not None and LOG.signals.get(number):
        return f"read signal.getsignal({name})"
    handler = leak.obj()
    if handler is NOTHING or type(handler) is int:
        return ""
    code = getattr(handler, "__code__", None) if type(handler) is FunctionType else None
    tb = failure.tb
    while code is not None and tb is not None:
        if tb.tb_frame.f_code is code:
            return f"failed inside the leaked {name} handler"
        tb = tb.tb_next
    where = failure.held().get(identity_key(handler))
    if where is not None:
        return f"held the leaked {name} handler: {where}"
    return ""


def _import_name(exc: object) -> str | None:
    """The module an ``ImportError`` names (its ``name`` member, read through the type)."""
    if not issubclass(type(exc), ImportError):
        return None
    try:
        value = ImportError.__dict__["name"].__get__(exc)
    except Exception:
        return None
    return value if type(value) is str else None


def _path_entry(leak: Leak) -> str | None:
    """The entry a ``sys.path`` leak added (its value) or removed (its value before: the
    name is a repr cut at 80 characters)."""
    obj = leak.obj()
    if type(obj) is str:
        return obj
    if leak.value.type == "<missing>":
        return _literal(leak.before.repr)
    return None


def _path_evidence(leak: Leak, failure: Failure) -> str:
    entry = _path_entry(leak)
    if entry is None:
        return ""
    from .. import _captured

    root = _captured.abspath(entry) if entry else _captured.getcwd()
    obj = leak.obj()
    if type(obj) is str:  # added: an import of this test resolved through it
        for module_name in failure.imported:
            module = sys.modules.get(module_name)
            filename = _raw(module).get("__file__") if module is not None else None
            if type(filename) is str and filename.startswith(root + os.sep):
                return (f"imported {module_name!r} from the leaked sys.path entry "
                        f"{entry!r}")
        return ""
    wanted = _import_name(failure.exc)  # removed: an import that would have found it there
    if wanted is None:
        return ""
    first = wanted.partition(".")[0]
    base = os.path.join(root, first)
    if os.path.isfile(base + ".py") or os.path.isfile(os.path.join(base, "__init__.py")):
        return (f"could not import {wanted!r}, which is in the removed sys.path entry "
                f"{entry!r}")
    return ""


def _module_evidence(leak: Leak, name: str, failure: Failure) -> str:
    obj = leak.obj()
    if obj is None:
        wanted = _import_name(failure.exc)
        if wanted is not None and (wanted == name or wanted.startswith(name + ".")):
            return f"import of {wanted!r} failed on the leaked sys.modules[{name!r}] = None"
        return ""
    if obj is NOTHING or is_mock(obj):
        return ""  # a mock: mock_evidence (its calls); a dropped module: another copy
    where = failure.held().get(identity_key(obj))
    if where is not None:
        return f"held the leaked sys.modules[{name!r}]: {where}"
    return ""


def _logging_evidence(name: str, failure: Failure) -> str:
    logger = _logger(name)
    if logger is NOTHING:
        return ""
    held = failure.held()
    where = held.get(identity_key(logger))
    if where is not None:
        return f"held the leaked logger {name!r}: {where}"
    handlers = _raw(logger).get("handlers")
    for handler in handlers if type(handlers) is list else ():
        where = held.get(identity_key(handler))
        if where is not None:
            return f"failed through a handler of the leaked logger {name!r}: {where}"
    reads = failure.reads()
    if isinstance(reads, Reads):
        dotted = reads.values.get(identity_key(logger))
        if dotted is not None:
            return f"logs through the leaked logger {name!r} ({dotted})"
        if name != "root" and name in reads.consts and "getLogger" in reads.names:
            return f"read logging.getLogger({name!r})"
    return ""

