"""The boundary: the :class:`Detector` turns the ledger and snapshot comparisons into leaks.

A *boundary* is the end of a scope: a test (after its teardown, so function-scoped
fixtures are finalized), a wider fixture (after its finalizer), collection, or the process.
At a boundary the :class:`Detector` runs the checks of :mod:`patchtrace.boundary.checks`
in the order it declares (:data:`RECORD_CHECKS`, then :data:`SNAPSHOT_CHECKS`), each
skipping what an earlier one already answered for (:class:`~.checks.Handled`):

1. which patches started in the scope are still applied (``patch-not-stopped``,
   ``patch-dormant``: :mod:`.checks.patches`);
2. which bindings set in the scope now differ from before it (``binding-changed``), or
   were put back to something that is not the original (``restore-mismatch``:
   :mod:`.checks.bindings`); which modules a reload left changed (``module-reloaded``:
   :mod:`.checks.reloads`); which ``__class__``/``__code__`` swaps remain;
3. which process-wide resources differ from the snapshot at the scope's start
   (``resource-changed``, ``module-replaced``, ``module-dropped``: :mod:`.checks.resources`),
   and which modules imported in the scope left ``sys.modules`` while still in use
   (:mod:`.checks.modules`);
4. which mocks created in the scope survived a garbage collection (``mock-survived``:
   :mod:`.survivors`), and which threads it left running (:mod:`.threads`).

Changes made by a wider fixture's setup are *owned* by that fixture and checked when it is
finalized, not at the end of the test whose setup happened to run it.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from ..analysis import copies as _copies
from ..analysis import oracle as _oracle
from ..analysis import victims as _victims
from ..analysis.reads import Reads
from ..leak import Leak
from ..ledger import COLLECTION, NOTHING, Mutation, Scope, _label
from ..stack import Frame
from ..values import identity_key, is_mock, same_value
from . import snapshot
from ._build import Builder, find_store
from ._held import Held
from ._holders import Holders
from ._read import current_value, owner_of
from .checks import Context, Handled, bindings, modules, patches, reloads
from .checks import resources as resource_checks
from .survivors import Survivors, binding_path, mock_activity
from .threads import Threads

if TYPE_CHECKING:
    from .._tracer import Tracer
    from ..sources.mock import MockSource
    from ..sources.watch import WatchSource

__all__ = ["RECORD_CHECKS", "SNAPSHOT_CHECKS", "WIDE_CHECKS", "Detector", "Leak"]

#: the checks on the scope's own records, in order, each with the operations it reads
#: (skipped when the scope made none of them): a binding a patch answered for is not
#: judged again as a changed binding
RECORD_CHECKS: Final = (
    (patches.OPS, patches.check),
    (bindings.OPS, bindings.check),
    (reloads.OPS, reloads.check),
    (bindings.SWAP_OPS, bindings.check_swaps),
)
#: the checks on what the snapshot comparison and the import bookkeeping found, after the
#: record checks (a key they answered for is skipped)
SNAPSHOT_CHECKS: Final = (resource_checks.check, modules.check)
#: a wider fixture's finalizer: its setup's records (its resources are compared apart)
WIDE_CHECKS: Final = (patches.check, bindings.check)



class _Wide:
    """An open fixture of wider-than-function scope, and what its setup changed."""

    __slots__ = ("before", "changes", "key", "mark_end", "mark_start", "name", "polluter",
                 "scope", "values")

    def __init__(self, key: int, name: str, scope: str, polluter: str, mark_start: int,
                 calls: int | None = None) -> None:
        self.before = snapshot.take(calls)
        self.key = key
        self.name = name
        self.scope = scope
        self.polluter = polluter
        self.mark_start = mark_start
        self.mark_end = mark_start
        self.changes: list[snapshot.Change] = []
        #: (target, name) of each binding its setup set -> (value before it, value it set),
        #: held without keeping them alive (see Detector._scope_binding)
        self.values: dict[tuple[str, str | None], tuple[Held, Held]] = {}


class Detector:
    """Finds leaks at boundaries. One per run; driven by the pytest plugin or the glue."""

    def __init__(self, tracer: Tracer, *, rootdir: str | None = None) -> None:
        self.tracer = tracer
        self.config = tracer.config
        self.rootdir = rootdir
        self.leaks: list[Leak] = []
        self.tests = 0
        self._mark = len(tracer.ledger)
        self._snapshot = snapshot.take(self.tracer.calls)
        self._wide: dict[int, _Wide] = {}
        self._fresh = False  # end() just ran: its snapshot is the next begin()'s baseline
        #: which scopes ended when, and which of them a full collection confirmed
        self._survivors = Survivors()
        self._survivors.install()
        self._build = Builder(tracer, rootdir)
        self._mock_counts: dict[int, int] = {}
        #: targets the driver knows to be restored by someone else (pytest's warnings capture)
        self.ignore_targets: set[str] = set()
        #: leak ids are ``{id_prefix}L{n}``, n counting every leak accepted (an xdist worker
        #: sets ``gw0-``): an id, once given, is the leak's in every output
        self.id_prefix = ""
        self._numbered = 0
        #: keys changed by wider fixtures finalized during the current test
        self._released: set[tuple[str, str | None]] = set()
        #: the bindings of wider fixtures finalized during the current test (_Wide.values)
        self._released_values: dict[tuple[str, str | None], tuple[Held, Held]] = {}
        #: threads a scope left running, judged once they had time to end
        self._threads = Threads()
        self._sources_seen: object = None
        self._watch_source: WatchSource | None = None
        self._mock_source: MockSource | None = None
        self._take_imported: Callable[[], Iterable[str]] | None = None
        self._take_reloaded: Callable[[], dict[str, tuple[ModuleType, dict[str, Any]]]] | \
            None = None
        #: (target, name) -> the value before the first leak reported on it: a later scope
        #: that puts it back repairs, it does not pollute (held without keeping it alive)
        self._originals: dict[tuple[str, str | None], Held] = {}
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

    def _find_store(self, test: str, name: str) -> Frame | None:
        return find_store(test, self.rootdir, self.collected_files, name)

    def _context(self, scope: Scope, handled: Handled, *, wide: bool = False,
                 collection: bool = False) -> Context:
        """What the checks of one boundary read, and where they leave what it needs."""
        return Context(
            self._build, scope, handled, self._snapshot, self._watch, self.collected_files,
            self.running_fixtures, {}, self._pending, self._pending_copies, self._threads,
            wide=wide, collection=collection)

    # -- scope start -------------------------------------------------------------------------
    def begin(self) -> None:
        """A scope (test) starts: new baseline. Cheap when nothing changed in between."""
        self._released = set()
        self._released_values = {}
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
            self._snapshot = snapshot.take(self.tracer.calls)
        # else: the previous end() just took both, at the same nesting of pytest's wrappers
        self._fresh = False
        watch = self._watch
        if watch is not None:
            watch.new_scope()
        live = self.live() if self.leaks else []
        if live:
            self._mock_counts = {identity_key(leak): mock_activity(leak.obj())
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
        self._snapshot = snapshot.take(self.tracer.calls)

    def wide_setup_start(self, key: int, name: str, scope: str, polluter: str) -> None:
        self._wide[key] = _Wide(key, name, scope, polluter, len(self.tracer.ledger),
                                self.tracer.calls)

    def wide_setup_end(self, key: int) -> None:
        wide = self._wide.get(key)
        if wide is None:
            return
        wide.mark_end = len(self.tracer.ledger)
        wide.changes = snapshot.diff(wide.before, snapshot.take(self.tracer.calls))
        groups: dict[tuple[str, str | None], list[Mutation]] = {}
        for record in self.tracer.ledger.since(wide.mark_start):
            if record.op in ("set", "delete", "patch") and record.name is not None:
                groups.setdefault((record.target, record.name), []).append(record)
        wide.values = {key: (Held(group[0].before_value()), Held(group[-1].after_value()))
                       for key, group in groups.items()}

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
        handled = Handled((c.target, c.name) for w in self._wide.values() for c in w.changes)
        handled |= self._released
        ctx = self._context(scope, handled, collection=collection)
        if self._wide or self._released_values:
            ctx.scope_values = dict(self._released_values)
            for open_wide in self._wide.values():
                ctx.scope_values.update(open_wide.values)
        ctx.reloaded = self._reloaded()
        if mine:  # each check looks only at its own kind of record
            ops = {m.op for m in mine}
            for reads, check in RECORD_CHECKS:
                if not ops.isdisjoint(reads):
                    found.extend(check(mine, ctx))
        ctx.reloaded = {}
        ctx.scope_values = {}
        # A module imported during the scope and removed again is absent before and after
        # it: nothing a later test could observe (rule 1 of "What counts as a leak").
        asked = self._imported()
        after = snapshot.take(self.tracer.calls)
        changes = snapshot.diff(self._snapshot, after)
        if self._snapshot.modules and after.modules and self._take_imported is not None \
                and not self.tracer.failed("audit"):
            # which imports the scope asked for: a new entry none of them named is planted
            changes.extend(snapshot.planted(self._snapshot.modules, after.modules,
                                             frozenset(asked)))
        del asked
        if any(c.target == "logging" and type(c.before) is str for c in changes):
            self._remember_loggers(self._snapshot.logging, after.logging)
        if self._wide and changes:
            changes = [c for c in changes if not self._adopted(c)]
        if changes:  # a resource changed: its line may be any record's, undone or not
            mine = self._mine(ledger.since(self._mark), test)
        ctx.changes = changes
        ctx.fresh = self._fresh_imports.take()
        for snapshot_check in SNAPSHOT_CHECKS:
            found.extend(snapshot_check(mine, ctx))
        del ctx
        if watch is not None:
            watch.new_scope()  # its baselines hold user objects: drop them now
        ledger.seal()  # drop our strong references before asking what keeps mocks alive
        if not collection and not scope.test.startswith("<"):
            self._survivors.scope_ended(scope.test)
        found.extend(self._confirmed_survivors(found))
        found.extend(self._threads.settle())
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
        self._released_values.update(wide.values)
        self._survivors.scope_ended((wide.polluter, wide.name))
        records = [m for m in self.tracer.ledger.since(wide.mark_start)
                   if m.seq <= wide.mark_end]
        setup = Scope(wide.polluter, "setup", wide.name, wide.scope)
        for record in records:
            record.scope = setup
        found: list[Leak] = []
        handled = Handled()
        ctx = self._context(setup, handled, wide=True)
        ctx.scope_values = wide.values
        for check in WIDE_CHECKS:
            found.extend(check(records, ctx))
        ctx.scope_values = {}
        made = {(c.target, c.name) for c in wide.changes}
        for change in snapshot.diff(wide.before, snapshot.take(self.tracer.calls)):
            key2 = (change.target, change.name)
            if key2 in handled:
                continue
            if key2 not in made:
                if _successor_of(change, wide) < 0:
                    continue
                self._released.add(key2)  # the scope's, reported here: not the test's too
            found.append(resource_checks.leak_from_change(
                change, records, ctx, Scope(wide.polluter, "setup", wide.name, wide.scope)))
        del ctx
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
        if self._survivors.to_confirm(self._mocks):
            gc.collect()
        self._survivors.confirm_all()
        return self._accept([*self._confirmed_survivors([]), *self._threads.settle(final=True)])

    def close(self) -> None:
        self._fresh_imports.uninstall()
        self._survivors.uninstall()

    def _confirmed_survivors(self, found: list[Leak]) -> list[Leak]:
        """Mocks whose scope ended before the last full collection began, still alive."""
        return self._survivors.confirmed(self._mocks, [*self.leaks, *found], self.tracer,
                                         self.config, self._build.leak_from_creation)

    # -- coordinator bookkeeping -------------------------------------------------------------
    def _remember_loggers(self, before: object, after: object) -> None:
        """One call disabled many loggers (dictConfig): a single finding, named by the
        first logger. The state each of them had before it is still each one's original,
        so that a later test putting one back (dictConfig with
        ``disable_existing_loggers=False`` enables them all again) is a repair of it."""
        if type(before) is not tuple or type(after) is not tuple or len(before) != 4 or \
                len(after) != 4:
            return
        old = snapshot._logger_map(before)
        new = snapshot._logger_map(after)
        for name, state in old.items():
            changed = new.get(name)
            if changed is None or changed[3] is state[3]:
                continue
            key = ("logging", name)
            if key not in self._originals:
                self._originals[key] = Held(snapshot.LoggerState(name, state))

    def _adopted(self, change: snapshot.Change) -> bool:
        """A new entry that replaced an open wider scope's own entry of the same type (see
        ``_successor_of``) becomes that scope's entry: judged when the scope ends."""
        for wide in self._wide.values():
            index = _successor_of(change, wide)
            if index >= 0:
                wide.changes[index] = change  # the scope's entry now (the old one is gone)
                return True
        return False

    def _owned_marks(self) -> list[tuple[int, int]]:
        return [(w.mark_start, w.mark_end) for w in self._wide.values()]

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
        holders = Holders("", walk) if walk else None
        for entry, objs, needed in mine:
            held = [(q, text) for q, obj in objs.items()
                    if (text := holders.of(obj))] if needed and holders is not None else []
            entry.add(objs, held)
        return accepted

    # -- accepting what the checks found -----------------------------------------------------
    def _accept(self, found: list[Leak]) -> list[Leak]:
        """Number and keep the leaks found at a boundary; drop what is no leak after all.

        Two rules need the leaks seen before: a change that puts back the value from before
        the first leak on that binding is a repair, not pollution; and the same change
        (kind, target, name, type of value) left again by a later test is counted on the
        first leak (``repeats``) instead of being reported once more. A repeat is still
        returned (strict mode fails its test too), with the first leak's id.
        """
        accepted: list[Leak] = []
        pending, self._pending = self._pending, {}
        hosts = _derivation_hosts(found)
        deferred: list[Leak] = []
        for leak in found:
            if id(leak) in hosts:
                deferred.append(leak)  # judged once its host is
            else:
                self._accept_one(leak, pending, accepted)
        for leak in deferred:
            host = hosts[id(leak)]
            if any(item is host for item in accepted):
                self._fold(host, leak, pending.get(id(leak)))
            else:
                self._accept_one(leak, pending, accepted)  # its host was no leak: its own
        return accepted

    def _accept_one(self, leak: Leak, pending: dict[int, tuple[object, object]],
                    accepted: list[Leak]) -> None:
        if self.config.ignored(leak.target, leak.name, leak.label):
            return
        if leak.target in self.ignore_targets:
            return
        if leak.where is None and not leak.stack and \
                leak.source in ("mock", "monkeypatch", "audit"):
            return  # made by pytest, a plugin or the standard library, not by user code
        key = (leak.target or "", leak.name)
        values = pending.get(id(leak))
        original = self._originals.get(key) if leak.target is not None else None
        if original is not None and values is not None and \
                leak.kind not in ("patch-not-stopped", "patch-dormant") and \
                original.matches(values[1]):
            return  # the value from before the first leak on it, put back: a repair
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
            return
        self._numbered += 1  # not len(self.leaks): a marked test's leaks are removed
        leak.id = f"{self.id_prefix}L{self._numbered}"
        if leak.alive_via is None and leak.kind != "resource-changed":
            obj = leak.obj()
            if obj is not NOTHING and leak.target is not None:
                leak.alive_via = binding_path(leak.target, leak.name)
        if leak.target is not None:
            self._first_of.setdefault(signature, leak)
            if values is not None and key not in self._originals:
                self._originals[key] = Held(values[0])
        self.leaks.append(leak)
        accepted.append(leak)

    def _fold(self, host: Leak, leak: Leak, values: tuple[object, object] | None) -> None:
        """``leak`` is a binding a standard-library call derived from ``host``'s change
        (see :data:`DERIVED`): named in ``host``'s finding, not one of its own. Its value
        from before is remembered all the same, so that a later scope putting it back
        repairs it."""
        key = (leak.target or "", leak.name)
        if values is not None and key not in self._originals:
            self._originals[key] = Held(values[0])
        call = DERIVED[(host.target or "", host.name or "")][2]
        entry = (leak.target or "", leak.name or "", call, leak.before, leak.value)
        first = next((known for known in self.leaks if known.id == host.id), host)
        for owner in (first, host):
            if not any(item[:2] == entry[:2] for item in owner.derived):
                owner.derived.append(entry)

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

    def _survivors_used(self, failure: _victims.Failure) -> list[Leak]:
        """Mocks made by tests that have ended, that the failing test called, holds or
        shows: alive after their test by evidence, without waiting for a collection."""
        found = self._survivors.used_by(self._mocks, failure, self.leaks, self.tracer,
                                        self.config, self._build.leak_from_creation)
        out = []
        for leak in self._accept([leak for leak, _ in found]):
            for candidate, evidence in found:
                if candidate is leak:
                    self._link(leak, failure.test, evidence)
            out.append(leak)
        return out

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
                    mock_activity(obj) > before:
                return "called or touched the leaked mock during this test"
        evidence = _victims.resource_evidence(leak, failure)
        if evidence:
            return evidence
        if leak.name and leak.target not in ("cwd", "signal", "sys.path", "logging"):
            reads = failure.reads()
            if _read_name(reads, leak.target, leak.name):
                return f"read {leak.label}"
            for target, name, call, _before, _value in leak.derived:
                # time.timezone read: what time.tzset() derived from the leaked TZ
                if _read_name(reads, target, name):
                    return f"read {_label(target, name)}, which {call} derived from " \
                           f"{leak.label}"
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

