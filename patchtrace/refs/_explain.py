"""``explain()`` and ``why()``: search, then turn live paths into plain data."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable
from typing import IO, Any

from patchtrace.values import is_mock, safe_repr, type_name

from ._edges import describe
from ._graph import Roots, Search, ignored_ids, search
from ._model import Chain, Explanation

__all__ = ["explain", "why"]


def explain(
    obj: object,
    *,
    max_chains: int = 3,
    ignore: Iterable[object] = (),
    skip_tracebacks: bool = False,
    max_depth: int = 64,
) -> Explanation:
    """The shortest chains of references from roots (modules, classes, thread stacks, ...)
    down to ``obj``, as plain data that holds no reference to ``obj`` or anything on the way.

    ``ignore``: objects (containers, frames) a chain must not pass through.
    ``skip_tracebacks``: chains through a traceback or ``sys.last_*`` do not count.
    """
    target_type = type_name(obj)
    target_repr = safe_repr(obj)
    extra: list[object] = list(ignore)
    ignore_ids = ignored_ids()
    ignore_ids.update(id(o) for o in extra)
    ignore_ids.add(id(extra))
    # No automatic collection while we hold big temporaries: allocating them would trigger
    # full collections of the very heap we are walking (hundreds of ms at 1M objects).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    roots = Roots.snapshot()
    result: Search | None = None
    try:
        # A mock kept alive only by one of its children (a return value cached in an
        # lru_cache or a registry) has no chain until the child's link up to its parent is
        # followed: a second search does, for mocks only.
        chains: tuple[Chain, ...] = ()
        for backlinks in (False, True) if is_mock(obj) else (False,):
            if result is not None:
                result.levels.clear()
                result.hits.clear()
            result = search(
                obj,
                roots,
                ignore=ignore_ids,
                max_depth=max(1, max_depth),
                max_chains=max(1, max_chains),
                skip_tracebacks=skip_tracebacks,
                backlinks=backlinks,
            )
            chains = _chains(result, roots, max(1, max_chains))
            if chains:
                break
        assert result is not None
        note = _note(result, chains, skip_tracebacks, max_depth)
    finally:
        # Drop every strong reference we took (frames above all) before returning.
        roots.keep.clear()
        roots.local_refs.clear()
        if gc_was_enabled:
            gc.enable()
        if result is not None:
            result.levels.clear()
            result.hits.clear()
        del extra, result
    return Explanation(target_type, target_repr, chains, note)


def _chains(result: Search, roots: Roots, max_chains: int) -> tuple[Chain, ...]:
    chains: list[Chain] = []
    labels_seen: set[tuple[str, ...]] = set()
    for depth, root, child in sorted(result.hits, key=lambda hit: hit[0]):
        if child is not None:
            rest = _path_down(child, depth - 1, result.levels)
            path = None if rest is None else [root, *rest]
        else:
            path = _path_down(root, depth, result.levels)
        if path is None:
            continue
        try:
            chain = describe(path, roots)
        except Exception as exc:  # naming is best effort; never lose the chain over it
            chain = _fallback(path, exc)
        del path
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


def _note(result: Search, chains: tuple[Chain, ...], skip_tb: bool, max_depth: int) -> str | None:
    if chains:
        return None
    if skip_tb and result.blocked_traceback:
        return (
            "only reachable through a traceback (sys.last_traceback, sys.last_value or an "
            "exception's __traceback__); ignored because skip_tracebacks=True"
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
