"""Each source, driven directly: what it records, with which line, and what it leaves alone."""

from __future__ import annotations

import importlib
import itertools
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from unittest import mock

import pytest

from patchtrace import _tracer
from patchtrace.boundary import snapshot
from patchtrace.config import Config
from patchtrace.ledger import NOTHING, Mutation, Scope

_counter = itertools.count()

MODULE_SOURCE = """
VALUE = 1
def func():
    return "real"
def set_own(value):
    global VALUE
    VALUE = value
class Cls:
    attr = 1
    @staticmethod
    def helper():
        return 1
"""


class Harness:
    def __init__(self, tracer: _tracer.Tracer, module: ModuleType) -> None:
        self.tracer = tracer
        self.module = module
        self.mark = len(tracer.ledger)

    def records(self, **match: object) -> list[Mutation]:
        out = []
        for m in self.tracer.ledger.since(self.mark):
            if all(getattr(m, k) == v for k, v in match.items()):
                out.append(m)
        return out

    def scan(self) -> None:
        watch = self.tracer.source("watch")
        assert watch is not None
        watch.scan()  # type: ignore[attr-defined]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    name = f"ptunit_{next(_counter)}"
    (tmp_path / f"{name}.py").write_text(MODULE_SOURCE)
    sys.path.insert(0, str(tmp_path))
    tracer = _tracer.start(Config())
    tracer.scope = Scope("unit", "call")
    try:
        module = importlib.import_module(name)
        yield Harness(tracer, module)
    finally:
        tracer.stop()
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def line_of(marker: str) -> int:
    """The line number of ``marker`` in this file (keeps assertions honest as code moves)."""
    for number, text in enumerate(Path(__file__).read_text().splitlines(), 1):
        if marker in text and "line_of(" not in text:
            return number
    raise AssertionError(marker)


# -- unittest.mock -----------------------------------------------------------------------------
def test_patch_start_and_stop_are_paired_with_the_users_lines(harness: Harness) -> None:
    target = f"{harness.module.__name__}.func"
    patcher = mock.patch(target)
    patcher.start()  # START-HERE
    [applied] = harness.records(op="patch")
    assert applied.target == f"module:{harness.module.__name__}" and applied.name == "func"
    assert applied.where is not None and applied.where.line == line_of("# START-HERE")
    assert applied.where.file == __file__
    assert applied.before.type == "function" and applied.after.is_mock
    assert [a.mutation for a in harness.tracer.ledger.active()][-1] is applied
    assert applied.desc == f"patch('{target}')"
    patcher.stop()  # STOP-HERE
    [undone] = harness.records(op="unpatch")
    assert undone.token == applied.token
    # named as its patch was, so history() and the reports pair them
    assert (undone.target, undone.name, undone.desc) == (applied.target, "func", applied.desc)
    assert harness.tracer.ledger.history(applied.target, "func")[-2:] == [applied, undone]
    assert undone.where is not None and undone.where.line == line_of("# STOP-HERE")
    assert applied not in [a.mutation for a in harness.tracer.ledger.active()]


def test_patch_as_context_manager_decorator_and_stopall(harness: Harness) -> None:
    module = harness.module
    with mock.patch.object(module, "VALUE", 5):
        assert module.VALUE == 5

    @mock.patch.object(module, "func")
    def decorated(fake: mock.MagicMock) -> None:
        assert module.func is fake

    decorated()
    mock.patch.object(module, "VALUE", 6).start()
    mock.patch.object(module, "func").start()
    mock.patch.stopall()
    assert len(harness.records(op="patch")) == 4
    assert len(harness.records(op="unpatch")) == 4
    assert module.VALUE == 1 and module.func() == "real"


def test_patch_object_reads_the_raw_descriptor(harness: Harness) -> None:
    cls = harness.module.Cls
    with mock.patch.object(cls, "helper"):
        pass
    [applied] = harness.records(op="patch")
    assert applied.target == f"class:{harness.module.__name__}.Cls"
    assert applied.before.type == "staticmethod"


