"""Start-up of a child Python started by a test of a traced session, side by side.

    python benchmarks/bench_children.py [--runs 200] [--python PYTHON]

Runs one traced pytest session (``PATCHTRACE=1``) whose only test starts ``python -c
pass`` ``--runs`` times in each of five arms, interleaved so that the machine's load falls
on all of them alike, and prints the medians with their spread (10th to 90th percentile),
the marked-minus-untraced difference paired round by round, and whether the marked child
ends with the same modules as an untraced one:

- untraced: the test's environment without any ``PATCHTRACE*`` variable;
- marked child: the test's environment as it is (what ``subprocess.run`` passes on): the
  session's mark makes the ``.pth`` line return at once (target: within 1 ms of untraced);
- traced child, for reference: ``PATCHTRACE=1`` without the mark (what every child paid
  before children were marked);
- untraced and marked with ``-S`` (no ``site``, so no ``.pth`` file at all): what
  ``site`` costs a child, ``.pth`` files included.

On a loaded machine the wall medians are noisy: the children's CPU time (``getrusage``) is
printed beside them, and the ``-S`` pair (the same code in both arms) shows the noise floor
of a paired difference.  The last line times the ``.pth`` line itself and the whole file as
``site`` reads it (what a marked child runs of ours), in CPU time.

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
import os, resource, statistics, subprocess, sys, time

RUNS = {runs}

CPU = {{}}

def once(env, flags=()):
    """Wall seconds of one child; its CPU seconds (user + system) go to CPU[name]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *flags, "-c", "pass"], env=env, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    once.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall

MODULES = "import sys; print(' '.join(sorted(sys.modules)))"

def modules(env):
    return subprocess.run([sys.executable, "-c", MODULES], env=env, check=True,
                          capture_output=True, text=True).stdout.split()

def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

def test_startup():
    assert os.environ.get("PATCHTRACE_SESSION") == str(os.getpid()), "session not marked"
    marked = dict(os.environ)
    untraced = {{k: v for k, v in marked.items() if not k.startswith("PATCHTRACE")}}
    traced = {{k: v for k, v in marked.items() if k != "PATCHTRACE_SESSION"}}
    arms = {{
        "untraced": (untraced, ()),
        "marked child": (marked, ()),
        "traced child (unmarked)": (traced, ()),
        "untraced, no site (-S)": (untraced, ("-S",)),
        "marked child, no site (-S)": (marked, ("-S",)),
    }}
    times = {{name: [] for name in arms}}
    cpus = {{name: [] for name in arms}}
    for env, flags in arms.values():
        once(env, flags)  # warm the file cache
    for _ in range(RUNS):
        for name, (env, flags) in arms.items():
            times[name].append(once(env, flags))
            cpus[name].append(once.cpu)
    lines = []
    for label, table in (("wall", times), ("CPU (user + system of the child)", cpus)):
        lines.append(f"{{label}}:")
        base = statistics.median(table["untraced"])
        for name, values in table.items():
            median = statistics.median(values)
            low, high = quantile(values, 0.1) * 1e3, quantile(values, 0.9) * 1e3
            lines.append(f"  {{name:<28}} median {{median * 1e3:7.2f}} ms  "
                         f"{{(median - base) * 1e3:+7.2f}} ms vs untraced  "
                         f"p10..p90 {{low:6.2f}}..{{high:6.2f}} ms")
        # Paired: each round's marked run minus the untraced run just before it; the -S
        # pair runs the very same code in both arms, so its spread is the noise floor.
        for marked_arm, plain_arm in (("marked child", "untraced"),
                                      ("marked child, no site (-S)", "untraced, no site (-S)")):
            pairs = [m - u for m, u in zip(table[marked_arm], table[plain_arm])]
            middle = statistics.median(pairs) * 1e3
            low, high = quantile(pairs, 0.1) * 1e3, quantile(pairs, 0.9) * 1e3
            lines.append(f"  {{marked_arm}} - {{plain_arm}}, paired by round: median "
                         f"{{middle:+.2f}} ms, p10..p90 {{low:+.2f}}..{{high:+.2f}} ms")
    plain, seen = modules(untraced), modules(marked)
    ours = [m for m in seen if m.startswith("patchtrace")]
    lines.append(f"modules at exit: untraced {{len(plain)}}, marked {{len(seen)}}, "
                 f"identical: {{plain == seen}}, patchtrace modules in the marked child: {{ours}}")
    with open(os.environ["BENCH_OUT"], "w") as handle:
        handle.write("\\n".join(lines) + "\\n")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
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
    line, whole = _pth_line_cost()
    print(f"the .pth line itself, in a marked child: {line * 1e6:.2f} µs; site reading and "
          f"running the whole patchtrace.pth file: {whole * 1e6:.2f} µs (CPU time, best of 7: "
          "what load does not inflate)")


def _pth_line_cost() -> tuple[float, float]:
    """Time the .pth line, then the whole file as site.py reads it (``site.addpackage``:
    open, read, compile, exec), with the mark set."""
    import os
    import site
    import time
    import timeit

    pth = Path(__file__).resolve().parent.parent / "src-pth" / "patchtrace.pth"
    line = pth.read_text()
    saved = os.environ.get("PATCHTRACE_SESSION")
    os.environ["PATCHTRACE_SESSION"] = "1"
    try:
        code = compile(line, "patchtrace.pth", "exec")
        cpu = time.process_time
        alone = min(timeit.Timer(lambda: exec(code, {}), timer=cpu).repeat(7, 10_000)) / 10_000
        read = timeit.Timer(lambda: site.addpackage(str(pth.parent), pth.name, set()), timer=cpu)
        whole = min(read.repeat(7, 2_000)) / 2_000
        return alone, whole
    finally:
        if saved is None:
            del os.environ["PATCHTRACE_SESSION"]
        else:
            os.environ["PATCHTRACE_SESSION"] = saved


if __name__ == "__main__":
    main()
