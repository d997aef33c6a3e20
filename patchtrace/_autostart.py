"""Start tracing from the environment; imported by ``patchtrace.pth`` when PATCHTRACE is set.

Never raises: a bad value prints one line on stderr and leaves tracing off; an internal
error prints one line and the program runs on untouched. Outside pytest the process is
one scope (``"<process>"``) checked at exit, and plain unittest runs are checked per test.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any, Final, final

__all__ = ["claim", "release"]


@final
class _State:
    """What the process start remembers, in one place (one instance, ``_state``)."""

    __slots__ = ("claimed", "detector", "marker", "parent", "started", "started_by")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """As at start (for tests: nothing started, nothing claimed)."""
        #: a driver (the pytest plugin) took over scopes and reporting
        self.claimed = False
        #: _main started tracing (release() may stop it)
        self.started = False
        #: the process-mode detector, until a driver claims the process
        self.detector: Any = None
        #: a traced child of a test session (PATCHTRACE_CHILDREN=1): the parent session's
        #: mark, and the test that started us; at exit the leaks go to the session, nothing
        #: is printed
        self.parent: Any = None
        self.started_by: str | None = None
        #: the mark this process set as a unittest session (see mark_session); False: not ours
        self.marker: Any = None


_state: Final = _State()


def claim() -> None:
    """A driver (the pytest plugin) takes over scopes and reporting.

    The process-mode detector retires: its gc callback is removed, and the tracer is left
    for the driver to give its own detector. Idempotent.
    """
    _state.claimed = True
    detector, _state.detector = _state.detector, None
    if detector is None:
        return
    try:
        detector.close()
        from . import _tracer

        tracer = _tracer.get_or_create()
        if tracer.detector is detector:
            tracer.detector = None
    except Exception as exc:  # handing over must never break the driver's start
        _say(f"patchtrace: could not hand over tracing ({exc!r})")


def claimed() -> bool:
    return _state.claimed


def release(*, stop: bool) -> None:
    """The driver says tracing is off after all (``pytest --patchtrace=off`` under
    ``PATCHTRACE=1``): undo what :func:`_main` started, so the run is untraced. Idempotent."""
    claim()
    if not (stop and _state.started):
        return
    _state.started = False
    try:
        from . import _tracer, _unittest, debugger

        _unittest.uninstall()
        debugger.uninstall()
        _tracer.stop()
    except Exception as exc:
        _say(f"patchtrace: could not stop tracing ({exc!r})")


def _say(line: str) -> None:
    if _state.parent is not None:
        return  # a traced child prints nothing of ours
    try:
        (sys.__stderr__ or sys.stderr).write(line + "\n")
    except Exception:
        pass


def mark_session() -> None:
    """A test session runs here (the first unittest test): mark the environment for the
    processes its tests start (see :mod:`patchtrace._session`). Once; never raises."""
    if _state.marker is not None or _state.claimed or _state.parent is not None:
        return
    _state.marker = False
    try:
        from . import _session, _tracer

        tracer = _tracer.current()
        if tracer is not None:
            _state.marker = _session.mark(tracer, children=tracer.config.children) or False
    except Exception as exc:
        _say(f"patchtrace: could not mark the session ({exc!r})")


def _main_child(parent: Any) -> None:
    """Traced silently for the session that started us: its ignore patterns, none of its
    output paths, no debugger, nothing printed."""
    from . import _session, _tracer, _unittest
    from .boundary import Detector
    from .config import Config, parse_patterns

    _state.parent = parent
    _state.started_by = _session.started_by()
    tracer = _tracer.get_or_create(
        Config("report", ignore=parse_patterns(os.environ.get("PATCHTRACE_IGNORE"))))
    tracer.silent = True
    tracer.start()
    tracer.detector = _state.detector = Detector(tracer, rootdir=os.getcwd())
    _state.started = True
    _unittest.install()
    atexit.register(_at_exit)


def _main() -> None:
    from . import _session

    parent = _session.other()
    if parent is not None:  # started by a traced test session's test
        if parent.directory is not None:
            _main_child(parent)
        return  # a quiet child (the .pth line returns before importing us)
    from .config import ConfigError, from_env, say_once

    try:
        config = from_env()
    except ConfigError as exc:
        _bad_mode(exc)
        return
    for line in config.problems:  # bad companions: said once, ignored, tracing stays on
        if _looks_like_pytest():  # pytest's usage error says it (CONTRACT): at exit, if not
            atexit.register(say_once, line)
        else:
            say_once(line)
    if not config.enabled:
        return
    from . import _tracer, _unittest
    from .boundary import Detector

    tracer = _tracer.start(config)
    tracer.detector = _state.detector = Detector(tracer, rootdir=os.getcwd())
    _state.started = True
    _unittest.install()
    from . import debugger

    debugger.install()  # only hooks pdb once something imports it
    atexit.register(_at_exit)


def _bad_mode(exc: Exception) -> None:
    """One line on stderr, tracing off. Under pytest, pytest's usage error says it: the
    line waits for the exit, and is said only if pytest did not (``-p no:patchtrace``)."""
    from .config import say_once

    line, key = f"patchtrace: {exc}; tracing is off", str(exc)
    if _looks_like_pytest():
        atexit.register(say_once, line, key=key)
    else:
        say_once(line, key=key)


def _looks_like_pytest() -> bool:
    """``python -m pytest ...`` or the ``pytest`` script (the command line, as started)."""
    argv: list[str] = [str(a) for a in getattr(sys, "orig_argv", ())][1:]
    for i, arg in enumerate(argv):
        if arg.startswith("-m"):  # -m pytest, -mpytest (pytester's children)
            module = arg[2:] or (argv[i + 1] if i + 1 < len(argv) else "")
            return module in ("pytest", "py.test")
        if arg.startswith("-"):
            continue
        return os.path.basename(arg).startswith(("pytest", "py.test"))
    return False


def _at_exit() -> None:
    if _state.claimed:
        return
    try:
        from . import _tracer
        from .ledger import PROCESS

        tracer = _tracer.current()
        if tracer is None or tracer.detector is None:
            return
        detector = tracer.detector
        detector.end(PROCESS, collection=False)
        detector.finish()
        detector.close()
        if _state.parent is not None:
            _hand_over(detector)
        else:
            report(detector, tests=detector.tests)
    except Exception as exc:  # at exit there is nobody left to raise to
        if _state.parent is None:
            _say(f"patchtrace: could not write the report ({exc!r})")


def _hand_over(detector: object) -> None:
    """A traced child: our leaks go into the session's directory, nothing is printed."""
    from .render import report

    report.hand_to_parent(_state.parent, started_by=_state.started_by,
                          leaks=list(getattr(detector, "leaks", [])))


