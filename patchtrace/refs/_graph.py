"""Backward breadth-first search from an object to the roots that keep it alive.

Cost model (CPython): ``gc.get_referrers(*objs)`` walks every tracked object once, in C, and
compares each referent against every object in ``objs``.  One call per BFS level therefore costs
one heap walk, and a used MagicMock's ~80 plumbing referrers (``MagicProxy``, children's back
links) are dropped *before* they can widen the frontier.  Python-level ``id()`` and gc calls are
proportional to the nodes visited, never to the heap: with an audit hook installed they are the
only thing that raises events, a few hundred per search.

Everything here holds user objects only in locals; nothing survives the call.
"""

from __future__ import annotations

import gc
import itertools
import operator
import os
import sys
import types
from typing import TYPE_CHECKING, Any, Final, Literal, final

from patchtrace.values import is_mock, mock_classes

from ._index import HeapIndex
from ._safe import mro, raw_dict, thread_name

#: How a search gets referrers: see ``Fetcher.plan``. A plain ``str`` at run time: this
#: module is imported late, in a process the suite may have polluted, and building a
#: Literal calls sys._getframe on 3.10 with typing_extensions installed.
if TYPE_CHECKING:
    Strategy = Literal["auto", "levels", "index"]
else:
    Strategy = str

__all__ = [
    "Fetcher", "Roots", "Search", "Strategy", "ignore_container", "ignored_ids", "search",
    "search_all",
]

_PACKAGE_DIR: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: A mock's links *up* to its parent: never the reason the parent is alive.
BACKLINK_KEYS: Final = frozenset({"_mock_parent", "_mock_new_parent"})
_LAST_NAMES: Final = ("last_traceback", "last_value", "last_exc", "last_type")

# id -> object, for patchtrace's own long-lived containers.  The strong reference keeps the id
# from being reused by a user object; these containers live as long as the process anyway.
_IGNORED: dict[int, object] = {}


def ignore_container(obj: object) -> None:
    """Hide one of patchtrace's own containers (ledger lists, dicts) from every search."""
    _IGNORED[id(obj)] = obj


def ignored_ids() -> set[int]:
    ids = set(_IGNORED)
    ids.add(id(_IGNORED))
    return ids


def is_own_code(code: types.CodeType) -> bool:
    return code.co_filename.startswith(_PACKAGE_DIR)


@final
class Roots:
    """A snapshot of the root set, keyed by ``id()``; holds strong refs only while searching."""

    __slots__ = (
        "caller_frame",
        "frames",
        "keep",
        "labels",
        "last_ids",
        "local_refs",
        "own_frames",
        "own_ids",
        "sys_dict",
    )

    def __init__(self) -> None:
        #: id -> (root_kind, label) for module dicts, sys.modules, gc.garbage.
        self.labels: dict[int, tuple[str, str]] = {}
        #: id -> thread name, for every frame on a live thread stack (not ours).
        self.frames: dict[int, str] = {}
        self.own_frames: set[int] = set()
        #: ids of patchtrace's own modules and their namespaces: never a root, never a node.
        self.own_ids: set[int] = set()
        self.caller_frame = 0
        self.keep: list[object] = []
        self.sys_dict: dict[str, Any] | None = None
        self.last_ids: set[int] = set()
        #: id(value) -> [(frame, local name)] for the named locals of live thread frames.
        #: On 3.11+ a running frame's locals are invisible to gc.get_referrers (the frame
        #: object does not traverse a frame its thread owns), so they are read explicitly.
        self.local_refs: dict[int, list[tuple[types.FrameType, str]]] = {}

    @classmethod
    def snapshot(cls) -> Roots:
        roots = cls()
        labels = roots.labels
        keep = roots.keep
        modules = sys.modules
        for name, module in list(modules.items()):
            if not issubclass(type(module), types.ModuleType):
                continue
            try:
                namespace = object.__getattribute__(module, "__dict__")
            except Exception:
                continue
            if id(namespace) in labels or id(namespace) in roots.own_ids:
                continue
            keep.append(namespace)
            if type(name) is str and (name == "patchtrace" or name.startswith("patchtrace.")):
                roots.own_ids.update((id(namespace), id(module)))
                keep.append(module)
                continue
            kind = "builtins" if name == "builtins" else "module"
            labels[id(namespace)] = (kind, f"module {name}")
            labels[id(module)] = (kind, f"module {name}")
            keep.append(module)
        labels[id(modules)] = ("sys.modules", "sys.modules")
        labels[id(gc.garbage)] = ("gc.garbage", "gc.garbage")
        roots.sys_dict = sys.__dict__
        for name in _LAST_NAMES:
            value = sys.__dict__.get(name)
            if value is not None:
                keep.append(value)
                roots.last_ids.add(id(value))
        current = sys._current_frames()
        top: types.FrameType | None = None
        for ident, top in current.items():
            tname = thread_name(ident)
            frame: types.FrameType | None = top
            caller_pending = frame is not None and ident == _get_ident()
            while frame is not None:
                keep.append(frame)
                if is_own_code(frame.f_code):
                    roots.own_frames.add(id(frame))
                else:
                    roots.frames[id(frame)] = tname
                    roots.read_locals(frame)
                    if caller_pending:
                        roots.caller_frame = id(frame)
                        caller_pending = False
                frame = frame.f_back
        # ``top`` is this very frame for the calling thread: left bound, it would make the
        # frame a cycle of its own once it returns, and keep every frame below it (the
        # caller's, with the objects being explained) alive until the next collection.
        current.clear()
        del current
        top = frame = None
        return roots

    def read_locals(self, frame: types.FrameType) -> None:
        try:
            items = list(frame.f_locals.items())
        except Exception:
            return
        local_refs = self.local_refs
        for name, value in items:
            if type(name) is str:
                local_refs.setdefault(id(value), []).append((frame, name))
        self.keep.append([value for _name, value in items])  # values only: no (name, value) tuple


