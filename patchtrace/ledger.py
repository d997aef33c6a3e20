"""The append-only record of mutations, and the scopes they happened in.

A :class:`Mutation` is plain data plus, while its scope is open, strong references to the
values before and after (so that a boundary check can compare identities). When the scope
ends the ledger *seals* it: each value becomes a :class:`~patchtrace.values.ValueSummary`
and, where the object allows it, a weak reference. A sealed record keeps nothing alive.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Iterator
from typing import Any, Final, final

from ._vocab import ATOMS as _ATOMS
from ._vocab import NOTHING, UNKNOWN, Op, SourceName
from .stack import Frame, Stack
from .values import MISSING, ValueSummary, is_mock, summarize, type_name

__all__ = [
    "COLLECTION", "NOTHING", "PROCESS", "UNKNOWN", "ActivePatch", "Ledger", "Mutation", "Scope",
]


@final
class Scope:
    """Where a mutation happened: which test (or collection/process), phase and fixture."""

    __slots__ = ("fixture", "fixture_scope", "phase", "test", "wide")

    def __init__(
        self,
        test: str,
        phase: str,
        fixture: str | None = None,
        fixture_scope: str | None = None,
    ) -> None:
        self.test = test
        self.phase = phase  # collection | setup | call | teardown
        self.fixture = fixture
        self.fixture_scope = fixture_scope  # function | class | module | package | session
        #: a fixture whose scope outlives the test that set it up (an attribute, not a
        #: property: read for every record at every boundary)
        self.wide = fixture_scope not in (None, "function")

    def __repr__(self) -> str:
        extra = f", fixture={self.fixture!r}/{self.fixture_scope}" if self.fixture else ""
        return f"Scope({self.test!r}, {self.phase!r}{extra})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scope):
            return NotImplemented
        return (self.test, self.phase, self.fixture) == (other.test, other.phase, other.fixture)

    def __hash__(self) -> int:
        return hash((self.test, self.phase, self.fixture))


PROCESS: Final = Scope("<process>", "call")
COLLECTION: Final = Scope("<collection>", "collection")


_threads_by_ident: dict[int, threading.Thread] | None = getattr(threading, "_active", None)
_get_ident: Final = threading.get_ident


def _thread_name() -> str:
    """``threading.current_thread().name`` in one dict lookup (read for every record)."""
    if _threads_by_ident is not None:
        thread = _threads_by_ident.get(_get_ident())
        if thread is not None:
            name = thread.__dict__.get("_name")
            if type(name) is str:
                return name
    return threading.current_thread().name


def _weak(obj: object) -> weakref.ref[Any] | None:
    if type(obj).__weakrefoffset__ == 0:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


@final
class Mutation:
    """One change to process-wide state.

    ``op`` is what happened: ``set``, ``delete``, ``patch``, ``unpatch``, ``chdir``,
    ``reload``, ``class-assign``, ``code-assign``. ``source`` is who saw it: ``mock``,
    ``monkeypatch``, ``audit``, ``reload``, ``watch`` (a dict watcher or a recording module
    ``__setattr__``), ``scan`` (a boundary comparison). ``token`` pairs a patch with its undo.
    """

    __slots__ = (
        "_after",
        "_after_hint",
        "_after_ref",
        "_after_summary",
        "_before",
        "_before_hint",
        "_before_ref",
        "_before_summary",
        "_sealed",
        "desc",
        "holder",
        "name",
        "op",
        "scope",
        "seq",
        "source",
        "stack",
        "target",
        "thread",
        "token",
        "unwinding",
    )

    def __init__(
        self,
        seq: int,
        op: Op,
        source: SourceName,
        target: str,
        name: str | None,
        before: object,
        after: object,
        stack: Stack,
        scope: Scope,
        token: int | None = None,
        desc: str | None = None,
    ) -> None:
        self.seq = seq
        self.op = op
        self.source = source
        self.target = target
        self.name = name
        self._before: object = before
        self._after: object = after
        self._before_summary: ValueSummary | None = None
        self._after_summary: ValueSummary | None = None
        self._after_ref: weakref.ref[Any] | None = None
        self._before_ref: weakref.ref[Any] | None = None
        self._before_hint: tuple[str, bool] | None = None
        self._after_hint: tuple[str, bool] | None = None
        self._sealed = False
        self.stack = stack
        self.scope = scope
        self.thread = _thread_name()
        self.token = token
        self.desc = desc  # e.g. "patch('pkg.mod.func')"
        #: for an undo: (exception type name, id of the exception) when the undo ran while
        #: that exception propagated (a ``with patch`` or decorator around a failing line)
        self.unwinding: tuple[str, int] | None = None
        #: a weak reference to the patched object when ``target`` could not name it cheaply
        #: (an instance): reports look for a path to it (``naming.find_path``), once
        self.holder: weakref.ref[Any] | None = None

    # -- values ---------------------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self._sealed

    @property
    def before(self) -> ValueSummary:
        summary = self._before_summary
        if summary is None:
            summary = self._lazy_summary(self._before, self._before_ref, self._before_hint)
            if self._sealed:
                self._before_summary = summary
        return summary

    @property
    def after(self) -> ValueSummary:
        summary = self._after_summary
        if summary is None:
            summary = self._lazy_summary(self._after, self._after_ref, self._after_hint)
            if self._sealed:
                self._after_summary = summary
        return summary

    def _lazy_summary(
        self, held: object, ref: weakref.ref[Any] | None, hint: tuple[str, bool] | None
    ) -> ValueSummary:
        if not self._sealed or held is not NOTHING:
            return _summary(held)
        obj = ref() if ref is not None else None
        if obj is not None:
            return summarize(obj)
        type_name, mock = hint or ("?", False)
        return ValueSummary(type_name, f"<{type_name} object, since collected>", mock)

    def before_value(self) -> object:
        """The object bound before; once sealed, through a weak reference (or UNKNOWN)."""
        return self._value(self._before, self._before_ref, self._before_summary, self._sealed)

    def after_value(self) -> object:
        """The object bound after; once sealed, through a weak reference (or UNKNOWN)."""
        return self._value(self._after, self._after_ref, self._after_summary, self._sealed)

    @staticmethod
    def _value(
        held: object, ref: weakref.ref[Any] | None, summary: ValueSummary | None, sealed: bool
    ) -> object:
        if not sealed or held is not NOTHING:
            return held  # open scope, or an atom kept after sealing
        if summary is MISSING:
            return NOTHING
        if ref is None:
            return UNKNOWN
        obj = ref()
        return UNKNOWN if obj is None else obj

    def seal(self) -> None:
        """Drop strong references. Atoms stay; other objects keep a weak reference, their
        type, and get their repr computed only if someone asks (cheap on the hot path)."""
        if self._sealed:
            return
        before, after = self._before, self._after
        if before is NOTHING:
            self._before_summary = MISSING
        elif type(before) not in _ATOMS:  # atoms stay as they are: cheap to summarize later
            self._before_summary, self._before_ref, self._before_hint, self._before = _seal(
                before)
        if after is NOTHING:
            self._after_summary = MISSING
        elif type(after) not in _ATOMS:
            self._after_summary, self._after_ref, self._after_hint, self._after = _seal(after)
        self._sealed = True

    # -- presentation -----------------------------------------------------------------------
    @property
    def where(self) -> Frame | None:
        return self.stack.where()

    @property
    def label(self) -> str:
        """``target.name`` as users write it."""
        return _label(self.target, self.name)

    def __repr__(self) -> str:
        where = self.where
        return (
            f"<Mutation #{self.seq} {self.op} {self.label} by {self.source}"
            f" in {self.scope.test}/{self.scope.phase} at {where!r}>"
        )


def _seq_of(mutation: Mutation) -> int:
    return mutation.seq


def _summary(obj: object) -> ValueSummary:
    if obj is NOTHING:
        return MISSING
    return summarize(obj)


def _seal(
    obj: object,
) -> tuple[ValueSummary | None, weakref.ref[Any] | None, tuple[str, bool] | None, object]:
    """(summary now or None for later, weak reference, (type, is_mock), what to keep)."""
    if obj is NOTHING:
        return MISSING, None, None, NOTHING
    if type(obj) in _ATOMS:
        return None, None, None, obj  # cheap to keep and to summarize when asked
    ref = _weak(obj)
    if ref is None:
        return summarize(obj), None, None, NOTHING  # no weak reference: summarize now
    return None, ref, (type_name(obj), is_mock(obj)), NOTHING


def _label(target: str, name: str | None) -> str:
    base = target.split(":", 1)[1] if ":" in target else target
    if name is None:
        return base
    if target in ("os.environ", "sys.modules", "builtins") or target.startswith("dict:"):
        return f"{base}[{name!r}]" if target != "builtins" else f"builtins.{name}"
    if target in ("sys.path", "sys.meta_path", "sys.path_hooks", "logging", "warnings"):
        return f"{base} {name}"
    return f"{base}.{name}"


@final
class ActivePatch:
    """A patch (mock or MonkeyPatch) applied and not yet undone."""

    __slots__ = ("_patcher", "mutation")

    def __init__(self, mutation: Mutation, patcher: object) -> None:
        self.mutation = mutation
        self._patcher = _weak(patcher)

    def patcher(self) -> object | None:
        return None if self._patcher is None else self._patcher()


#: Records kept in memory. Past it, the oldest sealed records that are not active patches
#: are dropped (a suite of 100k tests records ~700k mutations; each costs ~300 bytes).
MAX_RECORDS: Final = 200_000


def _active_seq(active: ActivePatch) -> int:
    return active.mutation.seq


class Ledger:
    """Every mutation seen, in order; the patches active now; the scopes still open.

    ``len(ledger)`` and ``seq`` count every mutation ever recorded; the records themselves
    are bounded by :data:`MAX_RECORDS` (the oldest closed ones go first).
    """

    def __init__(self) -> None:
        self._count = 0
        self._records: list[Mutation] = []
        self._by_label: dict[tuple[str, str | None], list[Mutation]] = {}
        self._active: dict[int, ActivePatch] = {}
        #: active() as last computed, and whether it is still right (every boundary asks)
        self._active_sorted: list[ActivePatch] | None = None
        self._active_changes = 0
        self._unsealed: list[Mutation] = []
        self._lock = threading.Lock()

    def append(self, mutation: Mutation, patcher: object = None) -> Mutation:
        # No lock: each statement is one atomic list/dict operation under the GIL, and the
        # order of two threads' records does not need to be more exact than that.
        self._records.append(mutation)
        self._count = mutation.seq
        key = (mutation.target, mutation.name)
        bucket = self._by_label.get(key)
        if bucket is None:
            self._by_label[key] = [mutation]
        else:
            bucket.append(mutation)
        if mutation.token is not None:
            if mutation.op == "patch":
                self._active[mutation.token] = ActivePatch(mutation, patcher)
                self._active_changes += 1
                self._active_sorted = None
            elif mutation.op == "unpatch" and self._active.pop(mutation.token, None) is not None:
                self._active_changes += 1
                self._active_sorted = None
        if not mutation._sealed:
            self._unsealed.append(mutation)
        return mutation

    def next_seq(self) -> int:
        return self._count + 1

    def seal(self) -> None:
        """Seal every record made so far (called when a scope ends)."""
        with self._lock:
            pending, self._unsealed = self._unsealed, []
        for mutation in pending:
            mutation.seal()
        if len(self._records) > MAX_RECORDS:
            self._prune(MAX_RECORDS // 2)

    def _prune(self, keep: int) -> None:
        """Keep the newest ``keep`` records, the active patches' and any still unsealed."""
        active = {a.mutation.seq for a in self._active.values()}
        cut = len(self._records) - keep
        kept = [m for m in self._records[:cut] if m.seq in active or not m._sealed]
        self._records = kept + self._records[cut:]
        self._by_label = {}
        for mutation in self._records:
            self._by_label.setdefault((mutation.target, mutation.name), []).append(mutation)

    def __len__(self) -> int:
        """Mutations recorded so far (including any dropped to bound memory)."""
        return self._count

    def __iter__(self) -> Iterator[Mutation]:
        return iter(list(self._records))

    def since(self, seq: int) -> list[Mutation]:
        """Records with ``seq`` greater than the given one (seq starts at 1)."""
        return self._records[bisect.bisect_right(self._records, seq, key=_seq_of):]

    def get(self, seq: int) -> Mutation | None:
        """The record with this ``seq`` (a patch's token is its record's seq), if kept."""
        records = self._records
        index = bisect.bisect_left(records, seq, key=_seq_of)
        if index < len(records) and records[index].seq == seq:
            return records[index]
        return None

    def last(self, target: str, name: str | None) -> Mutation | None:
        """The latest mutation of ``target``/``name`` (without copying its history)."""
        bucket = self._by_label.get((target, name))
        return bucket[-1] if bucket else None

    def history(self, target: str, name: str | None = None) -> list[Mutation]:
        """Every mutation of ``target`` (and ``name``, if given), oldest first."""
        if name is not None:
            return list(self._by_label.get((target, name), ()))
        return [m for m in self._records if m.target == target]

    def active(self) -> list[ActivePatch]:
        """Patches applied and not undone, oldest first (a new list; computed again only
        after a patch is applied or undone)."""
        cached = self._active_sorted
        if cached is None:
            changes = self._active_changes
            with self._lock:
                cached = sorted(self._active.values(), key=_active_seq)
            if changes == self._active_changes:  # no other thread patched meanwhile
                self._active_sorted = cached
        return list(cached)

    def applied(self, token: int) -> Mutation | None:
        """The patch record of an active patch, by token."""
        active = self._active.get(token)
        return None if active is None else active.mutation