def report(detector: object, *, tests: int) -> None:
    """Write the configured reports and a short summary on stderr (render.report)."""
    from . import _captured, _tracer

    tracer = _tracer.current()
    if tracer is None:
        return
    from . import _session, _unittest
    from .render import _view
    from .render import report as writer

    config = tracer.config
    baseline, baseline_error = _baseline(config.baseline)
    marker = _state.marker or None
    children = _session.collect(marker)
    if marker is not None:
        _session.unmark(tracer, marker)
    model = _view.build(
        list(getattr(detector, "leaks", [])), baseline=baseline, tests=tests,
        mutations=len(tracer.ledger),
        rootdir=str(getattr(detector, "rootdir", None) or _captured.getcwd()),
        # failing unittest tests' patches that never took effect
        hints=_unittest.hints(), children=children,
        # failing unittest tests' "pollution present" lines, as pytest's failure reports show them
        pollution=_unittest.pollution(),
        # a unittest run says it was traced, as pytest does; a clean script is silent
        session=tests > 0, baseline_error=baseline_error)
    writer.write_all(model, config)


def _baseline(path: str | None) -> tuple[frozenset[Any] | None, str | None]:
    """The baseline's entries; the line to say when it cannot be read."""
    if not path:
        return None, None
    from .fix import _baseline

    try:
        return _baseline.load(path), None
    except _baseline.BaselineError as exc:
        return None, f"patchtrace: {exc}; every leak counts as new"


try:
    _main()
except Exception as _exc:  # the .pth must never break interpreter start-up
    _say(f"patchtrace: could not start ({_exc!r}); tracing is off")