def _get_ident() -> int:
    import threading

    return threading.get_ident()


@final
class Search:
    """Result of one object's search; holds the visited objects until the caller drops it."""

    __slots__ = (
        "blocked_own",
        "blocked_runner",
        "blocked_traceback",
        "exhausted",
        "first_hit_depth",
        "frontier",
        "hits",
        "ignore",
        "levels",
        "referrer_count",
        "running",
        "seen",
    )

    def __init__(self) -> None:
        #: levels[d] maps id -> object for the nodes first seen at distance d from the target.
        self.levels: list[dict[int, object]] = []
        #: (distance, root, first node below the root if already known), nearest first.
        self.hits: list[tuple[int, object, object]] = []
        self.blocked_traceback = False
        #: Something only the test runner's records hold (skip_runner) was on the way.
        self.blocked_runner = False
        #: patchtrace's own bookkeeping was on the way (never a reason).
        self.blocked_own = False
        self.exhausted = False
        self.referrer_count = 0
        # Working state, cleared when the search ends.
        self.seen: set[int] = set()
        self.ignore: set[int] = set()
        self.frontier: list[object] = []
        self.first_hit_depth = -1
        self.running = True

    def clear(self) -> None:
        self.levels.clear()
        self.hits.clear()
        self.frontier.clear()
        self.seen.clear()
        self.ignore.clear()


