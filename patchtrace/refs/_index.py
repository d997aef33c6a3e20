"""A reverse-reference index of the whole heap, built in one pass, for searches too wide to
run one ``gc.get_referrers`` per level.

``gc.get_referrers(*k objects)`` walks the heap once and compares every referent with each
of the ``k`` objects: ~1 + 0.07·k heap scans (measured at 1M objects).  A search with many
disjoint frontiers (100 survivors, each on a chain of its own, 10 to 60 deep) pays that on
every level.  The index pays once, ~40 to 70 scans' worth whatever the depth and width, and
answers each later level without touching the heap again.

How it is built, every loop in C (no Python-level code per object or edge):

1. ``gc.get_objects()``: the heap, in the order ``gc.get_referrers`` walks it.
2. One ``gc.get_referents()`` over all of it, a marker after each object, so the flat result
   can be cut back into each object's referents (one call: with an audit hook installed, a
   call per object would raise a million events).
3. A key per referent: ``object.__hash__`` (the address, rotated), which never runs user code
   (a MagicMock records ``hash()`` as a call) and raises no audit event (``id()`` does).
   Referents the garbage collector does not track (ints, strings, atomic tuples: never a
   step of a chain except as the object asked about) are left out, which halves the index.
4. The positions, sorted (stably) by key: the referrers of ``obj`` are the owners of the run
   of positions whose key is ``object.__hash__(obj)``, found by bisection, in heap order.

Memory: 16 bytes per heap object (the list of objects, where its referents end) and 16 per
tracked referent (key, sorted position) while the index lives; the peak, while sorting, is
~84 bytes per tracked referent (~150 MB at 1M objects).  ``estimate_bytes`` gives it before
the expensive steps; past ``MAX_BYTES`` (512 MB, ~3M objects) the index is not built and
the search goes on level by level.

Like the rest of the search, the index holds user objects only until ``clear()``.
"""

from __future__ import annotations

import gc
import itertools
import operator
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any, Final, final

__all__ = ["MAX_BYTES", "HeapIndex", "estimate_bytes"]

#: The most memory an index may take at its peak (while sorting); above it, no index.
MAX_BYTES: Final = 512 * 2**20
#: Peak bytes per tracked referent while sorting (its key, and two lists of ints), and per
#: heap object (the list of objects, where each one's referents end).
_PEAK_PER_EDGE: Final = 84
_PER_OBJECT: Final = 16
#: Tracked referents per object on the heaps measured (1.6 on a padded benchmark heap, up
#: to ~2.5 on a test session's): the first estimate, before they are counted.
_EDGES_PER_OBJECT_GUESS: Final = 2


def estimate_bytes(objects: int, edges: int) -> int:
    """Peak bytes an index of ``objects`` heap objects and ``edges`` tracked referents
    takes while it is built (the steps before the sort take less: ~60 bytes per object)."""
    return objects * _PER_OBJECT + edges * _PEAK_PER_EDGE


@final
class HeapIndex:
    """Who refers to what, for every object the garbage collector tracked when it was built.

    Objects created after ``build()`` are unknown to it: a search uses it only while the
    collector is off, and every object the search itself creates is ignored anyway.
    """

    __slots__ = ("edges", "ends", "keys", "objects", "order", "rank")

    def __init__(self, objects: list[Any], ends: array[int], keys: array[int],
                 order: array[int]) -> None:
        #: The heap when built, in ``gc.get_referrers`` order.
        self.objects = objects
        #: ends[i]: one past the position of object i's last (tracked) referent.
        self.ends = ends
        #: keys[p]: object.__hash__ of the referent at position p.
        self.keys = keys
        #: Positions sorted by key (ties in position order).
        self.order = order
        self.edges = len(keys)
        #: id(object) -> its place in ``objects``, filled as referrers are handed out.
        self.rank: dict[int, int] = {}

    @classmethod
    def build(cls, own: Callable[[object], None],
              max_bytes: int | None = None) -> HeapIndex | None:
        """The index, or None when it would need more than ``max_bytes`` (default:
        ``MAX_BYTES``, read when called).

        ``own`` is called with each of our temporaries that holds user objects, so the
        caller's searches ignore them (and keep them alive until it is done)."""
        limit = MAX_BYTES if max_bytes is None else max_bytes
        objects = gc.get_objects()
        own(objects)
        count = len(objects)
        # A first estimate from the number of objects alone, before the expensive steps.
        if estimate_bytes(count, count * _EDGES_PER_OBJECT_GUESS) > limit:
            # Emptied, not just dropped: the caller keeps what it owns alive, and a list of
            # the whole heap would be a referrer of every node of every later level.
            objects.clear()
            return None
        # A fresh marker, created after the snapshot so no object in it refers to the
        # marker; only the holder is bound to a local (a 3.10 frame in the snapshot would
        # otherwise yield the marker itself).
        holder = (object(),)
        args: list[object] = [holder] * (2 * count)
        own(args)
        args[0::2] = objects
        flat = gc.get_referents(*args)
        own(flat)
        args.clear()
        # One byte per referent: tracked by the collector?  Is it the marker (untracked)?
        tracked = bytes(map(gc.is_tracked, flat))
        is_marker = bytes(map(operator.is_, flat, itertools.repeat(holder[0])))
        del holder
        # Where each object's tracked referents end: how many tracked referents come before
        # the marker that follows its own.
        ends = array("q", itertools.compress(itertools.accumulate(tracked), is_marker))
        del is_marker
        edges = ends[-1] if ends else 0
        if estimate_bytes(count, edges) > limit:
            flat.clear()
            objects.clear()
            return None
        keys = array("q", map(object.__hash__, itertools.compress(flat, tracked)))
        del tracked
        flat.clear()
        # Stable: the positions of one key stay in heap order.
        order = array("q", sorted(range(len(keys)), key=keys.__getitem__))
        return cls(objects, ends, keys, order)

    def referrers_of(self, node: object) -> list[int]:
        """Places (in ``objects``) of the objects that refer to ``node``, in heap order."""
        wanted = object.__hash__(node)
        order = self.order
        getkey = self.keys.__getitem__
        lo = bisect_left(order, wanted, key=getkey)
        hi = bisect_right(order, wanted, lo, key=getkey)
        if lo == hi:
            return []
        ends = self.ends
        places: list[int] = []
        last = -1
        for position in order[lo:hi]:  # in position order: the sort was stable
            # The owner of position p: the first object whose referents end after p.
            place = bisect_right(ends, position)
            if place != last:
                places.append(place)
                last = place
        return places

    def referrers(self, nodes: list[object]) -> list[Any]:
        """What ``gc.get_referrers(*nodes)`` gives (for objects known to the index): each
        object referring to any of ``nodes`` once, in heap order."""
        places: set[int] = set()
        for node in nodes:
            places.update(self.referrers_of(node))
        objects = self.objects
        rank = self.rank
        found: list[Any] = []
        for place in sorted(places):
            obj = objects[place]
            rank[id(obj)] = place
            found.append(obj)
        return found

    def clear(self) -> None:
        self.objects = []
        self.rank.clear()
        self.ends = array("q")
        self.keys = array("q")
        self.order = array("q")
        self.edges = 0
