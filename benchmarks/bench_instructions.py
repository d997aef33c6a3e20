"""Overhead of PATCHTRACE=1 in instructions executed, counted by valgrind: deterministic.

    python benchmarks/bench_instructions.py [--tests 300] [--python PYTHON] [--jobs 2]

Wall and CPU time on a shared machine move by ±10% between identical runs, more than the
effect of most single changes. Instruction counts do not move at all, so this script is
the one to compare two commits with. It runs the generated suite of ``bench_overhead.py``
at N and 2N tests, plain and traced, each once under ``valgrind --tool=callgrind``, and
prints the marginal cost of one test (the difference between the two sizes, which cancels
start-up and the end-of-run report) and the cost once per run.

Instructions are not time: patchtrace's work is memory-bound (version tags of hundreds of
scattered dicts, the garbage collector walking its records), so its share of the time is
larger than its share of the instructions. Use ``bench_overhead.py`` for the time ratio.
Needs valgrind (Debian: ``apt-get install valgrind``); about 3 minutes with 2 jobs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_overhead import make_suite


def instructions(python: str, root: Path, traced: bool) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both arms load cached bytecode
    if traced:
        env["PATCHTRACE"] = "1"
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         python, "-m", "pytest", "-q", "-x", str(root)],
        cwd=root, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"run failed ({'traced' if traced else 'plain'}, {root.name}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="pt-instr-") as tmp:
        small, large = Path(tmp) / "small", Path(tmp) / "large"
        for root, count in ((small, args.tests), (large, 2 * args.tests)):
            root.mkdir()
            make_suite(root, count)
            warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            for traced in (False, True):  # write the bytecode caches, outside valgrind
                subprocess.run([args.python, "-m", "pytest", "-q", "-x", str(root)], cwd=root,
                               env={**warm, "PATCHTRACE": "1" if traced else ""},
                               capture_output=True)
        jobs = [(small, False), (small, True), (large, False), (large, True)]
        with ThreadPoolExecutor(args.jobs) as pool:
            plain_s, traced_s, plain_l, traced_l = pool.map(
                lambda job: instructions(args.python, *job), jobs)
    n = args.tests
    plain_test = (plain_l - plain_s) / n
    traced_test = (traced_l - traced_s) / n
    fixed = (traced_s - plain_s) - (traced_test - plain_test) * n
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    print(f"python {version}, generated suite at {n} and {2 * n} tests, callgrind")
    print(f"  per test: plain {plain_test / 1e3:8.0f}k  traced {traced_test / 1e3:8.0f}k "
          f"instructions: {traced_test / plain_test:.3f}x "
          f"(+{(traced_test - plain_test) / 1e3:.0f}k)")
    print(f"  once per run (start-up, collection, report): +{fixed / 1e6:.1f}M instructions")


if __name__ == "__main__":
    main()
