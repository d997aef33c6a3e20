"""The report model: what every output shows, built once per run.

The pytest plugin (with its xdist workers' findings), the unittest glue and a traced
script each build one :class:`Report`; :mod:`patchtrace.render.report` writes every output
from it (terminal summary, JSON, HTML, graphs, GitHub annotations). So:

- **numbered once**: a leak keeps the id it was given when it was found (the detector's
  ``L1``, a worker's ``gw0-L1``); a leak that has none gets the next free ``L<n>`` here, and
  nothing renumbers it afterwards. Workers' leaks come in the natural order of their ids
  (``gw1-L3`` before ``gw10-L1``), not in the order in which the workers happened to end.
- **masked once**: each leak is replaced by its masked copy (:func:`~patchtrace.render.
  secrets.mask_leak`) here; a masked copy masks to itself, so a renderer that masks again
  changes nothing.
- **one block per change**: the same change (:func:`change_key`) left on several xdist
  workers stays one leak per worker (each worker is a process of its own, with its own
  state, victims and ``repeats``; ids ``gw0-L1``, ``gw1-L1``), but the terminal explains it
  once: ``same_change`` maps the first leak's id to the other workers' leaks, which the
  summary lists under it in one line each.
- **plain data**: counts are ints, hints and children plain dicts, texts strings; the leaks
  are :class:`~patchtrace.leak.Leak` values (plain data, plus at most a weak reference to
  the leaked object, for the graphs; none once masked). Nothing here calls a user object:
  values were summarized with :func:`~patchtrace.values.safe_repr` when they were recorded,
  and the extra fields are shown with it too (credentials in them masked, as in a value).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, final

from ..values import safe_repr

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = ["Report", "build", "change_key", "from_saved", "id_order", "masked", "worker_of"]

_PARTS: Final = re.compile(r"\d+|\D+")
_OWN_ID: Final = re.compile(r"L(\d+)")
_WORKER_ID: Final = re.compile(r"(.+)-L\d+")


def id_order(leak_id: str) -> list[tuple[int, int | str]]:
    """Natural order of ids: ``L2`` before ``L10``, ``gw1-L3`` before ``gw10-L1``."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in _PARTS.findall(leak_id)]


def worker_of(leak_id: str) -> str | None:
    """The xdist worker a leak id is labelled with (``gw0`` of ``gw0-L1``), else None."""
    match = _WORKER_ID.fullmatch(leak_id)
    return match.group(1) if match is not None else None


def change_key(leak: Leak) -> tuple[str, str | None, str | None, str]:
    """What makes two leaks the same change (CONTRACT ``repeats``): kind, target, name and
    type of value; a reload's "value" is its module, so what it changed tells two reloads
    apart."""
    return (leak.kind, leak.target, leak.name,
            leak.desc or "" if leak.kind == "module-reloaded" else leak.value.type)


def same_change(leaks: Sequence[Leak]) -> dict[str, list[Leak]]:
    """The first leak's id -> the leaks of the same change on *other* xdist workers, in id
    order; a leak listed there is not explained again in the terminal. Leaks of one
    process (no worker label, or the same worker) and baseline leaks are never folded."""
    first: dict[tuple[str, str | None, str | None, str], Leak] = {}
    workers: dict[str, set[str | None]] = {}
    out: dict[str, list[Leak]] = {}
    for leak in leaks:
        worker = worker_of(leak.id)
        if worker is None or leak.known or leak.target is None:
            continue
        key = change_key(leak)
        head = first.setdefault(key, leak)
        seen = workers.setdefault(head.id, {worker})
        if head is leak or worker in seen:
            continue
        seen.add(worker)
        out.setdefault(head.id, []).append(leak)
    return out


