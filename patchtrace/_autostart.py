"""Start tracing from the environment; imported by ``patchtrace.pth`` when PATCHTRACE is set.

Never raises: a bad value prints one line on stderr and leaves tracing off; an internal
error prints one line and the program runs on untouched. Outside pytest the process is
one scope (``"<process>"``) checked at exit, and plain unittest runs are checked per test.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Any

__all__ = ["claim", "release"]

_claimed = False
_started = False
#: the process-mode detector, until a driver claims the process
_detector: Any = None


def claim() -> None:
    """A driver (the pytest plugin) takes over scopes and reporting.

    The process-mode detector retires: its gc callback is removed, and the tracer is left
    for the driver to give its own detector. Idempotent.
    """
    global _claimed, _detector
    _claimed = True
    detector, _detector = _detector, None
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
    return _claimed


def release(*, stop: bool) -> None:
    """The driver says tracing is off after all (``pytest --patchtrace=off`` under
    ``PATCHTRACE=1``): undo what :func:`_main` started, so the run is untraced. Idempotent."""
    global _started
    claim()
    if not (stop and _started):
        return
    _started = False
    try:
        from . import _tracer, _unittest, debugger

        _unittest.uninstall()
        debugger.uninstall()
        _tracer.stop()
    except Exception as exc:
        _say(f"patchtrace: could not stop tracing ({exc!r})")


def _say(line: str) -> None:
    try:
        (sys.__stderr__ or sys.stderr).write(line + "\n")
    except Exception:
        pass


def _main() -> None:
    global _started, _detector
    from .config import ConfigError, from_env

    try:
        config = from_env()
    except ConfigError as exc:
        sys.stderr.write(f"patchtrace: {exc}; tracing is off\n")
        return
    if not config.enabled:
        return
    from . import _tracer, _unittest
    from .leaks import Detector

    tracer = _tracer.start(config)
    tracer.detector = _detector = Detector(tracer, rootdir=os.getcwd())
    _started = True
    _unittest.install()
    from . import debugger

    debugger.install()  # only hooks pdb once something imports it
    atexit.register(_at_exit)


def _at_exit() -> None:
    if _claimed:
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
        report(detector, tests=detector.tests)
    except Exception as exc:  # at exit there is nobody left to raise to
        try:
            sys.stderr.write(f"patchtrace: could not write the report ({exc!r})\n")
        except Exception:
            pass


def report(detector: object, *, tests: int) -> None:
    """Write the configured reports and a short summary on stderr."""
    from . import _tracer

    tracer = _tracer.current()
    if tracer is None:
        return
    leaks = list(getattr(detector, "leaks", []))
    if leaks:  # the renderers import re, json, rich: only when there is something to say
        from .render.secrets import mask_leak

        leaks = [mask_leak(leak) for leak in leaks]
    config = tracer.config
    baseline_error = _mark_known(leaks, config.baseline)
    if leaks and (config.json or config.html):
        try:
            from . import fix

            fix.fill(leaks, os.getcwd())
        except Exception as exc:  # a suggestion is never worth a lost report
            sys.stderr.write(f"patchtrace: could not suggest patches ({exc!r})\n")
    if config.json:
        from .render import json as json_report

        json_report.write(config.json, json_report.build(
            leaks, tests=tests, mutations=len(tracer.ledger)))
    if config.html:
        try:
            from .render import html

            html.write(config.html, leaks, tests=tests, mutations=len(tracer.ledger), extra={})
        except ImportError:
            pass
    if config.graphs and leaks:
        try:
            from .render import graph

            graph.write_leak_graphs(leaks, config.graphs)
        except Exception as exc:  # a picture is never worth a crash at exit
            sys.stderr.write(f"patchtrace: could not draw graphs ({exc!r})\n")
    if leaks:
        from .render.terminal import render

        sys.stderr.write(f"patchtrace: {len(leaks)} leak(s)\n")
        for line in render(leaks, verbosity=0, color=False, rootdir=os.getcwd()):
            sys.stderr.write(line + "\n")
    if baseline_error:
        sys.stderr.write(baseline_error + "\n")
    if leaks:
        from .render import github

        if github.enabled():
            for line in github.commands(leaks, strict=config.strict):
                sys.stderr.write(line + "\n")


def _mark_known(leaks: list[Any], path: str | None) -> str | None:
    """Mark the leaks in the baseline as known; the line to say when it cannot be read."""
    if not path:
        return None
    from .fix import _baseline

    try:
        _baseline.mark(leaks, _baseline.load(path))
    except _baseline.BaselineError as exc:
        return f"patchtrace: {exc}; every leak counts as new"
    return None


try:
    _main()
except Exception as _exc:  # the .pth must never break interpreter start-up
    try:
        sys.stderr.write(f"patchtrace: could not start ({_exc!r}); tracing is off\n")
    except Exception:
        pass
