"""What the running test reads of the state a live leak changed: the evidence for victims.

A victim is a later failing test that *used* the leaked value (CONTRACT). Some uses leave
no trace in the failure's traceback: ``os.environ.get`` and ``os.getcwd`` have returned,
a relative ``open`` resolved against the leaked working directory, a mock was called
inside project code that has returned. While a test runs, this source notes, for the
leaks the detector says are live:

* reads of a leaked environment key (``os._Environ.__getitem__``, which ``os.environ[k]``,
  ``os.environ.get``, ``os.getenv`` and ``in`` all go through);
* ``os.getcwd()`` calls, and relative paths opened or listed (the ``open``,
  ``os.listdir`` and ``os.scandir`` audit events, forwarded by the audit source), while
  the working directory is leaked (the ``os.getcwd`` recorder is bound only then, and
  only over the built-in: elsewhere reports and holders see the built-in itself);
* ``signal.getsignal(n)`` of a leaked handler;
* calls of a watched mock (``CallableMixin._increment_mock_call``): the top-level mock it
  belongs to, and the call's name (``send()``, ``client().get()``), read from raw
  ``__dict__`` entries only. Watched: the mocks of live leaks, and every mock made before
  the test began that is still alive (it may be a survivor no collection has confirmed
  yet). The wrapper is on the class only while there is such a mock: :meth:`ReadLog.arm`
  puts it there or takes it off when that changes; with none, mock's own function is
  there and a MagicMock call costs what it costs untraced. (A MagicMock is in a reference
  cycle with its magic-method proxies, so the mocks of earlier tests usually wait for a
  collection, and are watched until then.)

A read counts only when a user frame made it (the innermost frame outside the standard
library is the project's or a library's, not pytest's or patchtrace's): the detector's
own reads, and pytest's, are not the test's. The other wrappers (but ``os.getcwd``'s and
the mock call counter's, bound only while watched) are installed once, when tracing starts
(before any baseline, so no boundary sees them appear), and cost one global read and a
branch while nothing is watched; :data:`LOG` is read by the detector
(``patchtrace.analysis.victims``), never the other way round.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from ..values import identity_key
from ._imports import cancel, when_imported

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["LOG", "ReadLog", "ReadsSource"]

#: Names of one mock's calls kept per test (the count goes on).
_MAX_NAMES: Final = 20
#: Mocks whose calls are kept per test.
_MAX_MOCKS: Final = 2_000
_OURS: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: where the standard library's path classes live (3.13 moved them)
_PATHLIB: Final = frozenset({"pathlib", "pathlib._local"})
#: pytest's MonkeyPatch reads a key to save it before setting it: not a use of its value
_SAVERS: Final = (os.sep + os.path.join("_pytest", "monkeypatch.py"),)


class ReadLog:
    """What the running test read, of what is watched. One per process (:data:`LOG`)."""

    __slots__ = ("cwd", "cwd_calls", "env", "env_keys", "made", "made_before", "mock_calls",
                 "mock_keys", "mocks", "on_cwd", "on_mocks", "paths", "recording",
                 "signal_numbers", "signals")

    def __init__(self) -> None:
        #: false between tests, and once a failure is being judged (frozen)
        self.recording = False
        #: watched: leaked environment keys, a leaked cwd, leaked signal numbers, mocks
        self.env_keys: frozenset[str] = frozenset()
        self.cwd = False
        self.signal_numbers: frozenset[int] = frozenset()
        #: identity keys of the (inner) mocks of live leaks
        self.mock_keys: frozenset[int] = frozenset()
        #: the mock source (its ``created`` records and their ``serial``), when installed:
        #: a mock it made with a serial below :attr:`made_before` is from an earlier scope
        self.made: Any = None
        self.made_before = 0
        #: the mock call counter's wrapper is in place (something is watched)
        self.mocks = False
        #: read: key -> times; getcwd() calls; relative paths; signal number -> times
        self.env: dict[str, int] = {}
        self.cwd_calls = 0
        self.paths: list[str] = []
        self.signals: dict[int, int] = {}
        #: identity of a top-level mock -> [call count, names of the first calls]
        self.mock_calls: dict[int, list[Any]] = {}
        #: binds (True) or unbinds the ``os.getcwd`` recorder: bound only while a leaked
        #: cwd is watched, so that everywhere else ``os.getcwd`` is the built-in itself
        self.on_cwd: Callable[[bool], None] | None = None
        #: puts the mock call counter's wrapper in place (True) or mock's own back
        self.on_mocks: Callable[[bool], None] | None = None

    def arm(self, *, env_keys: frozenset[str] = frozenset(), cwd: bool = False,
            signal_numbers: frozenset[int] = frozenset(),
            mock_keys: frozenset[int] = frozenset()) -> None:
        """A test starts: forget the last one's reads, watch these (and the calls of every
        mock made before now that is still alive)."""
        self.env_keys, self.cwd, self.signal_numbers, self.mock_keys = (
            env_keys, cwd, signal_numbers, mock_keys)
        self.env = {}
        self.cwd_calls = 0
        self.paths = []
        self.signals = {}
        self.mock_calls = {}
        made = self.made
        if made is not None:
            self.made_before = made.serial
            # a record of the mock source is dropped with its mock (a weak reference's
            # callback): any record left is a mock alive now, made in an earlier scope
            mocks = bool(mock_keys) or bool(made.created)
        else:
            mocks = bool(mock_keys)
        self.recording = True
        if cwd and self.on_cwd is not None:
            self.on_cwd(True)
        if mocks is not self.mocks:
            # Put in place or taken off only when that changes, not at every freeze: a
            # store into CallableMixin's dict (and its audit event) costs ~10k
            # instructions each way, more than three calls through the wrapper, and while
            # a mock is watched the next test usually watches one too. Between tests
            # (recording off) the wrapper notes nothing.
            self.mocks = mocks
            if self.on_mocks is not None:
                self.on_mocks(mocks)

    def freeze(self) -> None:
        """Stop recording (what was read so far stays, to be judged)."""
        self.recording = False
        if self.cwd and self.on_cwd is not None:
            self.on_cwd(False)

    def disarm(self) -> None:
        """Tracing stops: mock's own call counter back."""
        self.freeze()
        if self.mocks:
            self.mocks = False
            if self.on_mocks is not None:
                self.on_mocks(False)

    # -- notes (each called only for a watched read) -------------------------------------
    def note_env(self, key: str) -> None:
        if _by_user(_stack._getframe(2)):
            self.env[key] = self.env.get(key, 0) + 1

    def note_cwd(self) -> None:
        if _by_user(_stack._getframe(2)):
            self.cwd_calls += 1

    def note_signal(self, number: int) -> None:
        if _by_user(_stack._getframe(2)):
            self.signals[number] = self.signals.get(number, 0) + 1

    def note_path(self, event: str, args: tuple[Any, ...]) -> None:
        if not (self.recording and self.cwd) or not args:
            return
        path = args[0]
        if path is None and event != "open":
            path = "."  # os.listdir() / os.scandir(): the working directory
        if isinstance(path, bytes):
            path = path.decode(sys.getfilesystemencoding(), "surrogateescape")
        elif type(path).__module__ in _PATHLIB:  # Path("x").read_text(): the stdlib's str()
            path = str(path)
        if type(path) is not str or os.path.isabs(path) or len(self.paths) >= 20:
            return
        if _by_user(_stack._getframe(2)):  # note_path <- the audit hook <- the opener
            self.paths.append(path)

    def note_mock_call(self, mock: object) -> None:
        parts: list[object] = []
        top = _top(mock, parts)
        key = identity_key(top)
        if key not in self.mock_keys:
            made = self.made
            record = made.created.get(key) if made is not None else None
            if record is None or record.serial >= self.made_before:
                return  # neither a live leak's mock nor one of an earlier scope
        leaf = parts[0] if parts else ""
        if type(leaf) is str and leaf.endswith("__") and not _by_user(_stack._getframe(2)):
            return  # pytest's assertion message comparing or iterating a mock
        entry = self.mock_calls.get(key)
        if entry is None:
            if len(self.mock_calls) >= _MAX_MOCKS:
                return
            entry = self.mock_calls[key] = [0, []]
        entry[0] += 1
        if len(entry[1]) < _MAX_NAMES:  # names only for the first calls: the rest counts
            entry[1].append(_call_name(parts))


