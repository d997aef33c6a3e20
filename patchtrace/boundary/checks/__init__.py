"""The boundary checks: one module per family of leak kinds.

Each module has ``check(records, context) -> list[Leak]`` (``bindings`` has a second,
``check_swaps``) and ``OPS``, the record operations it reads (empty: it reads what the
snapshot comparison or the import bookkeeping found, not records). The
:class:`~patchtrace.boundary.Detector` runs them in the order it declares, with one
:class:`Handled` set for the boundary: a check adds the (target, name) keys it answered
for, and a later check skips them, so a binding is reported once, by the first check that
can name it.
"""

from __future__ import annotations

import sys
import weakref
from types import ModuleType
from typing import TYPE_CHECKING, Any, final

from ..._vocab import NOTHING, UNKNOWN
from ...ledger import Scope
from .._build import Builder, find_store

if TYPE_CHECKING:
    from ..._vocab import Kind
    from ...leak import Leak
    from ...ledger import Mutation
    from ...sources.watch import WatchSource
    from ...stack import Frame
    from .._held import Held
    from ..snapshot import Change, Snapshot
    from ..threads import Threads

__all__ = ["Context", "Handled"]


@final
class Handled(set["tuple[str, str | None]"]):
    """The (target, name) keys already answered for at this boundary (by a check, or by an
    open or just-finalized wider fixture that owns them): later checks skip them."""

    __slots__ = ()


@final
class Context:
    """What a check may read, and where it leaves what the coordinator needs afterwards.

    One per boundary (a test's end, a wider fixture's finalizer), built by the
    :class:`~patchtrace.boundary.Detector`. The ``pending*`` and ``threads`` fields are
    the coordinator's own collections: a check adds to them, the coordinator takes them
    when it accepts the boundary's leaks."""

    __slots__ = ("build", "changes", "collected_files", "collection", "fresh", "handled",
                 "pending", "pending_copies", "reloaded", "running_fixtures", "scope",
                 "scope_values", "snapshot", "threads", "watch", "wide")

    def __init__(
        self, build: Builder, scope: Scope, handled: Handled, snapshot: Snapshot,
        watch: WatchSource | None, collected_files: list[str],
        running_fixtures: tuple[str, tuple[str, ...]],
        scope_values: dict[tuple[str, str | None], tuple[Held, Held]],
        pending: dict[int, tuple[object, object]],
        pending_copies: dict[int, tuple[str, object]], threads: Threads, *,
        wide: bool = False, collection: bool = False,
    ) -> None:
        self.build = build
        #: the scope that ended (for a wider fixture: its setup scope)
        self.scope = scope
        self.handled = handled
        #: the process-wide resources at the scope's start
        self.snapshot = snapshot
        self.watch = watch
        #: the conftests and test modules pytest imported (see Detector.collected_files)
        self.collected_files = collected_files
        #: (node id, fixture names) of the test running now (see Detector.running_fixtures)
        self.running_fixtures = running_fixtures
        #: the bindings of open and just-finalized wider scopes: (value before, value set)
        self.scope_values = scope_values
        #: out: id(leak) -> (value before, value now), for Detector._accept
        self.pending = pending
        #: out: id(leak) -> (module name, the copy that left), for Detector._note_copies
        self.pending_copies = pending_copies
        #: out: threads left running, judged later
        self.threads = threads
        #: a wider fixture's finalizer: its own records (``scope.wide``) are looked at, and
        #: the state at the scope's start is not known
        self.wide = wide
        #: the collection boundary
        self.collection = collection
        #: what the snapshot comparison found (set before the snapshot checks run)
        self.changes: list[Change] = []
        #: modules reloaded in the scope: name -> (module, namespace before the first reload)
        self.reloaded: dict[str, tuple[ModuleType, dict[str, Any]]] = {}
        #: project modules imported in the scope (weakly; set before the snapshot checks)
        self.fresh: dict[str, weakref.ref[ModuleType]] = {}

    @property
    def rootdir(self) -> str | None:
        return self.build.rootdir

    def find_store(self, test: str, name: str, *, last: bool = False,
                   subscript: bool = False, target: str | None = None) -> Frame | None:
        return find_store(test, self.build.rootdir, self.collected_files, name, last=last,
                          subscript=subscript, target=target)

    def fixtures_of(self, test: str) -> tuple[str, ...]:
        running, names = self.running_fixtures
        return names if running == test else ()

    def at_start(self, target: str, name: str | None) -> object:
        """What ``target``/``name`` held when the current scope began, where we know it
        (``UNKNOWN`` otherwise): the scope's snapshot for the environment, ``sys.modules``,
        ``builtins`` and the compared namespaces of ``sys`` and ``warnings``; the watch
        source's baseline for other modules and classes."""
        if name is None:
            return UNKNOWN
        snap = self.snapshot
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
        if self.watch is not None:
            return self.watch.baseline(target, name)
        return UNKNOWN

    def scope_binding(self, key: tuple[str, str | None], now: object) -> bool:
        """A binding an open wider scope (setUpClass, a module or class fixture) set, that
        holds after the test either the value the scope set or the one from before the
        scope. The rule: such a binding is the scope's while it is open; a test (or a
        plugin's hook around its report) that takes the scope's patch off and puts an
        equal one back (pyfakefs pauses and resumes its patcher around each call report),
        or the scope's own finalizer running in the test's teardown and putting the old
        value back, leaves nothing of the test's. The scope is checked when it ends; any
        other value the test leaves is still the test's."""
        held = self.scope_values.get(key)
        return held is not None and (held[1].matches(now) or held[0].matches(now))

    def explained_by_patch(self, target: str, name: str | None) -> bool:
        """A patch still applied on this binding: reported as that patch, if at all."""
        for active in self.build.tracer.ledger.active():
            m = active.mutation
            if m.target == target and m.name == name:
                return True
        return False

    def leak_from(self, mutation: Mutation, kind: Kind, obj: object) -> Leak:
        return self.build.leak_from(mutation, kind, obj)
