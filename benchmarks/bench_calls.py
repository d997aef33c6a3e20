"""What a wrapped call costs (``sources/calls.py``), per call, in each of its paths.

    python benchmarks/bench_calls.py [--number N] [--repeat R]

``logging.getLogger('x').setLevel(10)`` in a loop, best of R runs of N calls, in µs of CPU
time (``time.process_time``: the machine may be shared) per call:

* ``plain``: not wrapped;
* ``off``: wrapped, tracer stopped (the first test of the wrapper);
* ``quiet``: wrapped, patchtrace's own code running in this thread (``Tracer.busy``);
* ``by pytest``: wrapped, called from a pytest frame (its log capture adds and removes its
  handler and sets levels around every phase, ~6 calls per phase): the caller's frames are
  walked, then the call is left alone;
* ``by a user``: wrapped, called from user code: its stack is captured and a record made.

Also the boundary side: ``calls.explains`` for one logger change (runs only for a change
found at a boundary, once per record of that resource in the scope). Runs against any
checkout that has ``CallsSource`` (PYTHONPATH=/path/to/checkout to compare).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import timeit
from typing import Any


def _pytest_caller() -> Any:
    """A function whose code lives in pytest's package directory (a driver frame)."""
    import _pytest

    namespace: dict[str, Any] = {}
    filename = os.path.join(os.path.dirname(os.path.abspath(_pytest.__file__)), "logging.py")
    code = compile("def call(logger, n):\n    for _ in range(n):\n        logger.setLevel(10)\n",
                   filename, "exec")
    exec(code, {"__file__": filename}, namespace)
    return namespace["call"]


def _user_caller() -> Any:
    namespace: dict[str, Any] = {}
    filename = os.path.abspath("tests/test_bench_user.py")
    code = compile("def call(logger, n):\n    for _ in range(n):\n        logger.setLevel(10)\n",
                   filename, "exec")
    exec(code, {"__file__": filename}, namespace)
    return namespace["call"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    options = parser.parse_args()
    number, repeat = options.number, options.repeat

    import patchtrace
    from patchtrace import stack as _stack
    from patchtrace._tracer import Tracer
    from patchtrace.ledger import Scope
    from patchtrace.sources.calls import CallsSource

    logger = logging.getLogger("x")
    by_pytest, by_user = _pytest_caller(), _user_caller()
    _stack.reset_hidden_cache()

    def best(caller: Any) -> float:
        times = timeit.repeat(lambda: caller(logger, number), number=1, repeat=repeat,
                              timer=time.process_time)
        return min(times) / number * 1e6

    rows: list[tuple[str, float]] = [("plain", best(by_user))]
    tracer = Tracer()
    source = CallsSource()
    source.install(tracer)
    source._instrument_logging(logging)  # already imported: instrument it now
    try:
        rows.append(("off", best(by_user)))
        tracer.enabled = True
        tracer.scope = Scope("tests/test_bench_user.py::test_x", "call")
        with tracer.quiet():
            rows.append(("quiet", best(by_user)))
        rows.append(("by pytest", best(by_pytest)))
        count = len(tracer.ledger)
        rows.append(("by a user", best(by_user)))
        recorded = len(tracer.ledger) - count
    finally:
        tracer.enabled = False
        source.uninstall()
    plain = rows[0][1]
    print(f"patchtrace {getattr(patchtrace, '__version__', '?')} from "
          f"{os.path.dirname(os.path.abspath(patchtrace.__file__))}, Python "
          f"{sys.version.split()[0]}; {number} calls, best of {repeat}")
    for name, value in rows:
        print(f"  {name:<10} {value:8.3f} µs/call   (+{value - plain:.3f})")
    print(f"  records made by the 'by a user' runs: {recorded}")
    try:
        from patchtrace.sources import resources
        from patchtrace.sources.calls import explains
    except ImportError:
        return
    before = resources.LoggerState("x", ((), 0, True, False))
    after = resources.LoggerState("x", ((), 10, True, False))
    loops = 100_000
    seconds = min(timeit.repeat(lambda: explains("Logger.setLevel(...)", 10, before, after),
                                number=loops, repeat=repeat, timer=time.process_time))
    print(f"  explains(setLevel) {seconds / loops * 1e6:.3f} µs per record, per change found")


if __name__ == "__main__":
    main()
