"""Baselines: the leaks a suite already has, so strict mode fails only on new ones.

An entry is ``(polluter, kind, target, name)``: it survives line moves, renumbered ids and
new addresses in reprs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["SCHEMA", "BaselineError", "build", "key", "load", "mark"]

SCHEMA: Final = "patchtrace-baseline/1"



class BaselineError(ValueError):
    """The baseline file cannot be read or is not a baseline."""


def key(leak: Mapping[str, Any]) -> tuple[str, str, str | None, str | None]:
    target, name = leak.get("target"), leak.get("name")
    return (str(leak.get("polluter")), str(leak.get("kind")),
            target if isinstance(target, str) else None,
            name if isinstance(name, str) else None)


def build(leaks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    entries = sorted({key(leak) for leak in leaks}, key=lambda k: tuple(str(p) for p in k))
    return {
        "schema": SCHEMA,
        "entries": [dict(zip(("polluter", "kind", "target", "name"), k, strict=True))
                    for k in entries],
    }


def load(path: str) -> frozenset[tuple[str, str, str | None, str | None]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise BaselineError(f"cannot read the baseline {path} ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BaselineError(f"the baseline {path} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or \
            not isinstance(data.get("entries"), list):
        raise BaselineError(f"{path} is not a patchtrace baseline (write one with "
                            "python -m patchtrace baseline REPORT.json > PATH)")
    return frozenset(key(e) for e in data["entries"] if isinstance(e, dict))


def mark(leaks: Iterable[Any], entries: frozenset[tuple[str, str, str | None, str | None]]
         ) -> None:
    """Set ``known`` on each :class:`~patchtrace.leak.Leak` that matches an entry."""
    for leak in leaks:
        leak.known = (leak.polluter, leak.kind, leak.target, leak.name) in entries