#: One finding per change: bindings that a standard-library call derives from a changed
#: value, rewritten by it in the same scope, are that change's consequence, named in its
#: finding (``Leak.derived``) rather than found again on their own. (target, name) of the
#: change -> (target of the derived bindings, their names, the call that derives them).
#: ``time.tzset()`` reads ``TZ`` and rewrites the four module attributes; when ``TZ`` is
#: put back but ``tzset()`` is not called again, they are leaks of their own.
DERIVED: Final = {
    ("os.environ", "TZ"): ("module:time",
                           frozenset({"timezone", "altzone", "daylight", "tzname"}),
                           "time.tzset()"),
}


def _derivation_hosts(found: list[Leak]) -> dict[int, Leak]:
    """id(leak) -> the leak of the change it was derived from (:data:`DERIVED`), for the
    leaks of one boundary: the same scope (polluter and fixture) changed both."""
    hosts: dict[int, Leak] = {}
    for host in found:
        if host.kind != "binding-changed":
            continue
        entry = DERIVED.get((host.target or "", host.name or ""))
        if entry is None:
            continue
        target, names, _call = entry
        for leak in found:
            if leak.kind == "binding-changed" and leak.target == target and \
                    leak.name in names and leak.polluter == host.polluter and \
                    leak.fixture == host.fixture and leak is not host:
                hosts.setdefault(id(leak), host)
    return hosts


