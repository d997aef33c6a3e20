"""patchtrace.refs: chains from roots to an object, named in words.

Tests never keep the object under study in a local of the test function while calling
explain(): a live frame local is a root, and would (correctly) be the shortest chain.
"""

from __future__ import annotations

import functools
import gc
import io
import json
import subprocess
import sys
import threading
import types
import weakref
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from patchtrace.refs import Chain, Explanation, Step, explain, ignore_container, why


@pytest.fixture
def module() -> Iterator[types.ModuleType]:
    name = "pt_refs_fixture"
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    try:
        yield mod
    finally:
        sys.modules.pop(name, None)
        mod.__dict__.clear()


def used_mock(**kwargs: Any) -> mock.MagicMock:
    m = mock.MagicMock(**kwargs)
    m(1, x=2)
    m.attr.child(3)
    len(m)
    return m


def labels(exp: Explanation) -> list[list[str]]:
    return [c.labels() for c in exp.chains]


class Holder:
    def __init__(self, value: object) -> None:
        self.value = value


def make_closure(fn: object) -> Any:
    def inner() -> object:
        return fn

    return inner


def test_module_dict_list_instance_closure(module: types.ModuleType) -> None:
    module.registry = {"handlers": [Holder(make_closure(used_mock()))]}
    exp = explain(module.registry["handlers"][0].value.__closure__[0].cell_contents)
    assert exp.note is None
    assert labels(exp)[0] == [
        "module pt_refs_fixture",
        "attribute registry",
        "dict key 'handlers'",
        "list index 0",
        "attribute value of Holder object",
        "closure cell 'fn' of function make_closure.<locals>.inner",
    ]
    assert exp.chains[0].root_kind == "module"
    assert exp.target_type == "MagicMock"


def test_value_classes_roundtrip_json(module: types.ModuleType) -> None:
    module.thing = [used_mock()]
    exp = explain(module.thing[0])
    data = json.loads(json.dumps(exp.to_json()))
    again = Explanation.from_json(data)
    assert again == exp
    assert again.chains[0].labels() == ["module pt_refs_fixture", "attribute thing", "list index 0"]
    assert Step.from_json(Step("k", "l").to_json()) == Step("k", "l")
    assert Chain.from_json({"root_kind": "module", "steps": []}) == Chain("module", ())
    for value in (exp, *exp.chains, *exp.chains[0].steps):
        assert not hasattr(value, "__dict__")  # __slots__ only, no hidden references


def test_lru_cache(module: types.ModuleType) -> None:
    @functools.cache
    def get_settings(key: str) -> mock.MagicMock:
        return used_mock()

    @functools.lru_cache(maxsize=8)
    def get_bounded(key: str) -> mock.MagicMock:
        return used_mock()

    module.get_settings = get_settings
    module.get_bounded = get_bounded
    del get_settings, get_bounded
    for name in ("get_settings", "get_bounded"):
        exp = explain(getattr(module, name)("k"))
        chain = labels(exp)[0]
        assert chain[:2] == ["module pt_refs_fixture", f"attribute {name}"]
        assert "lru_cache storage" in chain[2], chain
        assert name in chain[2]


def test_parent_mock_kept_alive_only_by_a_cached_child(module: types.ModuleType) -> None:
    # patch("pkg.HttpClient"): the code under test caches HttpClient() -- a child of the
    # patched class mock -- and the child's link to its parent keeps the parent alive.
    @functools.cache
    def client_for(name: str) -> object:
        return module.HttpClient()

    module.client_for = client_for
    del client_for

    def run_test() -> weakref.ref[mock.MagicMock]:
        parent = mock.MagicMock(name="HttpClient")
        module.HttpClient = parent
        module.client_for("x")
        del module.HttpClient
        return weakref.ref(parent)

    ref = run_test()
    gc.collect()
    assert ref() is not None
    chain = labels(explain(ref(), skip_tracebacks=True))[0]
    assert chain[:2] == ["module pt_refs_fixture", "attribute client_for"], chain
    assert chain[2].startswith("lru_cache storage of") and chain[2].endswith("key 'x'")
    assert "_mock_new_parent" in chain[3] and "HttpClient()" in chain[3]


