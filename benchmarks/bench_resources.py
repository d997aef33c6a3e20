"""What the boundary snapshot costs per boundary, part by part, and what a wrapped call costs.

    python benchmarks/bench_resources.py [--loggers N ...]

Prints, in µs of CPU time (best of 7 rounds of 200): ``resources.take()`` and ``diff`` of two
snapshots of an unchanged process, with 0 extra loggers and with each N given (default
100 and 2000, made like a large application's ``getLogger(__name__)`` tree); the loggers
part alone; the event-loop probe; ``sys.path`` compared after one more copy of an entry;
and ``Logger.addHandler`` + ``removeHandler`` called from a user frame (recorded) and
from pytest's frame (dismissed at the first frame) against the unwrapped calls.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import timeit
from collections.abc import Callable

from patchtrace.sources import resources


def best(func: Callable[[], object], number: int = 200, repeat: int = 7) -> float:
    # CPU time of this process: the machine may be shared
    return min(timeit.repeat(func, number=number, repeat=repeat,
                             timer=time.process_time)) / number * 1e6


def boundary(label: str) -> None:
    resources.take()
    first, second = resources.take(), resources.take()
    take = best(resources.take)
    diff = best(lambda: resources.diff(first, second))
    loggers = 0.0
    if "logging" in sys.modules:
        loggers = best(lambda: resources._loggers(logging))
    print(f"{label:<28} take {take:7.1f}  diff {diff:6.1f}  (loggers part {loggers:6.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loggers", type=int, nargs="*", default=[100, 2000])
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, µs of CPU per call")
    calls()
    boundary(f"{len(logging.Logger.manager.loggerDict)} loggers (as started)")
    made = 0
    for count in args.loggers:
        while made < count:
            logging.getLogger(f"bench.pkg{made % 40}.mod{made}")
            made += 1
        boundary(f"+{count} loggers")
    print(f"{'event-loop probe':<28} {best(resources._asyncio_loop, 2000):7.2f}")
    entry = sys.path[-1]
    base = tuple(sys.path)
    more = (entry, *base)
    print(f"{'sys.path, one more copy':<28} "
          f"{best(lambda: resources._path_changes(base, more), 2000):7.2f}")
    print(f"{'sys.path, unchanged':<28} "
          f"{best(lambda: resources._identical(base, tuple(sys.path)), 2000):7.2f}")


def calls() -> None:
    from patchtrace import _tracer

    logger = logging.getLogger("bench.calls")
    handler = logging.NullHandler()

    def add_remove() -> None:
        logger.addHandler(handler)
        logger.removeHandler(handler)

    unwrapped = best(add_remove, 2000)
    tracer = _tracer.start()
    try:
        user = best(add_remove, 2000)
        # what pytest's log capture pays: a caller in _pytest, dismissed at the first frame
        namespace: dict[str, object] = {"logger": logger, "logging": logging}
        import _pytest.logging as pytest_logging

        namespace["handler"] = handler
        code = compile("def call():\n    logger.addHandler(handler)\n"
                       "    logger.removeHandler(handler)\n",
                       pytest_logging.__file__, "exec")
        namespace["__file__"] = pytest_logging.__file__
        exec(code, namespace)
        from patchtrace import stack

        stack.reset_hidden_cache()
        driver = best(namespace["call"], 2000)  # type: ignore[arg-type]
        records = len(tracer.ledger)
    finally:
        _tracer.stop()
    print(f"{'addHandler+removeHandler':<28} {unwrapped:7.2f}")
    print(f"{'  wrapped, user frame':<28} {user:7.2f}  ({records} records)")
    print(f"{'  wrapped, pytest frame':<28} {driver:7.2f}")


if __name__ == "__main__":
    main()
