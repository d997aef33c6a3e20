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
import functools
import gc
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from types import FunctionType, ModuleType
from typing import TYPE_CHECKING, Any, Final, cast, final

from . import _copies, _oracle, _victims
from . import stack as _stack
from ._reads import Reads
from ._vocab import ATOMS as _ATOMS
from ._vocab import KINDS, Kind
from .ledger import COLLECTION, NOTHING, UNKNOWN, Mutation, Scope
from .naming import UNRESOLVED, find_path
from .sources import resources
from .sources.calls import explains
from .stack import Frame
from .values import (
    MISSING,
    ValueSummary,
    identity_key,
    is_mock,
    is_plain,
    safe_repr,
    same_value,
    summarize,
)

if TYPE_CHECKING:
    from ._tracer import Tracer
    from .config import Config
    from .sources.mock import MockCreation, MockSource
    from .sources.watch import WatchSource

__all__ = ["KINDS", "Detector", "Leak"]

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
    "module-reloaded": (
        "reload it back in a finally: block only after undoing what it read, do not keep the "
        "old classes or functions (from-imports, instances, registries), or avoid "
        "importlib.reload in tests"
    ),
    "patch-dormant": (
        "stop it (patcher.stop() or addCleanup(patcher.stop)), or use it as a context manager"
    ),
    "module-dropped": (
        "import the real module before patching sys.modules, or restore it afterwards"
    ),
    "resource-changed": "restore it in teardown (or use the matching pytest fixture)",
    "collection": (
        "never mutate sys.modules or builtins at module scope in conftest.py; use a fixture "
        "(monkeypatch.setitem / setattr / setenv, or patch.dict in a yield fixture) so that "
        "it is undone"
    ),
    "resource-changed:logging": (
        "pass disable_existing_loggers=False to dictConfig/fileConfig, remove the handlers "
        "and restore the levels you set in teardown, or use the caplog fixture"
    ),
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
        "repeat_tests",
        "repeats",
        "reproduce",
        "source",
        "stack",
        "suggested_patch",
        "target",
        "token",
        "value",
        "verified",
        "victim_evidence",
        "victims",
        "where",
    )

    def __init__(
        self,
        kind: Kind,
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
        #: victim node id -> what it used, in words (CONTRACT: never a link without one)
        self.victim_evidence: dict[str, str] = {}
        #: later tests that left the same change (kind, target, name, type of value)
        self.repeats = 0
        self.repeat_tests: list[str] = []
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
        if self.polluter == COLLECTION.test and self.target is not None:
            return FIXES["collection"]  # a conftest's or test module's import-time store
        if self.kind == "patch-not-stopped" and self.source == "monkeypatch":
            return FIXES["patch-not-stopped:monkeypatch"]
        if self.kind == "binding-changed" and self.target == "os.environ":
            return FIXES["binding-changed:os.environ"]
        if self.kind == "binding-changed" and self.target is not None and (
                self.target == "sys.modules" or self.target.startswith("dict:")):
            return FIXES["binding-changed:dict"]
        if self.kind == "resource-changed" and self.target == "logging":
            return FIXES["resource-changed:logging"]
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
            if self.desc:
                text += f": {self.desc}"
        elif self.kind == "module-reloaded":
            text = (f"importlib.reload({self.name}){at} left the module other than it "
                    f"was before the test: {self.desc or 'its namespace changed'}")
        elif self.kind == "patch-dormant":
            text = (f"{what} started{at} was never stopped; an enclosing patch already put "
                    f"{self.label} back, but the patcher is still in mock's active list, so "
                    f"a later patch.stopall() would set it to {self.before.repr} again")
        elif self.kind == "module-replaced":
            text = f"sys.modules[{self.name!r}] now holds another module object{at}"
            if self.desc:
                text += f": {self.desc}"
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
            "victim_evidence": {v: self.victim_evidence.get(v, "") for v in self.victims},
            "repeats": self.repeats,
            "repeat_tests": list(self.repeat_tests),
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
            cast(Kind, str(data.get("kind"))),  # a report's kind, as written (not checked)
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
        evidence = data.get("victim_evidence")
        if isinstance(evidence, dict):
            leak.victim_evidence = {str(k): str(v) for k, v in evidence.items()}
        repeats = data.get("repeats")
        leak.repeats = repeats if type(repeats) is int else 0
        leak.repeat_tests = [str(t) for t in data.get("repeat_tests") or ()]
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


def _inherited(target: str, name: str) -> object:
    """What ``name`` resolves to on a base of the class ``target`` names (raw, from the
    bases' dicts), or NOTHING."""
    cls = _resolve_class(target[6:])
    if cls is None:
        return NOTHING
    from .sources.watch import _class_dict

    try:
        mro = type.__dict__["__mro__"].__get__(cls)
    except Exception:
        return NOTHING
    for base in mro[1:]:
        namespace = _class_dict(base)
        if namespace is not None and name in namespace:
            return namespace[name]
    return NOTHING


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
                _inherited(target, name) is now:
            return True  # what the class inherited, stored on it instead of deleted
        return now is None and len(group) > 1 and target != "os.environ"
    if original is UNKNOWN or now is NOTHING:
        return False
    return _unwrap(original) is _unwrap(now)


# ---------------------------------------------------------------------------------------------


class _Wide:
    """An open fixture of wider-than-function scope, and what its setup changed."""

    __slots__ = ("before", "changes", "key", "mark_end", "mark_start", "name", "polluter",
                 "scope")

    def __init__(self, key: int, name: str, scope: str, polluter: str, mark_start: int,
                 calls: int | None = None) -> None:
        self.before = resources.take(calls)
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
        self._snapshot = resources.take(self.tracer.calls)
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
        #: leak ids are ``{id_prefix}L{n}``, n counting every leak accepted (an xdist worker
        #: sets ``gw0-``): an id, once given, is the leak's in every output
        self.id_prefix = ""
        self._numbered = 0
        #: keys changed by wider fixtures finalized during the current test
        self._released: set[tuple[str, str | None]] = set()
        #: threads a scope left running, judged once they had time to end (see _settle)
        self._pending_threads: list[tuple[weakref.ref[Any], float, Leak]] = []
        self._sources_seen: object = None
        self._watch_source: WatchSource | None = None
        self._mock_source: MockSource | None = None
        self._take_imported: Callable[[], Iterable[str]] | None = None
        self._take_reloaded: Callable[[], dict[str, tuple[ModuleType, dict[str, Any]]]] | \
            None = None
        #: (target, name) -> the value before the first leak reported on it: a later scope
        #: that puts it back repairs, it does not pollute (held without keeping it alive)
        self._originals: dict[tuple[str, str | None], _Held] = {}
        #: id(leak) -> (value before, value now) of leaks found at this boundary, until
        #: _accept (strong references for the length of one boundary check only)
        self._pending: dict[int, tuple[object, object]] = {}
        #: (kind, target, name, type of value) -> the first leak of that change
        self._first_of: dict[tuple[str, str | None, str | None, str], Leak] = {}
        #: the conftests and test modules pytest imported while collecting (absolute paths,
        #: in import order), set by the pytest plugin: where to look for the line of a
        #: change found at the collection boundary (``_oracle.find_module_store``)
        self.collected_files: list[str] = []
        #: project modules imported since the last boundary (weakly): one that left
        #: sys.modules in the scope while its objects are still held is two copies
        self._fresh_imports = _copies.FreshImports()
        self._fresh_imports.install()
        #: leaks of a module that left sys.modules (or was replaced), with the classes of
        #: the copy that left (weakly): a later failing test that met both copies is a victim
        self._copy_leaks: list[_copies.CopyLeak] = []
        #: id(leak) -> (module name, the old copy), for the length of one boundary
        self._pending_copies: dict[int, tuple[str, object]] = {}
        #: (node id, fixture names) of the test running now, set by the pytest plugin: where
        #: to look for the line of a change only a snapshot saw (``_oracle.find_path_edit``)
        self.running_fixtures: tuple[str, tuple[str, ...]] = ("", ())

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
        reload = self.tracer.source("reload")
        self._take_reloaded = getattr(reload, "take_reloaded", None)

    def _stored_by_test(self, name: str) -> bool:
        test = self.tracer.scope.test
        if test == COLLECTION.test:
            return self._find_store(test, name) is not None
        return not test.startswith("<") and \
            _oracle.find_store(test, self.rootdir, name) is not None

    def _find_store(self, test: str, name: str, *, last: bool = False, subscript: bool = False,
                    target: str | None = None) -> Frame | None:
        """The line of ``test``'s source that stores ``name``; for ``<collection>``, a
        top-level store in a conftest or test module pytest imported."""
        if test == COLLECTION.test:
            return _oracle.find_module_store(self.collected_files, self.rootdir, name,
                                             subscript=subscript, target=target)
        return _oracle.find_store(test, self.rootdir, name, last=last, subscript=subscript,
                                  target=target)

    # -- scope start -------------------------------------------------------------------------
    def begin(self) -> None:
        """A scope (test) starts: new baseline. Cheap when nothing changed in between."""
        self._released = set()
        self._imported()  # forget imports made between tests
        self._fresh_imports.take()
        self._reloaded()  # and reloads
        self.tracer.ledger.seal()
        self._mark = len(self.tracer.ledger)
        if not self._fresh:
            # Outside pytest's test loop (first test, unittest, after collection): what
            # changed since the last boundary belongs to nobody we could name.
            watch = self._watch
            if watch is not None:
                watch.refresh()
                watch.scan()
            self._snapshot = resources.take(self.tracer.calls)
        # else: the previous end() just took both, at the same nesting of pytest's wrappers
        self._fresh = False
        watch = self._watch
        if watch is not None:
            watch.new_scope()
        live = self.live() if self.leaks else []
        if live:
            self._mock_counts = {identity_key(leak): _mock_activity(leak.obj())
                                 for leak in live}
        _victims.arm(live)  # what this test reads of what the live leaks changed

    def scope_mark(self) -> int:
        """The ledger position where the current scope (a test's setup) began."""
        return self._mark

    def rebaseline(self) -> None:
        """Forget everything so far: the program proper starts now (process mode)."""
        watch = self._watch
        if watch is not None:
            watch.refresh()
            watch.scan()
        self.tracer.ledger.seal()
        self._mark = len(self.tracer.ledger)
        self._snapshot = resources.take(self.tracer.calls)

    def wide_setup_start(self, key: int, name: str, scope: str, polluter: str) -> None:
        self._wide[key] = _Wide(key, name, scope, polluter, len(self.tracer.ledger),
                                self.tracer.calls)

    def wide_setup_end(self, key: int) -> None:
        wide = self._wide.get(key)
        if wide is None:
            return
        wide.mark_end = len(self.tracer.ledger)
        wide.changes = resources.diff(wide.before, resources.take(self.tracer.calls))

    # -- scope end ---------------------------------------------------------------------------
    def end(self, scope: Scope, *, collection: bool = False) -> list[Leak]:
        """The scope that began last has ended: find its leaks (sealing its records)."""
        _victims.freeze()
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
        test = scope.test
        # Patches the test applied and undid itself are left out, never materialised
        # (lazy records, see ledger): they cannot have leaked.
        mine = self._mine(ledger.since(self._mark, drop_undone=test), test)
        found: list[Leak] = []
        # What open wider fixtures set up, or finalized fixtures undid, is theirs to answer for.
        handled: set[tuple[str, str | None]] = {
            (c.target, c.name) for w in self._wide.values() for c in w.changes}
        handled |= self._released
        reloaded = self._reloaded()
        if mine:  # each pass looks only at its own kind of record
            ops = {m.op for m in mine}
            if "patch" in ops:
                found.extend(self._patches(mine, handled))
            if "set" in ops or "delete" in ops:
                found.extend(self._bindings(mine, handled))
            if "reload" in ops:
                found.extend(self._reloads(mine, handled, reloaded))
            if "class-assign" in ops or "code-assign" in ops:
                found.extend(self._swaps(mine, handled))
        del reloaded
        # A module imported during the scope and removed again is absent before and after
        # it: nothing a later test could observe (rule 1 of "What counts as a leak").
        self._imported()
        after = resources.take(self.tracer.calls)
        changes = resources.diff(self._snapshot, after)
        if changes:  # a resource changed: its line may be any record's, undone or not
            mine = self._mine(ledger.since(self._mark), test)
        found.extend(self._resources(changes, mine, handled, scope, collection=collection))
        found.extend(self._dropped_in_use(self._fresh_imports.take(), mine, handled, scope))
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
        return self._note_copies(self._accept(found))

    def _mine(self, records: list[Mutation], test: str) -> list[Mutation]:
        """The records ``test`` itself made (not an open wider fixture's)."""
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
        return mine

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
        for change in resources.diff(wide.before, resources.take(self.tracer.calls)):
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
        self._fresh_imports.uninstall()
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
        first_before: dict[tuple[str, str | None], object] = {}
        for mutation in records:  # in order of application, like ledger.active()
            key = (mutation.target, mutation.name)
            if mutation.op == "patch" and key not in first_before:
                first_before[key] = mutation.before_value()
            if mutation.op != "patch" or mutation.token is None or \
                    applied(mutation.token) is not mutation:
                continue
            if mutation.scope.wide and not include_wide:
                continue
            handled.add(key)
            after = mutation.after_value()
            if mutation.source == "mock":
                original = UNKNOWN if include_wide else self._at_start(*key)
                if original is UNKNOWN:
                    original = first_before.get(key, UNKNOWN)
                dormant = self._dormant(mutation, original, after)
                if dormant is not None:
                    if dormant:
                        # Its object is what stopall() would put back (the enclosing
                        # patch's mock, kept alive by the patcher): not a survivor too.
                        leak = self._leak_from(mutation, "patch-dormant",
                                               mutation.before_value())
                        leak.value = _summary(current_value(*key))
                        leak.alive_via = ["class unittest.mock._patch",
                                          "class attribute _active_patches", "[patcher]",
                                          "attribute temp_original"]
                        out.append(leak)
                    continue
            leak = self._leak_from(mutation, "patch-not-stopped", after)
            self._pending[id(leak)] = (mutation.before_value(), after)
            out.append(leak)
        return out

    def _dormant(self, mutation: Mutation, original: object, after: object) -> bool | None:
        """A patch still applied by the ledger whose binding holds the value from before
        the scope again: an enclosing patch put it back (``with patch("time.sleep")`` in
        an autouse fixture around a test's ``patch("time.sleep").start()``). Nothing is
        wrong with the binding, but ``_patch.stop()`` restores the value the patch saved
        (the enclosing patch's mock), so while the patcher is in mock's active list a
        later ``patch.stopall()`` would set that mock again: True. False when it is not in
        that list (nothing will ever re-apply it), None when the patch is in place (or we
        cannot tell)."""
        target, name = mutation.target, mutation.name
        if original is UNKNOWN or name is None or (
                target != "os.environ" and namespace_of(target) is None):
            return None
        now = current_value(target, name)
        if now is after or not same_value(original, now):
            return None
        active = next((a for a in self.tracer.ledger.active()
                       if a.mutation is mutation), None)
        patcher = active.patcher() if active is not None else None
        module = sys.modules.get("unittest.mock")
        cls = module.__dict__.get("_patch") if module is not None else None
        started = cls.__dict__.get("_active_patches") if isinstance(cls, type) else None
        if patcher is None or type(started) is not list:
            return None
        return any(p is patcher for p in started)

    def _at_start(self, target: str, name: str | None) -> object:
        """What ``target``/``name`` held when the current scope began, where we know it
        (``UNKNOWN`` otherwise): the scope's snapshot for the environment, ``sys.modules``,
        ``builtins`` and the compared namespaces of ``sys`` and ``warnings``; the watch
        source's baseline for other modules and classes."""
        if name is None:
            return UNKNOWN
        snap = self._snapshot
        if target == "os.environ":
            env = snap.env
            key: object = name
            if env and type(next(iter(env))) is bytes:
                try:
                    key = name.encode(sys.getfilesystemencoding(), "surrogateescape")
                except Exception:
                    return UNKNOWN
            value = env.get(key, NOTHING)
            if type(value) is bytes:
                return value.decode(sys.getfilesystemencoding(), "surrogateescape")
            return value
        if target == "sys.modules":
            return snap.modules.get(name, NOTHING) if snap.modules else UNKNOWN
        if target == "builtins":
            return snap.builtins.get(name, NOTHING) if snap.builtins else UNKNOWN
        if target in ("module:sys", "module:warnings"):
            return UNKNOWN  # only the compared names are in the snapshot
        if self._watch is not None:
            return self._watch.baseline(target, name)
        return UNKNOWN

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
            # The state before the scope, when known, beats the first record's "before":
            # the module's own store (not recorded), or a patch, may have come first.
            original = UNKNOWN if include_wide else self._at_start(target, name)
            if original is UNKNOWN:
                original = group[0].before_value()
            now = current_value(target, name)
            if same_value(original, now):
                continue  # put back, or set to what it was: nothing a later test can see
            if _equal_copy(target, original, now):
                continue  # an equal copy of a plain container nobody else holds
            if original is UNKNOWN and _summary(now) == group[0].before:
                continue  # sealed record: the object is gone, but what is there looks the same
            if self._explained_by_patch(target, name, now):
                continue
            setter = _last_setting(group, now)
            if setter is None:
                continue  # changed again by something we did not see: leave it to the scan
            if original is NOTHING and not is_mock(now) and _managed(target) and all(
                    m.stack.written_by_library() for m in group):
                # A library filling in, for the first time, an attribute of something it
                # manages (pydantic completing a project's model class on first use):
                # lazy initialization, not pollution. Changing an existing binding, or
                # adding one to the standard library (time.clock = None), still is.
                continue
            handled.add(key)
            kind: Kind = "restore-mismatch" if _looks_restored(original, now, group) \
                else _binding_kind(target, original, now)
            if kind != "restore-mismatch":
                # The line that made the state that leaked: the first store of the value
                # now there, not a later one putting back what it had found (a helper's
                # restore of a value the test itself had set).
                setter = _first_setting(group, now) or setter
            leak = self._leak_from(setter, kind, now)
            leak.before = _summary(original) if original is not UNKNOWN else group[0].before
            self._pending[id(leak)] = (original, now)
            if leak.where is None and name is not None:
                found = self._find_store(setter.scope.test, name,
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

    def _reloads(
        self, records: Iterable[Mutation], handled: set[tuple[str, str | None]],
        reloaded: dict[str, tuple[ModuleType, dict[str, Any]]],
    ) -> list[Leak]:
        """Modules reloaded in the scope whose namespace now differs from before the
        first reload in a way later code sees (``_reload_differences``). The line is the
        reload that made the final state: the last one."""
        last: dict[str, Mutation] = {}
        for mutation in records:
            if mutation.op == "reload" and mutation.name is not None:
                last[mutation.name] = mutation
        out = []
        for name, mutation in last.items():
            key = ("sys.modules", name)
            state = reloaded.get(name)
            if key in handled or state is None:
                continue
            module, before = state
            if sys.modules.get(name) is not module:
                continue  # replaced or dropped since: the snapshot comparison reports it
            differences = _reload_differences(name, module, before)
            if not differences:
                continue  # put back as it was, or nothing anyone else holds changed
            handled.add(key)
            leak = self._leak_from(mutation, "module-reloaded", module)
            leak.desc = "; ".join(differences[:4]) + (
                f" (and {len(differences) - 4} more)" if len(differences) > 4 else "")
            leak.before = leak.value = summarize(module)
            out.append(leak)
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
            if now is NOTHING or original is UNKNOWN or same_value(original, now):
                continue  # still, or again, the same code and defaults
            handled.add(key)
            leak = self._leak_from(group[-1], "binding-changed", now)
            leak.before = group[0].before
            self._pending[id(leak)] = (original, now)
            out.append(leak)
        return out

    def _imported(self) -> list[str]:
        if self._sources_seen is not self.tracer.sources:
            self._cache_sources(self.tracer.sources)
        take = self._take_imported
        return list(take()) if take is not None else []

    def _reloaded(self) -> dict[str, tuple[ModuleType, dict[str, Any]]]:
        if self._sources_seen is not self.tracer.sources:
            self._cache_sources(self.tracer.sources)
        take = self._take_reloaded
        return take() if take is not None else {}

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
            if same_value(change.before, change.after):
                continue  # an equal value put back (sys.platform = "linux" again)
            # Compared with the state just before this scope: a value put back over one an
            # earlier test leaked is a repair (see _accept); a new one over it is a leak.
            leak = self._leak_from_change(change, records, scope)
            if change.needs_line and leak.where is None:
                continue  # a library's logger, pytest's extra sys.path copy: not a user's
            if (collection or scope.test == "<process>") and leak.where is None:
                continue  # unattributable change by the program or pytest itself, not a test
            if change.kind == "binding-changed" and leak.where is None and \
                    change.target in ("module:sys", "module:warnings"):
                # An attribute of sys/warnings the test's source does not store: pytest or a
                # plugin swapping it (sys.unraisablehook). The streams and hooks compared
                # as resources (resource-changed) are always reported.
                continue
            handled.add(key)
            if change.target == "sys.modules" and change.name is not None and \
                    change.kind in ("module-dropped", "module-replaced"):
                self._pending_copies[id(leak)] = (change.name, change.before)
            if change.target == "module:threading" and change.kind == "resource-changed":
                try:
                    self._pending_threads.append(
                        (weakref.ref(change.after), time.monotonic(), leak))
                    continue
                except TypeError:
                    pass
            out.append(leak)
        return out

    def _dropped_in_use(
        self, fresh: dict[str, weakref.ref[ModuleType]], records: list[Mutation],
        handled: set[tuple[str, str | None]], scope: Scope,
    ) -> list[Leak]:
        """Modules imported in the scope that left ``sys.modules`` before it ended
        (``patch.dict(sys.modules)`` or a snapshot restore undoing the import) while a
        class or function of theirs is still held from outside them: the next import
        makes a second copy (``module-dropped``; ``module-replaced`` when the scope already
        imported it again). A module absent before and after whose objects nobody holds
        is nothing (rule 1). Present before the scope: the snapshot comparison reports it."""
        if not fresh:
            return []
        before = self._snapshot.modules
        gone: list[tuple[str, ModuleType, object]] = []
        for name, ref in fresh.items():
            module = ref()
            if module is None or name in before or ("sys.modules", name) in handled:
                continue
            now: object = sys.modules.get(name, NOTHING)
            if now is not module:
                gone.append((name, module, now))
        if not gone:
            return []
        defined_by = {name: _copies.defined_in(module, name) for name, module, _ in gone}
        # One walk for all of them (~2 ms on a pytest-sized process): the dropped copies
        # are out of sys.modules, and a copy imported again holds its own new objects.
        holders = _Holders("", (obj for objs in defined_by.values() for obj in objs.values()))
        out = []
        for name, module, now in gone:
            defined = defined_by[name]
            held = sorted((q, h) for q, obj in defined.items()
                          if (h := holders.of(obj)) is not None)
            if not held:
                continue
            handled.add(("sys.modules", name))
            kind: Kind = "module-dropped" if now is NOTHING else "module-replaced"
            setter = next((m for m in reversed(records) if m.op == "patch"
                           and m.target == "sys.modules" and m.name in (None, name)), None)
            if setter is not None:
                leak = self._leak_from(setter, kind, now)
                leak.target, leak.name = "sys.modules", name
            else:
                leak = Leak(kind, scope.test, scope.phase if scope.phase != "teardown"
                            else "call", "sys.modules", name, fixture=scope.fixture,
                            value=_summary(now), obj=now)
                found = _oracle.find_modules_edit(scope.test, self.rootdir, name,
                                                  self._fixtures_of(scope.test))
                if found is not None:
                    leak.where, leak.stack = found, [found]
            qualname, holder = held[0]
            leak.desc = f"{name}.{qualname} of the dropped copy is still held by {holder}" + (
                f" (and {len(held) - 1} more)" if len(held) > 1 else "")
            leak.before = summarize(module)
            self._pending_copies[id(leak)] = (name, module)
            out.append(leak)
        return out

    def _note_copies(self, accepted: list[Leak]) -> list[Leak]:
        """Keep, weakly, the classes of the copy that left ``sys.modules`` for each accepted
        leak, and which bindings of other modules still hold its objects (one walk for
        all of a boundary's modules); a repeat adds its copy to the first leak."""
        pending, self._pending_copies = self._pending_copies, {}
        if not pending:
            return accepted
        mine = []
        for leak in accepted:
            if id(leak) not in pending:
                continue
            name, module = pending[id(leak)]
            entry = next((known for known in self._copy_leaks if known.leak.id == leak.id),
                         None)
            if entry is None:
                if leak not in self.leaks:
                    continue
                entry = _copies.CopyLeak(leak, name)
                self._copy_leaks.append(entry)
            # A repeat (a fixture re-importing the module for every test) adds its old
            # classes; the bindings that hold old copies were found the first time.
            mine.append((entry, _copies.defined_in(module, name), not entry.holders))
        walk = [obj for _, objs, needed in mine if needed for obj in objs.values()]
        # The old copies are out of sys.modules: the walk (which skips its name) meets
        # only other modules' bindings.
        holders = _Holders("", walk) if walk else None
        for entry, objs, needed in mine:
            held = [(q, text) for q, obj in objs.items()
                    if (text := holders.of(obj))] if needed and holders is not None else []
            entry.add(objs, held)
        return accepted

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
                if mutation.op == "call" and not explains(
                        mutation.desc, mutation.after_value(), change.before, change.after):
                    # a call on the same resource that did not make this change (a
                    # removeHandler after the setLevel that leaked, a filter added inside
                    # catch_warnings): its line would be a guess
                    continue
                setter = mutation
                break
        if setter is not None:
            leak = self._leak_from(setter, change.kind, change.after)
            if leak.name is None:  # logging.config.dictConfig(...): which logger it changed
                leak.name = change.name
        else:
            leak = Leak(change.kind, scope.test, scope.phase if scope.phase != "teardown"
                        else "call", change.target, change.name, fixture=scope.fixture,
                        value=_summary(change.after), obj=change.after)
            if change.name is not None and change.target in (
                    "sys.modules", "builtins", "module:sys", "module:warnings"):
                found = self._find_store(scope.test, change.name,
                                         subscript=change.target == "sys.modules",
                                         target=change.target)
                if found is None and change.kind in ("module-dropped", "module-replaced"):
                    # a prefix wipe (del sys.modules[k] in a loop), a snapshot restore
                    found = _oracle.find_modules_edit(scope.test, self.rootdir, change.name,
                                                      self._fixtures_of(scope.test))
                if found is not None:
                    leak.where, leak.stack = found, [found]
            elif change.target == "logging":
                # an attribute store (logger.propagate = False): no call to wrap
                for attribute in ("propagate", "disabled", "handlers", "level"):
                    found = _oracle.find_store(scope.test, self.rootdir, attribute)
                    if found is not None:
                        leak.where, leak.stack = found, [found]
                        break
            elif change.target in ("sys.path", "sys.meta_path", "sys.path_hooks"):
                fixtures = (scope.fixture,) if scope.fixture else self._fixtures_of(scope.test)
                found = _oracle.find_path_edit(
                    scope.test, self.rootdir, fixtures, target=change.target,
                    added=change.added, entry=change.entry)
                if found is not None:
                    leak.where, leak.stack = found, [found]
        leak.before = _summary(change.before)
        leak.value = _summary(change.after)
        self._pending[id(leak)] = (change.before, change.after)
        return leak

    def _fixtures_of(self, test: str) -> tuple[str, ...]:
        running, names = self.running_fixtures
        return names if running == test else ()

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
        objs: list[object] = []
        records: list[MockCreation] = []
        for obj, record in mocks.alive_created_in(done):
            mocks.forget(obj)  # judged once
            if id(obj) in known or _held_by_known(obj, self.tracer):
                continue
            objs.append(obj)
            records.append(record)
        # All of this boundary's survivors explained together: one search, not one each.
        for obj, record, chains in zip(objs, records, _alive_via(objs), strict=True):
            if chains is not None and not chains:
                # Only a traceback, the test runner's records (a recorded warning, pluggy's
                # call history) or patchtrace's own bookkeeping keep it, or nothing we can name.
                continue
            if chains and _only_via_ignored(self.config, obj, chains):
                continue  # kept only by a binding PATCHTRACE_IGNORE says to ignore
            leak = self._leak_from_creation(obj, record)
            leak.alive_via = chains
            out.append(leak)
        objs.clear()
        return out

    # -- building records ----------------------------------------------------------------------
    def _frames(self, stack: _stack.Stack) -> tuple[Frame | None, list[Frame]]:
        frames = [f.relative_to(self.rootdir) for f in stack.frames()]
        where = stack.where()
        return (where.relative_to(self.rootdir) if where else None), frames

    def _leak_from(self, mutation: Mutation, kind: Kind, obj: object) -> Leak:
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
        """Number and keep the leaks found at a boundary; drop what is no leak after all.

        Two rules need the leaks seen before: a change that puts back the value from before
        the first leak on that binding is a repair, not pollution; and the same change
        (kind, target, name, type of value) left again by a later test is counted on the
        first leak (``repeats``) instead of being reported once more. A repeat is still
        returned (strict mode fails its test too), with the first leak's id.
        """
        accepted = []
        pending, self._pending = self._pending, {}
        for leak in found:
            if self.config.ignored(leak.target, leak.name, leak.label):
                continue
            if leak.target in self.ignore_targets:
                continue
            if leak.where is None and not leak.stack and \
                    leak.source in ("mock", "monkeypatch", "audit"):
                continue  # made by pytest, a plugin or the standard library, not by user code
            key = (leak.target or "", leak.name)
            values = pending.get(id(leak))
            original = self._originals.get(key) if leak.target is not None else None
            if original is not None and values is not None and \
                    leak.kind not in ("patch-not-stopped", "patch-dormant") and \
                    original.matches(values[1]):
                continue  # the value from before the first leak on it, put back: a repair
            # A reload's "value" is its module: what it changed tells two reloads apart.
            signature = (leak.kind, leak.target, leak.name,
                         leak.desc or "" if leak.kind == "module-reloaded" else leak.value.type)
            first = self._first_of.get(signature) if leak.target is not None else None
            if first is not None and first.polluter != leak.polluter and first in self.leaks:
                first.repeats += 1
                if len(first.repeat_tests) < 20 and leak.polluter not in first.repeat_tests:
                    first.repeat_tests.append(leak.polluter)
                # What is in place now is the latest test's: follow it for live()/victims.
                first._atom, first._ref, first.token = leak._atom, leak._ref, leak.token
                leak.id = first.id
                accepted.append(leak)
                continue
            self._numbered += 1  # not len(self.leaks): a marked test's leaks are removed
            leak.id = f"{self.id_prefix}L{self._numbered}"
            if leak.alive_via is None and leak.kind != "resource-changed":
                obj = leak.obj()
                if obj is not NOTHING and leak.target is not None:
                    leak.alive_via = _binding_path(leak.target, leak.name)
            if leak.target is not None:
                self._first_of.setdefault(signature, leak)
                if values is not None and key not in self._originals:
                    self._originals[key] = _Held(values[0])
            self.leaks.append(leak)
            accepted.append(leak)
        return accepted

    # -- after the fact: live leaks and victims ----------------------------------------------
    def live(self) -> list[Leak]:
        """Leaks whose leaked binding is still in place now."""
        out = []
        active = {a.mutation.token for a in self.tracer.ledger.active()}
        for leak in self.leaks:
            if leak.kind == "patch-dormant":
                continue  # the binding is fine: nothing to read until a stopall()
            if leak.kind == "patch-not-stopped":
                if leak.token in active:
                    out.append(leak)
            elif leak.kind == "mock-survived":
                if leak.obj() is not NOTHING:
                    out.append(leak)
            elif leak.target is not None:
                obj = leak.obj()
                now = current_value(leak.target, leak.name)
                if (obj is not NOTHING and same_value(obj, now)) or _victims.in_place(leak):
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
        failure_text: str = "", *, tb: Any = None, exc: object = None,
    ) -> list[Leak]:
        """Live leaks a failing ``test`` used: touched a leaked mock, could have read a
        leaked binding (its code or the project code it calls names it, through its
        module or class: see ``_reads``), read a leaked resource, or failed on a leaked
        value (see ``_victims``); and mocks of ended tests it called or holds, which are
        survivors by that very fact (reported now, before any collection confirms them)."""
        _victims.freeze()  # our own reads below are not the test's
        failure = _victims.Failure(test, reads, failure_text, tb, exc, self._leaked_packages,
                                   self._imported_now())
        hits: list[Leak] = []
        for entry in self._copy_leaks:
            # Not "live": the binding is gone or another copy is there; what is still in
            # place is the old copy's objects, and the test met them.
            leak = entry.leak
            if test in leak.victims or leak.polluter == test:
                continue
            evidence = entry.met_in(exc if isinstance(exc, BaseException) else None)
            if not evidence and entry.holders:
                evidence = entry.read_by(failure.reads())
            if evidence:
                leak.victims.append(test)
                leak.victim_evidence[test] = evidence
                hits.append(leak)
        for leak in self.live():
            if leak in hits:
                continue  # its old copy's evidence says more than "held the new one"
            evidence = self._evidence(leak, failure)
            if evidence:
                self._link(leak, test, evidence)
                hits.append(leak)
        if tb is not None:
            hits.extend(self._survivors_used(failure))
        return hits

    def _evidence(self, leak: Leak, failure: _victims.Failure) -> str:
        obj = leak.obj()
        if obj is not NOTHING and is_mock(obj):
            if leak.kind == "mock-survived":
                return _victims.mock_evidence(obj, failure, "surviving mock",
                                              _victims.mock_name(obj))
            # a module replaced by a mock: used when its call history grew (an attribute
            # read alone, ``hasattr`` by a plugin, says nothing)
            evidence = _victims.mock_evidence(obj, failure, "leaked mock", leak.label,
                                              calls_only=leak.target == "sys.modules")
            if evidence:
                return evidence
            before = self._mock_counts.get(identity_key(leak))
            if leak.target != "sys.modules" and before is not None and \
                    _mock_activity(obj) > before:
                return "called or touched the leaked mock during this test"
        evidence = _victims.resource_evidence(leak, failure)
        if evidence:
            return evidence
        if leak.name and leak.target not in ("cwd", "signal", "sys.path", "logging") and \
                _read_by(failure.reads(), leak):
            return f"read {leak.label}"
        if type(obj) is str and len(obj) >= 3 and failure.text and \
                repr(obj) in failure.text:
            return f"failed on the leaked value of {leak.label}"
        return ""

    @staticmethod
    def _link(leak: Leak, test: str, evidence: str) -> None:
        if test not in leak.victims:
            leak.victims.append(test)
            leak.victim_evidence[test] = evidence

    def _imported_now(self) -> list[str]:
        """Modules imported so far during the running test (not taken: end() takes them)."""
        if self._sources_seen is not self.tracer.sources:
            self._cache_sources(self.tracer.sources)
        audit = self.tracer.source("audit")
        names = getattr(audit, "imported", None)
        return list(names) if type(names) is list else []

    def _survivors_used(self, failure: _victims.Failure) -> list[Leak]:
        """Mocks made by tests that have ended, that the failing test called, holds or
        shows: alive after their test by evidence, without waiting for a collection."""
        mocks = self._mocks
        if mocks is None or not mocks.created:
            return []
        ended, test = self._ended, failure.test

        def done(s: Scope) -> bool:
            key: object = (s.test, s.fixture) if s.wide else s.test
            return key in ended and s.test != test

        known = {identity_key(leak.obj()) for leak in self.leaks if leak.obj() is not NOTHING}
        found: list[tuple[Leak, str]] = []
        for obj, record in mocks.alive_created_in(done):
            if identity_key(obj) in known or _held_by_known(obj, self.tracer):
                continue
            evidence = _victims.mock_evidence(obj, failure, "surviving mock",
                                              _victims.mock_name(obj))
            if not evidence:
                continue
            (chains,) = _alive_via([obj])
            if chains is not None and not chains:
                continue  # only the failing test's own frames keep it: not a leak
            if chains and _only_via_ignored(self.config, obj, chains):
                continue
            mocks.forget(obj)  # judged now
            leak = self._leak_from_creation(obj, record)
            leak.alive_via = chains
            found.append((leak, evidence))
        obj = None  # no strong reference beyond this check
        out = []
        for leak in self._accept([leak for leak, _ in found]):
            for candidate, evidence in found:
                if candidate is leak:
                    self._link(leak, test, evidence)
            out.append(leak)
        return out


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


def _alive_via(objs: list[object]) -> list[list[str] | None]:
    """For each object, a readable chain from a root; [] when only a traceback, the test
    runner's records or patchtrace's own bookkeeping keep it; None if unknown."""
    if not objs:
        return []
    try:
        from . import refs
    except ImportError:
        return [None] * len(objs)
    try:
        explanations = refs.explain_all(objs, max_chains=1, skip_tracebacks=True,
                                        skip_runner=True)
    except Exception:
        return [None] * len(objs)
    return [e.chains[0].labels() if e.chains else [] for e in explanations]


# -- PATCHTRACE_IGNORE for survivors: the binding a chain starts from -----------------------------
def _only_via_ignored(config: Config, obj: object, chains: list[str]) -> bool:
    """True when every chain that keeps ``obj`` alive starts from an ignored binding.

    ``chains`` is the first chain's labels; only when its binding is ignored are the
    other chains looked for (an ignore list is short, a search is not free).
    """
    if not config.ignore or not _binding_ignored(config, chains):
        return False
    try:
        from . import refs

        found = refs.explain(obj, max_chains=8, skip_tracebacks=True, skip_runner=True).chains
    except Exception:
        return True  # the one chain we know of is ignored
    return all(_binding_ignored(config, chain.labels()) for chain in found)


def _binding_ignored(config: Config, labels: list[str]) -> bool:
    binding = _chain_binding(labels)
    if binding is None:
        return False
    target, name = binding
    return config.ignored(target, name, f"{target}.{name}" if name else target)


def _chain_binding(labels: list[str]) -> tuple[str, str | None] | None:
    """The (target, name) a chain of ``alive_via`` labels starts from, as a leak names it:
    ``sys.modules['x']`` -> ``("sys.modules", "x")``, ``module pkg.mod``, ``attribute f``
    -> ``("module:pkg.mod", "f")``, ``class pkg.C``, ``class attribute y of pkg.C`` ->
    ``("class:pkg.C", "y")``; None for other roots (threads, objects)."""
    if not labels:
        return None
    first, rest = labels[0], labels[1:]
    if first.startswith("sys.modules[") and first.endswith("]"):
        import ast

        try:
            key = ast.literal_eval(first[len("sys.modules["):-1])
        except (ValueError, SyntaxError):
            return None
        return ("sys.modules", key) if type(key) is str else None
    attribute = rest[0] if rest else ""
    if first.startswith("module "):
        module = first[len("module "):]
        target = "builtins" if module == "builtins" else f"module:{module}"
        if attribute.startswith("attribute ") and " of " not in attribute:
            return target, attribute[len("attribute "):]
        return target, None
    if first.startswith("class "):
        cls = first[len("class "):]
        prefix, suffix = "class attribute ", f" of {cls}"
        if attribute.startswith(prefix) and attribute.endswith(suffix):
            return f"class:{cls}", attribute[len(prefix):-len(suffix)]
        return f"class:{cls}", None
    return None


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




@final
class _Held:
    """A value remembered across boundaries without keeping it alive: atoms, plain values
    and enum members as they are (they cannot hold user objects, or live as long as their
    class anyway), tuples and lists item by item, anything else by weak reference (and
    never matched when it has none)."""

    __slots__ = ("_items", "_ref", "_value")

    def __init__(self, obj: object) -> None:
        self._value: object = NOTHING
        self._ref: weakref.ref[Any] | None = None
        self._items: tuple[_Held, ...] | None = None
        cls = type(obj)
        if obj is NOTHING or is_plain(obj) or _is_enum_member(obj):
            self._value = obj
        elif cls is tuple or cls is list:
            self._items = tuple(_Held(item) for item in obj)  # type: ignore[attr-defined]
        elif cls.__weakrefoffset__:
            try:
                self._ref = weakref.ref(obj)
            except TypeError:
                pass

    def matches(self, obj: object) -> bool:
        if self._items is not None:
            cls = type(obj)
            if cls is not tuple and cls is not list:
                return False
            items = cast("tuple[object, ...]", obj)
            return len(items) == len(self._items) and all(
                h.matches(x) for h, x in zip(self._items, items, strict=True))
        if self._ref is not None:
            held = self._ref()
            return held is not None and held is obj
        if self._value is NOTHING:
            return obj is NOTHING
        return same_value(self._value, obj)


def _is_enum_member(obj: object) -> bool:
    enum = sys.modules.get("enum")
    base = enum.__dict__.get("Enum") if enum is not None else None
    return isinstance(base, type) and issubclass(type(obj), base)


#: Names a reload rebinds without anyone noticing: the import system's bookkeeping.
_RELOAD_METADATA: Final = frozenset({
    "__loader__", "__spec__", "__file__", "__cached__", "__builtins__", "__package__",
    "__path__", "__name__", "__doc__", "__warningregistry__", "__annotations__",
})
def _reload_differences(name: str, module: ModuleType, before: dict[str, Any]) -> list[str]:
    """What a reload changed that later code sees, in words: a plain value (number,
    string, path, ...) other than before, or added or removed; a class or function (or any
    other object) replaced while the old one is still held from outside the module (an
    instance of the old class, another module's ``from m import C``, a registry, a
    subclass elsewhere). Empty when the reload put the module back as it was."""
    now = module.__dict__
    out: list[str] = []
    replaced: list[tuple[str, object]] = []
    for key in list(before.keys() | now.keys()):
        if type(key) is not str or key in _RELOAD_METADATA:
            continue
        old, new = before.get(key, NOTHING), now.get(key, NOTHING)
        if same_value(old, new):
            continue
        if old is NOTHING and not is_plain(new):
            continue  # a new function or class: nobody holds it yet
        if new is None and old is not NOTHING:
            # Reset to None by the module's own code: a cache it fills on first use
            # (tempfile.tempdir, tempfile._name_sequence), as in a fresh import.
            continue
        if old is NOTHING or new is NOTHING or is_plain(old) or is_plain(new):
            out.append(f"{key} {_short(old)} -> {_short(new)}")
        else:
            replaced.append((key, old))
    if replaced:
        holders = _Holders(name, (old for _, old in replaced))
        for key, old in sorted(replaced, key=lambda item: item[0]):
            holder = holders.of(old)
            if holder is not None:
                what = "class" if issubclass(type(old), type) else (
                    "function" if type(old) is FunctionType else "object")
                out.append(f"{key}: a new {what}, while {holder} still holds the old one")
    return sorted(out)


def _short(obj: object) -> str:
    return "<missing>" if obj is NOTHING else safe_repr(obj, 60)


_MODULE_DICT: Final[Any] = vars(ModuleType)["__dict__"]
_CLASS_DICT: Final[Any] = vars(type)["__dict__"]


class _Holders:
    """Who, outside the reloaded module, still holds old objects: a bounded walk of what
    later code can reach by name from the other modules of the project and its libraries
    (the standard library's, pytest's and our own excepted): a module attribute
    (``from m import C``), an item of a list, tuple, set or dict there (a registry), the
    same one level inside classes defined there (``Base.registry``), an instance of an old
    class, or a subclass of one. No garbage collection and no referrer search: cheap
    enough for a suite whose fixture reloads a module around every test."""

    _MAX_ITEMS: Final = 2_000

    def __init__(self, name: str, old: Iterable[object]) -> None:
        self.name = name
        self.found: dict[int, str] = {}
        wanted = {identity_key(obj): obj for obj in old}
        classes = {identity_key(obj) for obj in wanted.values() if issubclass(type(obj), type)}
        if wanted:
            self._walk(wanted, classes)

    def of(self, obj: object) -> str | None:
        return self.found.get(identity_key(obj))

    def _walk(self, wanted: dict[int, object], classes: set[int]) -> None:
        """Set intersections at C speed over each namespace's values (a suite reloading a
        module around every test pays ~1 ms here, not a Python call per value)."""
        found = self.found
        wanted_keys = set(wanted)
        get_mro = type.__dict__["__mro__"].__get__
        containers = (list, tuple, set, frozenset, dict)

        def scan(values: list[object], where: Callable[[], str]) -> None:
            hits = wanted_keys.intersection(map(identity_key, values))
            for key in hits:
                found.setdefault(key, where())
            for key in classes.intersection(map(identity_key, map(type, values))):
                found.setdefault(key, f"{where()} (an instance of it)")
            for value in values:
                cls = type(value)
                if cls is type:
                    try:
                        for base in get_mro(value)[1:]:
                            if identity_key(base) in classes:
                                found.setdefault(identity_key(base), f"{where()} (a subclass)")
                    except Exception:
                        pass
                elif cls in containers:
                    sized = cast("list[object]", value)
                    if len(sized) > self._MAX_ITEMS:
                        continue
                    items = list(cast("dict[object, object]", value).values()) \
                        if cls is dict else list(sized)
                    if wanted_keys.intersection(map(identity_key, items)) or \
                            classes.intersection(map(identity_key, map(type, items))):
                        scan(items, where)

        for mod_name, module in list(sys.modules.items()):
            if mod_name == self.name or not issubclass(type(module), ModuleType) or \
                    mod_name.partition(".")[0] == "patchtrace" or _hidden_module(mod_name):
                continue
            try:
                namespace = cast("dict[str, object]", _MODULE_DICT.__get__(module))
                values = list(namespace.values())
            except Exception:
                continue
            scan(values, functools.partial(_where, mod_name, namespace, wanted_keys, classes))
            for value in values:
                if type(value) is not type:
                    continue
                try:  # the class's mappingproxy, read raw (no gc.get_referents)
                    inner = _CLASS_DICT.__get__(value)
                    if inner.get("__module__") != mod_name:
                        continue
                    inner_values = [v for v in inner.values() if type(v) in containers]
                except Exception:
                    continue
                if inner_values:
                    label = f"class {mod_name}.{type.__dict__['__name__'].__get__(value)}"
                    scan(inner_values, functools.partial(str, label))


def _where(module: str, namespace: dict[str, object], wanted: set[int],
           classes: set[int]) -> str:
    """``module m (attribute x)``: the first attribute holding (or containing) a wanted
    object or an instance of a wanted class; computed only when something was found."""
    for attr, value in list(namespace.items()):
        key = identity_key(value)
        if key in wanted or identity_key(type(value)) in classes:
            return f"module {module} (attribute {attr})"
    for attr, value in list(namespace.items()):
        cls = type(value)
        if cls in (list, tuple, set, frozenset, dict):
            items = list(cast("dict[object, object]", value).values()) if cls is dict \
                else list(cast("list[object]", value))
            if wanted.intersection(map(identity_key, items)) or \
                    classes.intersection(map(identity_key, map(type, items))):
                return f"module {module} (in attribute {attr})"
    return f"module {module}"


def _hidden_module(name: str) -> bool:
    """A module of the standard library, pytest or patchtrace (their caches, typing's
    included, are not the suite's registries)."""
    module = sys.modules.get(name)
    path = module.__dict__.get("__file__") if isinstance(module, ModuleType) else None
    return not isinstance(path, str) or _stack.is_hidden(path)


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
            return not _hidden_module(name)
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
    return _Holders("", [original]).of(original) is None
