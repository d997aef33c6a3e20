"""The hooks into pdb's class: how the ``pt`` command gets into pdb, pdb++ and IPython/ipdb.

:func:`install` adds ``do_pt``/``complete_pt`` to the standard library's ``pdb.Pdb`` (found
through the MRO, so pytest's wrapper class, pdb++ and IPython/ipdb, all subclasses of it,
inherit it) and wraps its ``interaction`` so that the exception being debugged is known and
re-applied patches are always restored when the prompt is left (``continue``, ``quit``,
``next``, EOF, an exception). :func:`uninstall` undoes it exactly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any, Final, final

from ..ledger import NOTHING
from ._commands import _complete_pt, _do_pt
from ._context import _exception_of, _find_debugger, _getcwd
from ._repatch import restore
from ._state import MARK, STATE

__all__ = ["install", "installed", "uninstall"]


@final
class _Installed:
    __slots__ = ("cls", "originals")

    def __init__(self, cls: type, originals: dict[str, object]) -> None:
        self.cls = cls
        self.originals = originals  # attribute -> previous raw value (NOTHING: absent)


def _stdlib_pdb_class(module: ModuleType) -> type | None:
    """The standard library's ``Pdb`` behind ``module.Pdb`` (pdb++ replaces the module)."""
    cls = module.__dict__.get("Pdb")
    return _stdlib_base(cls) if isinstance(cls, type) else None


def _announce_restore(debugger: Any) -> None:
    out = debugger.__dict__.get("stdout") or sys.stdout
    count = restore(out)
    try:
        out.write(f"patchtrace: restored {count} binding{'s' * (count != 1)} "
                  "re-applied by pt repatch\n")
    except Exception:
        pass


def _make_interaction(original: Callable[..., Any]) -> Callable[..., Any]:
    def interaction(self: Any, frame: Any, tb_or_exc: Any, *args: Any, **kwargs: Any) -> Any:
        state = self.__dict__
        saved = state.get("_patchtrace_exc")
        try:
            if isinstance(tb_or_exc, BaseException):
                exc: BaseException | None = tb_or_exc
            elif isinstance(tb_or_exc, TracebackType):
                exc = _exception_of(tb_or_exc)
            else:
                exc = sys.exc_info()[1]  # a breakpoint inside an except block
            if exc is not None or "_patchtrace_exc" not in state:
                state["_patchtrace_exc"] = exc
        except Exception:
            pass
        handler = _sigint_handler()
        STATE.depth += 1
        try:
            return original(self, frame, tb_or_exc, *args, **kwargs)
        finally:
            STATE.depth -= 1
            if saved is None:
                state.pop("_patchtrace_exc", None)
            else:
                state["_patchtrace_exc"] = saved
            if STATE.depth == 0 and STATE.reapplied:
                _announce_restore(self)
            if tb_or_exc is not None or state.get("_patchtrace_leak"):
                _put_back_sigint(self, handler)

    interaction.__doc__ = getattr(original, "__doc__", None)
    setattr(interaction, MARK, True)
    return interaction


def _sigint_handler() -> object:
    import signal

    try:
        return signal.getsignal(signal.SIGINT)
    except Exception:
        return None


def _put_back_sigint(debugger: Any, handler: object) -> None:
    """``continue`` makes pdb take SIGINT (Ctrl-C breaks in again). After a post-mortem
    nothing is traced any more: give the program its handler back, or the test that failed
    would be blamed for a ``resource-changed`` leak of ``signal.SIGINT`` made by pdb."""
    import signal

    try:
        now = signal.getsignal(signal.SIGINT)
        if now is handler or getattr(now, "__self__", None) is not debugger:
            return
        if handler is None or not _in_main_thread():
            return
        signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]
        cls = _stdlib_base(type(debugger))
        if cls is not None and "_previous_sigint_handler" in cls.__dict__:
            type.__setattr__(cls, "_previous_sigint_handler", None)
    except Exception:
        pass


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _stdlib_base(cls: type) -> type | None:
    import bdb

    for base in cls.__mro__:
        if bdb.Bdb in base.__bases__:
            return base
    return None


#: modules defining a ``Pdb`` subclass that may override ``interaction`` without calling ours
_OTHERS: Final = ("pdbpp", "IPython.core.debugger", "IPython.terminal.debugger", "ipdb")

_LEAVING: Final = ("do_continue", "do_c", "do_cont", "do_quit", "do_q", "do_exit", "do_EOF")


