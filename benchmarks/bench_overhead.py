"""Overhead of PATCHTRACE=1 on a generated suite, measured side by side in one run.

    python benchmarks/bench_overhead.py [--tests 2000] [--rounds 5] [--python PYTHON]
                                        [--memory-tests 10000] [--old PATH]

Every generated test patches with unittest.mock, monkeypatches an attribute and sets an
environment variable (through monkeypatch), like a typical unit test. The suite is run
plain and traced, alternating, ``--rounds`` times each; the medians and their ratio are
printed, then the cost of one recorded mutation with its stack (30 frames deep), then the
memory figure: the ``tracemalloc`` peak of a traced run of ``--memory-tests`` generated tests
(six recorded mutations each), and what is still allocated by patchtrace's own code at the
end of the run (the ledger: its records, their stacks, the patches' bookkeeping).
``--old PATH`` puts a checkout of another commit first on ``PYTHONPATH`` (its
``patchtrace/`` is imported instead) and prints its figures beside this one's.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Final

TEST = """
def test_{n}(monkeypatch):
    with mock.patch.object(target, "func", return_value={n}):
        assert target.func() == {n}
    monkeypatch.setattr(target, "VALUE", {n})
    monkeypatch.setenv("BENCH_VAR_{m}", "{n}")
    assert target.VALUE == {n}
"""


def make_suite(root: Path, tests: int, per_file: int = 100) -> None:
    (root / "target.py").write_text("VALUE = 0\ndef func():\n    return 0\n")
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
    for start in range(0, tests, per_file):
        body = "from unittest import mock\nimport target\n" + "".join(
            TEST.format(n=n, m=n % 7) for n in range(start, min(start + per_file, tests))
        )
        (root / f"test_gen_{start // per_file:03d}.py").write_text(body)


def _env(old: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    if old:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [old, env.get("PYTHONPATH")]))
    return env


def run_suite(python: str, root: Path, traced: bool, old: str | None = None
              ) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    env = _env(old)
    if traced:
        env["PATCHTRACE"] = "1"
    # Both arms load cached bytecode, as installed packages do (a warm-up run writes it).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([python, "-m", "pytest", "-q", "-x", str(root)], cwd=root, env=env,
                            capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    if result.returncode != 0:
        raise SystemExit(f"suite failed ({'traced' if traced else 'plain'}):\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    if traced and ("patchtrace: 1 leak" in result.stdout or " leaks from " in result.stdout):
        raise SystemExit(f"traced run did not report cleanly:\n{result.stdout[-3000:]}")
    return elapsed, cpu


#: A pytest plugin (``-p _ptmem``) that measures the traced run's memory with tracemalloc,
#: from the start of the session (patchtrace started) to its end (before the report).
MEMORY_PLUGIN = textwrap.dedent("""
    import os, tracemalloc
    import pytest

    _base = [0]

    def pytest_sessionstart(session):
        tracemalloc.start()
        _base[0] = tracemalloc.get_traced_memory()[0]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(session):
        now, peak = tracemalloc.get_traced_memory()
        ours = 0
        for stat in tracemalloc.take_snapshot().statistics("filename"):
            filename = stat.traceback[0].filename
            if os.sep + "patchtrace" + os.sep in filename:
                ours += stat.size
        tracemalloc.stop()
        from patchtrace import _tracer
        tracer = _tracer.current()
        records = len(tracer.ledger) if tracer is not None else -1
        with open(os.environ["PT_MEM_OUT"], "w") as out:
            out.write(f"{peak - _base[0]} {now - _base[0]} {ours} {records}")