def test_patch_multiple_records_each_attribute(harness: Harness) -> None:
    with mock.patch.multiple(harness.module, VALUE=2, func=mock.DEFAULT):
        pass
    assert sorted(m.name or "" for m in harness.records(op="patch")) == ["VALUE", "func"]
    assert len(harness.records(op="unpatch")) == 2


def test_patch_dict_on_environ_is_recorded_once(harness: Harness) -> None:
    with mock.patch.dict(os.environ, {"PT_UNIT_KEY": "1"}):
        assert os.environ["PT_UNIT_KEY"] == "1"
    patches = harness.records(op="patch")
    assert len(patches) == 1 and patches[0].target == "os.environ"
    assert patches[0].name == "PT_UNIT_KEY"
    assert harness.records(source="audit") == []  # the audit hook stayed quiet (busy)
    assert len(harness.records(op="unpatch")) == 1


def test_patch_dict_on_sys_modules(harness: Harness) -> None:
    fake = mock.MagicMock()
    with mock.patch.dict(sys.modules, {"pt_not_a_module": fake}):
        pass
    [applied] = harness.records(op="patch")
    assert applied.target == "sys.modules" and applied.name == "pt_not_a_module"


def test_undo_while_an_exception_propagates_is_marked(harness: Harness) -> None:
    with pytest.raises(ZeroDivisionError), mock.patch.object(harness.module, "VALUE", 3):
        1 / 0
    [undone] = harness.records(op="unpatch")
    assert undone.unwinding is not None and undone.unwinding[0] == "ZeroDivisionError"


def test_mock_creation_is_recorded_for_top_level_mocks_only(harness: Harness) -> None:
    source = harness.tracer.source("mock")
    parent = mock.MagicMock(name="parent")  # CREATED-HERE
    parent.child.grandchild()
    records = source.alive_created_in(lambda s: s.test == "unit")  # type: ignore[attr-defined]
    made = [record for obj, record in records if obj is parent]
    assert len(made) == 1
    assert made[0].stack.where().line == line_of("# CREATED-HERE")
    assert not [r for obj, r in records if obj is parent.child]


# -- pytest's MonkeyPatch ----------------------------------------------------------------------
def test_monkeypatch_calls_and_undo(harness: Harness, tmp_path: Path) -> None:
    mp = pytest.MonkeyPatch()
    cwd = os.getcwd()
    try:
        mp.setattr(harness.module, "VALUE", 9)  # MP-SETATTR
        mp.setenv("PT_UNIT_MP", "x")
        mp.delenv("PT_UNIT_ABSENT", raising=False)
        mp.syspath_prepend(str(tmp_path))
        mp.chdir(tmp_path)
        mp.setattr(harness.module.Cls, "helper", lambda: 2)
    finally:
        mp.undo()
    assert os.getcwd() == cwd
    applied = harness.records(op="patch", source="monkeypatch")
    assert [m.target for m in applied][:2] == [f"module:{harness.module.__name__}", "os.environ"]
    assert applied[0].where is not None and applied[0].where.line == line_of("# MP-SETATTR")
    assert applied[0].before.repr == "1"
    assert "cwd" in [m.target for m in applied] and "sys.path" in [m.target for m in applied]
    helper = next(m for m in applied if m.name == "helper")
    assert helper.before.type == "staticmethod"  # read from __dict__, like undo() does
    assert len(harness.records(op="unpatch", source="monkeypatch")) == len(applied)
    # (this test's patches only: the tracer is the process's, shared with earlier tests)
    assert not [a for a in harness.tracer.ledger.active()
                if a.mutation.source == "monkeypatch" and a.mutation.seq > harness.mark]
    assert harness.records(source="audit", target="os.environ") == []