@final
class Fetcher:
    """Referrers of frontier nodes, one heap scan per round for every search that needs one.

    ``gc.get_referrers(*nodes)`` costs one heap walk plus one pointer comparison per referent
    and node (at 1M objects: ~1 scan for one node, ~8 for 100), so each node is fetched once:
    its referrers are kept (in heap order, ranked within the round that fetched them) and a
    later search reaching the same node is served without a scan.  A search whose frontier
    was fetched in several rounds has it fetched again, together, so the order it sees is
    the heap order a search of its own would have seen (same chains, ties broken alike).
    """

    __slots__ = (
        "cache", "ignore", "index", "index_built", "index_round", "keepalive", "ranks",
        "rounds", "scans", "strategy",
    )

    def __init__(self, ignore: set[int], strategy: Strategy = "auto") -> None:
        #: id(node) -> (round, referrers of node in heap order)
        self.cache: dict[int, tuple[int, list[object]]] = {}
        #: round -> {id(referrer): position in that round's heap-ordered result}
        self.ranks: dict[int, dict[int, int]] = {}
        self.rounds = 0
        self.scans = 0
        #: Our own temporaries: every search ignores them.  Each one whose id() is here stays
        #: alive until the fetcher is cleared, so no user object can take over its address.
        self.ignore = ignore
        self.keepalive: list[object] = []
        ignore.update((id(self.cache), id(self.ranks), id(self.keepalive)))
        #: "levels": one gc.get_referrers per level; "index": one HeapIndex for the whole
        #: search; "auto": levels until the cost model says the index is cheaper.
        self.strategy: Strategy = strategy
        self.index: HeapIndex | None = None
        #: The index was tried (built, or found too big for MAX_BYTES): never again.
        self.index_built = False
        self.index_round = -1

    def own(self, obj: object) -> None:
        self.ignore.add(id(obj))
        self.keepalive.append(obj)

    def servable(self, frontier: list[object]) -> bool:
        """All of ``frontier`` is cached from one round."""
        cache = self.cache
        first = -1
        for node in frontier:
            entry = cache.get(id(node))
            if entry is None:
                return False
            if first < 0:
                first = entry[0]
            elif entry[0] != first:
                return False
        return True

    def plan(self, nodes: int, searches: int, depth: int, max_depth: int) -> None:
        """Before a level's fetch of ``nodes`` objects for ``searches`` running searches:
        build the index instead if it is expected to cost less than going on level by level.

        The cost model, in heap scans: a level's fetch costs ``level_cost(nodes)``.  The
        searches are expected to need as many more levels as they have done already, at
        least ``MIN_LEVELS`` (a search that has gone d levels without ending is as likely as
        not to need d more), never more than ``max_depth`` allows, and each running search
        to keep at least one node in every later level: a width that comes from many
        survivors lasts, a width that comes from one object with many referrers (a burst)
        is counted once.  The index costs ``INDEX_SCANS`` once.  So 100 survivors on
        disjoint chains switch at the first level, one chain never does however deep, and
        one burst of 1,000 referrers only when the levels after it would add up too."""
        if self.index_built or self.strategy == "levels":
            return
        if self.strategy == "auto":
            remaining = min(max_depth - depth + 1, max(depth, MIN_LEVELS))
            lasting = level_cost(min(nodes, searches))
            if level_cost(nodes) + (remaining - 1) * lasting <= INDEX_SCANS:
                return
        self.index_built = True
        index = HeapIndex.build(self.own)
        if index is not None:
            self.index = index
            self.index_round = self.rounds
            self.rounds += 1
            self.ranks[self.index_round] = index.rank

    def fetch(self, nodes: dict[int, object]) -> None:
        """One heap scan for the referrers of every node in ``nodes`` (id -> node), or
        none when the index can answer."""
        batch = list(nodes.values())
        self.own(batch)
        index = self.index
        if index is not None and all(map(gc.is_tracked, batch)):
            self._fetch_indexed(index, nodes)
            return
        referrers: list[Any]
        if len(batch) > BULK_THRESHOLD:
            referrers = _referrers_bulk(batch)
        else:
            # Our own argument tuple: 3.13's argument clinic copies it, and only skips the copy.
            batch_tuple = tuple(batch)
            self.own(batch_tuple)
            referrers = gc.get_referrers(*batch_tuple)
            del batch_tuple
        self.own(referrers)
        self.scans += 1
        ignore = self.ignore
        rank: dict[int, int] = {}
        self.own(rank)
        lists: dict[int, list[object]] = {}
        self.own(lists)
        for nid in nodes:
            found: list[object] = []
            self.own(found)
            lists[nid] = found
        single = next(iter(lists.values())) if len(lists) == 1 else None
        ref: Any = None
        for position, ref in enumerate(referrers):
            rid = id(ref)
            if rid in ignore:
                continue
            rank[rid] = position
            if single is not None:
                single.append(ref)
                continue
            # Which of the nodes does it refer to (often one; a container may hold several).
            for inner in gc.get_referents(ref):
                found_list = lists.get(id(inner))
                if found_list is not None and (not found_list or found_list[-1] is not ref):
                    found_list.append(ref)
        del referrers, ref
        round_no = self.rounds
        self.rounds += 1
        self.ranks[round_no] = rank
        for nid, found in lists.items():
            self.cache[nid] = (round_no, found)

    def _fetch_indexed(self, index: HeapIndex, nodes: dict[int, object]) -> None:
        """``fetch`` answered by the index: every node's referrers, in heap order, under one
        round for the whole index (its ranks are places in one heap walk)."""
        ignore = self.ignore
        objects = index.objects
        rank = index.rank
        round_no = self.index_round
        for nid, node in nodes.items():
            found: list[object] = []
            self.own(found)
            for place in index.referrers_of(node):
                ref = objects[place]
                rid = id(ref)
                if rid in ignore:
                    continue
                rank[rid] = place
                found.append(ref)
            self.cache[nid] = (round_no, found)
        del node

    def referrers(self, frontier: list[object]) -> list[object]:
        """Referrers of a servable frontier, in heap order (what get_referrers would give)."""
        cache = self.cache
        if len(frontier) == 1:
            return cache[id(frontier[0])][1]
        round_no = cache[id(frontier[0])][0]
        merged: dict[int, object] = {}
        for node in frontier:
            for ref in cache[id(node)][1]:
                merged[id(ref)] = ref
        rank = self.ranks[round_no]
        out = [merged[rid] for rid in sorted(merged, key=rank.__getitem__)]
        merged.clear()
        return out

    def forget(self) -> None:
        """Drop what is cached (keeping our temporaries ignored and alive).  The index goes
        too: naming chains may have given instances a ``__dict__`` of their own since."""
        self.cache.clear()
        self.ranks.clear()
        if self.index is not None:
            self.index.clear()
            self.index = None
            self.index_built = False

    def clear(self) -> None:
        self.forget()
        if self.index is not None:
            self.index.clear()
            self.index = None
        self.keepalive.clear()


