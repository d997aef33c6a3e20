"""The :class:`Leak` value class: one leak as plain data, its kind's fix, JSON in and out.

Found by the boundary checks (:mod:`patchtrace.boundary`), read by the report model and
every renderer, and written to and read back from ``--patchtrace-json`` reports.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, Final, cast, final

from ._vocab import ATOMS as _ATOMS
from ._vocab import KINDS, Kind
from .ledger import COLLECTION, NOTHING
from .stack import Frame
from .values import MISSING, ValueSummary

__all__ = ["FIXES", "KINDS", "Leak"]

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
        "derived",
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
        #: bindings a standard-library call derived from this change in the same scope
        #: (``time.tzset()`` rewriting ``time.timezone`` from ``TZ``): part of this one
        #: finding, as (target, name, the call, before, now)
        self.derived: list[tuple[str, str, str, ValueSummary, ValueSummary]] = []
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
        if self.derived:
            text += "; " + self.derived_text()
        return f"{text}; {self.fix}" if self.fix else text

    def derived_text(self) -> str:
        """What the derived bindings say: ``time.tzset() derived from it: time.timezone
        0 -> -3600, ...``."""
        from .ledger import _label

        calls = sorted({call for _, _, call, _, _ in self.derived})
        changes = ", ".join(f"{_label(target, name)} {before.repr} -> {value.repr}"
                            for target, name, _, before, value in self.derived)
        return f"{' and '.join(calls)} derived from it: {changes}"

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
            "derived": [{"target": target, "name": name, "call": call,
                         "before": before.to_json(), "value": value.to_json()}
                        for target, name, call, before, value in self.derived],
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
        for item in data.get("derived") or ():
            if isinstance(item, dict):
                leak.derived.append((
                    str(item.get("target")), str(item.get("name")), str(item.get("call")),
                    ValueSummary.from_json(item.get("before") or {}),
                    ValueSummary.from_json(item.get("value") or {})))
        leak.known = data.get("known") is True
        reproduce, patch, verified = (data.get(k) for k in
                                      ("reproduce", "suggested_patch", "verified"))
        leak.reproduce = reproduce if isinstance(reproduce, str) else None
        leak.suggested_patch = patch if isinstance(patch, str) else None
        leak.verified = verified if isinstance(verified, bool) else None
        return leak

    def __repr__(self) -> str:
        return f"<Leak {self.id} {self.kind} {self.label} by {self.polluter}>"
