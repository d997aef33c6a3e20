"""Plain ``python -m unittest``: one scope per test, keyed by the unittest test id, and one
per class and module fixture.

``TestCase.run`` covers setUp, the test, tearDown and cleanups. ``setUpClass`` and
``setUpModule`` run in ``TestSuite._handleClassSetUp`` / ``_handleModuleFixture``, their
teardowns in ``_tearDownPreviousClass`` / ``_handleModuleTearDown`` (read
``unittest/suite.py``): each pair is a scope of its own, like a wider pytest fixture. What
its setup changed is no test's doing; what it leaves behind once its teardown ran is
reported then, blamed on the first test of the class (or module), with ``fixture`` naming
``Class.setUpClass`` (or ``setUpModule``). Under pytest the plugin owns scopes (its
TestCaseFunction calls ``run`` too, and pytest runs ``setUpClass`` through a class-scoped
fixture), so this glue stands aside.

A failing test's hints (a patch that never took effect, see :mod:`patchtrace.analysis.hints`) are
noted where unittest hands the failure to the result: ``unittest.case._addError`` (3.11+)
or ``TestCase._feedErrorsToResult`` (3.10), while the test's records still hold each
patch's original and the traceback is at hand (it is not kept).
"""

from __future__ import annotations

import os
import sys
from types import FunctionType, ModuleType
from typing import Any, Final, final

__all__ = ["hints", "install", "pollution", "uninstall"]

@final
class _State:
    """What the unittest glue keeps for this process, in one place (one instance,
    ``_state``; ``_state.reset()`` starts afresh)."""

    __slots__ = ("found", "open", "pending", "pollution")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: the JSON ``hints`` of the failing tests of this process (plain data)
        self.found: list[dict[str, object]] = []
        #: failing test id -> its "pollution present" lines (plain strings), in order of failure
        self.pollution: dict[str, list[str]] = {}
        #: the class and module scopes open now (one run at a time, on the main thread):
        #: wide-scope key -> (label, polluter)
        self.open: dict[tuple[str, str], tuple[str, str]] = {}
        #: a module whose setUpModule starts once the previous module's teardown ran
        self.pending: tuple[tuple[str, str], str] | None = None


_state: Final = _State()


def hints() -> list[dict[str, object]]:
    """The hints noted so far (for the report at exit)."""
    return list(_state.found)


def pollution() -> list[tuple[str, list[str]]]:
    """Each failing test that ran while leaks were in place, with its "pollution present"
    lines (as pytest shows them in the failure's report), for the report at exit."""
    return list(_state.pollution.items())


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
    suite = sys.modules.get("unittest.suite")
    suite_cls = getattr(suite, "__dict__", {}).get("TestSuite")
    if isinstance(suite_cls, type):
        for name in _SUITE_METHODS:
            method = suite_cls.__dict__.get(name)
            if getattr(method, "__patchtrace__", False):
                setattr(suite_cls, name, method.__wrapped__)  # type: ignore[union-attr]
    module = sys.modules.get("unittest.case")
    case = getattr(module, "__dict__", {}).get("TestCase")
    if not isinstance(case, type):
        return
    run = case.__dict__.get("run")
    if getattr(run, "__patchtrace__", False):
        setattr(case, "run", run.__wrapped__)  # type: ignore[union-attr]
    feed = case.__dict__.get("_feedErrorsToResult")
    if getattr(feed, "__patchtrace__", False):
        setattr(case, "_feedErrorsToResult", feed.__wrapped__)  # type: ignore[union-attr]
    add_error = getattr(module, "__dict__", {}).get("_addError")
    if getattr(add_error, "__patchtrace__", False):
        setattr(module, "_addError", add_error.__wrapped__)  # type: ignore[union-attr]
    for modname, clsname in (("unittest.suite", "TestSuite"),):
        module = sys.modules.get(modname)
        cls = getattr(module, "__dict__", {}).get(clsname)
        if isinstance(cls, type):
            run = cls.__dict__.get("run")
            if getattr(run, "__patchtrace__", False):
                setattr(cls, "run", run.__wrapped__)  # type: ignore[union-attr]


def _mark_suite_run(module: ModuleType) -> None:
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
    _instrument_failures(module, case)


