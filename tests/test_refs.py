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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from patchtrace.refs import Chain, Explanation, Step, explain, explain_all, ignore_container, why

from .conftest import leaks_by_kind, load_report, package_suite


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


# -- explain_all: many objects, one search ----------------------------------------------------
def _fresh(values: list[weakref.ref[Any]]) -> list[Any]:
    return [ref() for ref in values]


def test_explain_all_same_answers_as_explain_in_order(module: types.ModuleType) -> None:
    @functools.cache
    def client_for(name: str) -> object:
        return module.HttpClient()

    module.HttpClient = mock.MagicMock(name="HttpClient")
    module.client_for = client_for
    del client_for
    module.client_for("a")  # the class mock is alive only through its cached child
    module.registry = {"handlers": [Holder(make_closure(used_mock(name="in_closure")))]}
    module.deep = Holder(Holder(Holder([used_mock(name="deep")])))
    module.shared = [used_mock(name="shared")]
    module.Registry = type("Registry", (), {"again": module.shared[0]})  # a second chain

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    a.mock = used_mock(name="cycle")  # type: ignore[attr-defined]
    refs = [
        weakref.ref(module.shared[0]),
        weakref.ref(module.HttpClient),
        weakref.ref(a.mock),  # type: ignore[attr-defined]
        weakref.ref(module.registry["handlers"][0].value.__closure__[0].cell_contents),
        weakref.ref(module.deep.value.value.value[0]),
        weakref.ref(module.deep.value),
    ]
    del a, b

    def answers(explanations: list[Any]) -> list[tuple[str, str, list[str]]]:
        """Each object's answer; the order of one object's chains can differ between a
        joint and a lone search on 3.12+ (heap order of shared fetches): sorted."""
        return [(e.target_type, e.target_repr, sorted(map(repr, e.chains)))
                for e in explanations]

    gc.disable()  # the cycle is garbage: no collection may free it between the searches
    try:
        together = explain_all(_fresh(refs))
        alone = [explain(ref()) for ref in refs]
        reversed_order = explain_all(_fresh(refs[::-1]))
    finally:
        gc.enable()
    assert answers(together) == answers(alone)
    assert ["module pt_refs_fixture", "attribute shared", "list index 0"] in labels(together[0])
    assert any("child of" in step or "HttpClient" in step or "lru_cache" in step
               for step in labels(together[1])[0])
    assert together[2].chains == () and together[2].note is not None  # no root: a cycle
    assert "cycle awaiting collection" in together[2].note
    assert labels(together[3])[0][-1] == "closure cell 'fn' of function make_closure.<locals>.inner"
    assert labels(together[4])[0][:2] == ["module pt_refs_fixture", "attribute deep"]
    assert labels(together[5])[0] == ["module pt_refs_fixture", "attribute deep",
                                      "attribute value of Holder object"]
    # and in the other order, the same answers reversed
    assert answers(reversed_order) == answers(alone)[::-1]
    assert explain_all([]) == []
    gc.collect()


def test_explain_all_the_list_passed_is_no_reason(module: types.ModuleType) -> None:
    kept = [used_mock(name="kept")]
    module.kept = kept[0]
    [exp] = explain_all(kept)
    assert labels(exp) == [["module pt_refs_fixture", "attribute kept"]]


class Link:
    __slots__ = ("handlers", "next")

    def __init__(self) -> None:
        self.next: Link | None = None
        self.handlers: list[object] = []