def test_monkeypatch_in_another_thread_during_a_call_is_recorded(harness: Harness) -> None:
    """"Inside a MonkeyPatch call" is per thread (sources/_wrap.around): a call another
    thread makes while this one is inside one (its setattr blocked in the target's
    ``__setattr__``) is recorded as the monkeypatch change it is, not passed through."""
    import threading

    entered, release = threading.Event(), threading.Event()

    class Blocking:
        slow = 0

        def __setattr__(self, name: str, value: object) -> None:
            if name == "slow" and not release.is_set():
                entered.set()
                release.wait(10)
            object.__setattr__(self, name, value)

    target = Blocking()
    mp_a, mp_b = pytest.MonkeyPatch(), pytest.MonkeyPatch()
    thread = threading.Thread(target=mp_a.setattr, args=(target, "slow", 1))
    thread.start()
    try:
        assert entered.wait(10)
        mp_b.setenv("PT_UNIT_THREAD", "1")  # while the other thread is inside setattr
    finally:
        release.set()
        thread.join(10)
        mp_b.undo()
        mp_a.undo()
    [env] = harness.records(op="patch", source="monkeypatch", target="os.environ",
                            name="PT_UNIT_THREAD")
    assert env.after.repr == "'1'"
    # the control: the blocked call itself is recorded too
    assert harness.records(op="patch", source="monkeypatch", name="slow")
    assert harness.records(source="audit", target="os.environ") == []