def _instrument_failures(module: ModuleType, case: type) -> None:
    """Note hints where a failure reaches the result (before the result renders it)."""
    add_error = module.__dict__.get("_addError")
    if type(add_error) is FunctionType:  # 3.11+: each failing part, as it fails
        original_add = add_error

        def _addError(result: Any, test: Any, exc_info: Any) -> Any:
            _note_failure(test, exc_info)
            return original_add(result, test, exc_info)

        _addError.__patchtrace__ = True  # type: ignore[attr-defined]
        _addError.__wrapped__ = original_add  # type: ignore[attr-defined]
        setattr(module, "_addError", _addError)
        return
    feed = case.__dict__.get("_feedErrorsToResult")
    if type(feed) is not FunctionType:
        return
    original_feed = feed
    subtest = module.__dict__.get("_SubTest")

    def _feedErrorsToResult(self: Any, result: Any, errors: Any) -> Any:  # 3.10
        try:
            for test, exc_info in list(errors):
                if not (isinstance(subtest, type) and issubclass(type(test), subtest)):
                    _note_failure(test, exc_info)
        except Exception:
            pass
        return original_feed(self, result, errors)

    _feedErrorsToResult.__patchtrace__ = True  # type: ignore[attr-defined]
    _feedErrorsToResult.__wrapped__ = original_feed  # type: ignore[attr-defined]
    setattr(case, "_feedErrorsToResult", _feedErrorsToResult)


def _note_failure(test: Any, exc_info: Any) -> None:
    """A part of the running test failed: its patches that never took effect. Never raises."""
    from . import _autostart, _tracer

    tracer = _tracer.current()
    detector = tracer.detector if tracer is not None else None
    if tracer is None or detector is None or _autostart.claimed():
        return
    scope_test = tracer.scope.test
    if scope_test.startswith("<") or type(exc_info) is not tuple or len(exc_info) != 3:
        return
    _note_victims(detector, tracer, scope_test, exc_info)
    try:
        from .analysis import hints as _hints

        rootdir = detector.rootdir
        found = _hints.hints_for_failure(
            tracer.ledger.since(detector.scope_mark()), scope_test, exc_info[2],
            rootdir=rootdir, fallback_where=_test_location(test, rootdir))
        known = {(h["test"], h["message"]) for h in _state.found}
        _state.found.extend(hint.to_json() for hint in found
                      if (hint.test, hint.message) not in known)  # (setUp and tearDown both)
    except Exception as exc:
        tracer.internal_error("unittest hints", exc)


def _note_victims(detector: Any, tracer: Any, test_id: str, exc_info: tuple[Any, ...]) -> None:
    """The live leaks a failing test used become its victim links (``victims``, with
    ``victim_evidence``), as under pytest; the leaks in place are noted for the report."""
    try:
        from .analysis import victims as _victims
        from .analysis.reads import reads_of_traceback

        _victims.freeze()  # before formatting: the test's reads end with its failure
        tb = exc_info[2]
        text = _failure_text(exc_info)
        hits = detector.victim_of(test_id, lambda packages: reads_of_traceback(tb, packages),
                                  text, tb=tb, exc=exc_info[1])
        live = detector.live()
        if live:
            lines = _victims.pollution_lines(live, hits, test_id)
            known = _state.pollution.setdefault(test_id, [])
            known.extend(line for line in lines if line not in known)
    except Exception as exc:
        tracer.internal_error("unittest victims", exc)


def _failure_text(exc_info: tuple[Any, ...]) -> str:
    """The failure as unittest prints it (bounded), or ``''``."""
    import traceback

    try:
        return "".join(traceback.format_exception(*exc_info))[:20_000]
    except Exception:
        return ""


def _test_location(test: Any, rootdir: str | None) -> tuple[str, int] | None:
    """Where the test method is defined (its first decorator's line), read raw: for a
    ``@patch`` decorator, which leaves no user frame."""
    try:
        state = object.__getattribute__(test, "__dict__")
        name = state.get("_testMethodName")
        func: object = None
        for klass in type(test).__mro__:
            func = klass.__dict__.get(name)
            if func is not None:
                break
        for _ in range(10):  # functools.wraps chains (mock's `patched`)
            if type(func) is not FunctionType:
                return None
            inner = func.__dict__.get("__wrapped__")
            if inner is None:
                break
            func = inner
        if type(func) is not FunctionType:
            return None
        code = func.__code__
        path = code.co_filename
        if rootdir:
            rel = os.path.relpath(path, rootdir)
            if not rel.startswith(".."):
                path = rel.replace(os.sep, "/")
        return path, code.co_firstlineno
    except Exception:
        return None


# -- class and module fixtures ------------------------------------------------------------------
_SUITE_METHODS: Final = ("_handleClassSetUp", "_tearDownPreviousClass", "_handleModuleFixture",
                         "_handleModuleTearDown")


def _driver() -> tuple[Any, Any] | None:
    from . import _autostart, _tracer

    tracer = _tracer.current()
    detector = tracer.detector if tracer is not None else None
    if tracer is None or detector is None or _autostart.claimed():
        return None
    return tracer, detector


def _test_id(test: Any) -> str:
    try:
        return str(test.id())
    except Exception:
        return type(test).__qualname__


def _class_key(cls: type) -> tuple[str, str]:
    return ("class", f"{cls.__module__}.{cls.__qualname__}")