def search(
    target: object,
    roots: Roots,
    *,
    ignore: set[int],
    max_depth: int,
    max_chains: int,
    skip_tracebacks: bool,
    skip_runner: bool = False,
    extra_levels: int = 1,
    backlinks: bool = False,
) -> Search:
    """One object's search (``search_all`` of one target)."""
    fetcher = Fetcher(set(ignore))
    try:
        return search_all(
            [target], roots, fetcher=fetcher, max_depth=max_depth, max_chains=max_chains,
            skip_tracebacks=skip_tracebacks, skip_runner=skip_runner,
            extra_levels=extra_levels, backlinks=backlinks,
        )[0]
    finally:
        fetcher.clear()


def search_all(
    targets: list[object],
    roots: Roots,
    *,
    fetcher: Fetcher,
    max_depth: int,
    max_chains: int,
    skip_tracebacks: bool,
    skip_runner: bool = False,
    extra_levels: int = 1,
    backlinks: bool = False,
) -> list[Search]:
    """One backward breadth-first search per target, run level by level side by side: each
    level fetches the referrers of every search's new frontier nodes in one heap scan
    (``Fetcher``), so the scans are bounded by the deepest search, not by their sum.

    ``backlinks``: also follow a child mock's link up to its parent (off by default: a
    parent's children point back at it by the dozen, and are alive because of it)."""
    fetcher.own(targets)
    fetcher.own(roots.keep)
    for kept in roots.keep:
        if type(kept) is list:
            fetcher.own(kept)  # the values of frame locals, kept alive while we search
    judge = _Judge(roots, skip_tracebacks, skip_runner, backlinks)
    searches: list[Search] = []
    fetcher.own(searches)
    for target in targets:
        result = Search()
        searches.append(result)
        for part in (result, result.levels, result.hits, result.seen, result.ignore,
                     result.frontier):
            fetcher.own(part)
        first: dict[int, object] = {id(target): target}
        fetcher.own(first)
        result.levels.append(first)
        result.seen.update(first)
        result.frontier.append(target)
        judge.frame_hits(result, target, 0)

    for depth in range(1, max_depth + 1):
        running = [s for s in searches if s.running]
        fetcher.own(running)
        if not running:
            break
        wanted: dict[int, object] = {}
        fetcher.own(wanted)
        for result in running:
            if not result.frontier:
                result.exhausted = True
                result.running = False
            elif not fetcher.servable(result.frontier):
                for node in result.frontier:
                    wanted[id(node)] = node
        if wanted:
            fetcher.plan(len(wanted), len(running), depth, max_depth)
            fetcher.fetch(wanted)
        for result in running:
            if result.running:
                _advance(result, depth, fetcher, judge, max_chains, extra_levels)
    for result in searches:
        if result.running:
            result.exhausted = not result.frontier
            result.running = False
        result.frontier.clear()
        result.seen.clear()
        result.ignore.clear()
    return searches


