"""Start-up of a child Python started by a test of a traced session, side by side.

    python benchmarks/bench_children.py [--runs 40] [--python PYTHON]

Runs one traced pytest session (``PATCHTRACE=1``) whose only test starts ``python -c
pass`` ``--runs`` times in each of three environments, interleaved so that the machine's
load falls on all three alike, and prints the medians:

- untraced: the test's environment without any ``PATCHTRACE*`` variable;
- marked child: the test's environment as it is (what ``subprocess.run`` passes on): the
  session's mark makes the ``.pth`` line return at once (target: within 1 ms of untraced);
- traced child, for reference: ``PATCHTRACE=1`` without the mark (what every child paid
  before children were marked).

On a loaded machine the medians are noisy; the last line times the ``.pth`` line itself
(what a marked child runs of ours), which no load hides.

``--python`` must have patchtrace installed (its ``.pth`` is what is measured).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

TEST = '''
import os, statistics, subprocess, sys, time

RUNS = {runs}

def once(env):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - start

def test_startup():
    assert os.environ.get("PATCHTRACE_SESSION") == str(os.getpid()), "session not marked"
    marked = dict(os.environ)
    untraced = {{k: v for k, v in marked.items() if not k.startswith("PATCHTRACE")}}
    traced = {{k: v for k, v in marked.items() if k != "PATCHTRACE_SESSION"}}
    envs = {{"untraced": untraced, "marked child": marked, "traced child (unmarked)": traced}}
    times = {{name: [] for name in envs}}
    for name, env in envs.items():
        once(env)  # warm the file cache
    for _ in range(RUNS):
        for name, env in envs.items():
            times[name].append(once(env))
    base = statistics.median(times["untraced"])
    lines = []
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"{{name:<26}} median {{median * 1e3:7.2f}} ms   "
                     f"{{(median - base) * 1e3:+7.2f}} ms vs untraced   "
                     f"(min {{min(values) * 1e3:6.2f}} ms)")
    with open(os.environ["BENCH_OUT"], "w") as handle:
        handle.write("\\n".join(lines) + "\\n")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--python", default=sys.executable)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "test_startup.py").write_text(textwrap.dedent(TEST.format(runs=args.runs)))
        out = root / "out.txt"
        env = {k: v for k, v in __import__("os").environ.items()
               if not k.startswith("PATCHTRACE")}
        env.update(PATCHTRACE="1", BENCH_OUT=str(out))
        result = subprocess.run(
            [args.python, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
             "-p", "no:xdist", "test_startup.py"],
            cwd=root, env=env, capture_output=True, text=True)
        if result.returncode != 0 or not out.exists():
            sys.exit(f"the traced session failed:\n{result.stdout}\n{result.stderr}")
        version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip()
        print(f"python {version}: `python -c pass` started by a test of a traced pytest "
              f"session, {args.runs} runs each, interleaved")
        print(out.read_text(), end="")
    print(f"the .pth line itself, in a marked child: {_pth_line_cost() * 1e6:.2f} µs "
          "(best of 7; load-independent)")


def _pth_line_cost() -> float:
    """Time the installed .pth line as site.py runs it, with the mark set."""
    import os
    import timeit

    line = (Path(__file__).resolve().parent.parent / "src-pth" / "patchtrace.pth").read_text()
    saved = os.environ.get("PATCHTRACE_SESSION")
    os.environ["PATCHTRACE_SESSION"] = "1"
    try:
        code = compile(line, "patchtrace.pth", "exec")
        return min(timeit.repeat(lambda: exec(code, {}), number=10_000, repeat=7)) / 10_000
    finally:
        if saved is None:
            del os.environ["PATCHTRACE_SESSION"]
        else:
            os.environ["PATCHTRACE_SESSION"] = saved


if __name__ == "__main__":
    main()