# -- the audit hook ------------------------------------------------------------------------------
def test_environment_writes_and_chdir(harness: Harness, tmp_path: Path) -> None:
    os.environ["PT_UNIT_ENV"] = "1"  # ENV-SET
    del os.environ["PT_UNIT_ENV"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    os.chdir(cwd)
    set_, deleted = harness.records(target="os.environ")
    assert set_.op == "set" and set_.name == "PT_UNIT_ENV" and set_.after.repr == "'1'"
    assert set_.where is not None and set_.where.line == line_of("# ENV-SET")
    assert deleted.op == "delete" and deleted.before.repr == "'1'"
    assert len(harness.records(op="chdir")) == 2


def test_pytest_current_test_is_skipped(harness: Harness) -> None:
    os.environ["PYTEST_CURRENT_TEST"] = os.environ.get("PYTEST_CURRENT_TEST", "x")
    assert harness.records(target="os.environ") == []


def test_code_swap_is_recorded(harness: Harness) -> None:
    def other() -> str:
        return "other"

    original = harness.module.func.__code__
    harness.module.func.__code__ = other.__code__  # CODE-SWAP
    try:
        [swap] = harness.records(op="code-assign")
        assert swap.name == "func.__code__"
        assert swap.where is not None and swap.where.line == line_of("# CODE-SWAP")
    finally:
        harness.module.func.__code__ = original


# -- direct stores ---------------------------------------------------------------------------------
def test_module_attribute_store_is_seen_with_its_line(harness: Harness) -> None:
    harness.module.VALUE = 2  # MODULE-STORE
    harness.scan()
    [store] = harness.records(target=f"module:{harness.module.__name__}", name="VALUE")
    assert store.op == "set" and store.before.repr == "1" and store.after.repr == "2"
    assert store.where is not None and store.where.line == line_of("# MODULE-STORE")


def test_a_modules_own_global_store_is_not_a_foreign_store(harness: Harness) -> None:
    harness.module.set_own(42)
    harness.scan()
    assert harness.records(name="VALUE") == []


def test_class_attribute_replaced_is_recorded(harness: Harness) -> None:
    def replacement() -> int:
        return 2

    harness.module.Cls.helper = replacement  # CLASS-STORE
    harness.scan()
    [store] = harness.records(target=f"class:{harness.module.__name__}.Cls", name="helper")
    assert store.before.type == "staticmethod" and store.after.type == "function"
    if sys.version_info >= (3, 12):  # dict watchers see the line as it happens
        assert store.where is not None and store.where.line == line_of("# CLASS-STORE")


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.10/3.11: the version-tag scan")
def test_the_scan_leaves_pytests_own_per_phase_hook_alone(harness: Harness) -> None:
    # pytest < 8.4 sets threading.excepthook to its own hook around every phase, so at each
    # boundary the scan meets a value that differs from the last one. It is pytest's, not
    # the test's: the scan must not ask the test's source about it (that parses every test
    # file) nor record it. Control: a plain standard-library function in the same place is
    # asked about, and recorded when the test's source stores that name.
    import json
    import threading

    from _pytest import runner

    asked: list[str] = []
    watch = harness.tracer.source("watch")
    assert watch is not None
    saved = watch.stored_by_test  # type: ignore[attr-defined]

    def stored_by_test(name: str) -> bool:
        asked.append(name)
        return True

    original = threading.excepthook
    watch.stored_by_test = stored_by_test  # type: ignore[attr-defined]
    try:
        harness.scan()  # a baseline of threading's dict
        asked.clear()
        threading.excepthook = runner.SetupState().setup  # pytest's (a bound method)
        harness.scan()
        assert "excepthook" not in asked
        assert harness.records(target="module:threading", name="excepthook") == []
        threading.excepthook = json.dumps  # the control: not pytest's
        harness.scan()
        assert "excepthook" in asked
        [store] = harness.records(target="module:threading", name="excepthook")
        assert store.after.type == "function"
    finally:
        threading.excepthook = original
        watch.stored_by_test = saved  # type: ignore[attr-defined]


def test_builtins_store(harness: Harness) -> None:
    import builtins

    fake = mock.MagicMock()
    original = builtins.input
    builtins.input = fake
    try:
        harness.scan()
        [store] = harness.records(target="builtins", name="input")
        assert store.after.is_mock
    finally:
        builtins.input = original


def test_instrumentation_is_undone_on_stop(harness: Harness) -> None:
    harness.tracer.stop()
    assert not getattr(mock._patch.__enter__, "__patchtrace__", False)
    assert not getattr(pytest.MonkeyPatch.setattr, "__patchtrace__", False)
    assert type(harness.module) is ModuleType
    mark = len(harness.tracer.ledger)
    with mock.patch.object(harness.module, "VALUE", 3):
        pass
    assert len(harness.tracer.ledger) == mark


# -- resources ---------------------------------------------------------------------------------
def test_resource_snapshot_diff(tmp_path: Path) -> None:
    before = snapshot.take()
    cwd = os.getcwd()
    old_handler = signal.getsignal(signal.SIGUSR1)
    fake_module = mock.MagicMock()
    module_name = "json"
    real = sys.modules[module_name]
    try:
        os.chdir(tmp_path)
        sys.path.append("/pt/unit/path")
        os.environ["PT_UNIT_RES"] = "1"
        signal.signal(signal.SIGUSR1, lambda *a: None)
        sys.modules["pt_unit_fake"] = fake_module
        del sys.modules[module_name]
        after = snapshot.take()
    finally:
        os.chdir(cwd)
        sys.path.remove("/pt/unit/path")
        del os.environ["PT_UNIT_RES"]
        signal.signal(signal.SIGUSR1, old_handler)
        sys.modules.pop("pt_unit_fake")
        sys.modules[module_name] = real
    found = {(c.kind, c.target, c.name) for c in snapshot.diff(before, after)}
    assert ("resource-changed", "cwd", None) in found
    assert ("resource-changed", "sys.path", "'/pt/unit/path'") in found
    assert ("binding-changed", "os.environ", "PT_UNIT_RES") in found
    assert ("resource-changed", "signal", "SIGUSR1") in found
    assert ("binding-changed", "sys.modules", "pt_unit_fake") in found
    assert ("module-dropped", "sys.modules", module_name) in found
    assert snapshot.diff(snapshot.take(), snapshot.take()) == []


def test_snapshots_of_an_unchanged_process_share_their_parts() -> None:
    """What pytest changes around every phase (sys.stdout, PYTEST_CURRENT_TEST) leaves the
    compared parts identical, so diff's identity checks hold; a real change still shows."""
    import io
    import threading

    saved_out = sys.stdout
    saved_var = os.environ.get("PYTEST_CURRENT_TEST")
    try:
        os.environ["PYTEST_CURRENT_TEST"] = "a.py::one (call)"
        sys.stdout = io.StringIO()
        first = snapshot.take()
        os.environ["PYTEST_CURRENT_TEST"] = "a.py::two (setup)"
        sys.stdout = io.StringIO()
        second = snapshot.take()
    finally:
        sys.stdout = saved_out
        if saved_var is None:
            os.environ.pop("PYTEST_CURRENT_TEST", None)
        else:
            os.environ["PYTEST_CURRENT_TEST"] = saved_var
    assert second.env is first.env
    assert second.namespaces[0] is first.namespaces[0]  # sys, without its streams
    assert [c.name for c in snapshot.diff(first, second)] == ["stdout"]

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="pt-unit-thread", daemon=True)
    sys.pt_unit_attr = mock.MagicMock()  # type: ignore[attr-defined]
    try:
        thread.start()
        third = snapshot.take()
        found = {(c.kind, c.target, c.name) for c in snapshot.diff(second, third)}
    finally:
        del sys.pt_unit_attr  # type: ignore[attr-defined]
        stop.set()
        thread.join()
    assert ("binding-changed", "module:sys", "pt_unit_attr") in found
    assert ("resource-changed", "module:threading", "pt-unit-thread") in found
    assert third.namespaces[0] is not second.namespaces[0]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.10/3.11 read dict version tags")
