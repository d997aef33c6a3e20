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
from typing import Any, Final, final

from patchtrace.values import is_mock, mock_classes

from ._safe import raw_dict, thread_name

__all__ = ["Roots", "Search", "ignore_container", "ignored_ids", "search"]

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
        "sys_dict",
    )

    def __init__(self) -> None:
        #: id -> (root_kind, label) for module dicts, sys.modules, gc.garbage.
        self.labels: dict[int, tuple[str, str]] = {}
        #: id -> thread name, for every frame on a live thread stack (not ours).
        self.frames: dict[int, str] = {}
        self.own_frames: set[int] = set()
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
            if id(namespace) in labels:
                continue
            keep.append(namespace)
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
        del current, frame
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
        self.keep.append(items)


def _get_ident() -> int:
    import threading

    return threading.get_ident()


@final
class Search:
    """Result of one search; holds the visited objects until the caller drops it."""

    __slots__ = ("blocked_traceback", "exhausted", "hits", "levels", "referrer_count")

    def __init__(self) -> None:
        #: levels[d] maps id -> object for the nodes first seen at distance d from the target.
        self.levels: list[dict[int, object]] = []
        #: (distance, root, first node below the root if already known), nearest first.
        self.hits: list[tuple[int, object, object]] = []
        self.blocked_traceback = False
        self.exhausted = False
        self.referrer_count = 0


def search(
    target: object,
    roots: Roots,
    *,
    ignore: set[int],
    max_depth: int,
    max_chains: int,
    skip_tracebacks: bool,
    extra_levels: int = 1,
    backlinks: bool = False,
) -> Search:
    """``backlinks``: also follow a child mock's link up to its parent (off by default: a
    parent's children point back at it by the dozen, and are alive because of it)."""
    result = Search()
    levels = result.levels
    hits = result.hits
    mock_mod = sys.modules.get("unittest.mock")
    proxy_type = mock_mod.__dict__.get("MagicProxy") if mock_mod is not None else None
    bases = mock_classes()
    frame_type = types.FrameType
    tb_type = types.TracebackType
    labels = roots.labels
    root_frames = roots.frames
    own_frames = roots.own_frames
    last_ids = roots.last_ids

    first: dict[int, object] = {id(target): target}
    levels.append(first)
    seen: set[int] = set(first)
    frontier: list[object] = [target]
    # Our own temporaries all point at frontier nodes: never report them.
    ignore = set(ignore)
    ignore.update(
        (id(result), id(levels), id(hits), id(first), id(frontier), id(roots.keep), id(ignore))
    )
    ignore.update(own_frames)
    # Every temporary whose id() went into ``ignore`` stays alive until the search ends, so
    # that no user object can be allocated at a freed address and be wrongly ignored.
    keepalive: list[object] = []
    ignore.add(id(keepalive))
    first_hit_depth = -1
    local_refs = roots.local_refs

    def frame_hits(node: object, depth: int) -> None:
        for frame, _name in local_refs.get(id(node), ()):
            fid = id(frame)
            if fid not in seen:
                seen.add(fid)
                hits.append((depth + 1, frame, node))

    frame_hits(target, 0)

    for depth in range(1, max_depth + 1):
        if not frontier:
            result.exhausted = True
            break
        referrers: list[Any]
        if len(frontier) > BULK_THRESHOLD:
            referrers = _referrers_bulk(frontier)
        else:
            # Our own argument tuple: 3.13's argument clinic copies it, and only skips the copy.
            frontier_tuple = tuple(frontier)
            ignore.add(id(frontier_tuple))
            keepalive.append(frontier_tuple)
            referrers = gc.get_referrers(*frontier_tuple)
            del frontier_tuple
        ignore.add(id(referrers))
        keepalive.append(referrers)
        if depth == 1:
            result.referrer_count = len(referrers)
        frontier_ids = {id(node) for node in frontier}
        level: dict[int, object] = {}
        ignore.add(id(level))
        next_frontier: list[object] = []
        ignore.add(id(next_frontier))
        ref: Any
        for ref in referrers:
            rid = id(ref)
            if rid in seen or rid in ignore:
                continue
            cls = type(ref)
            verdict = _NODE
            if rid in labels:
                verdict = _ROOT
                sys_dict = roots.sys_dict
                if (
                    skip_tracebacks
                    and sys_dict is not None
                    and ref is sys_dict
                    and _only_via_last(sys_dict, frontier_ids)
                ):
                    verdict = _BLOCK_TB
            elif cls is frame_type:
                if rid in own_frames or is_own_code(ref.f_code):
                    verdict = _BLOCK
                elif rid in root_frames:
                    verdict = _ROOT
                    if rid == roots.caller_frame and not _named_local(ref, frontier_ids):
                        # The frame that called explain() holds the argument on its value stack.
                        verdict = _BLOCK
            elif cls is tb_type or rid in last_ids:
                if skip_tracebacks:
                    verdict = _BLOCK_TB
            elif proxy_type is not None and cls is proxy_type:
                verdict = _BLOCK
            elif bases and issubclass(cls, bases):
                if not backlinks and _only_backlinks(raw_dict(ref), frontier_ids):
                    verdict = _BLOCK
            elif cls is dict:
                if not backlinks and _is_mock_plumbing_dict(ref, frontier_ids):
                    verdict = _BLOCK
            elif issubclass(cls, type) and not (bases and issubclass(ref, bases)):
                verdict = _ROOT
            if verdict in (_BLOCK, _BLOCK_TB):
                if verdict == _BLOCK_TB:
                    result.blocked_traceback = True
                ignore.add(rid)
                continue
            seen.add(rid)
            level[rid] = ref
            if verdict == _ROOT:
                hits.append((depth, ref, None))
            else:
                next_frontier.append(ref)
                if local_refs:
                    frame_hits(ref, depth)
        del referrers
        levels.append(level)
        if hits:
            if first_hit_depth < 0:
                first_hit_depth = depth
            if len(hits) >= max_chains or depth >= first_hit_depth + extra_levels:
                break
        keepalive.append(frontier)
        frontier = next_frontier
        ignore.add(id(frontier))
    else:
        result.exhausted = not frontier
    keepalive.clear()
    return result


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


_NODE: Final = 0
_ROOT: Final = 1
_BLOCK: Final = 2
_BLOCK_TB: Final = 3


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
