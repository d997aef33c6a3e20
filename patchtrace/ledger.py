"""The append-only record of mutations, and the scopes they happened in.

A :class:`Mutation` is plain data plus, while its scope is open, strong references to the
values before and after (so that a boundary check can compare identities). When the scope
ends the ledger *seals* it: each value becomes a :class:`~patchtrace.values.ValueSummary`
and, where the object allows it, a weak reference. A sealed record keeps nothing alive.

Records are *lazy*: a source appends one tuple (:meth:`Ledger.add`: the operation, the
target object or its name, the values, the raw stack, the scope) and returns. The target
string, the description and the :class:`Mutation` itself are made when someone reads the
record: a boundary for the records not undone in their own scope (:meth:`Ledger.since`
with ``drop_undone``), the debugger, ``history()``, ``active_patches()``, the reports. A
materialised record replaces its tuple, so every reader sees the same object. Sealing a
tuple makes another tuple (the target named, the values summarized or weakly referenced);
it touches only the records made since the last seal.
"""

from __future__ import annotations

import bisect
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
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


_main_ident: Final = threading.main_thread().ident


def _thread_name() -> str:
    """``threading.current_thread().name`` in one dict lookup."""
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
        thread: str | None = None,
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
        self.thread = _thread_name() if thread is None else thread
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


def _seq_of(record: Mutation | tuple[Any, ...]) -> int:
    return record[0] if type(record) is tuple else record.seq  # type: ignore[union-attr]


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
#: are dropped (a suite of 100k tests records ~700k mutations).
MAX_RECORDS: Final = 200_000


def _active_seq(active: ActivePatch) -> int:
    return active.mutation.seq


def _entry_seq(entry: tuple[int, tuple[int, object]]) -> int:
    return entry[1][0]


# -- lazy records ---------------------------------------------------------------------------
#
# A raw record is a tuple, in this order (``Ledger.add``):
#
#   seq, op, source, target, hint, name, before, after, stack, scope, token, desc, thread,
#   unwinding, sealed
#
# ``target`` is the contract's target string (``hint`` is then a weak reference to the
# object an ``object:`` target names, or None), or the object the mutation was made on
# (named with ``target_of(target, hint)`` when read, or when sealed); ``desc`` a string, None, or
# ``(function, argument)`` called as ``function(target string, name, argument)`` when read
# (the argument a string: it is kept after sealing);
# ``stack`` a :class:`Stack` or the raw items of one (``stack.capture_raw``); ``thread``
# None for the main thread. Once ``sealed``: ``target`` is a string, ``hint`` the weak
# reference to an ``object:`` target (``Mutation.holder``) or None, and each value is an
# atom, ``NOTHING``, ``(summary,)`` or ``(weak reference, type name, is mock)``.

_TARGET, _HINT, _NAME, _BEFORE, _AFTER, _STACK, _SCOPE, _TOKEN, _DESC = range(3, 12)
_SEALED: Final = 14

Raw = tuple[Any, ...]

#: (id of a target object, hint) -> (weak reference to it, its name): a test suite patches
#: the same few modules, classes and mappings over and over; naming each once is enough
#: (a name depends on the object and the hint only, but for a plain dict, which is named
#: by the module whose namespace it is and cannot be weakly referenced)
_names: dict[tuple[int, str | None], tuple[weakref.ref[Any], str]] = {}


_target_of: Callable[[object, str | None], str] | None = None


def _target_name(obj: object, hint: str | None) -> str:
    global _target_of
    key = (id(obj), hint)
    cached = _names.get(key)
    if cached is not None and cached[0]() is obj:
        return cached[1]
    if _target_of is None:  # naming imports this module: looked up once, not per call
        from .naming import target_of

        _target_of = target_of
    name = _target_of(obj, hint)
    ref = _weak(obj)  # a dict (named by a scan of sys.modules) has none: never cached
    if ref is not None:
        if len(_names) > 10_000:
            _names.clear()
        _names[key] = (ref, name)
    return name


_intern: Final = sys.intern


def _seal_value(obj: object) -> object:
    if obj is NOTHING or type(obj) in _ATOMS:
        return obj
    ref = _weak(obj)
    if ref is None:
        return (summarize(obj),)  # no weak reference: summarize now
    # The type's name interned: a MagicMock's class is its own, with its own name string.
    name = type_name(obj)
    return (ref, _intern(name) if type(name) is str else name, is_mock(obj))


