"""``sys.addaudithook``: environment writes, chdir, imports, ``__class__``/``__code__`` swaps,
``sys.settrace``/``sys.setprofile`` calls.

An audit hook cannot be removed, so it is installed once per process and consults a
module global to know whether anything listens. It returns within a set lookup for the
events it ignores; note that ``id()``, ``sys._getframe`` and the ``gc`` introspection
functions raise audit events too, which is why the first statement is that lookup.

Attribute stores on modules and classes raise no audit event (see ``sources/watch.py``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from ..ledger import NOTHING
from ..naming import target_of

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["AuditSource", "chdirs", "events"]

_EVENTS: Final = frozenset(
    {"os.putenv", "os.unsetenv", "os.chdir", "import", "object.__setattr__",
     "cpython.run_file", "cpython.run_module", "cpython.run_command", "cpython.run_stdin",
     "open", "os.listdir", "os.scandir", "sys.settrace", "sys.setprofile"}
)
#: paths opened or listed: forwarded to the read log (``sources/reads.py``), nothing recorded
_PATH_EVENTS: Final = frozenset({"open", "os.listdir", "os.scandir"})
_FUNCTION_ATTRS: Final = frozenset({"__code__", "__defaults__", "__kwdefaults__"})
_SKIP_ENV: Final = frozenset({b"PYTEST_CURRENT_TEST", "PYTEST_CURRENT_TEST"})
_FS_ENCODING: Final = sys.getfilesystemencoding()
_OURS: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

_listener: AuditSource | None = None
_installed = False
_chdirs = 0
_path_reader: Callable[[str, tuple[Any, ...]], None] | None = None


def set_path_reader(reader: Callable[[str, tuple[Any, ...]], None] | None) -> None:
    """Who hears of paths opened or listed (the read log of ``sources/reads.py``)."""
    global _path_reader
    _path_reader = reader
#: environment writes (pytest's own variable left out) and imports seen so far, counted
#: even inside our own wrappers: what the boundary comparison asks before it re-reads
#: the environment, and the loggers a module's import-time code may configure
_env_writes = 0
_imports = 0


def chdirs() -> int | None:
    """How many ``os.chdir``/``os.fchdir`` calls were seen so far; None when not listening
    (then nobody can say the working directory is unchanged without asking the system)."""
    return _chdirs if _listener is not None else None


def events() -> tuple[int, int, int] | None:
    """(chdir calls, environment writes, imports) seen so far; None when not listening."""
    return (_chdirs, _env_writes, _imports) if _listener is not None else None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS:
        return
    if event in _PATH_EVENTS:
        reader = _path_reader
        if reader is not None:
            try:
                reader(event, args)
            except Exception:
                pass
        return
    if event == "os.chdir":
        global _chdirs
        _chdirs += 1
    elif event == "os.putenv" or event == "os.unsetenv":
        if args[0] not in _SKIP_ENV:
            global _env_writes
            _env_writes += 1
    elif event == "import":
        global _imports
        _imports += 1
    source = _listener
    if source is None:
        return
    if event == "import":
        # Every import counts, also one made inside our wrappers (mock's patch resolving
        # its target): the boundary asks which names the scope's imports asked for.
        imported = source.imported
        imported.append(str(args[0]))
        if len(imported) > 10_000:
            del imported[:5_000]
        return
    tracer = source.tracer
    if tracer is None or (tracer.inside and tracer.busy) or not tracer.enabled:
        return
    try:
        source.handle(tracer, event, args)
    except Exception as exc:  # never raise into the audited operation
        try:
            tracer.internal_error("audit hook", exc)
        except Exception:
            pass


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(_FS_ENCODING, "surrogateescape")
    if isinstance(value, str):
        return value
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


class AuditSource:
    name = "audit"

    def __init__(self) -> None:
        self.tracer: Tracer | None = None
        self.imported: list[str] = []

    def install(self, tracer: Tracer) -> None:
        global _listener, _installed
        self.tracer = tracer
        _listener = self
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True

    def uninstall(self) -> None:
        global _listener
        if _listener is self:
            _listener = None
        self.tracer = None

    def handle(self, tracer: Tracer, event: str, args: tuple[Any, ...]) -> None:
        if event.startswith("cpython.run_"):
            # The main program starts now: site has finished setting up the process.
            detector = tracer.detector
            if detector is not None:
                detector.rebaseline()
            return
        if event == "os.putenv" or event == "os.unsetenv":
            key = args[0]
            if key in _SKIP_ENV:
                return
            name = _text(key)
            data = getattr(os.environ, "_data", None)
            raw = data.get(key, NOTHING) if isinstance(data, dict) else NOTHING
            before: object = _text(raw) if raw is not NOTHING else NOTHING
            if event == "os.putenv":
                tracer.record("set", "audit", "os.environ", name, before, _text(args[1]),
                              stack=_stack.capture(2))
            else:
                tracer.record("delete", "audit", "os.environ", name, before, NOTHING,
                              stack=_stack.capture(2))
        elif event == "os.chdir":
            try:
                before = os.getcwd()
            except OSError:
                before = NOTHING
            tracer.record("chdir", "audit", "cwd", None, before, _text(args[0]),
                          stack=_stack.capture(2))
        elif event == "sys.settrace" or event == "sys.setprofile":
            # Raised before the function is set, by sys.settrace/setprofile and by C callers
            # of PyEval_SetTrace (coverage, cProfile): the line of the user's call, if a
            # user made it; the boundary compares what is set. An audit event, not a
            # wrapper: a wrapper's frame would be traced or profiled by what it installs.
            from .calls import _user_stack

            stack = _user_stack(1)  # _hook <- handle <- _user_stack
            if stack is not None:
                name = event.partition(".")[2]
                tracer.record("call", "audit", "module:sys", name, NOTHING, NOTHING,
                              desc=f"{event}(...)", stack=stack)
        elif event == "object.__setattr__":
            obj, attr, value = args[0], args[1], args[2]
            if attr != "__class__" and attr not in _FUNCTION_ATTRS:
                return
            caller = _stack._getframe(2)  # _hook <- handle <- the frame doing the assignment
            while caller.f_back is not None and _stack.frame_file(caller).startswith(_OURS):
                caller = caller.f_back  # through _TracedModule.__setattr__ (3.10/3.11)
            filename = _stack.frame_file(caller)
            if _stack.is_hidden(filename) or "site-packages" in filename or \
                    "dist-packages" in filename:
                # namedtuple, asyncio, hypothesis and friends adjust functions they made
                return
            from .watch import importing

            if importing(caller):
                return  # a module building itself as it is imported (a lazy-module class)
            if attr == "__class__":
                tracer.record("class-assign", "audit", target_of(obj), "__class__",
                              type(obj), value, stack=_stack.capture(2))
            elif attr in _FUNCTION_ATTRS and type(obj).__name__ == "function":
                module = getattr(obj, "__module__", None)  # a real function: no user code runs
                target = f"module:{module}" if isinstance(module, str) else "object:?"
                qualname = getattr(obj, "__qualname__", "?")
                tracer.record("code-assign", "audit", target, f"{qualname}.{attr}",
                              getattr(obj, attr, NOTHING), value, stack=_stack.capture(2))

    def take_imported(self) -> list[str]:
        """Module names imported since the last call."""
        names, self.imported = self.imported, []
        return names