def test_explain_all_shares_heap_scans(module: types.ModuleType,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # A linked list of handlers growing one link per test, each a closure over its mock: the
    # survivors' chains are 6 to 35 references deep and share the list.
    links = [Link()]
    for _ in range(29):
        links.append(Link())
        links[-2].next = links[-1]
    module.head = links[0]
    refs = []
    for i, link in enumerate(links):
        handler = make_closure(used_mock(name=f"m{i}"))
        link.handlers.append(handler)
        refs.append(weakref.ref(handler.__closure__[0].cell_contents))
    del links, link, handler
    calls = [0]
    real = gc.get_referrers

    def counting(*objs: Any) -> list[Any]:
        calls[0] += 1
        return real(*objs)

    monkeypatch.setattr(gc, "get_referrers", counting)
    together = explain_all(_fresh(refs), max_chains=1)
    shared_scans = calls[0]
    calls[0] = 0
    alone = [explain(ref(), max_chains=1) for ref in refs]
    alone_scans = calls[0]
    assert together == alone
    depths = [len(e.chains[0]) for e in together]
    assert depths == [5 + i for i in range(30)]
    assert labels(together[2]) == [["module pt_refs_fixture", "attribute head",
                                    "attribute next of Link object",
                                    "attribute next of Link object",
                                    "attribute handlers of Link object", "list index 0",
                                    "closure cell 'fn' of function make_closure.<locals>.inner"]]
    # Bounded by the deepest chain (35 references, one scan per level, plus the extra
    # level), not by the sum of them (~600 scans one by one).
    assert shared_scans <= 37, shared_scans
    assert alone_scans > 10 * shared_scans


def test_explain_all_never_through_patchtrace(module: types.ModuleType) -> None:
    # A module of patchtrace's, one of its objects (class defined under patchtrace.*), and a
    # function of its code each hold a mock: none is a root or a step of a chain.
    own = types.ModuleType("patchtrace._pt_test_own")
    sys.modules[own.__name__] = own
    try:
        own_cls = type("Ledger", (), {"__module__": "patchtrace._pt_test_own"})
        import patchtrace

        where = patchtrace.__file__.rsplit("/", 1)[0] + "/_pt_test_own.py"
        space: dict[str, Any] = {}
        exec(compile("def make(v):\n    def hold():\n        return v\n    return hold\n",
                     where, "exec"), space)
        book = own_cls()
        book.records = [used_mock(name="by_object")]
        own.__dict__["TRACER"] = book
        own.__dict__["direct"] = {"k": used_mock(name="by_module")}
        own.__dict__["hook"] = space["make"](used_mock(name="by_function"))
        module.hooks = [own.__dict__["hook"]]  # a user module holds our function: still no
        refs = [weakref.ref(book.records[0]), weakref.ref(own.__dict__["direct"]["k"]),
                weakref.ref(own.__dict__["hook"].__closure__[0].cell_contents)]
        del book, space
        found = explain_all(_fresh(refs))
        for exp in found:
            assert exp.chains == (), exp.text()
            assert exp.note is not None and "patchtrace's own bookkeeping" in exp.note
        # the control twin: a user module also holds each, and the chain starts there
        module.kept = [ref() for ref in refs]
        again = explain_all(_fresh(refs))
        for i, exp in enumerate(again):
            assert labels(exp)[0] == ["module pt_refs_fixture", "attribute kept",
                                      f"list index {i}"]
            for chain in labels(exp):
                assert not any("patchtrace" in step or "Ledger" in step for step in chain)
    finally:
        sys.modules.pop(own.__name__, None)
        own.__dict__.clear()


def test_explain_all_skip_runner(module: types.ModuleType) -> None:
    import warnings

    import pluggy

    # A warning recorded with the mock as its source, pluggy's call history of a historic
    # hook, and a captured exception whose argument is the mock: the runner's records.
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        warnings.warn("recorded", UserWarning, stacklevel=1, source=used_mock(name="warned"))
    hookspec = pluggy.HookspecMarker("pt_refs")

    class Spec:
        @hookspec(historic=True)
        def pt_refs_event(self, value: object) -> None: ...

    manager = pluggy.PluginManager("pt_refs")
    manager.add_hookspecs(Spec)
    manager.hook.pt_refs_event.call_historic(kwargs={"value": used_mock(name="history")})
    with pytest.raises(ValueError) as info:
        raise ValueError(used_mock(name="raised"))
    module.log, module.manager, module.info = log, manager, info
    refs = [weakref.ref(log[0].source), weakref.ref(
        manager.hook.pt_refs_event._call_history[0][0]["value"]),
        weakref.ref(info.value.args[0])]
    del log, manager, info
    seen = explain_all(_fresh(refs))
    assert all(exp.chains for exp in seen), [e.text() for e in seen]
    assert "WarningMessage" in " ".join(labels(seen[0])[0])
    skipped = explain_all(_fresh(refs), skip_runner=True)
    for exp in skipped:
        assert exp.chains == (), exp.text()
        assert exp.note is not None and "skip_runner" in exp.note
    # control twin: also held by a user module, so still explained, not through the records
    module.kept = {"m": [ref() for ref in refs]}
    for i, exp in enumerate(explain_all(_fresh(refs), skip_runner=True)):
        assert labels(exp) == [["module pt_refs_fixture", "attribute kept", "dict key 'm'",
                                f"list index {i}"]]
    module.__dict__.clear()
    sys.modules.pop("pt_refs_fixture", None)


def test_lru_cache_key_without_functools_marker(module: types.ModuleType) -> None:
    @functools.cache
    def client(name: str, retries: int = 0) -> mock.MagicMock:
        return used_mock(name=name)

    module.client = client
    del client
    target = weakref.ref(module.client("api", retries=3))
    chain = labels(explain(target()))[0]
    assert chain[2] == "lru_cache storage of test_lru_cache_key_without_functools_marker." \
        "<locals>.client, key ('api', retries=3)"
    assert not any("object object at" in step for step in chain)


# -- in a traced run: what keeps a survivor alive -------------------------------------------
SURVIVORS_PKG = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "KEEP = []\nHANDLERS = []\n",
}