LOG: Final = ReadLog()


def _by_user(frame: FrameType | None) -> bool:
    """The innermost frame outside the standard library is a user's (project or
    library), not pytest's, pluggy's or patchtrace's."""
    depth = 0
    while frame is not None and depth < 40:
        filename = _stack.frame_file(frame)
        if filename.startswith(_OURS) or _stack.is_driver(filename) or \
                filename.endswith(_SAVERS):
            return False
        if not _stack.is_hidden(filename):
            return True
        frame = frame.f_back
        depth += 1
    return False


def _raw(obj: object) -> dict[str, Any]:
    try:
        state = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError):
        return {}
    return state if type(state) is dict else {}


_get: Final = object.__getattribute__


def _top(mock: object, parts: list[object]) -> object:
    """The top-level mock a (child) mock belongs to, from raw ``__dict__`` entries;
    ``parts`` gets the names on the way up (innermost first)."""
    node = mock
    for _ in range(20):
        try:
            state = _get(node, "__dict__")
        except (AttributeError, TypeError):
            break
        parent = state.get("_mock_new_parent") if type(state) is dict else None
        if parent is None:
            break
        parts.append(state.get("_mock_new_name"))
        node = parent
    return node


def _call_name(parts: list[object]) -> str:
    """The call's name as mock prints it: ``send()``, ``client().get()``, ``()`` for the
    top-level mock itself."""
    text = ""
    for part in reversed(parts):
        if type(part) is not str:
            part = "?"
        text += part if part == "()" else (f".{part}" if text else part)
    return f"{text}()"