def seal_raw(raw: Raw, seen: dict[int, object] | None = None) -> Raw:
    """The sealed form of an unsealed raw record: the target named, the values dropped.

    ``seen`` (id -> sealed form) serves a value met before in the same seal: a patch's
    replacement is its undo's "before", its original the undo's "after" (the objects are
    alive while the seal runs, so no id is reused meanwhile)."""
    target = raw[3]
    if type(target) is str:
        holder = raw[4]  # a string target's holder (or None)
    else:
        obj = target
        target = _target_name(obj, raw[4])
        holder = _weak(obj) if target.startswith("object:") else None
    before, after = _sealed(raw[6], seen), _sealed(raw[7], seen)
    # A (function, argument) desc stays as it is: its argument is a string, never a user
    # object, and one such tuple is shared by all the records of a call site.
    return (raw[0], raw[1], raw[2], target, holder, raw[5], before, after, raw[8], raw[9],
            raw[10], raw[11], raw[12], raw[13], True)


def _sealed(value: object, seen: dict[int, object] | None) -> object:
    """``value`` as a sealed record keeps it: atoms as they are, anything else through
    ``_seal_value``, once per object when ``seen`` is given (the values of one seal)."""
    if value is NOTHING or type(value) in _ATOMS:
        return value
    if seen is None:
        return _seal_value(value)
    key = id(value)  # alive: the raw record holds it while it is sealed
    sealed = seen.get(key)
    if sealed is None:
        sealed = seen[key] = _seal_value(value)
    return sealed


def named(raw: Raw) -> Raw:
    """An unsealed raw record whose target object is replaced by its name (and the weak
    reference an ``object:`` target keeps as its holder)."""
    obj = raw[3]
    if type(obj) is str:
        return raw
    target = _target_name(obj, raw[4])
    holder = _weak(obj) if target.startswith("object:") else None
    return (*raw[:3], target, holder, *raw[5:])


def _open_value(held: object) -> tuple[object, ValueSummary | None, weakref.ref[Any] | None,
                                       tuple[str, bool] | None]:
    """A sealed raw value as Mutation fields: (kept, summary, ref, hint)."""
    if held is NOTHING:
        return NOTHING, MISSING, None, None
    if type(held) is tuple:
        if len(held) == 1:
            return NOTHING, held[0], None, None
        return NOTHING, None, held[0], (held[1], held[2])
    return held, None, None, None


def materialise(raw: Raw) -> Mutation:
    """The :class:`Mutation` a raw record stands for (what an eager record would have been)."""
    target = raw[3]
    holder: weakref.ref[Any] | None = None
    sealed = raw[14]
    if sealed or type(target) is str:
        holder = raw[4]
    else:
        obj = target
        target = _target_name(obj, raw[4])
        if target.startswith("object:"):
            holder = _weak(obj)
    desc = raw[11]
    if type(desc) is tuple:
        desc = desc[0](target, raw[5], desc[1])
    stack = raw[8]
    if type(stack) is tuple:
        stack = Stack(stack)
    thread = raw[12]
    mutation = Mutation(raw[0], raw[1], raw[2], target, raw[5], raw[6], raw[7], stack, raw[9],
                        raw[10], desc, thread if thread is not None else _main_name())
    mutation.holder = holder
    mutation.unwinding = raw[13]
    if sealed:
        (mutation._before, mutation._before_summary, mutation._before_ref,
         mutation._before_hint) = _open_value(raw[6])
        (mutation._after, mutation._after_summary, mutation._after_ref,
         mutation._after_hint) = _open_value(raw[7])
        mutation._sealed = True
    return mutation


def _main_name() -> str:
    thread = _threads_by_ident.get(_main_ident) if _threads_by_ident is not None and \
        _main_ident is not None else None
    if thread is not None:
        name = thread.__dict__.get("_name")
        if type(name) is str:
            return name
    return threading.main_thread().name


def thread_of_caller() -> str | None:
    """What a raw record keeps as its thread: None in the main thread (named when read)."""
    ident = _get_ident()
    if ident == _main_ident:
        return None
    return _thread_name()


