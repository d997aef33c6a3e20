"""A pytest plugin for ``bench_instructions.py --parts``: switch parts of patchtrace off.

Loaded with ``-p _knockout`` (this directory on ``PYTHONPATH``), in the plain and the
traced arms alike. Two environment variables steer it:

``PT_BENCH_STEADY=1``
    Turns the interpreter's automatic full collections off (``gc.set_threshold(700, 10,
    10**9)``; young collections go on). A full collection is a discrete event costing
    ~20M instructions on this suite's heap; one more or one fewer in the run of 2N tests
    than in the run of N moves the marginal cost of a test by ~70k, in either direction.
    With them off, the marginal is steady from one commit to the next.

``PT_BENCH_KNOCKOUT=part,part,...``
    Parts to switch off once patchtrace has started: a source by name (``audit``,
    ``mock``, ``monkeypatch``, ``reload``, ``watch``), or ``boundary`` (the detector's
    checks at the start and end of each test: resource snapshots, the version-tag scan,
    sealing, the leak passes). What a run costs without a part is what that part costs,
    give or take the interactions (fewer records make a cheaper boundary).

This is a measuring device, not a feature: a knocked-out run reports nothing useful.
"""

from __future__ import annotations

import gc
import os
from typing import Any

import pytest

if os.environ.get("PT_BENCH_STEADY"):
    gc.set_threshold(700, 10, 10**9)

_SOURCES = ("audit", "mock", "monkeypatch", "reload", "watch")


@pytest.hookimpl(trylast=True)  # after patchtrace's own pytest_configure has started it
def pytest_configure(config: pytest.Config) -> None:
    parts = {p for p in os.environ.get("PT_BENCH_KNOCKOUT", "").split(",") if p}
    if not parts or not os.environ.get("PATCHTRACE"):
        return
    from patchtrace import _tracer

    tracer = _tracer.current()
    if tracer is None:
        raise pytest.UsageError("_knockout: patchtrace is not tracing")
    unknown = parts - {*_SOURCES, "boundary"}
    if unknown:
        raise pytest.UsageError(f"_knockout: unknown parts {sorted(unknown)}")
    for name in parts & set(_SOURCES):
        source = tracer.source(name)
        if source is not None:
            source.uninstall()
    if "boundary" in parts:
        detector: Any = tracer.detector
        detector.begin = lambda: None
        detector.end = lambda scope, collection=False: []
