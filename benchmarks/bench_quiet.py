"""Cost of the "we are inside our own wrapper" state (``Tracer.busy``), per operation.

    python benchmarks/bench_quiet.py [--number 200000] [--repeat 7]

The state is read by every lower source before it records (the audit hook on each
environment write, the dict watcher on each store into a watched namespace) and set twice
around every patch's ``__enter__``/``__exit__``. Printed, best of ``--repeat``: one quiet
check as the sources make it, one enter-and-leave pair, one traced ``os.environ`` write
and one traced ``mock.patch.object`` enter/exit, in µs.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from unittest import mock

    import patchtrace
    from patchtrace import _tracer
    from patchtrace.config import Config

    patchtrace.start(Config())
    tracer = _tracer.current()
    assert tracer is not None
    target = types.ModuleType("bench_target")
    target.func = lambda: 0  # type: ignore[attr-defined]
    sys.modules["bench_target"] = target

    if hasattr(tracer, "inside"):  # per-thread: the sources test the dict first
        def read() -> None:
            tracer.inside and tracer.busy
    else:  # the process-wide counter this replaced (for a side-by-side on an old commit)
        def read() -> None:
            tracer.busy

    if hasattr(tracer, "hush"):
        def pair() -> None:
            tracer.hush()
            tracer.unhush()
    else:
        def pair() -> None:
            tracer.busy += 1
            tracer.busy -= 1

    def environ() -> None:
        os.environ["BENCH_QUIET"] = "1"

    def patch() -> None:
        with mock.patch.object(target, "func", 1):
            pass

    rows = [("quiet check (as the sources read it)", read, args.number),
            ("enter and leave (as the wrappers do)", pair, args.number),
            ("os.environ[k] = v (traced)", environ, args.number // 10),
            ("mock.patch.object enter+exit (traced)", patch, args.number // 100)]
    print(f"python {sys.version.split()[0]}, best of {args.repeat}")
    for label, func, number in rows:
        best = min(timeit.repeat(func, number=number, repeat=args.repeat)) / number
        print(f"  {label:<40} {best * 1e6:8.3f} µs")
    patchtrace.stop()


if __name__ == "__main__":
    main()