def _open(tracer: Any, detector: Any, key: tuple[str, str], label: str, scope: str,
          polluter: str) -> None:
    from .ledger import Scope

    try:
        detector.wide_setup_start(hash(key), label, scope, polluter)
    except Exception as exc:
        tracer.internal_error("unittest glue", exc)
        return
    _state.open[key] = (label, polluter)
    tracer.scope = Scope(polluter, "setup", label, scope)


def _opened(tracer: Any, detector: Any, key: tuple[str, str]) -> None:
    from .ledger import PROCESS

    tracer.scope = PROCESS
    if key in _state.open:
        try:
            detector.wide_setup_end(hash(key))
        except Exception as exc:
            tracer.internal_error("unittest glue", exc)


def _close(tracer: Any, detector: Any, key: tuple[str, str], run: Any) -> Any:
    """Run a teardown inside its scope, then check what the scope left behind."""
    from .ledger import PROCESS, Scope

    opened = _state.open.pop(key, None)
    if opened is None:
        return run()
    label, polluter = opened
    tracer.scope = Scope(polluter, "teardown", label, key[0])
    try:
        return run()
    finally:
        tracer.scope = PROCESS
        try:
            detector.wide_finalized(hash(key))
            # What the teardown put back is nobody's change: the next test starts here.
            detector.rebaseline()
        except Exception as exc:
            tracer.internal_error("unittest glue", exc)


def _instrument_suite(module: ModuleType) -> None:
    _mark_suite_run(module)
    suite = module.__dict__.get("TestSuite")
    if not isinstance(suite, type) or any(
            name not in suite.__dict__ for name in _SUITE_METHODS):
        return
    if getattr(suite.__dict__["_handleClassSetUp"], "__patchtrace__", False):
        return
    class_setup = suite.__dict__["_handleClassSetUp"]
    class_teardown = suite.__dict__["_tearDownPreviousClass"]
    module_setup = suite.__dict__["_handleModuleFixture"]
    module_teardown = suite.__dict__["_handleModuleTearDown"]

    def _handleClassSetUp(self: Any, test: Any, result: Any) -> Any:
        driver = _driver()
        cls = type(test)
        if driver is None or cls is getattr(result, "_previousTestClass", None):
            return class_setup(self, test, result)
        tracer, detector = driver
        key = _class_key(cls)
        _open(tracer, detector, key, f"{cls.__qualname__}.setUpClass", "class", _test_id(test))
        try:
            return class_setup(self, test, result)
        finally:
            _opened(tracer, detector, key)

    def _tearDownPreviousClass(self: Any, test: Any, result: Any) -> Any:
        driver = _driver()
        previous = getattr(result, "_previousTestClass", None)
        if driver is None or previous is None or previous is type(test) or \
                not isinstance(previous, type):
            return class_teardown(self, test, result)
        tracer, detector = driver
        return _close(tracer, detector, _class_key(previous),
                      lambda: class_teardown(self, test, result))

    def _handleModuleFixture(self: Any, test: Any, result: Any) -> Any:
        driver = _driver()
        name = type(test).__module__
        if driver is None or name == self._get_previous_module(result):
            return module_setup(self, test, result)
        tracer, detector = driver
        module_obj = sys.modules.get(name)
        if module_obj is None or "setUpModule" not in getattr(module_obj, "__dict__", {}):
            return module_setup(self, test, result)
        key = ("module", name)
        _state.pending = (key, _test_id(test))
        try:
            return module_setup(self, test, result)
        finally:
            _state.pending = None
            _opened(tracer, detector, key)

    def _handleModuleTearDown(self: Any, result: Any) -> Any:
        driver = _driver()
        pending, _state.pending = _state.pending, None
        previous = self._get_previous_module(result)
        try:
            if driver is None or previous is None:
                return module_teardown(self, result)
            tracer, detector = driver
            return _close(tracer, detector, ("module", str(previous)),
                          lambda: module_teardown(self, result))
        finally:
            if pending is not None and driver is not None:
                # _handleModuleFixture tears the previous module down first, then runs
                # the next setUpModule: its scope starts here, after that teardown
                tracer, detector = driver
                _open(tracer, detector, pending[0], "setUpModule", "module", pending[1])

    wrappers: tuple[tuple[str, Any, Any], ...] = (
        ("_handleClassSetUp", _handleClassSetUp, class_setup),
        ("_tearDownPreviousClass", _tearDownPreviousClass, class_teardown),
        ("_handleModuleFixture", _handleModuleFixture, module_setup),
        ("_handleModuleTearDown", _handleModuleTearDown, module_teardown))
    for name, wrapper, original in wrappers:
        wrapper.__patchtrace__ = True
        wrapper.__wrapped__ = original
        setattr(suite, name, wrapper)
