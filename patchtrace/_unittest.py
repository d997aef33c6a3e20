"""Plain ``python -m unittest``: one scope per test, keyed by the unittest test id.

``TestCase.run`` covers setUp, the test, tearDown and cleanups. Under pytest the plugin
owns scopes (its TestCaseFunction calls ``run`` too), so this glue stands aside.

A failing test's hints (a patch that never took effect, see :mod:`patchtrace._hints`) are
noted where unittest hands the failure to the result: ``unittest.case._addError`` (3.11+)
or ``TestCase._feedErrorsToResult`` (3.10), while the test's records still hold each
patch's original and the traceback is at hand (it is not kept).
"""

from __future__ import annotations

import os
from types import FunctionType, ModuleType
from typing import Any

__all__ = ["hints", "install", "uninstall"]

#: the JSON ``hints`` of the failing tests of this process (plain data)
_found: list[dict[str, object]] = []


def hints() -> list[dict[str, object]]:
    """The hints noted so far (for the report at exit)."""
    return list(_found)


def install() -> None:
    from .sources._imports import when_imported

    when_imported("unittest.case", _instrument)


def uninstall() -> None:
    """Put ``TestCase.run`` back, or forget the pending import callback. Idempotent."""
    import sys

    from .sources._imports import cancel

    cancel("unittest.case", _instrument)
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
    try:
        from . import _hints

        rootdir = detector.rootdir
        found = _hints.hints_for_failure(
            tracer.ledger.since(detector.scope_mark()), scope_test, exc_info[2],
            rootdir=rootdir, fallback_where=_test_location(test, rootdir))
        known = {(h["test"], h["message"]) for h in _found}
        _found.extend(hint.to_json() for hint in found
                      if (hint.test, hint.message) not in known)  # (setUp and tearDown both)
    except Exception as exc:
        tracer.internal_error("unittest hints", exc)


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
