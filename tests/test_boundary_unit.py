"""The boundary rules on a hand-built tracer and detector (no source installed): each
"nothing" case next to the control that must report."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchtrace import stack as _stack
from patchtrace._tracer import Tracer
from patchtrace.boundary import Detector
from patchtrace.boundary._held import Held as _Held
from patchtrace.boundary.checks.reloads import _reload_differences
from patchtrace.config import Config
from patchtrace.leak import Leak
from patchtrace.ledger import NOTHING, Scope

MODULE = "pt_unit_conf"


@pytest.fixture
def detector() -> Iterator[Detector]:
    tracer = Tracer(Config())
    found = Detector(tracer)
    try:
        yield found
    finally:
        found.close()


@pytest.fixture
def conf() -> Iterator[types.ModuleType]:
    module = types.ModuleType(MODULE)
    module.DB_PATH = Path("/tmp/pt-db")  # type: ignore[attr-defined]
    sys.modules[MODULE] = module
    try:
        yield module
    finally:
        del sys.modules[MODULE]


def scope(detector: Detector, test: str) -> Scope:
    detector.tracer.scope = Scope(test, "call")
    detector.begin()
    return Scope(test, "teardown")


def store(detector: Detector, module: types.ModuleType, name: str, value: object) -> None:
    detector.tracer.record("set", "watch", f"module:{module.__name__}", name,
                           module.__dict__.get(name, NOTHING), value, stack=_stack.capture())
    setattr(module, name, value)


def test_an_equal_value_put_back_is_no_leak(detector: Detector, conf: types.ModuleType) -> None:
    end = scope(detector, "t.py::test_same")
    store(detector, conf, "DB_PATH", Path("/tmp/pt-db"))  # a new, equal object
    assert detector.end(end) == []
    end = scope(detector, "t.py::test_other")
    store(detector, conf, "DB_PATH", Path("/tmp/elsewhere"))
    (leak,) = detector.end(end)
    assert (leak.kind, leak.name, leak.polluter) == ("binding-changed", "DB_PATH",
                                                    "t.py::test_other")
    assert leak.where is not None and leak.where.function == "store"


def test_the_state_before_the_scope_beats_the_first_record(
        detector: Detector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PT_UNIT_ENV", "a")
    end = scope(detector, "t.py::test_env")
    # The first record seen claims the key did not exist; the environment says it did,
    # and holds the same value again at the end: nothing changed.
    detector.tracer.record("set", "audit", "os.environ", "PT_UNIT_ENV", NOTHING, "b",
                           stack=_stack.capture())
    assert detector.end(end) == []
    end = scope(detector, "t.py::test_env_changed")
    detector.tracer.record("set", "audit", "os.environ", "PT_UNIT_ENV", "a", "b",
                           stack=_stack.capture())
    os.environ["PT_UNIT_ENV"] = "b"
    (leak,) = detector.end(end)
    assert (leak.kind, leak.before.repr, leak.value.repr) == ("binding-changed", "'a'", "'b'")


def test_keys_added_twice_are_changed_not_a_botched_restore(
        detector: Detector, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PT_UNIT_ADDED", raising=False)
    end = scope(detector, "t.py::test_update")
    for _ in range(2):  # os.environ.update({...}) in setup and again in the test
        detector.tracer.record("set", "audit", "os.environ", "PT_UNIT_ADDED",
                               os.environ.get("PT_UNIT_ADDED", NOTHING), "1",
                               stack=_stack.capture())
        monkeypatch.setenv("PT_UNIT_ADDED", "1")
    (leak,) = detector.end(end)
    assert leak.kind == "binding-changed"


def test_a_handler_over_an_earlier_leak_is_a_repeat_and_the_original_back_a_repair(
        detector: Detector) -> None:
    def first(*args: object) -> None:
        pass

    def second(*args: object) -> None:
        pass

    original = signal.getsignal(signal.SIGUSR2)
    try:
        end = scope(detector, "t.py::test_a")
        signal.signal(signal.SIGUSR2, first)
        (leak,) = detector.end(end)
        assert (leak.kind, leak.target, leak.name) == ("resource-changed", "signal", "SIGUSR2")
        end = scope(detector, "t.py::test_b")
        signal.signal(signal.SIGUSR2, second)
        (repeat,) = detector.end(end)  # returned (strict mode fails test_b too) ...
        assert repeat.polluter == "t.py::test_b" and repeat.id == leak.id
        assert detector.leaks == [leak]  # ... but reported once
        assert (leak.repeats, leak.repeat_tests) == (1, ["t.py::test_b"])
        assert leak.obj() is second  # what is in place now is followed
        end = scope(detector, "t.py::test_c")
        signal.signal(signal.SIGUSR2, original)
        assert detector.end(end) == []
    finally:
        signal.signal(signal.SIGUSR2, original)


def test_none_is_kept_as_a_value() -> None:
    blocker = Leak("binding-changed", "t.py::test", "call", "sys.modules", "x", obj=None)
    assert blocker.obj() is None
    assert Leak("mock-survived", "t.py::test", "call", None, None).obj() is NOTHING


def test_repeats_round_trip_through_json() -> None:
    leak = Leak("binding-changed", "t.py::test_1", "call", "module:m", "CURRENT")
    leak.repeats, leak.repeat_tests = 2, ["t.py::test_2", "t.py::test_3"]
    data = leak.to_json()
    assert (data["repeats"], data["repeat_tests"]) == (2, ["t.py::test_2", "t.py::test_3"])
    again = Leak.from_json(data)
    assert (again.repeats, again.repeat_tests) == (2, ["t.py::test_2", "t.py::test_3"])
    assert Leak.from_json({"kind": "binding-changed"}).repeats == 0


def test_held_values_match_without_keeping_objects_alive() -> None:
    class Handler:
        pass

    handler = Handler()
    held = _Held(((handler,), 10, 0))  # the root logger: (handlers, level, disable)
    assert held.matches(((handler,), 10, 0))
    assert not held.matches(((Handler(),), 10, 0)) and not held.matches(((handler,), 20, 0))
    assert _Held(NOTHING).matches(NOTHING) and not _Held(NOTHING).matches(None)
    del handler
    assert not held.matches(((Handler(),), 10, 0))


def test_reload_differences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pt_unit_reloaded.py").write_text(
        "import os\nMODE = os.environ.get('PT_UNIT_MODE', 'prod')\n"
        "class Thing:\n    pass\n\ndef make():\n    return Thing()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("pt_unit_reloaded")
    holder = types.ModuleType("pt_unit_holder")
    holder.__file__ = str(tmp_path / "pt_unit_holder.py")
    monkeypatch.setitem(sys.modules, "pt_unit_reloaded", module)
    monkeypatch.setitem(sys.modules, "pt_unit_holder", holder)
    try:
        before = dict(module.__dict__)
        importlib.reload(module)
        assert _reload_differences("pt_unit_reloaded", module, before) == []  # as it was

        monkeypatch.setenv("PT_UNIT_MODE", "test")
        holder.Thing = module.Thing  # type: ignore[attr-defined]  # from m import Thing
        before = dict(module.__dict__)
        importlib.reload(module)
        assert _reload_differences("pt_unit_reloaded", module, before) == [
            "MODE 'prod' -> 'test'",
            "Thing: a new class, while module pt_unit_holder (attribute Thing) still holds "
            "the old one",
        ]
    finally:
        del before


def test_a_recovered_line_must_store_to_the_same_target(tmp_path: Path) -> None:
    from patchtrace.analysis import oracle as _oracle

    (tmp_path / "test_fs.py").write_text(
        "from lib.fake import FakeThing\n"
        "import lib.conf as conf\n"
        "class Counter:\n"
        "    @property\n"
        "    def bump(self):\n"
        "        self.__class__.counter += 1\n"
        "class TestX:\n"
        "    def setup_method(self):\n"
        "        self.filesystem = None\n"
        "    def test_it(self):\n"
        "        conf.filesystem = 1\n"
        "        FakeThing.other = 2\n")

    def find(name: str, target: str) -> int | None:
        frame = _oracle.find_store("test_fs.py::TestX::test_it", str(tmp_path), name,
                                   target=target)
        return None if frame is None else frame.line

    assert find("filesystem", "class:lib.fake.FakeThing") is None  # self.filesystem
    assert find("filesystem", "module:lib.conf") == 11
    assert find("other", "class:lib.fake.FakeThing") == 12
    assert find("counter", "class:test_fs.Counter") == 6
    assert find("counter", "class:lib.fake.FakeThing") is None


def test_an_equal_copy_of_a_plain_container_nobody_holds_is_no_leak(
        detector: Detector, conf: types.ModuleType) -> None:
    conf.TARGET = {"foo": "FOO", "n": [1, 2]}  # type: ignore[attr-defined]
    end = scope(detector, "t.py::test_copy")
    original = conf.TARGET.copy()  # type: ignore[attr-defined]
    store(detector, conf, "TARGET", {"foo": "BAZ"})
    store(detector, conf, "TARGET", original)  # finally: put back an equal copy
    del original
    assert detector.end(end) == []
    end = scope(detector, "t.py::test_left")
    store(detector, conf, "TARGET", {"foo": "BAZ"})
    (leak,) = detector.end(end)
    assert leak.kind == "binding-changed"
    # the same equal copy, while another module still holds the old dict: they diverge
    holder = types.ModuleType("pt_unit_dict_holder")
    holder.__file__ = "/tmp/pt_unit_dict_holder.py"
    holder.SHARED = conf.TARGET  # type: ignore[attr-defined]
    sys.modules["pt_unit_dict_holder"] = holder
    try:
        end = scope(detector, "t.py::test_shared")
        store(detector, conf, "TARGET", dict(conf.TARGET))  # type: ignore[attr-defined]
        (leak,) = detector.end(end)
        assert leak.polluter == "t.py::test_shared"
    finally:
        del sys.modules["pt_unit_dict_holder"]


def test_an_inherited_value_stored_back_on_the_class_is_a_botched_restore(
        detector: Detector, conf: types.ModuleType) -> None:
    class Base:
        def time(self) -> int:
            return 1

    class Loop(Base):
        pass

    conf.Loop = Loop  # type: ignore[attr-defined]
    Loop.__qualname__ = "Loop"
    end = scope(detector, "t.py::test_restore")
    for value in (lambda self: 2, Base.__dict__["time"]):  # freezegun's stop(): setattr back
        detector.tracer.record("set", "watch", f"class:{MODULE}.Loop", "time",
                               Loop.__dict__.get("time", NOTHING), value,
                               stack=_stack.capture())
        Loop.time = value  # type: ignore[attr-defined,method-assign]
    (leak,) = detector.end(end)
    assert leak.kind == "restore-mismatch"
    end = scope(detector, "t.py::test_new")
    detector.tracer.record("set", "watch", f"class:{MODULE}.Loop", "extra", NOTHING, 5,
                           stack=_stack.capture())
    Loop.extra = 5  # type: ignore[attr-defined]
    (leak,) = detector.end(end)
    assert leak.kind == "binding-changed"