def _read_name(found: Reads | set[str], target: str | None, leak_name: str | None) -> bool:
    path = leak_name or ""
    if path.endswith((".__code__", ".__defaults__", ".__kwdefaults__")):
        path = path.rpartition(".")[0]  # func.__code__ is read as func
    name = path.rsplit(".", 1)[-1]
    if isinstance(found, set):
        return name in found
    if target == "os.environ":
        return name in found.consts
    if target == "sys.modules":
        return name in found.consts or name.rpartition(".")[2] in found.names
    owner = owner_of(target) if target else None
    if owner is None:
        return found.read(name)
    return found.read(name, owner)



#: list resources whose entries are objects, compared by identity (sys.path is by value)
_ENTRY_LISTS: Final = ("sys.meta_path", "sys.path_hooks")


def _successor_of(change: snapshot.Change, wide: _Wide) -> int:
    """The index in ``wide.changes`` of the entry that ``change`` (an entry added to
    sys.meta_path or sys.path_hooks) replaced, or -1.

    The rule: what an open wider scope (setUpClass, a module or class fixture) put into
    such a list belongs to that scope. A plugin that pauses and resumes the scope's work
    around each test report (pyfakefs removes its finder and inserts a new one) swaps the
    entry for a new object of the same type; later code sees the same kind of finder in
    the same list, and the scope removes it when it ends. So a new entry whose type is
    exactly that of an entry the scope added, which is no longer in the list, is that
    entry's successor: the scope's, not the test's, and checked when the scope ends (a
    scope that leaves it there is still reported)."""
    if change.target not in _ENTRY_LISTS or change.before is not NOTHING:
        return -1
    new_type = type(change.after)
    current = sys.__dict__.get("meta_path" if change.target == "sys.meta_path"
                               else "path_hooks")
    if type(current) is not list:
        return -1
    for index, own in enumerate(wide.changes):
        if own.target == change.target and own.before is NOTHING and \
                type(own.after) is new_type and own.after is not change.after and \
                not any(entry is own.after for entry in current):
            return index
    return -1


def _in_marks(seq: int, marks: list[tuple[int, int]]) -> bool:
    return any(start < seq <= end for start, end in marks)
