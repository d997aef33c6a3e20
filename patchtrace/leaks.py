"""Turn the ledger and boundary comparisons into :class:`Leak` records.

A *boundary* is the end of a scope: a test (after its teardown, so function-scoped
fixtures are finalized), a wider fixture (after its finalizer), collection, or the process.
At a boundary the :class:`Detector` asks, in this order:

1. which patches started in the scope are still applied (``patch-not-stopped``);
2. which bindings set in the scope now differ from before it (``binding-changed``), or
   were put back to something that is not the original (``restore-mismatch``);
3. which process-wide resources differ from the snapshot at the scope's start
   (``resource-changed``, ``module-replaced``, ``module-dropped``);
4. which mocks created in the scope survived a garbage collection (``mock-survived``).

Survivors are confirmed by CPython's own full collections, not by collecting per test: a
``gc.callbacks`` hook notes when a generation-2 collection starts and stops; a mock whose
test had ended before that collection started and that is still alive after it is
reachable from somewhere. Its creation record keeps the blame exact; one last collection
at the end of the run confirms the rest. Nothing is frozen, and a test's own
``gc.collect()`` behaves as without us.

Changes made by a wider fixture's setup are *owned* by that fixture and checked when it is
finalized, not at the end of the test whose setup happened to run it.
"""

from __future__ import annotations

import builtins
import gc
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, Final, final

from . import _oracle
from . import stack as _stack
from ._reads import Reads
from .ledger import NOTHING, UNKNOWN, Mutation, Scope
from .naming import UNRESOLVED, find_path
from .sources import resources
from .stack import Frame
from .values import MISSING, ValueSummary, identity_key, is_mock, summarize

if TYPE_CHECKING:
    from ._tracer import Tracer
    from .sources.mock import MockCreation, MockSource
    from .sources.watch import WatchSource

__all__ = ["KINDS", "Detector", "Leak"]

_ATOMS: Final = (int, float, str, bytes, bool, complex)

KINDS: Final = (
    "patch-not-stopped",
    "binding-changed",
    "restore-mismatch",
    "mock-survived",
    "module-replaced",
    "module-dropped",
    "resource-changed",
)

FIXES: Final = {
    "patch-not-stopped": "stop it, or use it as a context manager / the mocker fixture",
    "patch-not-stopped:monkeypatch": (
        "call undo(), or use the monkeypatch fixture / MonkeyPatch.context()"
    ),
    "binding-changed": (
        "restore it in teardown, or set it with monkeypatch.setattr / mock.patch.object "
        "so that it is undone"
    ),
    "binding-changed:os.environ": (
        "restore it in teardown, or set it with monkeypatch.setenv / monkeypatch.delenv / "
        "mock.patch.dict(os.environ, ...) so that it is undone"
    ),
    "binding-changed:dict": (
        "restore it in teardown, or set it with monkeypatch.setitem / monkeypatch.delitem / "
        "mock.patch.dict so that it is undone"
    ),
    "restore-mismatch": (
        "restore the raw value (vars(cls)[name] or inspect.getattr_static), delete what did "
        "not exist, or let monkeypatch.setattr do the round trip"
    ),
    "mock-survived": (
        "do not let the mock escape into a cache, registry or thread; clear it in teardown"
    ),
    "module-replaced": (
        "use patch.dict(sys.modules, ...) or monkeypatch.setitem(sys.modules, ...); "
        "avoid importlib.reload in tests"
    ),
    "module-dropped": (
        "import the real module before patching sys.modules, or restore it afterwards"
    ),
    "resource-changed": "restore it in teardown (or use the matching pytest fixture)",
}