def test_a_tag_group_names_exactly_the_dicts_that_changed() -> None:
    from patchtrace.sources.watch import _tag_reader, _TagGroup
    from patchtrace.values import identity_key

    dicts = [{"a": 1}, {"b": 2}, {"c": 3}]
    by_address = sorted(dicts, key=id)
    addresses = [id(d) + _version_offset() for d in by_address]
    read = _tag_reader(addresses)
    group = _TagGroup([identity_key(d) for d in by_address], read, read())
    assert group.changed() == []
    dicts[1]["b"] = 2  # the very same object again: CPython leaves the tag alone
    assert group.changed() == []
    dicts[1]["b"] = "two"
    assert group.changed() == [identity_key(dicts[1])]
    assert group.changed() == []  # judged once
    dicts[0]["x"] = 1
    dicts[2].pop("c")
    assert sorted(group.changed()) == sorted([identity_key(dicts[0]), identity_key(dicts[2])])
    other = {"z": 0}
    other["z"] = 1  # an untracked dict moves the global counter, not the group
    assert group.changed() == []


def _version_offset() -> int:
    from patchtrace.sources import watch

    return int(watch._VERSION_OFFSET)


def test_nothing_sentinel_is_not_a_value() -> None:
    assert repr(NOTHING) == "<nothing>"


def test_the_ledger_is_bounded_and_keeps_active_patches(monkeypatch: pytest.MonkeyPatch) -> None:
    from patchtrace.ledger import Ledger

    ledger_module = sys.modules["patchtrace.ledger"]
    from patchtrace.stack import EMPTY

    monkeypatch.setattr(ledger_module, "MAX_RECORDS", 100)
    book = Ledger()
    scope = Scope("t", "call")
    first = book.append(Mutation(1, "patch", "mock", "module:m", "x", 1, 2, EMPTY, scope,
                                 token=1), patcher=None)
    for seq in range(2, 301):
        book.append(Mutation(seq, "set", "watch", "module:m", "y", seq, seq + 1, EMPTY, scope))
    book.seal()
    assert len(book) == 300
    kept = list(book)
    assert first in kept and len(kept) <= 51
    assert [m.seq for m in book.since(290)] == list(range(291, 301))
    assert book.history("module:m", "x") == [first]