def test_thread_frame_locals() -> None:
    ready = threading.Event()
    release = threading.Event()
    ref: list[weakref.ref[Any]] = []

    def worker() -> None:
        held = used_mock()
        ref.append(weakref.ref(held))
        ready.set()
        release.wait(10)

    thread = threading.Thread(target=worker, name="holder-thread")
    thread.start()
    try:
        assert ready.wait(10)
        exp = explain(ref[0]())
        first = labels(exp)[0]
        assert first[0].startswith("frame locals 'held' of thread holder-thread in worker()")
        assert exp.chains[0].root_kind == "thread"
    finally:
        release.set()
        thread.join()


def test_bound_method(module: types.ModuleType) -> None:
    class Service:
        def run(self) -> None:
            pass

    module.callbacks = [Service().run]
    exp = explain(module.callbacks[0].__self__)
    assert labels(exp)[0] == [
        "module pt_refs_fixture",
        "attribute callbacks",
        "list index 0",
        "bound method __self__ of test_bound_method.<locals>.Service.run",
    ]


def test_class_attribute() -> None:
    class Config:
        pass

    Config.timeout = used_mock()  # type: ignore[attr-defined]
    exp = explain(Config.timeout)  # type: ignore[attr-defined]
    assert ["class test_class_attribute.<locals>.Config", any_text("class attribute timeout")] in [
        [c[0], c[1]] for c in labels(exp)
    ] or any("class attribute timeout" in " ".join(c) for c in labels(exp)), exp.text()