@final
class Leak:
    """One leak, as plain data (plus a weak reference to the leaked object, if any)."""

    __slots__ = (
        "_atom",
        "_ref",
        "alive_via",
        "before",
        "desc",
        "fixture",
        "id",
        "kind",
        "known",
        "name",
        "phase",
        "polluter",
        "reproduce",
        "source",
        "stack",
        "suggested_patch",
        "target",
        "token",
        "value",
        "verified",
        "victims",
        "where",
    )

    def __init__(
        self,
        kind: str,
        polluter: str,
        phase: str,
        target: str | None,
        name: str | None,
        *,
        fixture: str | None = None,
        where: Frame | None = None,
        stack: Sequence[Frame] = (),
        before: ValueSummary = MISSING,
        value: ValueSummary = MISSING,
        obj: object = NOTHING,
        desc: str | None = None,
        source: str | None = None,
        token: int | None = None,
    ) -> None:
        self.id = ""
        self.kind = kind
        self.polluter = polluter
        self.phase = phase
        self.fixture = fixture
        self.target = target
        self.name = name
        self.where = where
        self.stack = list(stack)
        self.before = before
        self.value = value
        self.alive_via: list[str] | None = None
        self.victims: list[str] = []
        self.desc = desc
        self.source = source
        self.token = token
        #: matches an entry of PATCHTRACE_BASELINE (see patchtrace.fix._baseline)
        self.known = False
        #: filled in when a report is written (patchtrace.fix): plain strings, or None
        self.reproduce: str | None = None
        self.suggested_patch: str | None = None
        #: set by ``python -m patchtrace fix --verify``; None when not tried
        self.verified: bool | None = None
        self._ref: weakref.ref[Any] | None = None
        # Immutable atoms cannot keep user objects alive: keep them to recognise the binding.
        self._atom: object = obj if type(obj) in _ATOMS else NOTHING
        if obj is not NOTHING and type(obj).__weakrefoffset__:
            try:
                self._ref = weakref.ref(obj)
            except TypeError:
                pass

    def obj(self) -> object:
        """The leaked object if it is still alive, else NOTHING."""
        if self._atom is not NOTHING:
            return self._atom
        if self._ref is None:
            return NOTHING
        value = self._ref()
        return NOTHING if value is None else value

    @property
    def label(self) -> str:
        from .ledger import _label

        if self.target is None:
            return self.value.repr
        return _label(self.target, self.name)

    @property
    def fix(self) -> str:
        if self.kind == "patch-not-stopped" and self.source == "monkeypatch":
            return FIXES["patch-not-stopped:monkeypatch"]
        if self.kind == "binding-changed" and self.target == "os.environ":
            return FIXES["binding-changed:os.environ"]
        if self.kind == "binding-changed" and self.target is not None and (
                self.target == "sys.modules" or self.target.startswith("dict:")):
            return FIXES["binding-changed:dict"]
        return FIXES.get(self.kind, "")

    def message(self) -> str:
        """One sentence naming the object, the line and the way out."""
        at = f" at {self.where.file}:{self.where.line}" if self.where else ""
        what = self.desc or self.label
        if self.kind == "patch-not-stopped":
            verb = "applied" if self.source == "monkeypatch" else "started"
            text = f"{what} {verb}{at} was never undone" if self.source == "monkeypatch" \
                else f"{what} {verb}{at} was never stopped"
        elif self.kind == "mock-survived":
            text = f"{self.value.repr} created{at} is still alive after its test ended"
        elif self.kind == "restore-mismatch":
            text = (f"{self.label} was put back{at} as {self.value.repr}, "
                    f"not the original {self.before.repr}")
        elif self.kind == "module-dropped":
            text = f"sys.modules[{self.name!r}] was removed{at} while the module is still in use"
        elif self.kind == "module-replaced" and self.desc and "reload" in self.desc:
            text = (f"{self.desc}{at} made new classes and functions while other modules "
                    "still hold the old ones")
        elif self.kind == "module-replaced":
            text = f"sys.modules[{self.name!r}] now holds another module object{at}"
        else:
            text = f"{self.label} changed{at}: {self.before.repr} -> {self.value.repr}"
        return f"{text}; {self.fix}" if self.fix else text

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "polluter": self.polluter,
            "phase": self.phase,
            "fixture": self.fixture,
            "target": self.target,
            "name": self.name,
            "where": self.where.to_json() if self.where else None,
            "stack": [f.to_json() for f in self.stack],
            "before": self.before.to_json(),
            "value": self.value.to_json(),
            "alive_via": self.alive_via,
            "victims": list(self.victims),
            "message": self.message(),
            "fix": self.fix,
            "known": self.known,
            "reproduce": self.reproduce,
            "suggested_patch": self.suggested_patch,
            "verified": self.verified,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Leak:
        where = data.get("where")
        leak = cls(
            str(data.get("kind")),
            str(data.get("polluter")),
            str(data.get("phase")),
            data.get("target"),
            data.get("name"),
            fixture=data.get("fixture"),
            where=Frame.from_json(where) if isinstance(where, dict) else None,
            stack=[Frame.from_json(f) for f in data.get("stack") or () if isinstance(f, dict)],
            before=ValueSummary.from_json(data.get("before") or {}),
            value=ValueSummary.from_json(data.get("value") or {}),
        )
        leak.id = str(data.get("id", ""))
        leak.alive_via = data.get("alive_via")
        leak.victims = list(data.get("victims") or ())
        leak.known = data.get("known") is True
        reproduce, patch, verified = (data.get(k) for k in
                                      ("reproduce", "suggested_patch", "verified"))
        leak.reproduce = reproduce if isinstance(reproduce, str) else None
        leak.suggested_patch = patch if isinstance(patch, str) else None
        leak.verified = verified if isinstance(verified, bool) else None
        return leak

    def __repr__(self) -> str:
        return f"<Leak {self.id} {self.kind} {self.label} by {self.polluter}>"


# ---------------------------------------------------------------------------------------------
# reading bindings back from target strings


def namespace_of(target: str) -> dict[str, Any] | None:
    """The live dict a target string names (module/class dicts, builtins, sys.modules)."""
    if target == "builtins":
        return builtins.__dict__
    if target == "sys.modules":
        return sys.modules
    if target.startswith("module:"):
        module = sys.modules.get(target[7:])
        return module.__dict__ if isinstance(module, ModuleType) else None
    if target.startswith("class:"):
        cls = _resolve_class(target[6:])
        if cls is None:
            return None
        from .sources.watch import _class_dict

        return _class_dict(cls)
    return None