# -- the wrappers -------------------------------------------------------------------------------
def _env_getitem(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    log = LOG

    def __getitem__(self: Any, key: Any) -> Any:
        __tracebackhide__ = True  # a KeyError from os.environ[...] shows no frame of ours
        if log.recording and log.env_keys and type(key) is str and key in log.env_keys:
            try:
                log.note_env(key)
            except Exception:
                pass
        return original(self, key)

    return __getitem__


def _getcwd(original: Callable[[], Any]) -> Callable[[], Any]:
    log = LOG

    def getcwd() -> Any:
        __tracebackhide__ = True
        if log.recording and log.cwd:
            try:
                log.note_cwd()
            except Exception:
                pass
        return original()

    return getcwd


def _getsignal(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    log = LOG

    def getsignal(signalnum: Any) -> Any:
        __tracebackhide__ = True
        if log.recording and log.signal_numbers and issubclass(type(signalnum), int):
            try:
                if int(signalnum) in log.signal_numbers:
                    log.note_signal(int(signalnum))
            except Exception:
                pass
        return original(signalnum)

    return getsignal


def _increment(original: Callable[..., Any]) -> Callable[..., Any]:
    log = LOG

    def _increment_mock_call(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if log.recording and log.mocks:
            try:
                log.note_mock_call(self)
            except Exception:
                pass
        return original(self, *args, **kwargs)

    return _increment_mock_call


def _named(wrapper: Any, original: Any) -> Any:
    for name in ("__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, name, getattr(original, name))
        except (AttributeError, TypeError):
            pass
    wrapper.__wrapped__ = original
    wrapper.__patchtrace__ = True
    return wrapper


class ReadsSource:
    """Installs the read recorders; records nothing in the ledger."""

    name = "reads"

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._originals: list[tuple[Any, str, Any]] = []
        #: (the built-in os.getcwd, its recorder), bound only while a cwd leak is watched
        self._getcwd: tuple[Any, Any] | None = None
        #: (CallableMixin, mock's _increment_mock_call, its recorder), bound only while a
        #: mock is watched
        self._increment: tuple[type, Any, Any] | None = None
        self._hooks: list[tuple[str, Callable[[ModuleType], None]]] = [
            ("signal", self._instrument_signal),
            ("unittest.mock", self._instrument_mock),
        ]

    def install(self, tracer: Tracer) -> None:
        self._tracer = tracer
        environ_cls = type(os.environ)
        if "__getitem__" in environ_cls.__dict__:
            self._wrap(environ_cls, "__getitem__", _env_getitem)
        original = os.__dict__.get("getcwd")
        if original is not None and not getattr(original, "__patchtrace__", False):
            self._getcwd = (original, _named(_getcwd(original), original))
            LOG.on_cwd = self._bind_getcwd
        from . import audit

        audit.set_path_reader(LOG.note_path)
        for module, hook in self._hooks:
            when_imported(module, hook)

    def _bind_increment(self, on: bool) -> None:
        """Put the mock call counter's recorder on ``CallableMixin`` (or mock's own
        function back), only over what we put there ourselves."""
        if self._increment is None:
            return
        mixin, original, wrapper = self._increment
        old, new = (original, wrapper) if on else (wrapper, original)
        if mixin.__dict__.get("_increment_mock_call") is not old:
            return
        tracer = self._tracer
        try:
            if tracer is not None:
                tracer.hush()
                try:
                    type.__setattr__(mixin, "_increment_mock_call", new)
                finally:
                    tracer.unhush()
            else:
                type.__setattr__(mixin, "_increment_mock_call", new)
        except Exception as exc:
            if tracer is not None:
                tracer.internal_error("reads source (mock calls)", exc)

    def _bind_getcwd(self, on: bool) -> None:
        """Put the ``os.getcwd`` recorder in place (or the built-in back), only over what
        we put there ourselves: a test's patch of ``os.getcwd`` is never overwritten."""
        if self._getcwd is None:
            return
        original, wrapper = self._getcwd
        now = os.__dict__.get("getcwd")
        old, new = (original, wrapper) if on else (wrapper, original)
        if now is not old:
            return
        tracer = self._tracer
        try:
            if tracer is not None:
                with tracer.quiet():
                    os.getcwd = new
            else:
                os.getcwd = new
        except Exception as exc:
            if tracer is not None:
                tracer.internal_error("reads source (getcwd)", exc)

    def uninstall(self) -> None:
        from . import audit

        audit.set_path_reader(None)
        LOG.disarm()
        LOG.on_cwd = None
        LOG.on_mocks = None
        LOG.made = None
        self._getcwd = None
        self._increment = None
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
        self._wrap(module, "getsignal", _getsignal)

    def _instrument_mock(self, module: ModuleType) -> None:
        mixin = module.__dict__.get("CallableMixin")
        if not isinstance(mixin, type):
            return
        original = mixin.__dict__.get("_increment_mock_call")
        if original is None or getattr(original, "__patchtrace__", False):
            return
        self._increment = (mixin, original, _named(_increment(original), original))
        tracer = self._tracer
        LOG.made = tracer.source("mock") if tracer is not None else None
        LOG.on_mocks = self._bind_increment
        if LOG.mocks:  # a test armed before unittest.mock was imported
            self._bind_increment(True)

    def _wrap(self, owner: Any, attr: str, factory: Callable[[Any], Any]) -> None:
        try:
            original = owner.__dict__.get(attr)
            if original is None or getattr(original, "__patchtrace__", False):
                return
            wrapper = _named(factory(original), original)
            tracer = self._tracer
            if tracer is not None:
                with tracer.quiet():
                    setattr(owner, attr, wrapper)
            else:
                setattr(owner, attr, wrapper)
            self._originals.append((owner, attr, original))
        except Exception as exc:
            if self._tracer is not None:
                self._tracer.internal_error(f"reads source ({attr})", exc)
