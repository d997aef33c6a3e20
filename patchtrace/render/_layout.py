"""A small layered (Sugiyama-style) layout, so a graph can be drawn without graphviz.

Good enough for the graphs we draw (tens of nodes: chains from roots plus a neighbourhood):

1. break cycles (reverse the back edges a depth-first search finds);
2. rank nodes by their longest distance from a root; every edge gets a *label node* on the
   rank between its ends (as ``dot`` does), and *dummy nodes* on the ranks a long edge
   crosses, so that labels and bends take space like real nodes;
3. order each rank by repeated barycenter sweeps, keeping the order with fewest crossings;
4. place nodes horizontally near the mean of their neighbours, never overlapping;
5. route each edge as a polyline through its label and dummy nodes.

Pure Python, plain data in and out; sizes are in SVG user units (pixels).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final, final

__all__ = ["Layout", "layout"]

_NODE_GAP: Final = 18.0
_RANK_GAP: Final = 22.0
_MARGIN: Final = 16.0
_SWEEPS: Final = 12


@final
class Layout:
    """Where everything goes: node centers, edge polylines, label centers, canvas size."""

    __slots__ = ("edges", "height", "labels", "nodes", "width")

    def __init__(
        self,
        nodes: dict[str, tuple[float, float]],
        edges: list[list[tuple[float, float]]],
        labels: list[tuple[float, float]],
        width: float,
        height: float,
    ) -> None:
        self.nodes = nodes
        self.edges = edges
        self.labels = labels
        self.width = width
        self.height = height


class _V:
    __slots__ = ("h", "key", "order", "rank", "w", "x", "y")

    def __init__(self, key: str, w: float, h: float) -> None:
        self.key = key
        self.w = w
        self.h = h
        self.rank = 0
        self.order = 0
        self.x = 0.0
        self.y = 0.0


def layout(
    nodes: Sequence[tuple[str, float, float]],
    edges: Sequence[tuple[str, str, float, float]],
) -> Layout:
    """Lay out ``nodes`` (key, width, height) and ``edges`` (source, target, label width,
    label height); edge polylines and label centers come back in the order given."""
    real: dict[str, _V] = {}
    for key, w, h in nodes:
        real.setdefault(key, _V(key, w, h))
    keys = list(real)
    edge_list = [(s, t, lw, lh) for s, t, lw, lh in edges if s in real and t in real and s != t]

    reversed_edges = _back_edges(keys, [(s, t) for s, t, _, _ in edge_list])
    oriented = [
        (t, s) if i in reversed_edges else (s, t) for i, (s, t, _, _) in enumerate(edge_list)
    ]
    rank = _ranks(keys, oriented)
    for key, vertex in real.items():
        vertex.rank = 2 * rank[key]  # odd ranks hold edge labels and bends

    # Expand every edge into a chain of virtual vertices, one per rank it crosses.
    vertices: list[_V] = list(real.values())
    chains: list[list[_V]] = []
    succ: dict[int, list[_V]] = {id(v): [] for v in vertices}
    pred: dict[int, list[_V]] = {id(v): [] for v in vertices}
    label_at: list[_V] = []
    for i, (s, t) in enumerate(oriented):
        lw, lh = edge_list[i][2], edge_list[i][3]
        a, b = real[s], real[t]
        chain = [a]
        middle = a.rank + 1  # labels sit next to their source: they name the hop out of it
        label_vertex: _V | None = None
        for r in range(a.rank + 1, b.rank):
            is_label = r == middle
            v = _V(f"\0{i}:{r}", lw if is_label else 2.0, lh if is_label else 2.0)
            v.rank = r
            if is_label:
                label_vertex = v
            vertices.append(v)
            succ[id(v)] = []
            pred[id(v)] = []
            chain.append(v)
        chain.append(b)
        for u, v in itertools.pairwise(chain):
            succ[id(u)].append(v)
            pred[id(v)].append(u)
        chains.append(chain)
        label_at.append(label_vertex if label_vertex is not None else chain[len(chain) // 2])

    ranks = _initial_order(vertices, succ)
    _reduce_crossings(ranks, succ, pred)
    _place_x(ranks, succ, pred)
    height = _place_y(ranks)

    min_x = min((v.x - v.w / 2 for v in vertices), default=0.0)
    max_x = max((v.x + v.w / 2 for v in vertices), default=0.0)
    shift = _MARGIN - min_x
    for v in vertices:
        v.x += shift
    width = max_x - min_x + 2 * _MARGIN

    polylines: list[list[tuple[float, float]]] = []
    for i, chain in enumerate(chains):
        first, last = chain[0], chain[-1]
        points = [(first.x, first.y + first.h / 2)]
        points.extend((v.x, v.y) for v in chain[1:-1])
        points.append((last.x, last.y - last.h / 2))
        if i in reversed_edges:
            points.reverse()
            points[0] = (last.x, last.y - last.h / 2)
            points[-1] = (first.x, first.y + first.h / 2)
        polylines.append(points)
    return Layout(
        {key: (v.x, v.y) for key, v in real.items()},
        polylines,
        [(v.x, v.y) for v in label_at],
        width,
        height,
    )


def _back_edges(keys: list[str], edges: list[tuple[str, str]]) -> set[int]:
    """Indices of edges closing a cycle, found by an iterative depth-first search."""
    out: dict[str, list[tuple[int, str]]] = {k: [] for k in keys}
    indeg = dict.fromkeys(keys, 0)
    for i, (s, t) in enumerate(edges):
        out[s].append((i, t))
        indeg[t] += 1
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[int] = set()
    starts = [k for k in keys if indeg[k] == 0] + keys
    for start in starts:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(out[start]))]
        while stack:
            node, it = stack[-1]
            for i, t in it:
                if state.get(t) == 1:
                    back.add(i)
                elif t not in state:
                    state[t] = 1
                    stack.append((t, iter(out[t])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return back


def _ranks(keys: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest distance from a source, by Kahn's topological order (edges form a DAG)."""
    out: dict[str, list[str]] = {k: [] for k in keys}
    indeg = dict.fromkeys(keys, 0)
    for s, t in edges:
        out[s].append(t)
        indeg[t] += 1
    rank = dict.fromkeys(keys, 0)
    queue = [k for k in keys if indeg[k] == 0]
    while queue:
        node = queue.pop(0)
        for t in out[node]:
            rank[t] = max(rank[t], rank[node] + 1)
            indeg[t] -= 1
            if indeg[t] == 0:
                queue.append(t)
    return rank