def _resolve_class(dotted: str) -> type | None:
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if not isinstance(module, ModuleType):
            continue
        obj: object = module
        for part in parts[cut:]:
            namespace = obj.__dict__ if isinstance(obj, (ModuleType, type)) else None
            if namespace is None or part not in namespace:
                obj = NOTHING
                break
            obj = namespace[part]
        if issubclass(type(obj), type):
            return obj  # type: ignore[return-value]
    return None


def current_value(target: str, name: str | None) -> object:
    """What ``target``/``name`` holds now (raw, descriptors not invoked), or NOTHING."""
    if name is None:
        return NOTHING
    if target == "os.environ":
        return os.environ.get(name, NOTHING)
    if name == "__class__" or name.endswith((".__code__", ".__defaults__", ".__kwdefaults__")):
        return _swapped_value(target, name)
    namespace = namespace_of(target)
    if namespace is None:
        return NOTHING
    return namespace.get(name, NOTHING)


def _unwrap(value: object) -> object:
    if type(value) in (staticmethod, classmethod):
        return value.__func__  # type: ignore[attr-defined]
    return value


def _looks_restored(original: object, now: object) -> bool:
    """``now`` is a failed attempt to put ``original`` back (same function, other wrapper)."""
    if original is NOTHING:
        return True  # it did not exist; anything there now is a botched restore
    return _unwrap(original) is _unwrap(now)


# ---------------------------------------------------------------------------------------------


class _Wide:
    """An open fixture of wider-than-function scope, and what its setup changed."""

    __slots__ = ("before", "changes", "key", "mark_end", "mark_start", "name", "polluter",
                 "scope")

    def __init__(self, key: int, name: str, scope: str, polluter: str, mark_start: int) -> None:
        self.before = resources.take()
        self.key = key
        self.name = name
        self.scope = scope
        self.polluter = polluter
        self.mark_start = mark_start
        self.mark_end = mark_start
        self.changes: list[resources.Change] = []


