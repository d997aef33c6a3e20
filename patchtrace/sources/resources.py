"""Moved to :mod:`patchtrace.boundary.snapshot` (the boundary snapshot is not a source: it
records nothing). This name stays only for the benchmarks that import it
(``benchmarks/bench_resources.py``, ``bench_boundary.py``, ``bench_calls.py``); nothing in
patchtrace imports it, and it imports the boundary only when an attribute is read, so a
source still never imports the boundary."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from ..boundary import snapshot

    return getattr(snapshot, name)
