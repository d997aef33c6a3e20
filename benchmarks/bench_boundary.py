"""Instructions of one boundary and of one test's records, in-process, under callgrind.

    valgrind --tool=callgrind --toggle-collect=functools_reduce \\
        --callgrind-out-file=OUT python benchmarks/bench_boundary.py end|body|take|diff
    callgrind_annotate OUT | grep "PROGRAM TOTALS"      # divide by 300 (take, diff: 1000)

Put a checkout first on ``PYTHONPATH`` to measure it (``PYTHONPATH=/work/wt/_old``), and
set ``PYTHONHASHSEED=0``. What is counted is only what runs inside ``functools.reduce``
(a C function nothing else here calls): ``end`` the detector's ``begin()`` and ``end()``
around a test that patches with ``mock.patch.object``, monkeypatches an attribute and an
environment variable and undoes all (the generated suite's test, six records); ``body``
that test itself, records and mock's and MonkeyPatch's own work included; ``take`` one
resource snapshot; ``diff`` the comparison of two snapshots of an unchanged process.
A measuring device for ``bench_instructions.py --parts``'s parts, finer and ~10x faster
to run; not pytest (no runner frames below the stacks, no capture, no plugins).
"""

from __future__ import annotations

import functools
import os
import sys
import types
from typing import Any
from unittest import mock

from _pytest.monkeypatch import MonkeyPatch

from patchtrace import _tracer
from patchtrace.boundary import Detector
from patchtrace.config import Config
from patchtrace.ledger import Scope
from patchtrace.sources import resources

MODE = sys.argv[1] if len(sys.argv) > 1 else "end"
target = types.ModuleType("pt_bench_target")
target.VALUE = 0  # type: ignore[attr-defined]
target.func = lambda: 0  # type: ignore[attr-defined]
sys.modules["pt_bench_target"] = target
tracer = _tracer.start(Config())
detector = Detector(tracer)
tracer.detector = detector
calls: Any = getattr(tracer, "calls", None)


def one(n: int) -> None:
    with mock.patch.object(target, "func", return_value=n):
        target.func()
    mp = MonkeyPatch()
    mp.setattr(target, "VALUE", n)
    mp.setenv("PT_BENCH_VAR", str(n))
    mp.undo()


def counted(fn: Any) -> Any:
    return functools.reduce(lambda _a, _b: fn(), [1, 2])


def run(n: int, on: bool) -> None:
    name = f"t.py::test_{n}"
    tracer.scope = Scope(name, "call")
    if on and MODE == "end":
        counted(detector.begin)
    else:
        detector.begin()
    if on and MODE == "body":
        counted(lambda: one(n))
    else:
        one(n)
    os.environ["PYTEST_CURRENT_TEST"] = name  # pytest's own, around every phase
    tracer.scope = Scope(name, "teardown")
    if on and MODE == "end":
        counted(lambda: detector.end(Scope(name, "call")))
    else:
        detector.end(Scope(name, "call"))


def take() -> object:
    return resources.take(calls) if calls is not None else resources.take()


if MODE in ("end", "body"):
    for n in range(100):
        run(n, False)
    for n in range(300):
        run(n, True)
elif MODE == "take":
    for _ in range(50):
        take()
    counted(lambda: [take() for _ in range(1000)])
elif MODE == "diff":
    a, b = take(), take()
    counted(lambda: [resources.diff(a, b) for _ in range(1000)])  # type: ignore[arg-type]