class Detector:
    """Finds leaks at boundaries. One per run; driven by the pytest plugin or the glue."""

    def __init__(self, tracer: Tracer, *, rootdir: str | None = None) -> None:
        self.tracer = tracer
        self.config = tracer.config
        self.rootdir = rootdir
        self.leaks: list[Leak] = []
        self.tests = 0
        self._mark = len(tracer.ledger)
        self._snapshot = resources.take()
        self._wide: dict[int, _Wide] = {}
        self._fresh = False  # end() just ran: its snapshot is the next begin()'s baseline
        #: survivor bookkeeping: tests (or (test, fixture)) ended, at which epoch
        self._epoch = 0
        self._ended: dict[object, int] = {}
        self._gc_start_epoch = -1
        self._confirmed_epoch = -1
        self._checked_epoch = -1
        gc.callbacks.append(self._on_gc)
        self._mock_counts: dict[int, int] = {}
        #: targets the driver knows to be restored by someone else (pytest's warnings capture)
        self.ignore_targets: set[str] = set()
        #: keys changed by wider fixtures finalized during the current test
        self._released: set[tuple[str, str | None]] = set()
        #: threads a scope left running, judged once they had time to end (see _settle)
        self._pending_threads: list[tuple[weakref.ref[Any], float, Leak]] = []
        self._sources_seen: object = None
        self._watch_source: WatchSource | None = None
        self._mock_source: MockSource | None = None
        self._take_imported: Callable[[], Iterable[str]] | None = None

    # -- sources ---------------------------------------------------------------------------
    @property
    def _watch(self) -> WatchSource | None:
        sources = self.tracer.sources
        if self._sources_seen is not sources:
            self._cache_sources(sources)
        return self._watch_source

    @property
    def _mocks(self) -> MockSource | None:
        sources = self.tracer.sources
        if self._sources_seen is not sources:
            self._cache_sources(sources)
        return self._mock_source

    def _cache_sources(self, sources: list[Any]) -> None:
        """Look the sources up once per source list (several times per boundary otherwise)."""
        self._sources_seen = sources
        watch: WatchSource | None = self.tracer.source("watch")  # type: ignore[assignment]
        if watch is not None and watch.stored_by_test is None:
            watch.stored_by_test = self._stored_by_test
        self._watch_source = watch
        self._mock_source = self.tracer.source("mock")  # type: ignore[assignment]
        audit = self.tracer.source("audit")
        self._take_imported = getattr(audit, "take_imported", None)

    def _stored_by_test(self, name: str) -> bool:
        test = self.tracer.scope.test
        return not test.startswith("<") and \
            _oracle.find_store(test, self.rootdir, name) is not None

    # -- scope start -------------------------------------------------------------------------
    def begin(self) -> None:
        """A scope (test) starts: new baseline. Cheap when nothing changed in between."""
        self._released = set()
        self._imported()  # forget imports made between tests
        self.tracer.ledger.seal()
        self._mark = len(self.tracer.ledger)
        if not self._fresh:
            # Outside pytest's test loop (first test, unittest, after collection): what
            # changed since the last boundary belongs to nobody we could name.
            watch = self._watch
            if watch is not None:
                watch.refresh()
                watch.scan()
            self._snapshot = resources.take()
        # else: the previous end() just took both, at the same nesting of pytest's wrappers
        self._fresh = False
        watch = self._watch
        if watch is not None:
            watch.new_scope()
        if self.leaks:
            self._mock_counts = {identity_key(leak): _mock_activity(leak.obj())
                                 for leak in self.live()}

    def rebaseline(self) -> None:
        """Forget everything so far: the program proper starts now (process mode)."""
        watch = self._watch
        if watch is not None:
            watch.refresh()
            watch.scan()
        self.tracer.ledger.seal()
        self._mark = len(self.tracer.ledger)
        self._snapshot = resources.take()

    def wide_setup_start(self, key: int, name: str, scope: str, polluter: str) -> None:
        self._wide[key] = _Wide(key, name, scope, polluter, len(self.tracer.ledger))

    def wide_setup_end(self, key: int) -> None:
        wide = self._wide.get(key)
        if wide is None:
            return
        wide.mark_end = len(self.tracer.ledger)
        wide.changes = resources.diff(wide.before, resources.take())

    # -- scope end ---------------------------------------------------------------------------
    def end(self, scope: Scope, *, collection: bool = False) -> list[Leak]:
        """The scope that began last has ended: find its leaks (sealing its records)."""
        if not scope.test.startswith("<"):
            self.tests += 1
        ledger = self.tracer.ledger
        watch = self._watch
        if watch is not None:
            saved, self.tracer.scope = self.tracer.scope, Scope(scope.test, "call")
            try:
                watch.scan()
            finally:
                self.tracer.scope = saved
            watch.refresh()  # track what the test imported, from its state now
        records = ledger.since(self._mark)
        test = scope.test
        if self._wide:
            owned = self._owned_marks()
            mine = [m for m in records if m.scope.test == test and not m.scope.wide
                    and not _in_marks(m.seq, owned)]
        else:
            mine = [m for m in records if m.scope.test == test and not m.scope.wide]
        if test == "<process>":
            # A script is the program: its own environment is its business. What it patched
            # in other modules and never put back is still reported.
            mine = [m for m in mine if m.target != "os.environ"]
        found: list[Leak] = []
        # What open wider fixtures set up, or finalized fixtures undid, is theirs to answer for.
        handled: set[tuple[str, str | None]] = {
            (c.target, c.name) for w in self._wide.values() for c in w.changes}
        handled |= self._released
        if mine:  # each pass looks only at its own kind of record
            ops = {m.op for m in mine}
            if "unpatch" in ops:
                handled |= self._repaired(mine, scope)
            if "patch" in ops:
                found.extend(self._patches(mine, handled))
            if "set" in ops or "delete" in ops:
                found.extend(self._bindings(mine, handled))
            if "reload" in ops:
                found.extend(self._reloads(mine, handled))
            if "class-assign" in ops or "code-assign" in ops:
                found.extend(self._swaps(mine, handled))
        found.extend(self._dropped(mine, handled, scope))
        after = resources.take()
        changes = resources.diff(self._snapshot, after)
        found.extend(self._resources(changes, mine, handled, scope, collection=collection))
        if watch is not None:
            watch.new_scope()  # its baselines hold user objects: drop them now
        ledger.seal()  # drop our strong references before asking what keeps mocks alive
        if not collection and not scope.test.startswith("<"):
            self._epoch += 1
            self._ended[scope.test] = self._epoch
        found.extend(self._survivors(found))
        found.extend(self._settle_threads())
        self._snapshot = after
        ledger.seal()
        self._mark = len(ledger)
        # Reusable by the next begin() only between tests: both sit at the same nesting of
        # pytest's capture and logging wrappers (collection and the process do not).
        self._fresh = not collection and not scope.test.startswith("<")
        return self._accept(found)

    def wide_finalized(self, key: int) -> list[Leak]:
        """A wider fixture's finalizer ran: does anything its setup did remain?"""
        wide = self._wide.pop(key, None)
        if wide is None:
            return []
        self._released.update((c.target, c.name) for c in wide.changes)
        self._epoch += 1
        self._ended[(wide.polluter, wide.name)] = self._epoch
        records = [m for m in self.tracer.ledger.since(wide.mark_start)
                   if m.seq <= wide.mark_end]
        for record in records:
            record.scope = Scope(wide.polluter, "setup", wide.name, wide.scope)
        found: list[Leak] = []
        handled: set[tuple[str, str | None]] = set()
        found.extend(self._patches(records, handled, include_wide=True))
        found.extend(self._bindings(records, handled, include_wide=True))
        made = {(c.target, c.name) for c in wide.changes}
        for change in resources.diff(wide.before, resources.take()):
            key2 = (change.target, change.name)
            if key2 in handled or key2 not in made:
                continue
            found.append(self._leak_from_change(
                change, records, Scope(wide.polluter, "setup", wide.name, wide.scope)))
        for leak in found:
            leak.fixture = wide.name
            leak.polluter = wide.polluter
            leak.phase = "setup"
        return self._accept(found)

    def finish(self) -> list[Leak]:
        """End of the run: one full collection confirms every remaining survivor.

        A young collection first: when it leaves no mock of an ended scope alive, there is
        nothing to confirm and the full collection (~30 ms on a pytest-sized heap) is saved.
        """
        gc.collect(1)
        mocks = self._mocks
        epoch = self._epoch
        ended = self._ended
        if mocks is not None and any(True for _ in mocks.alive_created_in(
                lambda s: ended.get((s.test, s.fixture) if s.wide else s.test, epoch + 1)
                <= epoch)):
            gc.collect()
        self._confirmed_epoch = self._epoch
        return self._accept([*self._survivors([]), *self._settle_threads(final=True)])

    def close(self) -> None:
        try:
            gc.callbacks.remove(self._on_gc)
        except ValueError:
            pass

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Runs inside the collector: bookkeeping only, no allocation-heavy work.
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_start_epoch = self._epoch
        elif phase == "stop" and self._gc_start_epoch > self._confirmed_epoch:
            self._confirmed_epoch = self._gc_start_epoch

    # -- the four questions ------------------------------------------------------------------
    def _owned_marks(self) -> list[tuple[int, int]]:
        return [(w.mark_start, w.mark_end) for w in self._wide.values()]

    def _patches(
        self, records: Iterable[Mutation], handled: set[tuple[str, str | None]],
        include_wide: bool = False,
    ) -> list[Leak]:
        applied = self.tracer.ledger.applied
        out = []
        for mutation in records:  # in order of application, like ledger.active()
            if mutation.op != "patch" or mutation.token is None or \
                    applied(mutation.token) is not mutation:
                continue
            if mutation.scope.wide and not include_wide:
                continue
            handled.add((mutation.target, mutation.name))
            out.append(self._leak_from(mutation, "patch-not-stopped", mutation.after_value()))
        return out

    def _bindings(
        self, records: Iterable[Mutation], handled: set[tuple[str, str | None]],
        include_wide: bool = False,
    ) -> list[Leak]:
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
            original = group[0].before_value()
            if not include_wide and name is not None and self._watch is not None:
                # The value at the scope's start, when known, beats the first record's
                # "before": the module's own store (not recorded) may have come first.
                base = self._watch.baseline(target, name)
                if base is not UNKNOWN:
                    original = base
            now = current_value(target, name)
            if now is original or (target == "os.environ" and now == original):
                continue  # restored
            if original is UNKNOWN and _summary(now) == group[0].before:
                continue  # sealed record: the object is gone, but what is there looks the same
            if self._explained_by_patch(target, name, now):
                continue
            setter = _last_setting(group, now)
            if setter is None:
                continue  # changed again by something we did not see: leave it to the scan
            handled.add(key)
            kind = "binding-changed"
            if _looks_restored(original, now) and (original is not NOTHING or len(group) > 1):
                kind = "restore-mismatch"
            leak = self._leak_from(setter, kind, now)
            leak.before = group[0].before
            if leak.where is None and name is not None:
                found = _oracle.find_store(setter.scope.test, self.rootdir, name,
                                           last=kind == "restore-mismatch")
                if found is not None:
                    leak.where, leak.stack = found, [found]
            if leak.where is None and not (leak.value.is_mock or target == "builtins"):
                # Seen only by comparison (3.10/3.11), nowhere in the test's source, no mock:
                # most likely a library patching the standard library as it is imported.
                handled.discard(key)
                continue
            out.append(leak)
        return out

    def _reloads(
        self, records: Iterable[Mutation], handled: set[tuple[str, str | None]]
    ) -> list[Leak]:
        out = []
        for mutation in records:
            if mutation.op != "reload" or (mutation.target, mutation.name) in handled:
                continue
            handled.add((mutation.target, mutation.name))
            out.append(self._leak_from(mutation, "module-replaced", mutation.after_value()))
        return out

    def _swaps(
        self, records: Iterable[Mutation], handled: set[tuple[str, str | None]]
    ) -> list[Leak]:
        """``obj.__class__ = ...`` and ``func.__code__ = ...`` (seen by the audit hook)
        still in place: the object or function is named by its target, so it is looked up
        again and its class or code compared with the one before the scope."""
        groups: dict[tuple[str, str | None], list[Mutation]] = {}
        for mutation in records:
            if mutation.op in ("class-assign", "code-assign"):
                groups.setdefault((mutation.target, mutation.name), []).append(mutation)
        out = []
        for key, group in groups.items():
            if key in handled:
                continue
            original = group[0].before_value()
            now = _swapped_value(group[0].target, group[0].name or "")
            if now is NOTHING or original is UNKNOWN or now is original:
                continue
            handled.add(key)
            leak = self._leak_from(group[-1], "binding-changed", now)
            leak.before = group[0].before
            out.append(leak)
        return out

    def _imported(self) -> list[str]:
        if self._sources_seen is not self.tracer.sources:
            self._cache_sources(self.tracer.sources)
        take = self._take_imported
        return list(take()) if take is not None else []

    def _dropped(
        self, records: list[Mutation], handled: set[tuple[str, str | None]], scope: Scope
    ) -> list[Leak]:
        """Imported during the scope, gone from sys.modules, still an attribute of its
        package: the next import makes a second copy (``patch.dict(sys.modules)``)."""
        out = []
        for name in dict.fromkeys(self._imported()):
            if name in sys.modules or "." not in name or ("sys.modules", name) in handled:
                continue
            if name.startswith("patchtrace."):
                continue  # ours, imported to report and dropped by pytester's restore
            parent_name, _, child = name.rpartition(".")
            parent = sys.modules.get(parent_name)
            orphan = parent.__dict__.get(child) if isinstance(parent, ModuleType) else None
            if not isinstance(orphan, ModuleType):
                continue
            handled.add(("sys.modules", name))
            setter = next((m for m in reversed(records)
                           if m.target == "sys.modules" and m.op in ("patch", "unpatch")), None)
            if setter is not None:
                leak = self._leak_from(setter, "module-dropped", orphan)
                leak.name = name
            else:
                leak = Leak("module-dropped", scope.test, "call", "sys.modules", name,
                            obj=orphan)
            leak.before, leak.value = summarize(orphan), MISSING
            out.append(leak)
        return out

    def _repaired(self, records: list[Mutation], scope: Scope) -> set[tuple[str, str | None]]:
        """Keys this scope put back by undoing a patch another scope leaked
        (``patch.stopall()``, ``monkeypatch.undo()`` on a shared instance): a repair,
        not pollution. The earlier leak stays reported; it is just no longer in place."""
        out: set[tuple[str, str | None]] = set()
        ledger = self.tracer.ledger
        mark = self._mark
        for mutation in records:
            if mutation.op != "unpatch" or mutation.token is None or mutation.token > mark:
                continue  # not an undo, or the undo of a patch made in this same scope
            earlier = ledger.get(mutation.token)
            if earlier is not None and earlier.op == "patch" and \
                    earlier.scope.test != scope.test:
                out.add((mutation.target, mutation.name))
        return out

    def _explained_by_patch(self, target: str, name: str | None, now: object) -> bool:
        for active in self.tracer.ledger.active():
            m = active.mutation
            if m.target == target and m.name == name:
                return True
        return False

    def _resources(
        self,
        changes: list[resources.Change],
        records: list[Mutation],
        handled: set[tuple[str, str | None]],
        scope: Scope,
        *,
        collection: bool,
    ) -> list[Leak]:
        if not changes:
            return []
        out = []
        active = {(a.mutation.target, a.mutation.name) for a in self.tracer.ledger.active()}
        active_targets = {t for t, _ in active}
        for change in changes:
            key = (change.target, change.name)
            if key in handled or key in active:
                continue
            if scope.test == "<process>" and change.target == "os.environ":
                continue
            if change.target in active_targets and change.kind != "binding-changed":
                continue  # e.g. a patch.dict(sys.modules) still active covers its entries
            if collection and change.kind == "resource-changed":
                continue  # pytest itself sets sys.path, capture and so on while collecting
            if change.before is not NOTHING and any(
                    leak.obj() is change.before for leak in self.leaks
                    if leak.target == change.target and leak.name == change.name):
                continue  # it replaced a value an earlier test leaked: a repair (pytest's
                # capture putting its stream back over a stale sys.stdout), not pollution
            leak = self._leak_from_change(change, records, scope)
            if (collection or scope.test == "<process>") and leak.where is None:
                continue  # unattributable change by the program or pytest itself, not a test
            if change.kind == "binding-changed" and leak.where is None and \
                    change.target in ("module:sys", "module:warnings"):
                # An attribute of sys/warnings the test's source does not store: pytest or a
                # plugin swapping it (sys.unraisablehook). The streams and hooks compared
                # as resources (resource-changed) are always reported.
                continue
            handled.add(key)
            if change.target == "module:threading" and change.kind == "resource-changed":
                try:
                    self._pending_threads.append(
                        (weakref.ref(change.after), time.monotonic(), leak))
                    continue
                except TypeError:
                    pass
            out.append(leak)
        return out

    def _settle_threads(self, *, final: bool = False) -> list[Leak]:
        """Threads a scope left running are leaks only if they are still running a while
        later (as in CPython's regrtest, which waits up to a second): an executor told to
        shut down with ``wait=False`` (asyncio's ``loop.close()``) ends on its own."""
        if not self._pending_threads:
            return []
        out: list[Leak] = []
        keep: list[tuple[weakref.ref[Any], float, Leak]] = []
        now = time.monotonic()
        for ref, seen, leak in self._pending_threads:
            thread = ref()
            if thread is None:
                continue
            if final:
                try:
                    thread.join(max(0.0, _THREAD_GRACE - (time.monotonic() - seen)))
                except Exception:
                    pass
            if not thread.is_alive():
                continue
            if final or now - seen >= _THREAD_GRACE:
                out.append(leak)
            else:
                keep.append((ref, seen, leak))
        self._pending_threads = keep
        return out

    def _leak_from_change(
        self, change: resources.Change, records: list[Mutation], scope: Scope
    ) -> Leak:
        setter = None
        for mutation in reversed(records):
            if mutation.target == change.target and (
                mutation.name == change.name or change.name is None or mutation.name is None
            ):
                setter = mutation
                break
        if setter is not None:
            leak = self._leak_from(setter, change.kind, change.after)
        else:
            leak = Leak(change.kind, scope.test, scope.phase if scope.phase != "teardown"
                        else "call", change.target, change.name, fixture=scope.fixture,
                        value=_summary(change.after), obj=change.after)
            if change.name is not None and change.target in (
                    "sys.modules", "builtins", "module:sys", "module:warnings"):
                found = _oracle.find_store(scope.test, self.rootdir, change.name,
                                           subscript=change.target == "sys.modules")
                if found is not None:
                    leak.where, leak.stack = found, [found]
        leak.before = _summary(change.before)
        leak.value = _summary(change.after)
        return leak

    def _survivors(self, found: list[Leak]) -> list[Leak]:
        """Mocks whose scope ended before the last full collection began, still alive."""
        mocks = self._mocks
        confirmed = self._confirmed_epoch
        if mocks is None or confirmed <= self._checked_epoch:
            return []
        self._checked_epoch = confirmed
        ended = self._ended

        def done(s: Scope) -> bool:
            key: object = (s.test, s.fixture) if s.wide else s.test
            epoch = ended.get(key)
            return epoch is not None and epoch <= confirmed

        out: list[Leak] = []
        known = {id(leak.obj()) for leak in [*self.leaks, *found] if leak.obj() is not NOTHING}
        for obj, record in mocks.alive_created_in(done):
            mocks.forget(obj)  # judged once
            if id(obj) in known or _held_by_known(obj, self.tracer):
                continue
            chains = _alive_via(obj)
            if chains is not None and not chains:
                continue  # only a traceback (or nothing we can name) keeps it
            leak = self._leak_from_creation(obj, record)
            leak.alive_via = chains
            out.append(leak)
        return out

    # -- building records ----------------------------------------------------------------------
    def _frames(self, stack: _stack.Stack) -> tuple[Frame | None, list[Frame]]:
        frames = [f.relative_to(self.rootdir) for f in stack.frames()]
        where = stack.where()
        return (where.relative_to(self.rootdir) if where else None), frames

    def _leak_from(self, mutation: Mutation, kind: str, obj: object) -> Leak:
        stack = mutation.stack
        if mutation.op == "unpatch" and mutation.token is not None and stack.where() is None:
            # An undo run by pytest's finalizer (monkeypatch) that put back a stale value:
            # the line to show is the patch it undid.
            patch = self.tracer.ledger.get(mutation.token)
            if patch is not None:
                stack = patch.stack
        where, frames = self._frames(stack)
        scope = mutation.scope
        return Leak(
            kind, scope.test, scope.phase, _named_target(mutation), mutation.name,
            fixture=scope.fixture, where=where, stack=frames, before=mutation.before,
            value=mutation.after if obj is NOTHING else _summary(obj), obj=obj,
            desc=mutation.desc, source=mutation.source, token=mutation.token,
        )

    def _leak_from_creation(self, obj: object, record: MockCreation) -> Leak:
        where, frames = self._frames(record.stack)
        return Leak(
            "mock-survived", record.scope.test, record.scope.phase, None, None,
            fixture=record.scope.fixture, where=where, stack=frames, before=MISSING,
            value=summarize(obj), obj=obj,
        )

    def _accept(self, found: list[Leak]) -> list[Leak]:
        accepted = []
        for leak in found:
            if self.config.ignored(leak.target, leak.name, leak.label):
                continue
            if leak.target in self.ignore_targets:
                continue
            if leak.where is None and leak.source in ("mock", "monkeypatch", "audit"):
                continue  # made by pytest, a plugin or the standard library, not by user code
            leak.id = f"L{len(self.leaks) + 1}"
            if leak.alive_via is None and leak.kind != "resource-changed":
                obj = leak.obj()
                if obj is not NOTHING and leak.target is not None:
                    leak.alive_via = _binding_path(leak.target, leak.name)
            self.leaks.append(leak)
            accepted.append(leak)
        return accepted

    # -- after the fact: live leaks and victims ----------------------------------------------
    def live(self) -> list[Leak]:
        """Leaks whose leaked binding is still in place now."""
        out = []
        active = {a.mutation.token for a in self.tracer.ledger.active()}
        for leak in self.leaks:
            if leak.kind == "patch-not-stopped":
                if leak.token in active:
                    out.append(leak)
            elif leak.kind == "mock-survived":
                if leak.obj() is not NOTHING:
                    out.append(leak)
            elif leak.target is not None:
                obj = leak.obj()
                now = current_value(leak.target, leak.name)
                if obj is not NOTHING and (now is obj or (type(obj) is str and now == obj)):
                    out.append(leak)
        return out

    def _leaked_packages(self) -> frozenset[str]:
        """Top-level packages holding live leaks: their code is followed when looking for
        what a failing test read, even when installed (a suite testing its installed
        package, as tox and nox runs do)."""
        out = set()
        for leak in self.live():
            target = leak.target or ""
            if target.startswith(("module:", "class:")):
                out.add(target.partition(":")[2].partition(".")[0])
        return frozenset(out)

    def victim_of(
        self, test: str, reads: Callable[[frozenset[str]], Reads | set[str]],
        failure_text: str = "",
    ) -> list[Leak]:
        """Live leaks a failing ``test`` used: touched a leaked mock, could have read a
        leaked binding (its code or the project code it calls names it, through its
        module or class: see ``_reads``), or failed on a leaked value."""
        found: Reads | set[str] | None = None
        hits = []
        for leak in self.live():
            obj = leak.obj()
            used = False
            if obj is not NOTHING and is_mock(obj):
                before = self._mock_counts.get(identity_key(leak))
                used = before is not None and _mock_activity(obj) > before
            if not used and leak.name:
                if found is None:
                    found = reads(self._leaked_packages())
                used = _read_by(found, leak)
            if not used and type(obj) is str and len(obj) >= 3 and failure_text:
                used = repr(obj) in failure_text
            if used:
                if test not in leak.victims:
                    leak.victims.append(test)
                hits.append(leak)
        return hits