def _make_leaving(original: Callable[..., Any]) -> Callable[..., Any]:
    def leaving(self: Any, arg: Any) -> Any:
        # Restore before pytest's wrapper resumes output capturing, so the user sees it.
        if STATE.depth <= 1 and STATE.reapplied:
            _announce_restore(self)
        return original(self, arg)

    leaving.__doc__ = getattr(original, "__doc__", None)
    leaving.__name__ = getattr(original, "__name__", "leaving")
    setattr(leaving, MARK, True)
    return leaving


def _make_setup(original: Callable[..., Any]) -> Callable[..., Any]:
    def setup(self: Any, frame: Any, tb: Any, *args: Any, **kwargs: Any) -> Any:
        # Every pdb variant calls setup(frame, tb), even those whose interaction() does not
        # reach ours (pdb++): learn the exception here too.
        try:
            if self.__dict__.get("_patchtrace_exc") is None:
                exc = _exception_of(tb) if isinstance(tb, TracebackType) else sys.exc_info()[1]
                if exc is not None:
                    self.__dict__["_patchtrace_exc"] = exc
        except Exception:
            pass
        return original(self, frame, tb, *args, **kwargs)

    setup.__doc__ = getattr(original, "__doc__", None)
    setattr(setup, MARK, True)
    return setup


def _patch_class(cls: type, new: dict[str, object]) -> None:
    originals: dict[str, object] = {}
    for attr, value in new.items():
        originals[attr] = cls.__dict__.get(attr, NOTHING)
        setattr(cls, attr, value)
    STATE.installed.append(_Installed(cls, originals))


def _install_into(module: ModuleType) -> None:
    top = module.__dict__.get("Pdb")
    cls = _stdlib_pdb_class(module)
    if cls is None or not isinstance(top, type):
        return
    if not any(item.cls is cls for item in STATE.installed):
        existing = cls.__dict__.get("do_pt")
        if existing is not None and not getattr(existing, MARK, False):
            return  # someone else's `pt` command: leave it alone (d.pt() still works)
        new: dict[str, object] = {"do_pt": _do_pt, "complete_pt": _complete_pt}
        for attr, factory in (("interaction", _make_interaction), ("setup", _make_setup)):
            original = cls.__dict__.get(attr)
            if callable(original) and not getattr(original, MARK, False):
                new[attr] = factory(original)
        for attr in _LEAVING:
            original = cls.__dict__.get(attr)
            if callable(original) and not getattr(original, MARK, False):
                new[attr] = _make_leaving(original)
        _patch_class(cls, new)
    # Subclasses whose interaction() does not call ours (pdb++): wrap theirs as well, so that
    # leaving their prompt restores re-applied patches too.
    for sub in top.__mro__:
        if sub is cls:
            break
        original = sub.__dict__.get("interaction")
        if (callable(original) and not getattr(original, MARK, False)
                and not any(item.cls is sub for item in STATE.installed)):
            _patch_class(sub, {"interaction": _make_interaction(original)})


def install() -> None:
    """Add the ``pt`` command to pdb (and pdb++/ipdb, which derive from it). Idempotent.

    Does not import pdb: if it is not imported yet, the command is added right after its
    import. Undo with :func:`uninstall`.
    """
    if STATE.root is None:
        try:
            STATE.root = _getcwd()
        except OSError:
            pass
    found = False
    # `python -m pdb` runs pdb as __main__; pdb++ may leave sys.modules["pdb"] unset then.
    for name in ("pdb", "__main__", *_OTHERS):
        module = sys.modules.get(name)
        if isinstance(module, ModuleType) and _stdlib_pdb_class(module) is not None:
            _install_into(module)
            found = found or name == "pdb"
    # A debugger can only be running if bdb was imported (and importing it costs ~5 ms).
    running = _find_debugger(sys._getframe(1)) if "bdb" in sys.modules else None
    if running is not None:  # install() typed at a prompt of a class we have not seen
        holder = ModuleType("_running")
        holder.Pdb = type(running)  # type: ignore[attr-defined]
        _install_into(holder)
    if not found and not STATE.pending:
        from ..sources._imports import when_imported

        STATE.pending = True
        when_imported("pdb", _on_pdb_imported)


def _on_pdb_imported(module: ModuleType) -> None:
    STATE.pending = False
    _install_into(module)


def uninstall() -> None:
    """Remove the ``pt`` command and restore pdb's class exactly. Idempotent."""
    if STATE.pending:
        from ..sources._imports import cancel

        cancel("pdb", _on_pdb_imported)
        STATE.pending = False
    restore()
    while STATE.installed:
        item = STATE.installed.pop()
        for attr, value in item.originals.items():
            if value is NOTHING:
                if attr in item.cls.__dict__:
                    delattr(item.cls, attr)
            else:
                setattr(item.cls, attr, value)


def installed() -> bool:
    """True when pdb's class has the ``pt`` command."""
    return bool(STATE.installed)
