"""Plain ``python -m unittest``: one scope per test, keyed by the unittest test id.

``TestCase.run`` covers setUp, the test, tearDown and cleanups. Under pytest the plugin
owns scopes (its TestCaseFunction calls ``run`` too), so this glue stands aside.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

__all__ = ["install", "uninstall"]


def install() -> None:
    from .sources._imports import when_imported

    when_imported("unittest.case", _instrument)
    when_imported("unittest.suite", _instrument_suite)


def uninstall() -> None:
    """Put ``TestCase.run`` back, or forget the pending import callback. Idempotent."""
    import sys

    from .sources._imports import cancel

    cancel("unittest.case", _instrument)
    cancel("unittest.suite", _instrument_suite)
    for modname, clsname in (("unittest.case", "TestCase"), ("unittest.suite", "TestSuite")):
        module = sys.modules.get(modname)
        cls = getattr(module, "__dict__", {}).get(clsname)
        if not isinstance(cls, type):
            continue
        run = cls.__dict__.get("run")
        if getattr(run, "__patchtrace__", False):
            setattr(cls, "run", run.__wrapped__)  # type: ignore[union-attr]


def _instrument_suite(module: ModuleType) -> None:
    """A suite starting to run is a test session starting (its setUpModule and setUpClass
    run before the first test): mark the environment for the processes it starts."""
    suite = module.__dict__.get("TestSuite")
    if not isinstance(suite, type):
        return
    original = suite.__dict__.get("run")
    if original is None or getattr(original, "__patchtrace__", False):
        return

    def run(self: Any, result: Any, debug: bool = False) -> Any:
        from . import _autostart

        _autostart.mark_session()
        return original(self, result, debug)

    run.__patchtrace__ = True  # type: ignore[attr-defined]
    run.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(suite, "run", run)


def _instrument(module: ModuleType) -> None:
    case = module.__dict__.get("TestCase")
    if not isinstance(case, type):
        return
    original = case.__dict__["run"]
    if getattr(original, "__patchtrace__", False):
        return

    def run(self: Any, result: Any = None) -> Any:
        from . import _autostart, _tracer
        from .ledger import PROCESS, Scope

        tracer = _tracer.current()
        detector = tracer.detector if tracer is not None else None
        if tracer is None or detector is None or _autostart.claimed():
            return original(self, result)
        _autostart.mark_session()
        try:
            test_id = self.id()
        except Exception:
            test_id = type(self).__qualname__
        try:
            detector.begin()
        except Exception as exc:
            tracer.internal_error("unittest glue", exc)
        tracer.scope = Scope(test_id, "call")
        try:
            return original(self, result)
        finally:
            try:
                detector.end(tracer.scope)
            except Exception as exc:
                tracer.internal_error("unittest glue", exc)
            tracer.scope = PROCESS

    run.__patchtrace__ = True  # type: ignore[attr-defined]
    run.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(case, "run", run)
