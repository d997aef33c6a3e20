"""Mocks confirmed alive by the garbage collector after their scope ended.

Survivors are confirmed by CPython's own full collections, not by collecting per test: a
``gc.callbacks`` hook notes when a generation-2 collection starts and stops; a mock whose
test had ended before that collection started and that is still alive after it is
reachable from somewhere. Its creation record keeps the blame exact; one last collection
at the end of the run confirms the rest. Nothing is frozen, and a test's own
``gc.collect()`` behaves as without us.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, final

from ..analysis import victims as _victims
from ..ledger import NOTHING, Scope
from ..values import identity_key, is_mock

if TYPE_CHECKING:
    from .._tracer import Tracer
    from ..config import Config
    from ..leak import Leak
    from ..sources.mock import MockCreation, MockSource

__all__ = ["Survivors", "binding_path", "mock_activity"]


@final
class Survivors:
    """Which scopes ended at which epoch, and which epochs a full collection confirmed."""

    __slots__ = ("_checked", "_confirmed", "_gc_start", "ended", "epoch")

    def __init__(self) -> None:
        #: tests (or (test, fixture)) ended, at which epoch
        self.epoch = 0
        self.ended: dict[object, int] = {}
        self._gc_start = -1
        self._confirmed = -1
        self._checked = -1

    def install(self) -> None:
        gc.callbacks.append(self._on_gc)

    def uninstall(self) -> None:
        try:
            gc.callbacks.remove(self._on_gc)
        except ValueError:
            pass

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Runs inside the collector: bookkeeping only, no allocation-heavy work.
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_start = self.epoch
        elif phase == "stop" and self._gc_start > self._confirmed:
            self._confirmed = self._gc_start

    def scope_ended(self, key: object) -> None:
        """A test (its node id) or a wider fixture ((polluter, fixture name)) ended."""
        self.epoch += 1
        self.ended[key] = self.epoch

    def to_confirm(self, mocks: MockSource | None) -> bool:
        """Some mock of an ended scope is still alive (worth a full collection)."""
        epoch, ended = self.epoch, self.ended
        return mocks is not None and any(True for _ in mocks.alive_created_in(
            lambda s: ended.get((s.test, s.fixture) if s.wide else s.test, epoch + 1)
            <= epoch))

    def confirm_all(self) -> None:
        """The end of the run: its last full collection confirms every scope ended."""
        self._confirmed = self.epoch

    def confirmed(
        self, mocks: MockSource | None, known_leaks: Iterable[Leak], tracer: Tracer,
        config: Config, make: Callable[[object, MockCreation], Leak],
    ) -> list[Leak]:
        """Mocks whose scope ended before the last full collection began, still alive."""
        confirmed = self._confirmed
        if mocks is None or confirmed <= self._checked:
            return []
        self._checked = confirmed
        ended = self.ended

        def done(s: Scope) -> bool:
            key: object = (s.test, s.fixture) if s.wide else s.test
            epoch = ended.get(key)
            return epoch is not None and epoch <= confirmed

        out: list[Leak] = []
        known = {id(leak.obj()) for leak in known_leaks if leak.obj() is not NOTHING}
        objs: list[object] = []
        records: list[MockCreation] = []
        for obj, record in mocks.alive_created_in(done):
            mocks.forget(obj)  # judged once
            if id(obj) in known or _held_by_known(obj, tracer):
                continue
            objs.append(obj)
            records.append(record)
        # All of this boundary's survivors explained together: one search, not one each.
        for obj, record, chains in zip(objs, records, _alive_via(objs), strict=True):
            if chains is not None and not chains:
                # Only a traceback, the test runner's records (a recorded warning, pluggy's
                # call history) or patchtrace's own bookkeeping keep it, or nothing we can name.
                continue
            if chains and _only_via_ignored(config, obj, chains):
                continue  # kept only by a binding PATCHTRACE_IGNORE says to ignore
            leak = make(obj, record)
            leak.alive_via = chains
            out.append(leak)
        objs.clear()
        return out

    def used_by(
        self, mocks: MockSource | None, failure: _victims.Failure, leaks: list[Leak],
        tracer: Tracer, config: Config, make: Callable[[object, MockCreation], Leak],
    ) -> list[tuple[Leak, str]]:
        """Mocks made by tests that have ended, that the failing test called, holds or
        shows: alive after their test by evidence, without waiting for a collection. Each
        with its evidence, not yet accepted."""
        if mocks is None or not mocks.created:
            return []
        ended, test = self.ended, failure.test

        def done(s: Scope) -> bool:
            key: object = (s.test, s.fixture) if s.wide else s.test
            return key in ended and s.test != test

        known = {identity_key(leak.obj()) for leak in leaks if leak.obj() is not NOTHING}
        found: list[tuple[Leak, str]] = []
        for obj, record in mocks.alive_created_in(done):
            if identity_key(obj) in known or _held_by_known(obj, tracer):
                continue
            evidence = _victims.mock_evidence(obj, failure, "surviving mock",
                                              _victims.mock_name(obj))
            if not evidence:
                continue
            (chains,) = _alive_via([obj])
            if chains is not None and not chains:
                continue  # only the failing test's own frames keep it: not a leak
            if chains and _only_via_ignored(config, obj, chains):
                continue
            mocks.forget(obj)  # judged now
            leak = make(obj, record)
            leak.alive_via = chains
            found.append((leak, evidence))
        obj = None  # no strong reference beyond this check
        return found


def mock_activity(obj: object) -> int:
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
        from .. import refs
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
        from .. import refs

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


def binding_path(target: str, name: str | None) -> list[str] | None:
    if target.startswith("module:"):
        return [f"module {target[7:]}", f"attribute {name}"] if name else [f"module {target[7:]}"]
    if target.startswith("class:"):
        return [f"class {target[6:]}", f"class attribute {name}"]
    if target == "builtins":
        return ["module builtins", f"attribute {name}"]
    if target == "sys.modules":
        return [f"sys.modules[{name!r}]"]
    return None
