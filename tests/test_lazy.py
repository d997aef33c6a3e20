"""Lazy records and boundaries driven by events (issue 15).

A record is a tuple until someone reads it. What it says when read, after its scope was
sealed and its objects are gone, must be what an eager record (built as the mutation
happened, sealed at the same moment) says: target, names, description, values, stack and
line, for every source. A patch undone in its own scope is never read at the boundary.
And a change made behind the event sources' back is still found at the boundary.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import logging
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import pytest

from patchtrace import _tracer
from patchtrace.boundary import Detector, snapshot
from patchtrace.config import Config
from patchtrace.leak import Leak
from patchtrace.ledger import Ledger, Mutation, Scope, materialise
from patchtrace.naming import target_of
from patchtrace.stack import Stack, capture_raw

_counter = itertools.count()

MODULE_SOURCE = """
VALUE = 1
def func():
    return "real"
class Cls:
    attr = 1
    @staticmethod
    def helper():
        return 1
"""


def line_of(marker: str) -> int:
    for number, text in enumerate(Path(__file__).read_text().splitlines(), 1):
        if marker in text and "line_of(" not in text:
            return number
    raise AssertionError(marker)


class Harness:
    def __init__(self, tracer: _tracer.Tracer, module: ModuleType) -> None:
        self.tracer = tracer
        self.module = module
        self.ledger: Ledger = tracer.ledger

    def raw_since(self, count: int) -> list[tuple[Any, ...]]:
        """The records appended since the ledger held ``count``, as they are stored."""
        records = self.ledger._records
        return [r for r in records if (r[0] if type(r) is tuple else r.seq) > count]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    name = f"ptlazy_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(MODULE_SOURCE)
    sys.path.insert(0, str(tmp_path))
    tracer = _tracer.start(Config())
    tracer.scope = Scope("lazy", "call")
    try:
        module = importlib.import_module(name)
        yield Harness(tracer, module)
    finally:
        tracer.stop()
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


# -- what a record says ------------------------------------------------------------------------
def _eager(raw: tuple[Any, ...]) -> Mutation:
    """The record the first design built at the moment of the mutation (from the same
    tuple, before anything is sealed or collected)."""
    target = raw[3] if type(raw[3]) is str else target_of(raw[3], raw[4])
    desc = raw[11]
    if type(desc) is tuple:
        desc = desc[0](target, raw[5], desc[1])
    stack = raw[8] if isinstance(raw[8], Stack) else Stack(raw[8])
    mutation = Mutation(raw[0], raw[1], raw[2], target, raw[5], raw[6], raw[7], stack, raw[9],
                        raw[10], desc, threading.current_thread().name)
    mutation.unwinding = raw[13]
    if type(raw[3]) is not str and target.startswith("object:"):
        try:
            mutation.holder = weakref.ref(raw[3])
        except TypeError:
            pass
    elif type(raw[3]) is str:
        mutation.holder = raw[4]
    return mutation


def _view(m: Mutation) -> tuple[object, ...]:
    where = m.where
    return (
        m.seq, m.op, m.source, m.target, m.name, m.label, m.desc, m.token, m.thread,
        m.unwinding, m.scope, m.sealed,
        (m.before.type, m.before.repr, m.before.is_mock),
        (m.after.type, m.after.repr, m.after.is_mock),
        None if where is None else (where.file, where.line, where.function),
        [(f.file, f.line, f.function) for f in m.stack.frames(hidden=True)],
        None if m.holder is None else m.holder(),
        m.stack.library_only(), m.stack.written_by_library(),
    )


def lazy_equals_eager(harness: Harness, action: Callable[[], object]) -> list[Mutation]:
    """Run ``action``; check each record it made, read only after sealing, against the
    eager record of the same mutation. Returns the lazily built records."""
    count = len(harness.ledger)
    action()
    raws = harness.raw_since(count)
    assert raws, "the action recorded nothing"
    assert all(type(r) is tuple for r in raws), "a record was built before anyone read it"
    eagers = [_eager(r) for r in raws]
    live = [(m.before_value(), m.after_value()) for m in eagers]
    # Early: a lazy record read while its scope is open holds the same objects.
    assert [(materialise(r).before_value(), materialise(r).after_value()) for r in raws] \
        == live
    del live
    harness.ledger.seal()
    for mutation in eagers:
        mutation.seal()
    gc.collect()
    lazy = [harness.ledger.get(r[0]) for r in raws]
    del raws
    assert all(m is not None for m in lazy)
    built = [m for m in lazy if m is not None]
    assert [_view(m) for m in built] == [_view(m) for m in eagers]
    assert [(m.before_value(), m.after_value()) for m in built] == \
        [(m.before_value(), m.after_value()) for m in eagers]
    # read again: the same object (materialised once, in place)
    assert all(harness.ledger.get(m.seq) is m for m in built)
    return built


def test_mock_records_lazy_equal_eager(harness: Harness) -> None:
    module = harness.module
    name = module.__name__

    def action() -> None:
        with mock.patch.object(module, "func", return_value=3):  # LAZY-PATCH-OBJECT
            assert module.func() == 3
        patcher = mock.patch(f"{name}.VALUE", 7)
        patcher.start()  # LAZY-PATCH-START
        patcher.stop()
        with mock.patch.dict(os.environ, {"PT_LAZY_DICT": "1"}):
            pass
        with pytest.raises(ZeroDivisionError), mock.patch.object(module.Cls, "attr", 5):
            1 / 0

    records = lazy_equals_eager(harness, action)
    patch, unpatch = records[0], records[1]
    assert (patch.op, patch.target, patch.name) == ("patch", f"module:{name}", "func")
    assert patch.desc == "patch.object(..., 'func')" and unpatch.desc == patch.desc
    assert patch.where is not None and patch.where.line == line_of("# LAZY-PATCH-OBJECT")
    assert patch.after.is_mock and patch.before.type == "function"
    started = records[2]
    assert started.desc == f"patch('{name}.VALUE')" and started.before.repr == "1"
    assert started.where is not None and started.where.line == line_of("# LAZY-PATCH-START")
    assert [r.target for r in records[4:6]] == ["os.environ", "os.environ"]
    assert records[-2].target == f"class:{name}.Cls"
    assert records[-1].unwinding is not None and records[-1].unwinding[0] == \
        "ZeroDivisionError"


def test_monkeypatch_records_lazy_equal_eager(harness: Harness, tmp_path: Path) -> None:
    module = harness.module
    cwd = os.getcwd()

    def action() -> None:
        mp = pytest.MonkeyPatch()
        try:
            mp.setattr(module, "VALUE", 9)  # LAZY-MP-SETATTR
            mp.setattr(module.Cls, "helper", lambda: 2)
            mp.setenv("PT_LAZY_MP", "x")
            mp.delenv("PT_LAZY_ABSENT", raising=False)
            mp.syspath_prepend(str(tmp_path))
            mp.chdir(tmp_path)
            mp.setitem(module.__dict__, "extra", 1)
        finally:
            mp.undo()

    records = lazy_equals_eager(harness, action)
    assert os.getcwd() == cwd
    first = records[0]
    assert (first.target, first.name, first.desc) == (
        f"module:{module.__name__}", "VALUE", f"monkeypatch.setattr({module.__name__}.VALUE)")
    assert first.where is not None and first.where.line == line_of("# LAZY-MP-SETATTR")
    assert records[1].before.type == "staticmethod"
    assert {"os.environ", "sys.path", "cwd"} <= {r.target for r in records}
    undos = [r for r in records if r.op == "unpatch"]
    assert len(undos) == len(records) - len(undos) and \
        {r.desc for r in undos} == {"monkeypatch.undo()"}


def test_audit_records_lazy_equal_eager(harness: Harness, tmp_path: Path) -> None:
    module = harness.module

    def other() -> str:
        return "other"

    original = module.func.__code__
    cwd = os.getcwd()

    def action() -> None:
        os.environ["PT_LAZY_ENV"] = "1"  # LAZY-ENV
        del os.environ["PT_LAZY_ENV"]
        os.chdir(tmp_path)
        os.chdir(cwd)
        module.func.__code__ = other.__code__
        module.func.__code__ = original

    records = lazy_equals_eager(harness, action)
    env = records[0]
    assert (env.source, env.op, env.target, env.name, env.after.repr) == (
        "audit", "set", "os.environ", "PT_LAZY_ENV", "'1'")
    assert env.where is not None and env.where.line == line_of("# LAZY-ENV")
    assert [r.op for r in records[2:4]] == ["chdir", "chdir"]
    assert [r.name for r in records if r.op == "code-assign"] == ["func.__code__"] * 2


def test_watch_and_scan_records_lazy_equal_eager(harness: Harness) -> None:
    import builtins

    module = harness.module
    fake = mock.MagicMock()
    original_input = builtins.input
    watch = harness.tracer.source("watch")
    assert watch is not None

    def action() -> None:
        module.VALUE = 2  # LAZY-STORE
        builtins.input = fake
        try:
            watch.scan()  # type: ignore[attr-defined]  # 3.10/3.11: found by comparison
        finally:
            builtins.input = original_input

    records = lazy_equals_eager(harness, action)
    store = next(r for r in records if r.name == "VALUE")
    assert (store.source, store.target, store.before.repr, store.after.repr) == (
        "watch", f"module:{module.__name__}", "1", "2")
    assert store.where is not None and store.where.line == line_of("# LAZY-STORE")
    planted = next(r for r in records if r.target == "builtins" and r.name == "input")
    assert planted.after.is_mock and planted.source in ("watch", "scan")


def test_calls_and_reload_records_lazy_equal_eager(harness: Harness) -> None:
    module = harness.module
    old = signal.getsignal(signal.SIGUSR1)

    def handler(*_: object) -> None:
        pass

    def action() -> None:
        signal.signal(signal.SIGUSR1, handler)  # LAZY-SIGNAL
        signal.signal(signal.SIGUSR1, old)
        importlib.reload(module)  # LAZY-RELOAD

    records = lazy_equals_eager(harness, action)
    call = records[0]
    assert (call.source, call.op, call.target, call.name) == ("calls", "call", "signal",
                                                              "SIGUSR1")
    assert call.where is not None and call.where.line == line_of("# LAZY-SIGNAL")
    reload = next(r for r in records if r.op == "reload")
    assert reload.desc is not None and reload.desc.startswith("importlib.reload(")
    assert reload.where is not None and reload.where.line == line_of("# LAZY-RELOAD")


def test_a_process_scope_record_is_sealed_as_it_is_made(harness: Harness) -> None:
    from patchtrace.ledger import PROCESS

    harness.tracer.scope = PROCESS
    held = mock.MagicMock()
    ref = weakref.ref(held)
    count = len(harness.ledger)
    with mock.patch.object(harness.module, "func", held):
        pass
    [raw, _] = harness.raw_since(count)
    assert raw[14] is True  # sealed in the append: no boundary will come
    del held
    gc.collect()
    assert ref() is None  # the record kept nothing alive
    mutation = harness.ledger.get(raw[0])
    assert mutation is not None and mutation.after.is_mock and mutation.sealed
    harness.tracer.scope = Scope("lazy", "call")


# -- boundaries: undone records stay tuples ------------------------------------------------------
@pytest.fixture
def detector(harness: Harness) -> Iterator[Detector]:
    found = Detector(harness.tracer)
    try:
        yield found
    finally:
        found.close()


def boundary(harness: Harness, detector: Detector, test: str,
             body: Callable[[], object]) -> list[Leak]:
    harness.tracer.scope = Scope(test, "call")
    detector.begin()
    body()
    harness.tracer.scope = Scope(test, "teardown")
    try:
        return detector.end(Scope(test, "call"))
    finally:
        harness.tracer.scope = Scope("lazy", "call")


def test_patches_undone_in_their_test_are_never_built(harness: Harness,
                                                      detector: Detector) -> None:
    module = harness.module
    made: list[weakref.ref[Any]] = []

    def clean() -> None:
        with mock.patch.object(module, "func") as fake:
            made.append(weakref.ref(fake))
        mp = pytest.MonkeyPatch()
        mp.setattr(module, "VALUE", 5)
        mp.setenv("PT_LAZY_BOUNDARY", "1")
        mp.undo()

    count = len(harness.ledger)
    assert boundary(harness, detector, "t.py::test_clean", clean) == []
    raws = harness.raw_since(count)
    assert len(raws) == 6
    assert all(type(r) is tuple and r[14] is True for r in raws)  # sealed, never built
    gc.collect()
    assert made[0]() is None  # sealing kept no strong reference to the mock


def test_control_a_patch_left_applied_is_built_and_reported(harness: Harness,
                                                            detector: Detector) -> None:
    module = harness.module
    patcher = mock.patch.object(module, "func")

    def leaky() -> None:
        with mock.patch.object(module, "VALUE", 3):
            pass
        patcher.start()  # LAZY-LEFT-APPLIED

    count = len(harness.ledger)
    try:
        leaks = boundary(harness, detector, "t.py::test_leaky", leaky)
    finally:
        patcher.stop()
    assert [(leak.kind, leak.name) for leak in leaks] == [("patch-not-stopped", "func")]
    assert leaks[0].where is not None and leaks[0].where.line == line_of("# LAZY-LEFT-APPLIED")
    raws = harness.raw_since(count)
    kinds = [type(r).__name__ for r in raws]
    # the undone pair on another name stays a tuple; the patch that leaked was built
    assert kinds[:2] == ["tuple", "tuple"] and kinds[2] == "Mutation"


def test_an_undone_pair_next_to_a_leak_on_the_same_name_is_read(harness: Harness,
                                                                 detector: Detector) -> None:
    module = harness.module

    def body() -> None:
        with mock.patch.object(module, "VALUE", 3):
            pass
        module.VALUE = 99  # a store the boundary reads: the pair on VALUE is read too

    count = len(harness.ledger)
    try:
        leaks = boundary(harness, detector, "t.py::test_same_name", body)
        kinds = [type(r).__name__ for r in harness.raw_since(count)]
    finally:
        module.VALUE = 1
    assert [(leak.kind, leak.name) for leak in leaks] == [("binding-changed", "VALUE")]
    assert kinds == ["Mutation"] * 3  # the patch, its undo, the store


# -- boundaries driven by events: what the events do not see is still found ---------------------
def test_environment_is_not_copied_again_without_an_event(harness: Harness,
                                                         detector: Detector) -> None:
    boundary(harness, detector, "t.py::test_warm", lambda: None)
    before = snapshot.reads()["env"]
    assert boundary(harness, detector, "t.py::test_quiet", lambda: None) == []
    assert snapshot.reads()["env"] == before  # nothing wrote: the copy was reused

    def write() -> None:
        os.environ["PT_LAZY_EVENT"] = "1"

    try:
        leaks = boundary(harness, detector, "t.py::test_writes", write)
    finally:
        os.environ.pop("PT_LAZY_EVENT", None)
    assert snapshot.reads()["env"] > before  # control: an event, a new copy
    assert [(leak.kind, leak.name) for leak in leaks] == [("binding-changed", "PT_LAZY_EVENT")]


def test_a_write_into_environ_data_behind_the_hook_is_found(harness: Harness,
                                                            detector: Detector) -> None:
    data: dict[Any, Any] = os.environ._data  # type: ignore[attr-defined]
    key = os.environ.encodekey("PT_LAZY_BEHIND")  # type: ignore[attr-defined]
    boundary(harness, detector, "t.py::test_warm", lambda: None)

    def behind() -> None:
        data[key] = os.environ.encodevalue("1")  # type: ignore[attr-defined]  # no audit event

    try:
        leaks = boundary(harness, detector, "t.py::test_behind", behind)
    finally:
        data.pop(key, None)
    assert [(leak.kind, leak.target, leak.name) for leak in leaks] == [
        ("binding-changed", "os.environ", "PT_LAZY_BEHIND")]
    # control: written and removed behind the hook, nothing left
    boundary(harness, detector, "t.py::test_warm2", lambda: None)

    def both() -> None:
        data[key] = os.environ.encodevalue("1")  # type: ignore[attr-defined]
        del data[key]

    assert boundary(harness, detector, "t.py::test_both", both) == []


def test_a_slice_assignment_to_sys_path_is_found(harness: Harness,
                                                 detector: Detector) -> None:
    saved = list(sys.path)
    boundary(harness, detector, "t.py::test_warm", lambda: None)

    def replace() -> None:
        sys.path[:] = [*saved, "/pt/lazy/sliced"]  # same list object, no call to wrap

    try:
        leaks = boundary(harness, detector, "t.py::test_slice", replace)
    finally:
        sys.path[:] = saved
    assert [(leak.target, leak.name) for leak in leaks] == [("sys.path", "'/pt/lazy/sliced'")]

    def same() -> None:  # control: the same entries again, in a new order of assignment
        sys.path[:] = list(saved)

    assert boundary(harness, detector, "t.py::test_same", same) == []


def test_logger_changes_without_a_wrapped_call_are_found(harness: Harness,
                                                         detector: Detector) -> None:
    logger = logging.getLogger(f"pt_lazy_{next(_counter)}")
    handler = logging.NullHandler()
    boundary(harness, detector, "t.py::test_warm", lambda: None)
    assert boundary(harness, detector, "t.py::test_warm2", lambda: None) == []

    def append() -> None:
        logger.handlers.append(handler)  # not addHandler: no wrapped call

    def store() -> None:
        vars(logger)["propagate"] = False  # a direct dict write: no call, no setattr

    try:
        appended = boundary(harness, detector, "t.py::test_append", append)
        stored = boundary(harness, detector, "t.py::test_store", store)
    finally:
        logger.handlers.clear()
        logger.propagate = True
    assert [(leak.target, leak.name) for leak in appended] == [("logging", logger.name)]
    assert [(leak.target, leak.name) for leak in stored] == [("logging", logger.name)]

    boundary(harness, detector, "t.py::test_warm3", lambda: None)  # after the finally

    def undone() -> None:  # control: changed and put back without a call
        logger.handlers.append(handler)
        logger.handlers.remove(handler)
        vars(logger)["propagate"] = False
        vars(logger)["propagate"] = True

    assert boundary(harness, detector, "t.py::test_undone", undone) == []


def test_a_signal_handler_set_behind_the_wrapper_is_found(harness: Harness,
                                                          detector: Detector) -> None:
    import _signal

    old = _signal.getsignal(signal.SIGUSR2)
    if old is None:
        pytest.skip("SIGUSR2's handler was not installed from Python")

    def handler(*_: object) -> None:
        pass

    boundary(harness, detector, "t.py::test_warm", lambda: None)
    try:
        leaks = boundary(harness, detector, "t.py::test_raw_signal",
                         lambda: _signal.signal(signal.SIGUSR2, handler))  # unwrapped
    finally:
        signal.signal(signal.SIGUSR2, old)
    assert [(leak.target, leak.name) for leak in leaks] == [("signal", "SIGUSR2")]

    def put_back() -> None:  # control
        _signal.signal(signal.SIGUSR2, handler)
        _signal.signal(signal.SIGUSR2, old)

    assert boundary(harness, detector, "t.py::test_put_back", put_back) == []


def test_pytests_per_phase_work_does_not_force_a_full_read(harness: Harness,
                                                           detector: Detector) -> None:
    """What pytest does around every phase: its variable, its capture swapping the
    streams, its log handler added and removed through addHandler/removeHandler."""
    boundary(harness, detector, "t.py::test_warm", lambda: None)
    counts = snapshot.reads()
    root = logging.getLogger()
    stdout = sys.stdout

    def phases() -> None:
        for phase in ("setup", "call", "teardown"):
            os.environ["PYTEST_CURRENT_TEST"] = f"t.py::test_phases ({phase})"
            capture = logging.NullHandler()
            sys.stdout = sys.stderr
            root.addHandler(capture)
            root.removeHandler(capture)
            sys.stdout = stdout

    saved = os.environ.get("PYTEST_CURRENT_TEST")
    try:
        assert boundary(harness, detector, "t.py::test_phases", phases) == []
    finally:
        sys.stdout = stdout
        if saved is None:
            os.environ.pop("PYTEST_CURRENT_TEST", None)
        else:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    after = snapshot.reads()
    assert after["env"] == counts["env"]
    if snapshot._TAGS_MOVE:  # 3.13+ reads every logger's attributes each time
        # the calls here are this test's (recorded: a user frame made them), so the
        # loggers are read once; the environment is not
        assert after["logging"] == counts["logging"] + 1


# -- memory ------------------------------------------------------------------------------------
def test_stacks_share_their_frames() -> None:
    def here() -> tuple[tuple[Any, ...], ...]:
        return capture_raw(0)

    first, second = here(), here()
    assert first == second and first is not second
    assert all(a is b for a, b in zip(first, second, strict=True))  # one tuple per frame
