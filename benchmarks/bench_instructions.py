"""Overhead of PATCHTRACE=1 in instructions executed, counted by valgrind: deterministic.

    python benchmarks/bench_instructions.py [--tests 300] [--python PYTHON] [--jobs 2]
                                            [--steady] [--parts] [--old PATH]

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

``--steady`` turns the interpreter's automatic full collections off in every arm (young
collections go on): one full collection more or less in the larger run moves the marginal
by ~70k instructions, so two commits compare best with it. ``--parts`` (implies
``--steady``, about 8 minutes) adds traced arms with one part of patchtrace switched off
each (see ``_knockout.py``) and prints what each part costs per test.

``--old PATH`` measures a second design beside this one: a checkout of another commit
(``git worktree add /work/wt/_old main``, or ``git archive main | tar -x -C DIR``) whose
``patchtrace/`` is put first on ``PYTHONPATH`` of its traced arms; the plain arms are
shared. Every figure is then printed for both, side by side.
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

HERE = Path(__file__).resolve().parent

#: (label, parts switched off) for --parts; "everything" leaves the plugin's skeleton
PARTS = [
    ("audit hook", "audit"),
    ("unittest.mock", "mock"),
    ("MonkeyPatch", "monkeypatch"),
    ("attribute stores (watch)", "watch"),
    ("boundary checks", "boundary"),
    ("every source and the boundary", "audit,mock,monkeypatch,reload,watch,boundary"),
]


def instructions(python: str, root: Path, traced: bool, steady: bool = False,
                 knockout: str = "", old: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATCHTRACE", "PT_BENCH"))}
    if old:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [old, env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # both arms load cached bytecode
    # String hashes decide dict probing and set order: a random seed moves a test's count
    # by up to ~1% from one run to the next.
    env["PYTHONHASHSEED"] = "0"
    if traced:
        env["PATCHTRACE"] = "1"
    # pytest-randomly, where installed, would shuffle the tests with a fresh seed each run
    command = [python, "-m", "pytest", "-q", "-x", "-p", "no:randomly", str(root)]
    if steady or knockout:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        env["PT_BENCH_STEADY"] = "1" if steady else ""
        env["PT_BENCH_KNOCKOUT"] = knockout
        command += ["-p", "_knockout"]
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        cwd=root, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"run failed ({'traced' if traced else 'plain'}, {root.name}"
                         f"{', without ' + knockout if knockout else ''}):\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return int(found.group(1))


def _suites(tmp: str, python: str, tests: int, olds: list[str | None]) -> tuple[Path, Path]:
    small, large = Path(tmp) / "small", Path(tmp) / "large"
    for root, count in ((small, tests), (large, 2 * tests)):
        root.mkdir()
        make_suite(root, count)
        warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for traced, old in [(False, None), *((True, o) for o in olds)]:
            # write the bytecode caches, outside valgrind
            env = {**warm, "PATCHTRACE": "1" if traced else ""}
            if old:
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [old, env.get("PYTHONPATH")]))
            subprocess.run([python, "-m", "pytest", "-q", "-x", "-p", "no:randomly", str(root)],
                           cwd=root, env=env,
                           capture_output=True)
    return small, large


def per_test_instructions(python: str, tests: int, old: str | None = None,
                          steady: bool = True) -> tuple[float, float]:
    """(plain, traced) instructions per test of one design (for bench_overhead.py)."""
    with tempfile.TemporaryDirectory(prefix="pt-instr-") as tmp:
        small, large = _suites(tmp, python, tests, [old])
        counts = [instructions(python, root, traced, steady, "", old if traced else None)
                  for traced in (False, True) for root in (small, large)]
    return (counts[1] - counts[0]) / tests, (counts[3] - counts[2]) / tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tests", type=int, default=300)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--steady", action="store_true",
                        help="no automatic full collections in any arm (compare commits)")
    parser.add_argument("--parts", action="store_true",
                        help="also measure with each part of patchtrace switched off")
    parser.add_argument("--old", default=None,
                        help="a checkout of another commit, measured beside this one")
    parser.add_argument("--new", default=None,
                        help="a checkout to measure as this design (default: the installed "
                             "patchtrace; a frozen copy lets you edit while it runs)")
    args = parser.parse_args()
    steady = args.steady or args.parts
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    designs: list[tuple[str, str | None]] = [("new", args.new)]
    if args.old:
        designs.append(("old", args.old))
    # arms: (traced, parts switched off, design); the plain arm is shared
    arms: list[tuple[bool, str, str | None]] = [(False, "", None)]
    for _, old in designs:
        arms.append((True, "", old))
        if args.parts:
            arms += [(True, parts, old) for _, parts in PARTS]
    with tempfile.TemporaryDirectory(prefix="pt-instr-") as tmp:
        small, large = _suites(tmp, args.python, args.tests, [old for _, old in designs])
        jobs = [(root, traced, parts, old) for traced, parts, old in arms
                for root in (small, large)]
        with ThreadPoolExecutor(args.jobs) as pool:
            counts = list(pool.map(
                lambda job: instructions(args.python, job[0], job[1], steady, job[2], job[3]),
                jobs))
    n = args.tests
    per_test = [(large_count - small_count) / n
                for small_count, large_count in zip(counts[::2], counts[1::2], strict=True)]
    by_arm = dict(zip(((t, p, o) for t, p, o in arms), per_test, strict=True))
    fixed_of = dict(zip(((t, p, o) for t, p, o in arms), counts[::2], strict=True))
    plain_test = by_arm[(False, "", None)]
    plain_s = fixed_of[(False, "", None)]
    if args.new:
        print(f"new: {args.new}")
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True).stdout.strip()
    print(f"python {version}, generated suite at {n} and {2 * n} tests, callgrind"
          f"{', automatic full collections off' if steady else ''}"
          f"{' (old: ' + args.old + ')' if args.old else ''}")
    print(f"  per test: plain {plain_test / 1e3:8.0f}k instructions")
    for label, old in designs:
        traced_test = by_arm[(True, "", old)]
        traced_s = fixed_of[(True, "", old)]
        fixed = (traced_s - plain_s) - (traced_test - plain_test) * n
        print(f"  per test ({label}): traced {traced_test / 1e3:8.0f}k instructions: "
              f"{traced_test / plain_test:.3f}x (+{(traced_test - plain_test) / 1e3:.0f}k); "
              f"once per run (start-up, collection, report): +{fixed / 1e6:.1f}M")
    if args.parts:
        header = "".join(f"  {label + ': without':>18s} {'part costs':>10s}"
                         for label, _ in designs)
        print(f"  per test, traced without one part (what the part costs):\n"
              f"    {'':32s}{header}")
        for part_label, parts in PARTS:
            row = ""
            for _, old in designs:
                without = by_arm[(True, parts, old)]
                traced_test = by_arm[(True, "", old)]
                row += f"  {without / 1e3:17.0f}k {(traced_test - without) / 1e3:+9.0f}k"
            print(f"    {part_label:32s}{row}")


if __name__ == "__main__":
    main()