def _initial_order(vertices: list[_V], succ: dict[int, list[_V]]) -> list[list[_V]]:
    """Ranks in depth-first order from the top: children start next to their parent."""
    depth = max((v.rank for v in vertices), default=0)
    ranks: list[list[_V]] = [[] for _ in range(depth + 1)]
    seen: set[int] = set()

    def visit(root: _V) -> None:
        stack = [root]
        while stack:
            v = stack.pop()
            if id(v) in seen:
                continue
            seen.add(id(v))
            ranks[v.rank].append(v)
            stack.extend(reversed(succ[id(v)]))

    for v in sorted(vertices, key=lambda v: v.rank):
        visit(v)
    for r, items in enumerate(ranks):
        for i, v in enumerate(items):
            v.order = i
        ranks[r] = items
    return ranks


def _crossings(ranks: list[list[_V]], succ: dict[int, list[_V]]) -> int:
    total = 0
    for items in ranks[:-1]:
        pairs = [(u.order, v.order) for u in items for v in succ[id(u)]]
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1:]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


def _reduce_crossings(
    ranks: list[list[_V]], succ: dict[int, list[_V]], pred: dict[int, list[_V]]
) -> None:
    best = [list(items) for items in ranks]
    best_count = _crossings(ranks, succ)
    for sweep in range(_SWEEPS):
        if best_count == 0:
            break
        down = sweep % 2 == 0
        order = range(1, len(ranks)) if down else range(len(ranks) - 2, -1, -1)
        for r in order:
            items = ranks[r]
            neighbours = pred if down else succ

            def barycenter(v: _V, neighbours: dict[int, list[_V]] = neighbours) -> float:
                near = neighbours[id(v)]
                if not near:
                    return float(v.order)
                return sum(n.order for n in near) / len(near)

            items.sort(key=lambda v: (barycenter(v), v.order))
            for i, v in enumerate(items):
                v.order = i
        count = _crossings(ranks, succ)
        if count < best_count:
            best_count = count
            best = [list(items) for items in ranks]
    for r, items in enumerate(best):
        ranks[r] = items
        for i, v in enumerate(items):
            v.order = i


def _pack(items: list[_V], desired: list[float]) -> None:
    """Put ``items`` (in order) as close to ``desired`` as separation allows."""
    n = len(items)
    if not n:
        return

    def sep(a: _V, b: _V) -> float:
        return (a.w + b.w) / 2 + _NODE_GAP

    left = list(desired)
    for i in range(1, n):
        left[i] = max(left[i], left[i - 1] + sep(items[i - 1], items[i]))
    right = list(desired)
    for i in range(n - 2, -1, -1):
        right[i] = min(right[i], right[i + 1] - sep(items[i], items[i + 1]))
    xs = [(a + b) / 2 for a, b in zip(left, right, strict=True)]
    for i in range(1, n):
        xs[i] = max(xs[i], xs[i - 1] + sep(items[i - 1], items[i]))
    for v, x in zip(items, xs, strict=True):
        v.x = x


def _place_x(
    ranks: list[list[_V]], succ: dict[int, list[_V]], pred: dict[int, list[_V]]
) -> None:
    for items in ranks:
        x = 0.0
        for i, v in enumerate(items):
            if i:
                x += (items[i - 1].w + v.w) / 2 + _NODE_GAP
            v.x = x
    for sweep in range(6):
        down = sweep % 2 == 0
        order = range(1, len(ranks)) if down else range(len(ranks) - 2, -1, -1)
        for r in order:
            items = ranks[r]
            neighbours = pred if down else succ
            desired = []
            for v in items:
                near = neighbours[id(v)] or (succ if down else pred)[id(v)]
                desired.append(sum(n.x for n in near) / len(near) if near else v.x)
            _pack(items, desired)


def _place_y(ranks: list[list[_V]]) -> float:
    y = _MARGIN
    for items in ranks:
        tallest = max((v.h for v in items), default=0.0)
        for v in items:
            v.y = y + tallest / 2
        y += tallest + _RANK_GAP
    return y - _RANK_GAP + _MARGIN
