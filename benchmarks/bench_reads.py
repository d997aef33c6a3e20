"""What recording reads for victims costs (``patchtrace/sources/reads.py``), per operation
and per test.

    python benchmarks/bench_reads.py [--number 20000] [--repeat 7]

In one traced process, each operation a test may do is timed with the read source
uninstalled (the baseline), then with it installed, in three states of the read log:
``idle`` (no leak live: the wrappers' fast path; mock calls are still counted), ``armed``
(a leaked environment key, cwd and SIGUSR1 handler are live: every watched read is
checked for a user frame and counted) and ``other key`` (a leaked key is watched, not the
one read). Timed: ``os.environ.get`` / ``os.getenv`` of a key, ``os.getcwd()``, ``open``
of a relative path, ``signal.getsignal``, a ``MagicMock`` call, and the per-test
bookkeeping (``arm`` at a test's start, ``freeze`` at its end). Printed: the best of
``--repeat`` runs of ``--number`` operations, in microseconds per operation,
and the added cost for a test that does 10 environment reads, 2 ``getcwd`` calls,
5 relative opens, 1 ``getsignal`` and 20 mock calls.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import timeit
from collections.abc import Callable
from unittest import mock

KEY, OTHER = "BENCH_READS_KEY", "BENCH_READS_OTHER"


def best(stmt: Callable[[], object], number: int, repeat: int) -> float:
    """Best time of one call, in microseconds."""
    return min(timeit.repeat(stmt, number=number, repeat=repeat)) / number * 1e6


def operations() -> dict[str, Callable[[], object]]:
    target = mock.MagicMock()
    return {
        "os.environ.get(key)": lambda: os.environ.get(KEY),
        "os.getenv(key)": lambda: os.getenv(KEY),
        "os.getcwd()": lambda: os.getcwd(),
        "open(relative).close()": lambda: open("bench.txt").close(),
        "signal.getsignal(SIGUSR1)": lambda: signal.getsignal(signal.SIGUSR1),
        "MagicMock call": lambda: target(1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ[KEY] = os.environ[OTHER] = "1"
    scratch = tempfile.mkdtemp()
    os.chdir(scratch)
    with open("bench.txt", "w") as handle:
        handle.write("x")
    from patchtrace import _tracer
    from patchtrace.analysis import victims as _victims
    from patchtrace.leak import Leak
    from patchtrace.sources.reads import LOG

    tracer = _tracer.start()
    reads = tracer.source("reads")
    assert reads is not None
    reads.uninstall()  # the baseline: traced, without the read log
    ops = operations()
    plain = {name: best(op, args.number, args.repeat) for name, op in ops.items()}
    reads.install(tracer)
    ops = operations()  # the mock made again: its class is wrapped now
    leaks = [Leak("binding-changed", "t", "call", "os.environ", KEY, obj="1"),
             Leak("resource-changed", "t", "call", "cwd", None, obj=scratch),
             Leak("resource-changed", "t", "call", "signal", "SIGUSR1")]
    other = [Leak("binding-changed", "t", "call", "os.environ", OTHER, obj="1")]
    states: dict[str, dict[str, float]] = {}
    LOG.freeze()
    _victims.arm([])
    states["idle"] = {n: best(op, args.number, args.repeat) for n, op in ops.items()}
    _victims.freeze()
    _victims.arm(leaks)
    states["armed"] = {n: best(op, args.number, args.repeat) for n, op in ops.items()}
    _victims.freeze()
    _victims.arm(other)
    states["other key"] = {n: best(op, args.number, args.repeat) for n, op in ops.items()}
    _victims.freeze()

    def bookkeeping() -> None:
        _victims.arm(leaks)
        _victims.freeze()

    per_test = best(bookkeeping, args.number // 10, args.repeat)
    tracer.stop()

    print(f"{'operation':28} {'traced':>8} " + " ".join(f"{s:>10}" for s in states))
    for name in ops:
        cells = " ".join(f"{states[s][name] - plain[name]:+10.3f}" for s in states)
        print(f"{name:28} {plain[name]:8.3f} {cells}")
    print("(traced: µs per operation traced without the read log; the others: µs the read "
          "log adds per operation)")
    print(f"arm + freeze per test (3 live leaks): {per_test:.2f} µs")
    mix = {"os.environ.get(key)": 10, "os.getcwd()": 2, "open(relative).close()": 5,
           "signal.getsignal(SIGUSR1)": 1, "MagicMock call": 20}
    for state in states:
        added = sum(count * (states[state][name] - plain[name]) for name, count in mix.items())
        print(f"a test of 10 env reads, 2 getcwd, 5 relative opens, 1 getsignal, 20 mock calls,"
              f" {state}: {added + per_test:+.1f} µs")


if __name__ == "__main__":
    main()