def _read_by(found: Reads | set[str], leak: Leak) -> bool:
    path = leak.name or ""
    if path.endswith((".__code__", ".__defaults__", ".__kwdefaults__")):
        path = path.rpartition(".")[0]  # func.__code__ is read as func
    name = path.rsplit(".", 1)[-1]
    if isinstance(found, set):
        return name in found
    if leak.target == "os.environ":
        return name in found.consts
    if leak.target == "sys.modules":
        return name in found.consts or name.rpartition(".")[2] in found.names
    owner = _namespace_of(leak.target) if leak.target else None
    if owner is None:
        return found.read(name)
    return found.read(name, owner)


def _namespace_of(target: str) -> object | None:
    """The module or class a ``module:``/``class:`` target names, if it is loaded."""
    if target.startswith("module:"):
        return sys.modules.get(target[7:])
    if target.startswith("class:"):
        return _resolve_class(target[6:])
    return None


def _swapped_value(target: str, name: str) -> object:
    """The class (``__class__``) or code/defaults (``func.__code__``) there now."""
    owner = _namespace_of(target)
    if owner is None:
        return NOTHING
    if name == "__class__":
        return type(owner)
    path, _, attr = name.rpartition(".")
    if "<locals>" in path or attr not in ("__code__", "__defaults__", "__kwdefaults__"):
        return NOTHING  # a local function: nobody else can call it after its test
    obj: object = owner
    for part in path.split("."):
        namespace = obj.__dict__ if isinstance(obj, (ModuleType, type)) else None
        value = namespace.get(part) if namespace is not None else None
        if type(value) in (staticmethod, classmethod):
            value = value.__func__  # type: ignore[union-attr]
        if value is None:
            return NOTHING
        obj = value
    if type(obj) is not FunctionType:
        return NOTHING
    return getattr(obj, attr, NOTHING)


