"""``binding-changed`` and ``restore-mismatch``: bindings the scope set that differ now.

A binding recorded as set or deleted in the scope (module and class attributes, builtins,
``sys.modules`` entries, ``os.environ``) is compared with the state before the scope; a
value put back that is not the original (another wrapper, ``None`` for what did not exist)
is a botched restore. ``check_swaps`` does the same for ``obj.__class__ = ...`` and
``func.__code__ = ...``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Final

from ..._vocab import NOTHING, UNKNOWN, Kind
from ...values import is_mock, is_plain, same_value
from .._holders import Holders, hidden_module
from .._placeholder import resolved_placeholder
from .._read import current_value, inherited, summary, swapped_value, unwrap

if TYPE_CHECKING:
    from ...leak import Leak
    from ...ledger import Mutation
    from . import Context

__all__ = ["OPS", "SWAP_OPS", "check", "check_swaps"]

OPS: Final = frozenset({"set", "delete"})
SWAP_OPS: Final = frozenset({"class-assign", "code-assign"})


def check(records: Iterable[Mutation], ctx: Context) -> list[Leak]:
    handled = ctx.handled
    include_wide = ctx.wide
    groups: dict[tuple[str, str | None], list[Mutation]] = {}
    for mutation in records:
        if mutation.op not in ("set", "delete"):
            continue
        if mutation.source in ("watch", "scan") or (
            mutation.source == "audit" and mutation.target == "os.environ"
        ):
            groups.setdefault((mutation.target, mutation.name), []).append(mutation)
    out = []
    for key, group in groups.items():
        if key in handled:
            continue
        target, name = key
        # The state before the scope, when known, beats the first record's "before":
        # the module's own store (not recorded), or a patch, may have come first.
        original = UNKNOWN if include_wide else ctx.at_start(target, name)
        watch = ctx.watch
        own_at = watch.own_store_at(target, name) \
            if watch is not None and name is not None and not include_wide else None
        if own_at is not None and group[0].seq <= own_at:
            # A recorded store of this scope came before the module's own first store
            # (its baseline): that record's "before" is the state before the scope
            # (pyfakefs patches example.Path, reloads example, puts the real Path back).
            original = UNKNOWN
        if original is UNKNOWN:
            original = group[0].before_value()
        now = current_value(target, name)
        if same_value(original, now):
            continue  # put back, or set to what it was: nothing a later test can see
        if not include_wide and ctx.scope_binding(key, now):
            continue
        if _equal_copy(target, original, now):
            continue  # an equal copy of a plain container nobody else holds
        if original is UNKNOWN and summary(now) == group[0].before:
            continue  # sealed record: the object is gone, but what is there looks the same
        if ctx.explained_by_patch(target, name):
            continue
        setter = _last_setting(group, now)
        held = ctx.scope_values.get(key) if include_wide else None
        if setter is None and held is not None and held[1].matches(now):
            # The scope's own patch, put back equal while it was open (a plugin's resume
            # around each report makes a new bound method): still the scope's to undo.
            setter = group[-1]
        if setter is None:
            continue  # changed again by something we did not see: leave it to the scan
        if original is NOTHING and not is_mock(now) and _managed(target) and all(
                m.stack.written_by_library() for m in group):
            # A library filling in, for the first time, an attribute of something it
            # manages (pydantic completing a project's model class on first use):
            # lazy initialization, not pollution. Changing an existing binding, or
            # adding one to the standard library (time.clock = None), still is.
            continue
        if resolved_placeholder(original, now, group):
            # R11: a lazy-import placeholder put in its own place what it stands for,
            # on first use (lazy_importer's proxies in importlib_metadata): what later
            # code reads through the binding is what it read through the placeholder.
            continue
        handled.add(key)
        kind: Kind = "restore-mismatch" if _looks_restored(original, now, group) \
            else _binding_kind(target, original, now)
        if kind != "restore-mismatch":
            # The line that made the state that leaked: the first store of the value
            # now there, not a later one putting back what it had found (a helper's
            # restore of a value the test itself had set).
            setter = _first_setting(group, now) or setter
        leak = ctx.leak_from(setter, kind, now)
        leak.before = summary(original) if original is not UNKNOWN else group[0].before
        ctx.pending[id(leak)] = (original, now)
        if leak.where is None and name is not None:
            found = ctx.find_store(setter.scope.test, name,
                                     last=kind == "restore-mismatch", target=target)
            if found is not None:
                leak.where, leak.stack = found, [found]
        if leak.where is None and (setter.source == "scan" or not leak.stack) and \
                not (leak.value.is_mock or target == "builtins"):
            # Seen only by comparison (3.10/3.11), nowhere in the test's source, no mock:
            # most likely a library patching the standard library as it is imported;
            # or made with no frame of a library or the project on the way (pytest, a
            # plugin's hook). Library code the test called is kept, with where null.
            handled.discard(key)
            continue
        out.append(leak)
    return out


def check_swaps(records: Iterable[Mutation], ctx: Context) -> list[Leak]:
    """``obj.__class__ = ...`` and ``func.__code__ = ...`` (seen by the audit hook)
    still in place: the object or function is named by its target, so it is looked up
    again and its class or code compared with the one before the scope."""
    handled = ctx.handled
    groups: dict[tuple[str, str | None], list[Mutation]] = {}
    for mutation in records:
        if mutation.op in ("class-assign", "code-assign"):
            groups.setdefault((mutation.target, mutation.name), []).append(mutation)
    out = []
    for key, group in groups.items():
        if key in handled:
            continue
        original = group[0].before_value()
        now = swapped_value(group[0].target, group[0].name or "")
        if now is NOTHING or original is UNKNOWN or same_value(original, now):
            continue  # still, or again, the same code and defaults
        handled.add(key)
        leak = ctx.leak_from(group[-1], "binding-changed", now)
        leak.before = group[0].before
        ctx.pending[id(leak)] = (original, now)
        out.append(leak)
    return out


def _binding_kind(target: str, original: object, now: object) -> Kind:
    """The kind says what happened: in ``sys.modules`` a module removed is
    ``module-dropped`` and another module object in its place ``module-replaced``, seen as
    it happened (3.12+ watchers) or at the boundary alike."""
    if target == "sys.modules" and issubclass(type(original), ModuleType):
        if now is NOTHING:
            return "module-dropped"
        if issubclass(type(now), ModuleType):
            return "module-replaced"
    return "binding-changed"


def _looks_restored(original: object, now: object, group: Sequence[Mutation]) -> bool:
    """``now`` is a failed attempt to put ``original`` back: the same function in another
    wrapper (a staticmethod restored as a plain function), or, for a name that did not
    exist, ``None`` stored again by the code that set it (``saved = getattr(m, "x", None)``
    ... ``m.x = saved``). A value that is merely new (keys ``os.environ.update`` added) is
    a changed binding, not a botched restore."""
    if original is NOTHING:
        target, name = group[0].target, group[0].name
        if target.startswith("class:") and name is not None and \
                inherited(target, name) is now:
            return True  # what the class inherited, stored on it instead of deleted
        return now is None and len(group) > 1 and target != "os.environ"
    if original is UNKNOWN or now is NOTHING:
        return False
    return unwrap(original) is unwrap(now)


# ---------------------------------------------------------------------------------------------


def _first_setting(group: list[Mutation], now: object) -> Mutation | None:
    for mutation in group:
        if mutation.op == "delete":
            if now is NOTHING:
                return mutation
        elif same_value(mutation.after_value(), now):
            return mutation
    return None


def _last_setting(group: list[Mutation], now: object) -> Mutation | None:
    for mutation in reversed(group):
        value = mutation.after_value()
        if value is now or (now is NOTHING and mutation.op == "delete"):
            return mutation
        if mutation.target == "os.environ" and isinstance(now, str) and value == now:
            return mutation
    return None


def _managed(target: str) -> bool:
    """A module or class of the project or of an installed library (what a library can
    manage, such as a project's model classes), not of the standard library."""
    if not target.startswith(("module:", "class:")):
        return False
    dotted = target.partition(":")[2]
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        if name in sys.modules:
            return not hidden_module(name)
    return False


def _plain_container(obj: object, depth: int = 0) -> bool:
    """A dict, list or set whose keys and items are plain values (or such containers):
    its ``==`` runs no user code."""
    cls = type(obj)
    if depth > 5 or len(obj) > 1_000:  # type: ignore[arg-type]
        return False
    if cls is dict:
        return all(is_plain(k) for k in obj) and all(  # type: ignore[attr-defined]
            is_plain(v) or (type(v) in (dict, list, set) and _plain_container(v, depth + 1))
            for v in obj.values())  # type: ignore[attr-defined]
    if cls is list or cls is set:
        return all(is_plain(v) or (type(v) in (dict, list, set) and
                                   _plain_container(v, depth + 1)) for v in obj)  # type: ignore[attr-defined]
    return False


def _equal_copy(target: str, original: object, now: object) -> bool:
    """``now`` is an equal copy of ``original``, a plain dict, list or set that nothing
    reachable by name still holds: no later code can tell them apart (only ``id()``
    could). ``original = mod.target.copy()`` ... ``finally: mod.target = original``."""
    cls = type(original)
    if cls not in (dict, list, set) or type(now) is not cls:
        return False
    if not (_plain_container(original) and _plain_container(now)):
        return False
    try:
        if original != now:
            return False
    except Exception:
        return False
    return Holders("", [original]).of(original) is None
