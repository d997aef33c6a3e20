"""Where a ``pt`` command runs: the frame it evaluates in, the exceptions it debugs, where it
writes; how records are shown (paths relative to the start directory); and which patches
were undone while the debugged exception propagated (``pt patches``, ``pt repatch``)."""

from __future__ import annotations

import gc
import os
import sys
from types import FrameType, ModuleType, TracebackType
from typing import IO, Any, Final, final

from .. import _tracer
from ..ledger import Mutation
from ._state import STATE

#: Paths are shown relative to the directory the run started in, taken with our own
#: reference to os.getcwd: by the time a command runs, the test may have mocked it.
_getcwd: Final = os.getcwd


# ---------------------------------------------------------------------------------------------
# the context a command runs in


@final
class _Context:
    """Where ``pt`` evaluates expressions, which exceptions it debugs, where it writes."""

    __slots__ = ("debugger", "exceptions", "globals", "locals", "out")

    def __init__(
        self,
        globals_: dict[str, Any],
        locals_: Any,
        exceptions: list[BaseException],
        out: IO[str],
        debugger: Any = None,
    ) -> None:
        self.debugger = debugger
        self.globals = globals_
        self.locals = locals_
        self.exceptions = exceptions  # the debugged one first, then its chain
        self.out = out

    def eval(self, expr: str) -> Any:
        try:
            return eval(expr, self.globals, self.locals)
        except NameError as exc:
            # `pt history os.environ['X']` in a frame that never imported os: use the module.
            name = getattr(exc, "name", None)
            if not isinstance(name, str) or sys.modules.get(name) is None:
                raise
            return eval(expr, {**self.globals, name: sys.modules[name]}, self.locals)

    def write(self, text: str = "") -> None:
        self.out.write(text + "\n")


class CommandError(Exception):
    """A ``pt`` command could not do what was asked; the message says why."""


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost last."""
    out: list[BaseException] = []
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        out.append(item)
        todo.extend((item.__cause__, item.__context__))
    return out


def _exception_of(tb: TracebackType | None) -> BaseException | None:
    """The exception whose traceback is ``tb`` (pdb before 3.13 is given the traceback only)."""
    if tb is None:
        return None
    candidates: list[object] = [
        sys.exc_info()[1],
        sys.__dict__.get("last_exc"),
        sys.__dict__.get("last_value"),
    ]
    for candidate in candidates:
        if isinstance(candidate, BaseException) and _has_tb(candidate, tb):
            return candidate
    # Last resort: the exception object that refers to this traceback.
    for referrer in gc.get_referrers(tb):
        if isinstance(referrer, BaseException) and referrer.__traceback__ is tb:
            return referrer
    return None


def _has_tb(exc: BaseException, tb: TracebackType) -> bool:
    """``tb`` is ``exc``'s traceback or one of its tails (pytest cuts its own frames off)."""
    item = exc.__traceback__
    while item is not None:
        if item is tb:
            return True
        item = item.tb_next
    last_of = _last_frame(tb)
    return last_of is not None and last_of is _last_frame(exc.__traceback__)


def _last_frame(tb: TracebackType | None) -> FrameType | None:
    frame = None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    return frame


def _debugged(debugger: Any) -> BaseException | None:
    """The exception a debugger instance is looking at, if any."""
    held = debugger.__dict__.get("_patchtrace_exc")
    if isinstance(held, BaseException):
        return held
    chained = debugger.__dict__.get("_chained_exceptions")  # pdb 3.13+
    if chained:
        index = debugger.__dict__.get("_chained_exception_index", -1)
        try:
            item = chained[index]
        except (IndexError, TypeError):
            item = chained[-1]
        if isinstance(item, BaseException):
            return item
    return None


def _context_for(debugger: Any) -> _Context:
    frame = debugger.__dict__.get("curframe")
    if isinstance(frame, FrameType):
        globals_ = frame.f_globals
        locals_ = debugger.__dict__.get("curframe_locals", frame.f_locals)
    else:
        main = sys.modules.get("__main__")
        globals_ = main.__dict__ if isinstance(main, ModuleType) else {}
        locals_ = globals_
    out = debugger.__dict__.get("stdout") or sys.stdout
    return _Context(globals_, locals_, _chain(_debugged(debugger)), out, debugger)