class Ledger:
    """Every mutation seen, in order; the patches active now; the scopes still open.

    ``len(ledger)`` and ``seq`` count every mutation ever recorded; the records themselves
    are bounded by :data:`MAX_RECORDS` (the oldest closed ones go first).

    ``_records`` holds raw tuples and :class:`Mutation` objects: a record is materialised
    (its tuple replaced) the first time a reader asks for it.
    """

    def __init__(self) -> None:
        self._count = 0
        self._records: list[Mutation | Raw] = []
        #: seq of ``_records[0]`` while the records are numbered without gaps (no prune, no
        #: record appended out of order): ``get`` is then one subtraction
        self._first = 1
        self._dense = True
        #: (target, name) -> seqs, for the records up to ``_indexed`` (built when asked)
        self._by_label: dict[tuple[str, str | None], list[int]] = {}
        self._indexed = 0
        #: token -> (seq of the patch record, weak reference to the patcher or None)
        self._active: dict[int, tuple[int, weakref.ref[Any] | None]] = {}
        #: active() as last computed, and whether it is still right (every boundary asks)
        self._active_sorted: list[ActivePatch] | None = None
        self._active_made: dict[int, ActivePatch] = {}
        self._active_changes = 0
        #: records from this position on are not sealed yet
        self._sealed_upto = 0
        self._lock = threading.Lock()

    # -- appending ------------------------------------------------------------------------
    def add(self, raw: Raw, patcher: object = None) -> int:
        """Append a raw record (the hot path: no naming, no Mutation). Returns its seq."""
        # No lock: each statement is one atomic list/dict operation under the GIL, and the
        # order of two threads' records does not need to be more exact than that.
        records = self._records
        seq: int = raw[0]
        if self._dense and seq != self._first + len(records):
            self._dense = False
        records.append(raw)
        self._count = seq
        token = raw[10]
        if token is not None:
            op = raw[1]
            if op == "patch":
                self._active[token] = (seq, None if patcher is None else _weak(patcher))
                self._active_changes += 1
                self._active_sorted = None
            elif op == "unpatch" and self._active.pop(token, None) is not None:
                self._active_made.pop(token, None)
                self._active_changes += 1
                self._active_sorted = None
        return seq

    def append(self, mutation: Mutation, patcher: object = None) -> Mutation:
        """Append a record made eagerly (tests, and code that builds its own Mutation)."""
        records = self._records
        if self._dense and mutation.seq != self._first + len(records):
            self._dense = False
        records.append(mutation)
        self._count = mutation.seq
        if mutation.token is not None:
            if mutation.op == "patch":
                self._active[mutation.token] = (
                    mutation.seq, None if patcher is None else _weak(patcher))
                self._active_made.pop(mutation.token, None)
                self._active_changes += 1
                self._active_sorted = None
            elif mutation.op == "unpatch" and \
                    self._active.pop(mutation.token, None) is not None:
                self._active_made.pop(mutation.token, None)
                self._active_changes += 1
                self._active_sorted = None
        if mutation._sealed and self._sealed_upto == len(records) - 1:
            self._sealed_upto = len(records)
        return mutation

    def next_seq(self) -> int:
        return self._count + 1

    # -- sealing --------------------------------------------------------------------------
    def seal(self) -> None:
        """Seal every record made so far (called when a scope ends): only those made since
        the last seal are touched."""
        with self._lock:
            records = self._records
            start, end = self._sealed_upto, len(records)
            self._sealed_upto = end
        seen: dict[int, object] = {}
        for index in range(start, end):
            record = records[index]
            if type(record) is tuple:
                if not record[14]:
                    records[index] = seal_raw(record, seen)
            else:
                record.seal()  # type: ignore[union-attr]
        seen.clear()
        if len(records) > MAX_RECORDS:
            self._prune(MAX_RECORDS // 2)

    def _sealed(self, record: Mutation | Raw) -> bool:
        return bool(record[14]) if type(record) is tuple else record._sealed  # type: ignore[union-attr]

    def _prune(self, keep: int) -> None:
        """Keep the newest ``keep`` records, the active patches' and any still unsealed."""
        active = {seq for seq, _ in self._active.values()}
        cut = len(self._records) - keep
        kept = [r for r in self._records[:cut] if _seq_of(r) in active or not self._sealed(r)]
        self._records = kept + self._records[cut:]
        self._sealed_upto = max(0, self._sealed_upto - (cut - len(kept)))
        self._dense = False
        self._by_label = {}
        self._indexed = 0

    # -- reading --------------------------------------------------------------------------
    def _at(self, index: int) -> Mutation:
        record = self._records[index]
        if type(record) is tuple:
            mutation = materialise(record)
            self._records[index] = mutation
            return mutation
        return record  # type: ignore[return-value]

    def _index_of(self, seq: int) -> int:
        """Position of the first record with this seq or a larger one."""
        records = self._records
        if self._dense:
            return min(max(seq - self._first, 0), len(records))
        return bisect.bisect_left(records, seq, key=_seq_of)

    def __len__(self) -> int:
        """Mutations recorded so far (including any dropped to bound memory)."""
        return self._count

    def __iter__(self) -> Iterator[Mutation]:
        return iter([self._at(i) for i in range(len(self._records))])

    def since(self, seq: int, *, drop_undone: str | None = None) -> list[Mutation]:
        """Records with ``seq`` greater than the given one (seq starts at 1).

        ``drop_undone`` (a test's node id): leave out the patches that test applied and
        undid within this range, with their undos, unless another record left in names
        the same attribute or key (they are then kept: a boundary check reads the value a
        first patch found). They stay in the ledger, unread and never materialised.
        """
        start = self._index_of(seq + 1)
        end = len(self._records)
        if drop_undone is None:
            return [self._at(i) for i in range(start, end)]
        keep = self._not_undone(start, end, drop_undone)
        return [self._at(i) for i in keep]

    def _not_undone(self, start: int, end: int, test: str) -> list[int]:
        records = self._records
        opened: dict[int, int] = {}
        pairs: list[tuple[int, int]] = []
        for index in range(start, end):
            record = records[index]
            if type(record) is tuple:
                op, token, scope = record[1], record[10], record[9]
            else:
                op, token, scope = record.op, record.token, record.scope  # type: ignore[union-attr]
            if token is None or scope.test != test or scope.wide:
                continue
            if op == "patch":
                opened[token] = index
            elif op == "unpatch":
                first = opened.pop(token, None)
                if first is not None:
                    pairs.append((first, index))
        if not pairs:
            return list(range(start, end))
        dropped = set()
        for first, second in pairs:
            dropped.add(first)
            dropped.add(second)
        rest = [i for i in range(start, end) if i not in dropped]
        if rest:
            names = {self._name_of(i) for i in rest}
            if None in names:
                return list(range(start, end))
            for first, second in pairs:
                if self._name_of(first) in names or self._name_of(second) in names:
                    rest.extend((first, second))
            rest.sort()
        return rest

    def _name_of(self, index: int) -> str | None:
        record = self._records[index]
        return record[5] if type(record) is tuple else record.name  # type: ignore[union-attr]

    def get(self, seq: int) -> Mutation | None:
        """The record with this ``seq`` (a patch's token is its record's seq), if kept."""
        index = self._index_of(seq)
        records = self._records
        if index < len(records) and _seq_of(records[index]) == seq:
            return self._at(index)
        return None

    def _index(self) -> None:
        """Bring the (target, name) index up to date, naming the records not named yet."""
        records = self._records
        by_label = self._by_label
        for index in range(self._indexed, len(records)):
            record = records[index]
            if type(record) is tuple:
                target = record[3]
                if type(target) is not str:
                    # named, still a tuple: the index reads no more than it must
                    records[index] = record = named(record)
                    target = record[3]
                key = (target, record[5])
                seq = record[0]
            else:
                key = (record.target, record.name)  # type: ignore[union-attr]
                seq = record.seq  # type: ignore[union-attr]
            bucket = by_label.get(key)
            if bucket is None:
                by_label[key] = [seq]
            else:
                bucket.append(seq)
        self._indexed = len(records)

    def last(self, target: str, name: str | None) -> Mutation | None:
        """The latest mutation of ``target``/``name`` (without copying its history)."""
        self._index()
        bucket = self._by_label.get((target, name))
        return self.get(bucket[-1]) if bucket else None

    def history(self, target: str, name: str | None = None) -> list[Mutation]:
        """Every mutation of ``target`` (and ``name``, if given), oldest first."""
        self._index()
        if name is not None:
            out = [self.get(seq) for seq in self._by_label.get((target, name), ())]
            return [m for m in out if m is not None]
        return [m for m in self if m.target == target]

    def _active_patch(self, token: int) -> ActivePatch | None:
        made = self._active_made.get(token)
        if made is not None:
            return made
        entry = self._active.get(token)
        if entry is None:
            return None
        mutation = self.get(entry[0])
        if mutation is None:
            return None
        active = ActivePatch(mutation, None)
        active._patcher = entry[1]
        self._active_made[token] = active
        return active

    def active(self) -> list[ActivePatch]:
        """Patches applied and not undone, oldest first (a new list; computed again only
        after a patch is applied or undone)."""
        cached = self._active_sorted
        if cached is None:
            changes = self._active_changes
            with self._lock:
                entries = sorted(self._active.items(), key=_entry_seq)
            cached = [a for a in map(self._active_patch, (t for t, _ in entries))
                      if a is not None]
            if changes == self._active_changes:  # no other thread patched meanwhile
                self._active_sorted = cached
        return list(cached)

    def applied(self, token: int) -> Mutation | None:
        """The patch record of an active patch, by token."""
        entry = self._active.get(token)
        return None if entry is None else self.get(entry[0])

    def is_applied(self, token: int) -> bool:
        """Whether the patch of ``token`` is still applied (without reading its record)."""
        return token in self._active