def _advance(
    result: Search, depth: int, fetcher: Fetcher, judge: _Judge, max_chains: int,
    extra_levels: int,
) -> None:
    """One level of one search: judge the referrers of its frontier."""
    frontier = result.frontier
    referrers = fetcher.referrers(frontier)
    fetcher.own(referrers)
    seen = result.seen
    ignore = result.ignore
    hits = result.hits
    if depth == 1:
        result.referrer_count = len(referrers)
    frontier_ids = {id(node) for node in frontier}
    level: dict[int, object] = {}
    fetcher.own(level)
    next_frontier: list[object] = []
    fetcher.own(next_frontier)
    ref: Any = None
    for ref in referrers:
        rid = id(ref)
        if rid in seen or rid in ignore or rid in fetcher.ignore:
            continue
        verdict = judge.verdict(ref, rid, frontier_ids, result)
        if verdict >= _BLOCK:
            ignore.add(rid)
            continue
        seen.add(rid)
        level[rid] = ref
        if verdict == _ROOT:
            hits.append((depth, ref, None))
        else:
            next_frontier.append(ref)
            judge.frame_hits(result, ref, depth)
    del ref
    result.levels.append(level)
    frontier.clear()
    if hits:
        if result.first_hit_depth < 0:
            result.first_hit_depth = depth
        if len(hits) >= max_chains or depth >= result.first_hit_depth + extra_levels:
            result.running = False
            return
    frontier.extend(next_frontier)


@final
class _Judge:
    """What a referrer is to a search: a node to go on from, a root, or a dead end."""

    __slots__ = (
        "backlinks",
        "bases",
        "kinds",
        "labels",
        "last_ids",
        "local_refs",
        "own_frames",
        "own_ids",
        "proxy_type",
        "root_frames",
        "roots",
        "skip_runner",
        "skip_tracebacks",
    )

    def __init__(self, roots: Roots, skip_tracebacks: bool, skip_runner: bool,
                 backlinks: bool) -> None:
        mock_mod = sys.modules.get("unittest.mock")
        self.proxy_type = mock_mod.__dict__.get("MagicProxy") if mock_mod is not None else None
        self.bases = mock_classes()
        self.roots = roots
        self.labels = roots.labels
        self.root_frames = roots.frames
        self.own_frames = roots.own_frames
        self.own_ids = roots.own_ids
        self.last_ids = roots.last_ids
        self.local_refs = roots.local_refs
        self.skip_tracebacks = skip_tracebacks
        self.skip_runner = skip_runner
        self.backlinks = backlinks
        #: id(class) -> _OWN, _RUNNER or _PLAIN (classes stay alive while we search)
        self.kinds: dict[int, int] = {}

    def frame_hits(self, result: Search, node: object, depth: int) -> None:
        if not self.local_refs:
            return
        seen = result.seen
        for frame, _name in self.local_refs.get(id(node), ()):
            fid = id(frame)
            if fid not in seen:
                seen.add(fid)
                result.hits.append((depth + 1, frame, node))

    def kind_of(self, cls: type) -> int:
        key = id(cls)
        kind = self.kinds.get(key)
        if kind is None:
            kind = _class_kind(cls)
            self.kinds[key] = kind
        return kind

    def verdict(self, ref: Any, rid: int, frontier_ids: set[int], result: Search) -> int:
        roots = self.roots
        cls = type(ref)
        if rid in self.own_ids:
            result.blocked_own = True
            return _BLOCK_OWN
        if rid in self.labels:
            sys_dict = roots.sys_dict
            if (
                (self.skip_tracebacks or self.skip_runner)
                and sys_dict is not None
                and ref is sys_dict
                and _only_via_last(sys_dict, frontier_ids)
            ):
                return self._blocked_tb(result)
            return _ROOT
        if cls is _FRAME_TYPE:
            if rid in self.own_frames or is_own_code(ref.f_code):
                return _BLOCK
            if rid in self.root_frames:
                if rid == roots.caller_frame and not _named_local(ref, frontier_ids):
                    # The frame that called explain() holds the argument on its value stack.
                    return _BLOCK
                return _ROOT
            return _NODE
        if cls is _TB_TYPE or rid in self.last_ids:
            if self.skip_tracebacks:
                return self._blocked_tb(result)
            if self.skip_runner and rid in self.last_ids:
                result.blocked_runner = True
                return _BLOCK_RUNNER
            return _NODE
        if cls is _FUNCTION_TYPE:
            if is_own_code(ref.__code__):
                result.blocked_own = True
                return _BLOCK_OWN
            return _NODE
        kind = self.kind_of(cls)
        if kind == _OWN:
            result.blocked_own = True
            return _BLOCK_OWN
        if kind == _RUNNER and self.skip_runner:
            result.blocked_runner = True
            return _BLOCK_RUNNER
        if self.proxy_type is not None and cls is self.proxy_type:
            return _BLOCK
        bases = self.bases
        if bases and issubclass(cls, bases):
            if not self.backlinks and _only_backlinks(raw_dict(ref), frontier_ids):
                return _BLOCK
            return _NODE
        if cls is dict:
            if not self.backlinks and _is_mock_plumbing_dict(ref, frontier_ids):
                return _BLOCK
            return _NODE
        if issubclass(cls, type) and not (bases and issubclass(ref, bases)):
            if _module_of(ref) in _OWN_MODULES or _module_of(ref).startswith("patchtrace."):
                result.blocked_own = True
                return _BLOCK_OWN
            return _ROOT
        return _NODE

    @staticmethod
    def _blocked_tb(result: Search) -> int:
        result.blocked_traceback = True
        return _BLOCK_TB


