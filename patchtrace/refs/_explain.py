"""``explain()`` and ``why()``: search, then turn live paths into plain data."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable
from typing import IO, Any

from patchtrace.values import is_mock, safe_repr, type_name

from ._edges import describe
from ._graph import Fetcher, Roots, Search, Strategy, ignored_ids, search_all
from ._model import Chain, Explanation

__all__ = ["explain", "explain_all", "why"]


def explain(
    obj: object,
    *,
    max_chains: int = 3,
    ignore: Iterable[object] = (),
    skip_tracebacks: bool = False,
    skip_runner: bool = False,
    max_depth: int = 64,
    strategy: Strategy = "auto",
) -> Explanation:
    """The shortest chains of references from roots (modules, classes, thread stacks, ...)
    down to ``obj``, as plain data that holds no reference to ``obj`` or anything on the way.

    ``ignore``: objects (containers, frames) a chain must not pass through.
    ``skip_tracebacks``: chains through a traceback or ``sys.last_*`` do not count.
    ``skip_runner``: chains through the test runner's records (a warning pytest recorded,
    a captured exception or report, pluggy's hook call history, ``sys.last_*``) do not count.
    patchtrace's own objects (its modules, tracer, ledger, detector, snapshots) never count.
    """
    return explain_all(
        (obj,), max_chains=max_chains, ignore=ignore, skip_tracebacks=skip_tracebacks,
        skip_runner=skip_runner, max_depth=max_depth, strategy=strategy,
    )[0]


def explain_all(
    objects: Iterable[object],
    *,
    max_chains: int = 3,
    ignore: Iterable[object] = (),
    skip_tracebacks: bool = False,
    skip_runner: bool = False,
    max_depth: int = 64,
    strategy: Strategy = "auto",
) -> list[Explanation]:
    """``explain()`` for many objects at once: one :class:`Explanation` per object, in order,
    each the same as ``explain(obj)`` would give.

    The searches run side by side and share their heap scans (one ``gc.get_referrers`` per
    level for all of them, and a node reached by several is fetched once), so the cost is
    bounded by the deepest chain rather than by the sum of them.  The list or tuple passed as
    ``objects`` is not a reason for anything to be alive.

    ``strategy``: where the referrers come from.  ``"levels"``: one ``gc.get_referrers``
    per level over the union of every search's frontier (best for narrow or shared chains);
    ``"index"``: one reverse-reference index of the whole heap, built in one pass (best for
    many disjoint chains; not built past ``refs._index.MAX_BYTES``, then levels);
    ``"auto"`` (the default): levels until the cost model says the index is cheaper.  All
    three give the same chains.
    """
    targets: list[object] = list(objects)
    if not targets:
        return []
    infos = [(type_name(obj), safe_repr(obj)) for obj in targets]
    extra: list[object] = list(ignore)
    ignore_ids = ignored_ids()
    ignore_ids.update(id(o) for o in extra)
    ignore_ids.update((id(extra), id(targets)))
    if type(objects) in (list, tuple):
        ignore_ids.add(id(objects))
    depth = max(1, max_depth)
    wanted = max(1, max_chains)
    # No automatic collection while we hold big temporaries: allocating them would trigger
    # full collections of the very heap we are walking (hundreds of ms at 1M objects).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    roots = Roots.snapshot()
    fetcher: Fetcher | None = None
    results: list[Search | None] = [None] * len(targets)
    chains: list[tuple[Chain, ...]] = [()] * len(targets)
    notes: list[str | None] = [None] * len(targets)
    paths: list[list[list[object]]] = []
    try:
        pending = list(range(len(targets)))
        # A mock kept alive only by one of its children (a return value cached in an
        # lru_cache or a registry) has no chain until the child's link up to its parent is
        # followed: a second search does, for mocks only.
        for backlinks in (False, True):
            if backlinks:
                pending = [i for i in pending if is_mock(targets[i])]
            if not pending:
                break
            if fetcher is None:
                fetcher = Fetcher(ignore_ids, strategy)
            else:
                # Naming the first pass's chains may have given instances a __dict__ of
                # their own: what was cached about their referrers is stale.
                fetcher.forget()
                for i in pending:
                    previous = results[i]
                    if previous is not None:
                        previous.clear()
            batch = [targets[i] for i in pending]
            found = search_all(
                batch, roots, fetcher=fetcher, max_depth=depth, max_chains=wanted,
                skip_tracebacks=skip_tracebacks, skip_runner=skip_runner, backlinks=backlinks,
            )
            del batch
            paths = [_paths(result, wanted) for result in found]
            for i, result, found_paths in zip(pending, found, paths, strict=True):
                previous = results[i]
                if previous is not None:
                    previous.clear()
                results[i] = result
                chains[i] = _chains(found_paths, roots, wanted)
                found_paths.clear()
            del found
            pending = [i for i in pending if not chains[i]]
        for i, last in enumerate(results):
            if last is not None:
                notes[i] = _note(last, chains[i], skip_tracebacks, skip_runner, max_depth)
    finally:
        # Drop every strong reference we took (frames above all) before returning.
        for last in results:
            if last is not None:
                last.clear()
        for found_paths in paths:
            found_paths.clear()
        if fetcher is not None:
            fetcher.clear()
        roots.keep.clear()
        roots.local_refs.clear()
        if gc_was_enabled:
            gc.enable()
        del extra, results, targets
    return [
        Explanation(kind, text, found_chains, note)
        for (kind, text), found_chains, note in zip(infos, chains, notes, strict=True)
    ]


def _paths(result: Search, max_chains: int) -> list[list[object]]:
    """Live paths ``[root, ..., target]`` for the nearest hits.  All of them are taken before
    any is named: naming reads ``__dict__``, which on 3.11+ materializes an instance's inline
    attributes into a new dict, and a path walked after that would no longer connect."""
    paths: list[list[object]] = []
    cap = 8 * max_chains + 8  # room for hits whose chains read the same
    for depth, root, child in sorted(result.hits, key=lambda hit: hit[0]):
        if child is not None:
            rest = _path_down(child, depth - 1, result.levels)
            path = None if rest is None else [root, *rest]
        else:
            path = _path_down(root, depth, result.levels)
        if path is not None:
            paths.append(path)
            if len(paths) >= cap:
                break
    return paths


def _chains(paths: list[list[object]], roots: Roots, max_chains: int) -> tuple[Chain, ...]:
    chains: list[Chain] = []
    labels_seen: set[tuple[str, ...]] = set()
    for path in paths:
        try:
            chain = describe(path, roots)
        except Exception as exc:  # naming is best effort; never lose the chain over it
            chain = _fallback(path, exc)
        key = tuple(chain.labels())
        if key in labels_seen:
            continue
        labels_seen.add(key)
        chains.append(chain)
        if len(chains) >= max_chains:
            break
    return tuple(chains)


def _fallback(path: list[object], exc: BaseException) -> Chain:
    from ._model import Step

    steps = tuple(Step("object", type_name(node)) for node in path[:-1])
    return Chain("object", (*steps, Step("note", f"naming failed: {type(exc).__name__}")))


def _path_down(root: object, depth: int, levels: list[dict[int, object]]) -> list[object] | None:
    path = [root]
    node = root
    for d in range(depth - 1, -1, -1):
        level = levels[d]
        child: Any = None
        for ref in gc.get_referents(node):
            if id(ref) in level:
                child = ref
                break
        if child is None:
            return None
        path.append(child)
        node = child
    return path


def _note(
    result: Search, chains: tuple[Chain, ...], skip_tb: bool, skip_runner: bool, max_depth: int
) -> str | None:
    if chains:
        return None
    if skip_tb and result.blocked_traceback:
        return (
            "only reachable through a traceback (sys.last_traceback, sys.last_value or an "
            "exception's __traceback__); ignored because skip_tracebacks=True"
        )
    if skip_runner and result.blocked_runner:
        return (
            "only reachable through the test runner's own records (a warning pytest "
            "recorded, a captured exception or report, pluggy's hook call history, "
            "sys.last_*); ignored because skip_runner=True"
        )
    if result.blocked_own and result.exhausted:
        return (
            "only reachable through patchtrace's own bookkeeping (its tracer, ledger or "
            "snapshots), which is never a reason; nothing else the garbage collector sees "
            "holds it (C code may: a signal handler table, an extension's static)"
        )
    if result.referrer_count == 0 or len(result.levels) <= 1 or not result.levels[1]:
        return (
            "no object the garbage collector tracks refers to it: it is held by something the "
            "garbage collector cannot see (C code, an extension's static, an untracked container)"
        )
    if not result.exhausted:
        return f"no root within {max_depth} references; raise max_depth to look further"
    return (
        "no root reaches it: it is part of a reference cycle awaiting collection "
        "(gc.collect() would free it), or one of its referrers is held by something the "
        "garbage collector cannot see (C code, an untracked container)"
    )


def why(obj: object, *, file: IO[str] | None = None, **explain_kwargs: Any) -> Explanation:
    """Explain why ``obj`` is alive and print it as a tree (rich); returns the explanation."""
    explanation = explain(obj, **explain_kwargs)
    from rich.console import Console

    console = Console(file=file if file is not None else sys.stdout, soft_wrap=False)
    console.print(explanation.render_tree())
    return explanation