def _find_debugger(frame: FrameType | None) -> Any:
    import bdb

    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, bdb.Bdb) and hasattr(candidate, "curframe"):
            return candidate
        frame = frame.f_back
    return None


# ---------------------------------------------------------------------------------------------
# formatting


def _rootdir() -> str:
    """The start directory (``STATE.root``); the working directory if never installed."""
    if STATE.root is not None:
        return STATE.root
    try:
        return _getcwd()
    except OSError:  # the directory was removed
        return ""


def _where(mutation: Mutation) -> str:
    frame = mutation.where
    if frame is None:
        return "(no user frame: a decorator or plugin)"
    frame = frame.relative_to(_rootdir())
    return f"{frame.file}:{frame.line} in {frame.function}"


def _scope(mutation: Mutation) -> str:
    scope = mutation.scope
    text = f"{scope.test} ({scope.phase}"
    if scope.fixture:
        text += f", fixture {scope.fixture}"
    return text + ")"


def _what(mutation: Mutation) -> str:
    label = _label_of(mutation)
    if mutation.desc:
        return mutation.desc.replace(mutation.label, label)
    return label


def _label_of(mutation: Mutation) -> str:
    """``mutation.label``, with an instance nothing names (``?._tmp_path_factory``: pytest
    patching its Config) named by a path to it or by its class."""
    from ..naming import UNRESOLVED, class_name, find_path

    if mutation.target != UNRESOLVED:
        return mutation.label
    holder = mutation.holder() if mutation.holder is not None else None
    if holder is None:
        return mutation.label.replace("?", "<an object no longer alive>", 1)
    try:
        path = find_path(holder)
    except Exception:
        path = None
    if path and any(part.startswith("_") for part in path.split(".")):
        path = None  # _pytest.assertion.util._config: true, but no name a reader knows
    owner = path or f"<{class_name(type(holder))} object>"
    return f"{owner}.{mutation.name}" if mutation.name is not None else owner


def _stack_lines(mutation: Mutation, indent: str) -> list[str]:
    root = _rootdir()
    lines = []
    for frame in mutation.stack.frames():
        rel = frame.relative_to(root)
        source = frame.source()
        lines.append(f"{indent}{rel.file}:{rel.line} in {rel.function}"
                     + (f": {source}" if source else ""))
    if lines:
        return lines
    inner = mutation.stack.frames(hidden=True)
    if any(f.function in ("decoration_helper", "patched") for f in inner):
        return [f"{indent}(applied by a @patch decorator: its function was not running yet)"]
    return [f"{indent}(no user frame: applied by pytest, a plugin or the standard library)"]


def _exc_name(exc: BaseException) -> str:
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# which patches were active when the exception was raised


@final
class _Entry:
    """A patch to show: its patch record, and its undo if it ran while unwinding."""

    __slots__ = ("patch", "undo", "unwound_by")

    def __init__(self, patch: Mutation, undo: Mutation | None,
                 unwound_by: BaseException | None) -> None:
        self.patch = patch
        self.undo = undo
        self.unwound_by = unwound_by


def _ledger() -> Any:
    tracer = _tracer.current()
    if tracer is None:
        raise CommandError(
            "patchtrace is not tracing this process (run with PATCHTRACE=1 or "
            "pytest --patchtrace)")
    return tracer.ledger


def _patch_records(ledger: Any) -> dict[int, Mutation]:
    return {m.token: m for m in ledger if m.op == "patch" and m.token is not None}


def _undone_while_raising(ledger: Any, exceptions: list[BaseException]) -> list[_Entry]:
    """Patches whose undo ran while one of ``exceptions`` propagated, oldest patch first."""
    if not exceptions:
        return []
    by_id = {id(exc): exc for exc in exceptions}
    patches = _patch_records(ledger)
    out: list[_Entry] = []
    for mutation in ledger:
        if mutation.op != "unpatch" or mutation.unwinding is None or mutation.token is None:
            continue
        type_name, exc_id = mutation.unwinding
        exc = by_id.get(exc_id)
        if exc is None or _exc_name(exc) != type_name:
            continue
        patch = patches.get(mutation.token)
        if patch is not None:
            out.append(_Entry(patch, mutation, exc))
    out.sort(key=lambda entry: entry.patch.seq)
    return out
