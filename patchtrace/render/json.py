"""The machine-readable report: ``schema: patchtrace-report/1`` (see CONTRACT.md)."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .._version import __version__
from ..leak import Leak

__all__ = ["SCHEMA", "build", "load", "write"]

SCHEMA: Final = "patchtrace-report/1"


def build(
    leaks: Iterable[Leak],
    *,
    tests: int,
    mutations: int,
    extra: Mapping[str, Any] | None = None,
    hints: Iterable[Mapping[str, Any]] | None = None,
    children: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The report; ``children`` are the child processes' findings under
    ``PATCHTRACE_CHILDREN=1``, each ``{"command", "started_by", "leaks"}``."""
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "patchtrace": __version__,
        "python": platform.python_version(),
        "tests": tests,
        "mutations": mutations,
        "leaks": [leak.to_json() for leak in leaks],
        "children": [dict(child) for child in children],
    }
    # per failing test, what is not a leak: a patch that never took effect (see _hints)
    report["hints"] = [dict(hint) for hint in hints or ()]
    if extra:
        for key, value in extra.items():
            report.setdefault(key, value)
    return report


def write(path: str, report: Mapping[str, Any]) -> None:
    """Write atomically, so a reader never sees half a report; with the references
    captured when tracing started (a suite may have left ``open`` or ``json`` patched).
    Raises OSError (and the like) when the file cannot be written."""
    from .. import _captured

    _captured.write_json(path, report)


def load(path: str) -> tuple[dict[str, Any], list[Leak]]:
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith(
        "patchtrace-report/"
    ):
        raise ValueError(f"{path} is not a patchtrace report (no 'schema' field)")
    leaks = [Leak.from_json(item) for item in data.get("leaks") or () if isinstance(item, dict)]
    return data, leaks