def _named_target(mutation: Mutation) -> str:
    """``object:?`` made readable, when the instance is still reachable from a module."""
    target = mutation.target
    holder = mutation.holder() if mutation.holder is not None else None
    if target != UNRESOLVED or holder is None:
        return target
    try:
        path = find_path(holder)
    except Exception:
        return target
    return f"object:{path}" if path else target


#: How long a thread left by a scope may take to end before it counts as leaked (seconds).
_THREAD_GRACE: Final = 1.0


def _in_marks(seq: int, marks: list[tuple[int, int]]) -> bool:
    return any(start < seq <= end for start, end in marks)


def _last_setting(group: list[Mutation], now: object) -> Mutation | None:
    for mutation in reversed(group):
        value = mutation.after_value()
        if value is now or (now is NOTHING and mutation.op == "delete"):
            return mutation
        if mutation.target == "os.environ" and isinstance(now, str) and value == now:
            return mutation
    return None


def _summary(obj: object) -> ValueSummary:
    return MISSING if obj is NOTHING else summarize(obj)


def _mock_activity(obj: object) -> int:
    """How much a mock has been used: recorded calls plus children, read from __dict__."""
    if obj is NOTHING or not is_mock(obj):
        return -1
    try:
        state = object.__getattribute__(obj, "__dict__")
        inner = state.get("mock")
        if inner is not None:  # an autospecced function
            state = object.__getattribute__(inner, "__dict__")
        return len(state.get("_mock_mock_calls") or ()) + len(state.get("_mock_children") or {})
    except Exception:
        return -1


def _held_by_known(obj: object, tracer: Tracer) -> bool:
    """A mock bound by a patch that is still active is reported as that patch."""
    return any(active.mutation.after_value() is obj for active in tracer.ledger.active())


def _alive_via(obj: object) -> list[str] | None:
    """Readable chain from a root, [] when only a traceback keeps it, None if unknown."""
    try:
        from . import refs
    except ImportError:
        return None
    try:
        explanation = refs.explain(obj, max_chains=1, skip_tracebacks=True)
    except Exception:
        return None
    if not explanation.chains:
        return []
    return explanation.chains[0].labels()


def _binding_path(target: str, name: str | None) -> list[str] | None:
    if target.startswith("module:"):
        return [f"module {target[7:]}", f"attribute {name}"] if name else [f"module {target[7:]}"]
    if target.startswith("class:"):
        return [f"class {target[6:]}", f"class attribute {name}"]
    if target == "builtins":
        return ["module builtins", f"attribute {name}"]
    if target == "sys.modules":
        return [f"sys.modules[{name!r}]"]
    return None


