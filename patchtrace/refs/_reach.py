"""Can later code reach an object? One backward search, no chain named.

``reachable(obj, ignore=...)`` answers the question a leak check asks of a patch left on an
object (``patch.object(Foo, "foo").start()`` on a class the test defined): is there a chain
of strong references from a root (a module, a live frame, a class) down to ``obj`` that
does not pass through the objects in ``ignore`` (the patcher and mock's list of started
patchers), a traceback, the test runner's records or patchtrace's own bookkeeping? It is
the search :func:`~patchtrace.refs.explain` runs, stopped at the first root, with nothing
named; any doubt (the search gave up at ``max_depth``, or failed) answers True.

Everything here holds user objects only in locals; nothing survives the call.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from ._graph import Roots, ignored_ids, search
from ._safe import class_dict, mro, raw_dict

__all__ = ["patched_object_unreachable", "reachable"]


def reachable(obj: object, *, ignore: Iterable[object] = (), max_depth: int = 64) -> bool:
    """True unless no root reaches ``obj`` except through ``ignore``, a traceback, the test
    runner's records or patchtrace's own objects (see the module's docstring)."""
    extra: list[object] = list(ignore)
    ignore_ids = ignored_ids()
    ignore_ids.update(id(o) for o in extra)
    ignore_ids.add(id(extra))
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no collection of the heap we walk while we hold its temporaries
    roots: Roots | None = None
    result = None
    try:
        roots = Roots.snapshot()
        result = search(obj, roots, ignore=ignore_ids, max_depth=max(1, max_depth),
                        max_chains=1, skip_tracebacks=True, skip_runner=True,
                        extra_levels=0)
        return bool(result.hits) or not result.exhausted
    except Exception:
        return True
    finally:
        if result is not None:
            result.clear()
        if roots is not None:
            roots.keep.clear()
            roots.local_refs.clear()
        extra.clear()
        if gc_was_enabled:
            gc.enable()


def patched_object_unreachable(patcher: object) -> bool:
    """True when the object a started, never stopped ``mock`` patcher patched (its
    ``target``: ``patch.object``'s first argument; ``patch.dict``'s ``in_dict``) is
    reachable only through that patcher (``patcher.target``, its ``getter``'s closure)
    and mock's list of started patchers (``_patch._active_patches``): no later code can
    see the patch. False when we cannot tell (no patcher, a target named by a string)."""
    namespace = raw_dict(patcher)
    if namespace is None:
        return False
    target: Any = namespace.get("target", namespace.get("in_dict"))
    if target is None or type(target) is str or issubclass(type(target), ModuleType):
        return False  # a module is reachable from sys.modules: nothing to search
    ignore: list[object] = [patcher, namespace]
    started = _started_list(type(patcher))
    if started is not None:
        ignore.append(started)
    try:
        return not reachable(target, ignore=ignore)
    finally:
        ignore.clear()
        del target, namespace


def _started_list(cls: type) -> list[Any] | None:
    """mock's ``_patch._active_patches`` (``patch.dict``'s patcher appends to it too),
    found through the patcher's class's module, read raw."""
    for klass in mro(cls):
        value = class_dict(klass).get("_active_patches")
        if type(value) is list:
            return value
    module = sys.modules.get(str(class_dict(cls).get("__module__", "")))
    try:
        patch_cls = object.__getattribute__(module, "__dict__").get("_patch")
    except Exception:
        return None
    if isinstance(patch_cls, type):
        value = class_dict(patch_cls).get("_active_patches")
        if type(value) is list:
            return value
    return None