_FRAME_TYPE: Final = types.FrameType
_TB_TYPE: Final = types.TracebackType
_FUNCTION_TYPE: Final = types.FunctionType
_OWN_MODULES: Final = frozenset({"patchtrace"})

#: The test runner's records: what pytest and pluggy keep about a test (recorded warnings,
#: captured exceptions and their reports, hook call history), by (module, class name); a
#: class counts when any class of its MRO is listed.  Modules listed with "*": all classes.
_RUNNER_CLASSES: Final = frozenset({
    ("warnings", "WarningMessage"),
    ("_pytest._code.code", "*"),
})
#: The same, by package and class name, whichever private module defines the class today.
_RUNNER_NAMES: Final = {
    "_pytest": frozenset({
        "WarningsRecorder", "WarningsChecker", "CallInfo", "BaseReport", "TestReport",
        "CollectReport", "LogCaptureHandler", "ExceptionInfo", "Traceback", "TracebackEntry",
    }),
    "pluggy": frozenset({"HookCaller", "_HookCaller", "_SubsetHookCaller", "Result", "_Result"}),
}

_PLAIN: Final = 0
_OWN: Final = 1
_RUNNER: Final = 2


def _module_of(cls: type) -> str:
    try:
        module = _TYPE_MODULE.__get__(cls, type)
    except Exception:
        return ""
    return module if type(module) is str else ""


def _class_kind(cls: type) -> int:
    """patchtrace's own class (_OWN), one of the runner's records (_RUNNER), or _PLAIN."""
    module = _module_of(cls)
    if module in _OWN_MODULES or module.startswith("patchtrace."):
        return _OWN
    for klass in mro(cls):
        module = _module_of(klass)
        if (module, "*") in _RUNNER_CLASSES:
            return _RUNNER
        try:
            name = _TYPE_NAME.__get__(klass, type)
        except Exception:
            continue
        if type(name) is not str:
            continue
        if (module, name) in _RUNNER_CLASSES:
            return _RUNNER
        names = _RUNNER_NAMES.get(module.partition(".")[0])
        if names is not None and name in names:
            return _RUNNER
    return _PLAIN