@final
class Report:
    """One run's findings, ready to render. Build it with :func:`build`."""

    __slots__ = ("baseline_error", "children", "crashed", "errors", "extra", "failed_run",
                 "hints", "leaks", "mutations", "outputs", "pollution", "rootdir",
                 "same_change", "seed", "session", "tests")

    def __init__(self, leaks: Sequence[Leak], *, tests: int, mutations: int, rootdir: str,
                 hints: Iterable[Mapping[str, Any]] = (),
                 children: Iterable[Mapping[str, Any]] = (),
                 extra: Mapping[str, Any] | None = None, seed: str | None = None,
                 session: bool = True, crashed: Iterable[str] = (),
                 errors: Iterable[str] = (), baseline_error: str | None = None,
                 pollution: Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        #: numbered and masked (see the module's docstring)
        self.leaks: list[Leak] = list(leaks)
        #: the first leak's id -> the same change's leaks on other workers (:func:`same_change`)
        self.same_change: dict[str, list[Leak]] = same_change(self.leaks)
        self.tests = int(tests)
        self.mutations = int(mutations)
        #: where the leaks' file names are relative to (fixes, source lines, HTML links)
        self.rootdir = str(rootdir)
        #: the JSON ``hints`` (failing tests' patches that never took effect)
        #: (their texts masked, as a value: a hint names a patch and who holds the original)
        self.hints: list[dict[str, Any]] = [
            {str(key): _plain(value) for key, value in hint.items()} for hint in hints]
        #: the JSON ``children`` (PATCHTRACE_CHILDREN)
        self.children: list[dict[str, Any]] = [dict(child) for child in children]
        #: more top-level JSON fields (pytest: ``rootdir``, ``randomly_seed``, ...)
        self.extra: dict[str, Any] = {str(key): _plain(value)
                                      for key, value in (extra or {}).items()}
        #: the pytest-randomly seed to show beside the headline, if any
        self.seed = seed
        #: a test session (pytest, unittest): the summary says "no leaks" too; a clean
        #: script says nothing
        self.session = session
        #: xdist workers that ended without a report, and parts disabled by internal errors
        self.crashed: list[str] = [str(line) for line in crashed]
        self.errors: list[str] = [str(line) for line in errors]
        #: why PATCHTRACE_BASELINE could not be read
        self.baseline_error = baseline_error
        #: plain unittest: each failing test's "pollution present" lines (pytest shows
        #: them in the failure's report instead), masked
        from .secrets import mask_values

        self.pollution: list[tuple[str, list[str]]] = [
            (str(test), [mask_values(str(line)) for line in lines]) for test, lines in pollution]
        #: strict mode: the exit status is 1 only because of leaks no test raised
        self.failed_run = False
        #: (what, path, None when written, or why not): filled by the writer
        self.outputs: list[tuple[str, str, str | None]] = []

    def __repr__(self) -> str:
        return (f"<Report {len(self.leaks)} leaks in {self.tests} tests, "
                f"{self.mutations} mutations>")


def _plain(value: object) -> object:
    """JSON-ready plain data, credentials in strings masked; anything else is shown by its
    safe repr (never raises)."""
    from .secrets import mask_values

    if type(value) is str:
        return mask_values(value)
    if value is None or type(value) in (int, float, bool):
        return value
    if type(value) in (list, tuple):
        return [_plain(item) for item in value]  # type: ignore[attr-defined]
    if type(value) is dict:
        return {str(key): _plain(item) for key, item in value.items()}
    return mask_values(safe_repr(value))


def number(leaks: Sequence[Leak]) -> None:
    """Give each leak without an id the next free ``L<n>``; ids already given stay."""
    used = {leak.id for leak in leaks if leak.id}
    highest = 0
    for leak_id in used:
        match = _OWN_ID.fullmatch(leak_id)
        if match is not None:
            highest = max(highest, int(match.group(1)))
    for leak in leaks:
        if leak.id:
            continue
        highest += 1
        while f"L{highest}" in used:
            highest += 1
        leak.id = f"L{highest}"
        used.add(leak.id)


def build(
    leaks: Iterable[Leak],
    *,
    tests: int,
    mutations: int,
    rootdir: str,
    workers: Iterable[Leak] = (),
    baseline: frozenset[tuple[str, str, str | None, str | None]] | None = None,
    **fields: Any,
) -> Report:
    """The model of one run: this process's leaks, then the workers' in id order, numbered
    and marked against the baseline (``known``), then masked, once. ``fields`` are the
    other :class:`Report` fields (hints, children, extra, seed, session, ...)."""
    found = list(leaks) + sorted(workers, key=lambda leak: id_order(leak.id))
    number(found)
    if baseline:
        from ..fix import _baseline

        _baseline.mark(found, baseline)
    return Report(masked(found), tests=tests, mutations=mutations, rootdir=rootdir,
                  **fields)


def masked(leaks: Iterable[Leak]) -> list[Leak]:
    """``leaks`` as every output shows them: each its masked copy
    (:func:`~patchtrace.render.secrets.mask_leak`; a leak with nothing to mask is itself).
    :func:`build` masks the model's leaks with it, once; the debugger shows the detector's
    leaks through it too (``pt leaks``, the stop at a leak), so no secret the reports hide
    is printed at the prompt. The leaks themselves are not changed."""
    from .secrets import mask_leak

    return [mask_leak(leak) for leak in leaks]


#: the top-level fields of a saved report that are not ``extra`` (see render/json.py)
_SAVED: Final = frozenset({"schema", "patchtrace", "python", "tests", "mutations", "leaks",
                           "children", "hints"})


def from_saved(data: Mapping[str, Any], leaks: Iterable[Leak]) -> Report:
    """The model of a saved JSON report (``python -m patchtrace report``): the run's own
    ids, counts, hints, children, seed and crashed workers, so the summary says exactly
    what the run's said (less the lines about the files the run wrote)."""
    def count(key: str) -> int:
        value = data.get(key)
        return value if type(value) is int else 0

    def dicts(key: str) -> list[Mapping[str, Any]]:
        return [item for item in data.get(key) or () if type(item) is dict]

    seed = data.get("randomly_seed")
    crashed = data.get("crashed_workers")
    rootdir = data.get("rootdir")
    return build(
        leaks, tests=count("tests"), mutations=count("mutations"),
        rootdir=rootdir if type(rootdir) is str else ".", hints=dicts("hints"),
        children=dicts("children"),
        extra={key: value for key, value in data.items() if key not in _SAVED},
        seed=None if seed is None else str(seed),
        crashed=[str(worker) for worker in crashed] if type(crashed) is list else ())