class any_text(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and str(self) in other

    def __hash__(self) -> int:
        return hash(str(self))


def test_unreachable_cycle_note() -> None:
    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    a.mock = used_mock()  # type: ignore[attr-defined]
    target = weakref.ref(a.mock)  # type: ignore[attr-defined]
    del a, b
    exp = explain(target())
    assert exp.chains == ()
    assert exp.note is not None
    assert "cycle awaiting collection" in exp.note
    gc.collect()


def test_only_reachable_through_last_traceback() -> None:
    def fail(arg: object) -> None:
        raise ValueError("boom")

    saved = {name: sys.__dict__.get(name) for name in ("last_traceback", "last_value", "last_exc")}
    holder = [used_mock()]
    target = weakref.ref(holder[0])
    try:
        try:
            fail(holder.pop())
        except ValueError as exc:
            sys.last_traceback = exc.__traceback__
            sys.last_value = exc
            if sys.version_info >= (3, 12):
                sys.last_exc = exc
        del holder
        assert target() is not None
        with_tb = explain(target())
        assert with_tb.chains, with_tb.text()
        assert with_tb.chains[0].root_kind == "traceback"
        assert with_tb.chains[0].labels()[0].startswith("sys.last_")
        skipped = explain(target(), skip_tracebacks=True)
        assert skipped.chains == ()
        assert skipped.note is not None and "skip_tracebacks" in skipped.note
    finally:
        for name, value in saved.items():
            if value is None:
                sys.__dict__.pop(name, None)
            else:
                setattr(sys, name, value)


class Spec:
    def method(self) -> int:
        return 1


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_spec_mock_and_raising_repr(module: types.ModuleType) -> None:
    module.spec_holder = {BadRepr(): mock.MagicMock(spec=Spec)}
    module.bad = [BadRepr()]
    assert next(iter(module.spec_holder.values())).__class__ is Spec  # the lie we must not believe
    exp = explain(next(iter(module.spec_holder.values())))
    assert exp.target_type == "MagicMock"
    chain = labels(exp)[0]
    assert chain[1] == "attribute spec_holder"
    assert chain[2].startswith("dict key <BadRepr object at")
    assert "repr raised RuntimeError" in chain[2]
    bad = explain(module.bad[0])
    assert "repr raised RuntimeError" in bad.target_repr
    assert labels(bad)[0] == ["module pt_refs_fixture", "attribute bad", "list index 0"]


def test_ignore_container_hides_it(module: types.ModuleType) -> None:
    ledger: list[object] = []
    module.ledger = ledger
    module.visible = {"m": None}
    ledger.append(used_mock())
    module.visible["m"] = ledger[0]
    before = labels(explain(ledger[0]))
    assert ["module pt_refs_fixture", "attribute ledger", "list index 0"] in before
    ignore_container(ledger)
    after = labels(explain(ledger[0]))
    assert all("attribute ledger" not in chain for chain in after)
    assert ["module pt_refs_fixture", "attribute visible", "dict key 'm'"] in after
    also = labels(explain(ledger[0], ignore=[module.visible]))
    assert all("attribute visible" not in chain for chain in also)


def test_explain_records_no_calls(module: types.ModuleType) -> None:
    module.fresh = mock.MagicMock()
    module.child = mock.Mock()
    module.child.configure.return_value = 1  # grows children before we start
    children_before = sorted(module.child._mock_children)
    explain(module.fresh)
    explain(module.child)
    why(module.fresh, file=io.StringIO())
    assert module.fresh.mock_calls == []
    assert module.fresh.method_calls == []
    assert sorted(module.child._mock_children) == children_before
    assert module.child.mock_calls == []


def test_child_of_mock_collapses_plumbing(module: types.ModuleType) -> None:
    module.client = used_mock()
    module.client.session.get("/x")
    exp = explain(module.client.session.get)
    chain = labels(exp)[0]
    assert chain[:2] == ["module pt_refs_fixture", "attribute client"]
    assert chain[2].startswith("child 'session' of mock <MagicMock")
    assert chain[3].startswith("child 'get' of mock <MagicMock name='mock.session'")
    assert len(chain) == 4
    for chain in labels(exp):
        text = " ".join(chain)
        assert "MagicProxy" not in text and "_mock_" not in text


def test_return_value_of_mock(module: types.ModuleType) -> None:
    module.factory = mock.MagicMock()
    module.factory.return_value = Holder("x")
    exp = explain(module.factory.return_value)
    assert labels(exp)[0][2].startswith("return_value of mock <MagicMock")


def test_why_prints_tree(module: types.ModuleType) -> None:
    module.thing = [used_mock()]
    out = io.StringIO()
    exp = why(module.thing[0], file=out)
    text = out.getvalue()
    assert "module pt_refs_fixture" in text
    assert "list index 0" in text
    assert exp.chains[0].labels()[-1] == "list index 0"


def test_explanation_holds_no_reference(module: types.ModuleType) -> None:
    module.thing = [used_mock()]
    target = weakref.ref(module.thing[0])
    exp = explain(module.thing[0])
    module.thing.clear()
    gc.collect()
    assert target() is None
    assert exp.chains


def test_import_does_not_pull_rich() -> None:
    code = "import sys, patchtrace.refs; print('rich' in sys.modules, 'objgraph' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]


def test_works_under_audit_hook() -> None:
    code = (
        "import sys, types, unittest.mock as m\n"
        "from patchtrace.refs import explain\n"
        "events = []\n"
        "sys.addaudithook(lambda e, a: events.append(e))\n"
        "mod = types.ModuleType('audited'); sys.modules['audited'] = mod\n"
        "mod.x = {'k': [m.MagicMock()]}\n"
        "mod.x['k'][0](1)\n"
        "del events[:]\n"
        "exp = explain(mod.x['k'][0])\n"
        "print(' | '.join(exp.chains[0].labels()))\n"
        "print(len(events))\n"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[0] == "module audited | attribute x | dict key 'k' | list index 0"
    assert int(lines[1]) < 5000  # proportional to what we visit, not to the heap


def test_max_chains_and_depth(module: types.ModuleType) -> None:
    module.a = used_mock()
    module.b = [module.a]
    module.c = {"k": module.a}
    exp = explain(module.a, max_chains=2)
    assert len(exp.chains) <= 2
    assert labels(exp)[0] == ["module pt_refs_fixture", "attribute a"]
    deep = Holder(Holder(Holder(Holder(used_mock()))))
    module.deep = deep
    del deep
    shallow = explain(module.deep.value.value.value.value, max_depth=2)
    assert shallow.chains == ()
    assert shallow.note is not None and "max_depth" in shallow.note


def test_sys_modules_entry() -> None:
    sys.modules["pt_refs_fake_module"] = used_mock()
    try:
        exp = explain(sys.modules["pt_refs_fake_module"])
        assert labels(exp)[0] == ["sys.modules['pt_refs_fake_module']"]
        assert exp.chains[0].root_kind == "sys.modules"
    finally:
        del sys.modules["pt_refs_fake_module"]


def test_generator_local(module: types.ModuleType) -> None:
    def gen() -> Iterator[int]:
        kept = used_mock()
        yield 1
        kept.done()

    module.running = gen()
    next(module.running)
    exp = explain(module.running.gi_frame.f_locals["kept"])
    chain = labels(exp)[0]
    assert chain[:2] == ["module pt_refs_fixture", "attribute running"]
    assert chain[2].startswith("generator locals 'kept' in gen()")