_TYPE_MODULE: Final[Any] = type.__dict__["__module__"]
_TYPE_NAME: Final[Any] = type.__dict__["__qualname__"]


#: Above this many frontier objects one hash-based pass over the heap beats get_referrers, whose
#: C loop compares every referent in the heap with every object it was given.
BULK_THRESHOLD: Final = 400


def _referrers_bulk(frontier: list[object]) -> list[object]:
    """``gc.get_referrers(*frontier)`` in O(heap) instead of O(heap * len(frontier)).

    One ``gc.get_objects()`` and one ``gc.get_referents()`` over all of it, with a marker
    between objects so each referent can be attributed to its referrer; every loop below runs
    in C.  Identity keys come from ``object.__hash__`` (the pointer-derived hash every object
    inherits): unlike ``type(x).__hash__`` it never runs user code (a MagicMock records hash()
    as a call), and unlike ``id()`` it raises no audit event per object.
    """
    objs = gc.get_objects()
    # A fresh marker, created after the snapshot so no object in it can refer to the marker
    # (else a referrer would be attributed to the wrong object).  Only the holder is bound to
    # a local: a 3.10 frame in the snapshot would otherwise yield the marker itself.
    holder = (object(),)
    args: list[object] = [holder] * (2 * len(objs))
    args[0::2] = objs
    flat = gc.get_referents(*args)
    del args
    key = object.__hash__
    wanted = set(map(key, frontier))
    owners = itertools.compress(
        itertools.accumulate(map(operator.is_, flat, itertools.repeat(holder[0]))),
        map(wanted.__contains__, map(key, flat)),
    )
    indices = sorted(set(owners))
    del flat
    found = [objs[i] for i in indices]
    del objs
    return found


#: The cost model (in heap scans, measured at 1M objects on 3.11 and 3.12, see
#: docs/performance.md): one gc.get_referrers over k objects, the bulk pass, the index.
PER_NODE: Final = 0.07
BULK_SCANS: Final = 53.0
INDEX_SCANS: Final = 65.0
MIN_LEVELS: Final = 10


def level_cost(nodes: int) -> float:
    """Heap scans' worth of one level's fetch of ``nodes`` objects, without the index."""
    if nodes > BULK_THRESHOLD:
        return BULK_SCANS
    return 1.0 + PER_NODE * nodes


_NODE: Final = 0
_ROOT: Final = 1
# Dead ends (>= _BLOCK): never a node of a chain.
_BLOCK: Final = 2
_BLOCK_TB: Final = 3
_BLOCK_RUNNER: Final = 4
_BLOCK_OWN: Final = 5


def _only_via_last(namespace: dict[str, Any], frontier_ids: set[int]) -> bool:
    """True if ``sys.__dict__`` reaches the frontier only through ``sys.last_*``."""
    for key, value in dict.items(namespace):
        if id(value) in frontier_ids and key not in _LAST_NAMES:
            return False
    return True


def _named_local(frame: types.FrameType, frontier_ids: set[int]) -> bool:
    try:
        values = list(frame.f_locals.values())
    except Exception:
        return True
    return any(id(value) in frontier_ids for value in values)


def _only_backlinks(namespace: dict[str, Any] | None, frontier_ids: set[int]) -> bool:
    """A mock that points at the frontier only through its parent links is plumbing."""
    if namespace is None:
        return False
    hit_backlink = False
    for key, value in dict.items(namespace):
        if id(value) in frontier_ids:
            if key in BACKLINK_KEYS:
                hit_backlink = True
            else:
                return False
    return hit_backlink


def _is_mock_plumbing_dict(mapping: dict[Any, Any], frontier_ids: set[int]) -> bool:
    if "_mock_children" in mapping and "_mock_methods" in mapping:
        return _only_backlinks(mapping, frontier_ids)  # a child mock's __dict__ (3.10-3.12)
    if len(mapping) == 2 and "parent" in mapping and "name" in mapping:
        # A MagicProxy's __dict__ on 3.10 (3.11+ keeps its attributes inline).
        parent = dict.get(mapping, "parent")
        return id(parent) in frontier_ids and is_mock(parent)
    return False
