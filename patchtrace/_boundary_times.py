"""A private benchmark hook, not part of the contract: how long each boundary check took.

``_PATCHTRACE_BOUNDARY_TIMES=PATH`` (read once, when a traced pytest session starts) makes
the session append one line per boundary check to PATH at its end, ``<what>\\t<ms>``:
``begin`` and ``end`` of each test, ``collection``, ``fixture`` (a wider fixture
finalized) and ``finish`` (the final collection). ``benchmarks/real_suites.py`` reads it.
Unset, nothing is timed: the plugin holds ``None`` and skips the clock. The file is
written with references captured when tracing started, like every report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TypeVar

from . import _captured

__all__ = ["VARIABLE", "BoundaryTimes", "from_environ"]

VARIABLE: Final = "_PATCHTRACE_BOUNDARY_TIMES"
_T = TypeVar("_T")


class BoundaryTimes:
    """Durations of boundary checks, kept in memory and appended to ``path`` once."""

    __slots__ = ("clock", "path", "samples")

    def __init__(self, path: str) -> None:
        self.path = path
        self.clock = time.perf_counter
        self.samples: list[tuple[str, float]] = []

    def timed(self, what: str, func: Callable[[], _T]) -> _T:
        started = self.clock()
        try:
            return func()
        finally:
            self.samples.append((what, self.clock() - started))

    def write(self) -> None:
        """Append the samples to the file (never raises: a benchmark aid, not a report)."""
        lines = "".join(f"{what}\t{seconds * 1000.0:.3f}\n" for what, seconds in self.samples)
        self.samples = []
        try:
            with _captured.open_file(self.path, "a", encoding="utf-8") as handle:
                handle.write(lines)
        except Exception as exc:
            _captured.say(f"patchtrace: could not write {self.path} ({_captured.reason(exc)})")


def from_environ() -> BoundaryTimes | None:
    path = _captured.environ.get(VARIABLE)
    return BoundaryTimes(path) if path else None
