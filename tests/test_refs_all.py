"""explain_all's two ways to get referrers: one gc.get_referrers per level over the union of
every search's frontier, or one reverse-reference index of the heap built in one pass.

Both must give the same chains, and the automatic choice must pick the index for wide,
disjoint searches and levels for a narrow one.  Chains are compared on one heap state: naming
a chain can give (3.11+) the instances on it a ``__dict__`` of their own, which lengthens the
next search's chains, so every comparison runs a first search before the ones it compares.

As in test_refs.py, the objects under study are never locals of the test while searched.
"""

from __future__ import annotations

import functools
import gc
import subprocess
import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

from patchtrace.refs import Explanation, _index, explain, explain_all
from patchtrace.refs._index import HeapIndex

STRATEGIES = ("levels", "index", "auto")


@pytest.fixture
def module() -> Iterator[types.ModuleType]:
    name = "pt_refs_all_fixture"
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    try:
        yield mod
    finally:
        sys.modules.pop(name, None)
        mod.__dict__.clear()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times gc.get_referrers is called (the per-level search's heap scans)."""
    calls = [0]
    real = gc.get_referrers

    def counting(*objs: Any) -> list[Any]:
        calls[0] += 1
        # ``objs`` is a tuple of this wrapper's (3.13 builds a new one for the call): it
        # refers to every object asked about, and would be a referrer the search goes on from.
        return [ref for ref in real(*objs) if ref is not objs]

    monkeypatch.setattr(gc, "get_referrers", counting)
    return calls


def used_mock(name: str) -> mock.MagicMock:
    m = mock.MagicMock(name=name)
    m(1, x=2)
    m.attr.child(3)
    len(m)
    return m


class Holder:
    def __init__(self, value: object) -> None:
        self.value = value


class Link:
    __slots__ = ("handlers", "next")

    def __init__(self) -> None:
        self.next: Link | None = None
        self.handlers: list[object] = []


def make_closure(value: object) -> Any:
    def inner() -> object:
        return value

    return inner


def chain_of(depth: int, leaf: object) -> object:
    """``depth`` edges of mixed kinds above ``leaf``: dict, list, instance, tuple, closure."""
    obj = leaf
    for i in range(depth):
        kind = i % 4
        if kind == 0:
            obj = {"key": obj}
        elif kind == 1:
            obj = [None, obj]
        elif kind == 2:
            obj = Holder(obj)
        else:
            obj = (obj,)
    return obj


def answers(explanations: list[Explanation]) -> list[tuple[str, str, list[str], str | None]]:
    """Each object's answer, its chains as a sorted list (the order of equally short chains
    follows heap order, which is the same for both paths but worth no assertion)."""
    return [(e.target_type, e.target_repr, sorted(map(repr, e.chains)), e.note)
            for e in explanations]


def _fresh(refs: list[weakref.ref[Any]]) -> list[Any]:
    return [ref() for ref in refs]


def _mixed_heap(module: types.ModuleType) -> list[weakref.ref[Any]]:
    """Survivors of every shape a search meets: disjoint chains of 3 to 30 edges, a shared
    linked list of handlers, a mock alive only through its cached child, a cycle with no root,
    an object held only by patchtrace's own module, one held by a live frame's local."""
    refs: list[weakref.ref[Any]] = []
    for i in range(12):  # disjoint
        target = used_mock(f"apart{i}")
        setattr(module, f"apart{i}", chain_of(3 + 3 * i, target))
        refs.append(weakref.ref(target))
    links = [Link()]
    for _ in range(14):
        links.append(Link())
        links[-2].next = links[-1]
    module.head = links[0]
    for i, link in enumerate(links):  # shared
        handler = make_closure(used_mock(f"shared{i}"))
        link.handlers.append(handler)
        refs.append(weakref.ref(handler.__closure__[0].cell_contents))
    del links, link, handler

    @functools.cache
    def client_for(name: str) -> object:
        return module.HttpClient()

    module.HttpClient = mock.MagicMock(name="HttpClient")
    module.client_for = client_for
    module.client_for("a")  # the class mock is alive only through its cached child
    refs.append(weakref.ref(module.HttpClient))
    del module.HttpClient

    a, b = Holder(None), Holder(None)
    a.value, b.value = b, [a, used_mock("cycle")]
    refs.append(weakref.ref(b.value[1]))
    del a, b

    own = types.ModuleType("patchtrace._pt_test_all_own")
    sys.modules[own.__name__] = own
    own.__dict__["records"] = [used_mock("ours")]
    refs.append(weakref.ref(own.__dict__["records"][0]))
    return refs


def _drop_own() -> None:
    own = sys.modules.pop("patchtrace._pt_test_all_own", None)
    if own is not None:
        own.__dict__.clear()


def test_levels_and_index_give_the_same_chains(module: types.ModuleType,
                                               counted: list[int]) -> None:
    max_chains = 3
    gc.disable()  # the cycle is garbage: no collection may free it before the last search
    try:
        refs = _mixed_heap(module)
        explain_all(_fresh(refs), max_chains=max_chains)  # the heap state all compare on
        found = {strategy: explain_all(_fresh(refs), max_chains=max_chains, strategy=strategy)
                 for strategy in STRATEGIES}
        counted[0] = 0
        index_again = explain_all(_fresh(refs), max_chains=max_chains, strategy="index")
        index_calls = counted[0]
        some = (11, 20, 27, 29)  # one of each shape (each search alone costs)
        alone = [explain(refs[i](), max_chains=max_chains) for i in some]
        alone_indexed = [explain(refs[i](), max_chains=max_chains, strategy="index")
                         for i in some]
    finally:
        gc.enable()
        _drop_own()
    assert answers(found["index"]) == answers(found["levels"])
    assert answers(found["auto"]) == answers(found["levels"])
    assert answers(index_again) == answers(found["levels"])
    assert answers(alone) == [answers(found["levels"])[i] for i in some]
    assert answers(alone_indexed) == answers(alone)
    levels = found["levels"]
    # what the answers are, so that "the same" cannot mean "both empty"
    for i in range(12):
        assert levels[i].chains, levels[i].text()
        assert levels[i].chains[0].labels()[:2] == [f"module {module.__name__}",
                                                    f"attribute apart{i}"]
        assert len(levels[i].chains[0]) == 5 + 3 * i
    for i in range(15):
        assert len(levels[12 + i].chains[0]) == 5 + i
    assert any("child of" in step or "lru_cache" in step
               for step in levels[27].chains[0].labels())
    assert levels[28].chains == () and "cycle awaiting collection" in str(levels[28].note)
    assert levels[29].chains == () and "patchtrace's own bookkeeping" in str(levels[29].note)
    for exp in levels:
        for chain in exp.chains:
            assert not any("patchtrace" in step for step in chain.labels()), exp.text()
    # the index answered every level: no heap scan of gc.get_referrers at all
    assert index_calls == 0


def test_index_answers_what_get_referrers_answers(module: types.ModuleType) -> None:
    module.shared = shared = [1, 2]
    module.holders = [Holder(shared) for _ in range(5)]
    module.pair = ({"a": shared}, [shared, shared])  # one referrer holding it twice
    lonely: dict[str, int] = {}
    keep: list[object] = []
    gc.disable()
    try:
        index = HeapIndex.build(keep.append)
        assert index is not None
        known = {id(obj) for obj in index.objects}
        for node in (shared, module.holders[2], module.holders, lonely, module.__dict__):
            expected = [id(r) for r in gc.get_referrers(node) if id(r) in known]
            assert [id(r) for r in index.referrers([node])] == expected
        assert index.referrers([lonely]) == []  # only this frame holds it: untracked by gc
        both = [shared, module.holders]
        expected = [id(r) for r in gc.get_referrers(*both) if id(r) in known]
        assert [id(r) for r in index.referrers(both)] == expected
        holding = index.referrers([shared])
        for holder in module.pair:  # the list holds it twice: listed once
            assert sum(ref is holder for ref in holding) == 1
        index.clear()
    finally:
        gc.enable()
        keep.clear()


def test_index_not_built_past_its_memory_budget(module: types.ModuleType,
                                                monkeypatch: pytest.MonkeyPatch,
                                                counted: list[int]) -> None:
    owned: list[Any] = []
    assert HeapIndex.build(owned.append, max_bytes=1000) is None
    # what it took and gave up holds nothing: no list of the whole heap left behind, to be
    # a referrer of every node the search goes on to ask about
    assert all(len(obj) == 0 for obj in owned if type(obj) is list)
    owned.clear()
    assert _index.estimate_bytes(1_000_000, 1_600_000) < _index.MAX_BYTES
    refs = []
    for i in range(3):
        target = used_mock(f"budget{i}")
        setattr(module, f"m{i}", chain_of(6, target))
        refs.append(weakref.ref(target))
    del target
    explain_all(_fresh(refs))
    counted[0] = 0
    indexed = explain_all(_fresh(refs), strategy="index")
    assert counted[0] == 0  # control: within budget, the index answers
    monkeypatch.setattr(_index, "MAX_BYTES", 1000)
    over = explain_all(_fresh(refs), strategy="index")
    assert counted[0] >= 6  # over budget: level by level, the same chains
    assert answers(over) == answers(indexed)
    assert [len(e.chains[0]) for e in over] == [8, 8, 8]


def test_auto_picks_the_index_for_wide_disjoint_searches(module: types.ModuleType,
                                                         counted: list[int]) -> None:
    refs = []
    for i in range(100):
        target = used_mock(f"wide{i}")
        setattr(module, f"m{i}", chain_of(10 + i % 20, target))
        refs.append(weakref.ref(target))
    del target
    counted[0] = 0
    wide = explain_all(_fresh(refs))
    assert counted[0] == 0  # the index from the first level on
    assert [len(e.chains[0]) for e in wide] == [12 + i % 20 for i in range(100)]


def test_auto_stays_with_levels_for_one_deep_chain(module: types.ModuleType,
                                                   counted: list[int]) -> None:
    links = [Link()]
    for _ in range(40):
        links.append(Link())
        links[-2].next = links[-1]
    module.head = links[0]
    links[-1].handlers.append(used_mock("deep"))
    ref = weakref.ref(links[-1].handlers[0])
    del links
    counted[0] = 0
    [deep] = explain_all([ref()])
    assert 40 <= counted[0] <= 45  # one scan per level: the index would cost more
    assert len(deep.chains[0]) == 44


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_untracked_target(module: types.ModuleType, strategy: str) -> None:
    # A tuple of atoms is untracked after a collection: the index leaves such referents
    # out, so a search for one asks gc.get_referrers for its first level.
    module.box = [tuple([1, "two"])]
    gc.collect()
    assert not gc.is_tracked(module.box[0])
    exp = explain(module.box[0], strategy=strategy)  # type: ignore[arg-type]
    assert exp.chains[0].labels() == [f"module {module.__name__}", "attribute box",
                                      "list index 0"]


@pytest.mark.parametrize("strategy", ["levels", "index"])
def test_neither_path_goes_through_the_runners_records(module: types.ModuleType,
                                                       strategy: str) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        warnings.warn("recorded", UserWarning, stacklevel=1, source=used_mock("warned"))
    with pytest.raises(ValueError) as info:
        raise ValueError(used_mock("raised"))
    module.log, module.info = log, info
    refs = [weakref.ref(log[0].source), weakref.ref(info.value.args[0])]
    del log, info
    seen = explain_all(_fresh(refs), strategy=strategy)  # type: ignore[arg-type]
    assert all(exp.chains for exp in seen)  # control: without skip_runner, they count
    for exp in explain_all(_fresh(refs), skip_runner=True,
                           strategy=strategy):  # type: ignore[arg-type]
        assert exp.chains == (), exp.text()
        assert "skip_runner" in str(exp.note)


def test_index_under_an_audit_hook_raises_few_events() -> None:
    # The index is built with one gc.get_objects and one gc.get_referents call, never one
    # call per object: with an audit hook installed, per-object calls would raise a million
    # events on a heap of a million objects.
    code = (
        "import sys, types, unittest.mock as m\n"
        "from patchtrace.refs import explain_all\n"
        "filler = [[i] for i in range(200_000)]\n"
        "mod = types.ModuleType('audited'); sys.modules['audited'] = mod\n"
        "targets = []\n"
        "for i in range(50):\n"
        "    t = m.MagicMock(); t(1); targets.append(t)\n"
        "    setattr(mod, f'x{i}', {'k': [t]})\n"
        "events = []\n"
        "sys.addaudithook(lambda e, a: events.append(e))\n"
        "found = explain_all(targets, strategy='index')\n"
        "print(' | '.join(found[7].chains[0].labels()))\n"
        "print(len(events), *(events.count('gc.' + name) for name in\n"
        "      ('get_objects', 'get_referents', 'get_referrers')))\n"
    )
    lines = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[0] == "module audited | attribute x7 | dict key 'k' | list index 0"
    events, objects, referents, referrers = map(int, lines[1].split())
    assert (objects, referrers) == (1, 0)
    # gc.get_referents: once for the index, then once per step of the 50 chains named
    assert referents < 1000
    # id() of what the search visits (a used mock has dozens of referrers), not of the heap
    assert events < 50_000


@pytest.mark.parametrize("strategy", ["levels", "index"])
def test_nothing_explained_stays_alive_after_the_call(module: types.ModuleType,
                                                      strategy: str) -> None:
    # With the collector off, an object whose last reference goes is freed at once, unless
    # something of ours still holds it: a frame of the search left in a reference cycle
    # once it returned (Roots.snapshot's own frame did, holding every frame below it).
    # (A used mock is a cycle of its own, with its children: a plain object here.)
    module.kept = {"m": [Holder("freed")]}
    module.control = {"m": [Holder("still held")]}
    freed = weakref.ref(module.kept["m"][0])
    held = weakref.ref(module.control["m"][0])
    gc.disable()
    try:
        found = explain_all([freed(), held()], strategy=strategy)  # type: ignore[arg-type]
        assert [len(exp.chains[0]) for exp in found] == [4, 4]
        del module.kept
        assert freed() is None
        assert held() is not None  # control: a reference of the user's still counts
    finally:
        gc.enable()