""")


def memory(python: str, tests: int, old: str | None = None) -> tuple[int, int, int, int]:
    """(peak bytes, bytes still allocated at the end, of which by patchtrace's code,
    records) of a traced run of ``tests`` generated tests."""
    with tempfile.TemporaryDirectory(prefix="pt-mem-") as tmp:
        root = Path(tmp)
        make_suite(root, tests)
        (root / "_ptmem.py").write_text(MEMORY_PLUGIN)
        env = _env(old)
        env["PATCHTRACE"] = "1"
        env["PT_MEM_OUT"] = str(root / "mem.txt")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(root)]))
        result = subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "_ptmem", str(root)],
                                cwd=root, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"memory run failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        peak, now, ours, records = ((root / "mem.txt").read_text().split())
        return int(peak), int(now), int(ours), int(records)


MICRO = textwrap.dedent("""
    import sys, time
    from patchtrace import _tracer
    from patchtrace.config import Config
    from patchtrace.ledger import Scope
    tracer = _tracer.start(Config())
    tracer.scope = Scope("bench", "call")

    def deep(n, fn):
        return deep(n - 1, fn) if n else fn()

    def once():
        tracer.record("set", "watch", "module:x", "name", 1, 2)

    N = 20000
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(N // 100):
            deep(30, lambda: [once() for _ in range(100)])
        best = min(best, (time.perf_counter() - started) / N)
        tracer.ledger.seal()
    print(f"{best * 1e6:.2f}")
""")


#: issue 15's targets for this suite
TARGET_INSTRUCTIONS: Final = {(3, 10): 1.15, (3, 11): 1.15}  # 3.12+: 1.12
TARGET_MEMORY_MB: Final = 30.0


def target_ratio(version: str) -> float:
    major, minor = (int(x) for x in version.split(".")[:2])
    return TARGET_INSTRUCTIONS.get((major, minor), 1.12)


def _version(python: str) -> str:
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True).stdout.strip()


def _micro(python: str, old: str | None) -> str:
    with tempfile.TemporaryDirectory(prefix="pt-micro-") as tmp:
        # From a file, as real code runs: frames of `python -c` code have no __file__, so
        # the stack walk would have to read f_code (an audit event per frame).
        script = Path(tmp) / "micro.py"
        script.write_text(MICRO)
        micro = subprocess.run([python, str(script)], capture_output=True, text=True,
                               env=_env(old))
    if micro.returncode == 0:
        return f"{micro.stdout.strip()} us"
    return f"failed: {micro.stderr[-300:]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--old", default=None,
                        help="a checkout of another commit, measured beside this one")
    parser.add_argument("--memory-tests", type=int, default=10_000,
                        help="tests of the memory run (0: skip it)")
    parser.add_argument("--no-time", action="store_true", help="skip the timed rounds")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions (bench_instructions.py, valgrind)")
    args = parser.parse_args()
    version = _version(args.python)
    designs: list[tuple[str, str | None]] = [("new", None)]
    if args.old:
        designs.append(("old", args.old))
    print(f"python {version}, {args.tests} tests, {args.rounds} rounds, alternating"
          f"{' (old: ' + args.old + ')' if args.old else ''}")
    if not args.no_time:
        with tempfile.TemporaryDirectory(prefix="pt-bench-") as tmp:
            root = Path(tmp)
            make_suite(root, args.tests)
            run_suite(args.python, root, False)  # warm the file cache and bytecode
            for _, old in designs:
                run_suite(args.python, root, True, old)
            plain: list[float] = []
            plain_cpu: list[float] = []
            traced: dict[str, list[float]] = {label: [] for label, _ in designs}
            traced_cpu: dict[str, list[float]] = {label: [] for label, _ in designs}
            for _ in range(args.rounds):
                wall, cpu = run_suite(args.python, root, False)
                plain.append(wall)
                plain_cpu.append(cpu)
                for label, old in designs:
                    wall, cpu = run_suite(args.python, root, True, old)
                    traced[label].append(wall)
                    traced_cpu[label].append(cpu)
        p, pc = statistics.median(plain), statistics.median(plain_cpu)
        print(f"  plain        median {p:7.3f} s   runs: " + " ".join(f"{x:.2f}" for x in plain))
        for label, _ in designs:
            t, tc = statistics.median(traced[label]), statistics.median(traced_cpu[label])
            print(f"  traced ({label}) median {t:7.3f} s   runs: "
                  + " ".join(f"{x:.2f}" for x in traced[label]))
            print(f"    wall {t / p:.3f}x ({(t - p) / args.tests * 1e6:+.1f} us per test); "
                  # CPU time is less disturbed by other processes on a busy machine
                  f"cpu plain {pc:.3f} s, traced {tc:.3f} s: {tc / pc:.3f}x "
                  f"({(tc - pc) / args.tests * 1e6:+.1f} us per test)")
    for label, old in designs:
        print(f"  one recorded mutation with a 30-frame stack ({label}): "
              f"{_micro(args.python, old)}")
    if args.instructions:
        from bench_instructions import per_test_instructions

        for label, old in designs:
            plain_i, traced_i = per_test_instructions(args.python, 300, old)
            ratio = traced_i / plain_i
            goal = target_ratio(version)
            print(f"  instructions per test ({label}): plain {plain_i / 1e3:.0f}k, traced "
                  f"{traced_i / 1e3:.0f}k: {ratio:.3f}x (target <= {goal:.2f}x: "
                  f"{'met' if ratio <= goal else 'missed'})")
    else:
        print(f"  instructions: target <= {target_ratio(version):.2f}x on this Python "
              f"(counted by bench_instructions.py, or --instructions here)")
    if args.memory_tests:
        for label, old in designs:
            peak, now, ours, records = memory(args.python, args.memory_tests, old)
            print(f"  memory ({label}), {args.memory_tests} tests, {records} records: "
                  f"tracemalloc peak {peak / 1e6:.1f} MB, at the end {now / 1e6:.1f} MB, of "
                  f"which patchtrace's {ours / 1e6:.1f} MB ({ours / max(records, 1):.0f} B per "
                  f"record; target: ledger < {TARGET_MEMORY_MB:.0f} MB: "
                  f"{'met' if ours / 1e6 < TARGET_MEMORY_MB else 'missed'})")


if __name__ == "__main__":
    main()
