"""Overhead of PATCHTRACE=1 on a generated suite, measured side by side in one run.

    python benchmarks/bench_overhead.py [--tests 2000] [--rounds 5] [--python PYTHON]

Every generated test patches with unittest.mock, monkeypatches an attribute and sets an
environment variable (through monkeypatch), like a typical unit test. The suite is run
plain and traced, alternating, ``--rounds`` times each; the medians and their ratio are
printed, then the cost of one recorded mutation with its stack (30 frames deep).
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


def run_suite(python: str, root: Path, traced: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child: user + system)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pt-bench-") as tmp:
        root = Path(tmp)
        make_suite(root, args.tests)
        run_suite(args.python, root, False)  # warm the file cache and bytecode
        plain: list[float] = []
        traced: list[float] = []
        plain_cpu: list[float] = []
        traced_cpu: list[float] = []
        for _ in range(args.rounds):
            wall, cpu = run_suite(args.python, root, False)
            plain.append(wall)
            plain_cpu.append(cpu)
            wall, cpu = run_suite(args.python, root, True)
            traced.append(wall)
            traced_cpu.append(cpu)
        p, t = statistics.median(plain), statistics.median(traced)
        pc, tc = statistics.median(plain_cpu), statistics.median(traced_cpu)
        version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"python {version}, {args.tests} tests, {args.rounds} rounds, alternating")
        print(f"  plain  median {p:7.3f} s   runs: " + " ".join(f"{x:.2f}" for x in plain))
        print(f"  traced median {t:7.3f} s   runs: " + " ".join(f"{x:.2f}" for x in traced))
        print(f"  ratio  {t / p:.3f}x   ({(t - p) / args.tests * 1e6:+.1f} us per test)")
        # CPU time is less disturbed by other processes on a busy machine than wall time.
        print(f"  cpu    plain {pc:.3f} s, traced {tc:.3f} s: {tc / pc:.3f}x "
              f"({(tc - pc) / args.tests * 1e6:+.1f} us per test)")
    with tempfile.TemporaryDirectory(prefix="pt-micro-") as tmp:
        # From a file, as real code runs: frames of `python -c` code have no __file__, so
        # the stack walk would have to read f_code (an audit event per frame).
        script = Path(tmp) / "micro.py"
        script.write_text(MICRO)
        micro = subprocess.run([args.python, str(script)], capture_output=True, text=True,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("PATCHTRACE")})
    if micro.returncode == 0:
        print(f"  one recorded mutation with a 30-frame stack: {micro.stdout.strip()} us")
    else:
        print(f"  micro benchmark failed: {micro.stderr[-500:]}")


if __name__ == "__main__":
    main()