def _survivors(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Test name -> its surviving mock (the one of the type named in the test)."""
    found: dict[str, dict[str, Any]] = {}
    for leak in leaks_by_kind(report).get("mock-survived", []):
        name = leak["polluter"].split("::")[-1]
        if name not in found or leak["value"]["type"] in ("AsyncMock", "MagicMock"):
            found[name] = leak  # an AsyncMock's __code__ mock is a survivor of its own too
    return found


def test_survivor_held_only_by_the_runners_records_is_not_reported(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    package_suite(pytester, SURVIVORS_PKG)
    pytester.makepyfile(test_records="""
        import gc, warnings
        from unittest import mock
        import pkg.mod

        def test_unawaited():
            mock.AsyncMock(name="unawaited")()  # 'coroutine ... was never awaited'

        def test_unawaited_kept():
            m = mock.AsyncMock(name="unawaited_kept")
            m()
            pkg.mod.KEEP.append(m)

        def test_warned():
            warnings.warn("recorded by pytest", UserWarning, source=mock.MagicMock(name="w"))

        def test_warned_kept():
            m = mock.MagicMock(name="warned_kept")
            warnings.warn("recorded by pytest", UserWarning, source=m)
            pkg.mod.KEEP.append(m)

        def test_later():
            gc.collect()

        def test_later_still():
            gc.collect()
    """)
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*was never awaited*"])
    report = load_report(report_path)
    survived = _survivors(report)
    assert set(survived) == {"test_unawaited_kept", "test_warned_kept"}, report["leaks"]
    assert survived["test_unawaited_kept"]["alive_via"] == [
        "module pkg.mod", "attribute KEEP", "list index 0"]
    assert survived["test_warned_kept"]["alive_via"] == [
        "module pkg.mod", "attribute KEEP", "list index 1"]
    text = json.dumps(report)
    for word in ("WarningMessage", "HookCaller", "_call_history", "ihook"):
        assert word not in text


def test_alive_via_never_passes_through_patchtrace(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # A handler left installed is compared at every boundary: patchtrace's snapshot of the
    # signal table holds it (and so the mock its closure holds) -- that is no reason, and
    # the C signal table itself is invisible to the garbage collector.
    report_path = traced_env()
    package_suite(pytester, SURVIVORS_PKG)
    pytester.makepyfile(test_handlers="""
        import gc, signal
        from unittest import mock
        import pkg.mod

        def test_handler():
            m = mock.MagicMock(name="handler")
            signal.signal(signal.SIGUSR1, lambda *a: m(*a))

        def test_handler_kept():
            m = mock.MagicMock(name="handler_kept")
            handler = lambda *a: m(*a)
            signal.signal(signal.SIGUSR2, handler)
            pkg.mod.HANDLERS.append(handler)

        def test_later():
            gc.collect()

        def test_later_still():
            gc.collect()
    """)
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=4)
    report = load_report(report_path)
    survived = _survivors(report)
    assert set(survived) == {"test_handler_kept"}, report["leaks"]
    chain = survived["test_handler_kept"]["alive_via"]
    assert chain[:3] == ["module pkg.mod", "attribute HANDLERS", "list index 0"], chain
    assert chain[3].startswith("closure cell 'm' of function test_handler_kept.<locals>.")
    assert {leak["name"] for leak in leaks_by_kind(report)["resource-changed"]} == {
        "SIGUSR1", "SIGUSR2"}
    for leak in report["leaks"]:
        for step in leak["alive_via"] or ():
            for word in ("patchtrace", "_TRACER", "_snapshot", "Snapshot", "Detector",
                         "Tracer"):
                assert word not in step, leak
