"""Entry points: a post-mortem with the ``pt`` commands, and stopping at the moment a leak is
found (``PATCHTRACE_PDB=1``) with ``leak``, ``obj`` and ``detector`` in scope."""

from __future__ import annotations

import os
import sys
from types import TracebackType
from typing import Any

from ..ledger import NOTHING
from ._context import _exception_of
from ._hooks import install
from ._repatch import restore
from ._state import STATE

__all__ = ["post_mortem", "stop_at_leak"]


def post_mortem(tb: TracebackType | BaseException | None = None) -> None:
    """Like :func:`pdb.post_mortem`, with the ``pt`` commands (and the exception known)."""
    import pdb

    install()
    exc: BaseException | None
    if isinstance(tb, BaseException):
        exc = tb
        tb = tb.__traceback__
    else:
        if tb is None:
            handled = sys.exc_info()[1]
            if handled is None:
                last = sys.__dict__.get("last_exc") or sys.__dict__.get("last_value")
                handled = last if isinstance(last, BaseException) else None
            if handled is None:
                raise ValueError("A valid traceback must be passed if no exception is being "
                                 "handled")
            tb = handled.__traceback__
            exc = handled
        else:
            exc = _exception_of(tb)
    debugger = pdb.Pdb()
    debugger.reset()
    debugger.__dict__["_patchtrace_exc"] = exc
    arg: Any = exc if sys.version_info >= (3, 13) and exc is not None else tb
    try:
        debugger.interaction(None, arg)
    finally:
        debugger.__dict__.pop("_patchtrace_exc", None)
        if STATE.depth == 0:
            restore()


def _forced() -> bool:
    """Stopping was asked for explicitly for this run (not only by an ini file)."""
    from ..config import ConfigError, parse_bool

    try:
        if parse_bool(os.environ.get("PATCHTRACE_PDB"), "PATCHTRACE_PDB"):
            return True
    except ConfigError:
        pass
    config = _pytest_config()
    try:
        return config is not None and bool(config.getoption("patchtrace_pdb"))
    except Exception:
        return False


def _pytest_config() -> Any:
    debugging = sys.modules.get("_pytest.debugging")
    if debugging is None:
        return None
    return getattr(debugging.pytestPDB, "_config", None)


def _stdin_is_terminal() -> bool:
    stream = sys.__stdin__
    try:
        return stream is not None and stream.isatty()
    except Exception:
        return False


def stop_at_leak(leak: Any, detector: Any = None) -> None:
    """Stop in the debugger now, with ``leak``, ``obj`` (the leaked object) and ``detector``
    in scope. Called for each leak when ``PATCHTRACE_PDB=1``.

    Stops when stdin is a terminal, or when stopping was asked for explicitly
    (``PATCHTRACE_PDB=1`` in the environment, ``--patchtrace-pdb``): then pdb reads commands
    from whatever stdin is, a pipe included, and EOF ends the session. An ini setting alone
    never stops a run without a terminal (CI would hang). ``quit`` stops at no further leak.
    """
    if STATE.quit_leaks:
        return
    if getattr(_pytest_config(), "workerinput", None) is not None:
        return  # an xdist worker has no terminal
    if not _stdin_is_terminal() and not _forced():
        if not STATE.said_not_stopping:
            STATE.said_not_stopping = True
            _say("patchtrace: not stopping at leaks: stdin is not a terminal "
                 "(set PATCHTRACE_PDB=1 in the environment to force it)")
        return
    try:
        obj = leak.obj()
    except Exception:
        obj = NOTHING
    install()
    _stop(leak, None if obj is NOTHING else obj, detector)


def _say(line: str) -> None:
    """One line for the user: through pytest's terminal reporter (our stderr is captured
    during a test's teardown), else on stderr."""
    config = _pytest_config()
    reporter = None
    if config is not None:
        try:
            reporter = config.pluginmanager.getplugin("terminalreporter")
        except Exception:
            reporter = None
    if reporter is not None:
        capman = config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            with capman.global_and_fixture_disabled():  # we may run inside a test's teardown
                reporter.write_line(line, yellow=True)
        else:
            reporter.write_line(line, yellow=True)
        return
    stream = sys.__stderr__
    if stream is not None:
        stream.write(line + "\n")


def _make_debugger(header: str) -> Any:
    """pytest's debugger (capture suspended, --pdbcls honoured), else a plain pdb.Pdb."""
    debugging = sys.modules.get("_pytest.debugging")
    if debugging is not None and getattr(debugging.pytestPDB, "_config", None) is not None:
        try:
            return debugging.pytestPDB._init_pdb("leak", header=header)
        except Exception:
            pass
    import pdb

    sys.stdout.write(f"\n>>> {header}\n")
    return pdb.Pdb()


def _stop(leak: Any, obj: object, detector: Any) -> None:
    message = _message(leak)
    header = f"patchtrace: leak {getattr(leak, 'kind', '?')} in {getattr(leak, 'polluter', '?')}"
    debugger = _make_debugger(header)
    out = debugger.__dict__.get("stdout") or sys.stdout
    out.write(f"{message}\n"
              "in scope: leak, obj (the leaked object, or None), detector; "
              "`pt help` for patchtrace commands; `continue` to go on\n")
    debugger.__dict__["_patchtrace_leak"] = True
    debugger.reset()
    _leak_scope(debugger, leak, obj, detector)
    if debugger.__dict__.get("quitting"):
        STATE.quit_leaks = True
        exit_ = getattr(sys.modules.get("_pytest.outcomes"), "exit", None)
        if exit_ is not None and _pytest_config() is not None:
            exit_("Quitting debugger")


def _message(leak: Any) -> str:
    """The leak's sentence, masked as the reports show it; ``leak`` in the prompt's scope
    stays the detector's own (the user asked to look at it)."""
    if not hasattr(leak, "message"):
        return repr(leak)
    from ..render._view import masked

    [shown] = masked([leak])
    return str(shown.message())


def _leak_scope(debugger: Any, leak: Any, obj: object, detector: Any) -> None:
    """The frame the prompt stops in: ``leak``, ``obj`` and ``detector`` are its locals."""
    debugger.interaction(sys._getframe(), None)
