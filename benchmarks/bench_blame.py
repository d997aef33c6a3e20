"""Time to name the polluter: patchtrace (one traced run) against detect-test-pollution.

    python benchmarks/bench_blame.py [--tests 2000] [--rounds 3] [--kind patch|attr|environ]

That one command is all a fresh machine needs besides patchtrace and pytest in ``--python``'s
environment: the first run installs detect-test-pollution (pinned, hash-checked, from PyPI)
into ``~/.cache/patchtrace-bench/`` (``$XDG_CACHE_HOME`` or ``--cache-dir`` move it). It goes
there with ``pip install --target``, not into a venv of its own: detect-test-pollution runs
pytest as ``sys.executable -m pytest``, so starting it with ``--python`` puts both tools on the
same interpreter, pytest and plugins, and only the method differs.

The generated suite has ``--tests`` tests over files of 100 and a small package under test,
``shop``. Every test but two patches with unittest.mock, monkeypatches an attribute and sets
an environment variable, all undone, like bench_overhead.py. One test placed early leaks
(``--kind``):

* ``patch``:   ``mock.patch("shop.rates.fetch_rate", ...).start()``, never stopped;
* ``attr``:    ``settings.MAX_RETRIES = 0``, a direct store to a module attribute;
* ``environ``: ``os.environ["SHOP_MODE"] = "sandbox"``, never removed;

and one test placed near the end fails because of it (it passes alone). Each round runs,
one after the other:

* plain pytest, for reference (no blame, just the cost of one run of the suite);
* ``PATCHTRACE=1 PATCHTRACE_JSON=... python -m pytest -p no:randomly -q``: the report must
  name the polluter's test id, the file and line of the leaking statement and the leaked
  target, and list the victim; anything else is printed as PATCHTRACE MISMATCH and the
  script exits 1 after the table;
* ``detect-test-pollution --failing-test VICTIM --tests tests``: bisection to its answer,
  which must be the same test.

Medians over ``--rounds`` are printed side by side with the pytest runs and tests executed
each needed (detect-test-pollution's are counted from its own step output), then the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DTP_VERSION = "1.2.0"
DTP_SHA256 = "96095425dadf95d4ceabd585659ccc3197e88dfb1efb02a8479b27d8ad1a3afb"  # the wheel

PACKAGE = {
    "shop/__init__.py": '"""The code under test of the generated suite."""\n',
    "shop/catalog.py": "VALUE = 0\n\n\ndef func():\n    return 0\n",
    "shop/rates.py": textwrap.dedent("""\
        def fetch_rate(currency):
            \"\"\"Pretend to ask a rates service.\"\"\"
            return {"USD": 1.1, "GBP": 0.85}[currency]
    """),
    "shop/settings.py": textwrap.dedent("""\
        import os

        MAX_RETRIES = 3
        BACKOFF = 0.5


        def mode():
            return os.environ.get("SHOP_MODE", "live")
    """),
    "shop/pricing.py": textwrap.dedent("""\
        from shop import rates, settings


        def convert(amount, currency):
            return round(amount * rates.fetch_rate(currency), 2)


        def retry_delays():
            return [settings.BACKOFF * 2**i for i in range(settings.MAX_RETRIES)]


        def checkout_url():
            host = "sandbox.shop.test" if settings.mode() == "sandbox" else "shop.test"
            return f"https://{host}/checkout"
    """),
}

HEADER = "import os\nfrom unittest import mock\n\nfrom shop import catalog, pricing, settings\n"

FILLER = """

def test_{n}(monkeypatch):
    with mock.patch.object(catalog, "func", return_value={n}):
        assert catalog.func() == {n}
    monkeypatch.setattr(catalog, "VALUE", {n})
    monkeypatch.setenv("BENCH_VAR_{m}", "{n}")
    assert catalog.VALUE == {n}
"""


@dataclass(frozen=True)
class Kind:
    polluter: str  # test function name
    polluter_src: str
    leak_line: str  # the statement that leaks, as it appears in polluter_src
    victim: str
    victim_src: str
    target: str  # what the report's target and name must be
    name: str


KINDS = {
    "patch": Kind(
        "test_rates_are_mocked",
        """

def test_rates_are_mocked():
    fetch = mock.patch("shop.rates.fetch_rate", return_value=2.0).start()
    assert pricing.convert(10, "USD") == 20.0
    fetch.assert_called_once_with("USD")
""",
        'fetch = mock.patch("shop.rates.fetch_rate", return_value=2.0).start()',
        "test_convert_to_dollars",
        """

def test_convert_to_dollars():
    assert pricing.convert(10, "USD") == 11.0
""",
        "module:shop.rates", "fetch_rate",
    ),
    "attr": Kind(
        "test_no_retries_in_fast_mode",
        """

def test_no_retries_in_fast_mode():
    settings.MAX_RETRIES = 0
    assert pricing.retry_delays() == []
""",
        "settings.MAX_RETRIES = 0",
        "test_retry_backoff",
        """

def test_retry_backoff():
    assert pricing.retry_delays() == [0.5, 1.0, 2.0]
""",
        "module:shop.settings", "MAX_RETRIES",
    ),
    "environ": Kind(
        "test_sandbox_checkout",
        """

def test_sandbox_checkout():
    os.environ["SHOP_MODE"] = "sandbox"
    assert pricing.checkout_url() == "https://sandbox.shop.test/checkout"
""",
        'os.environ["SHOP_MODE"] = "sandbox"',
        "test_live_checkout",
        """

def test_live_checkout():
    assert pricing.checkout_url() == "https://shop.test/checkout"
""",
        "os.environ", "SHOP_MODE",
    ),
}


@dataclass
class Suite:
    root: Path
    tests: int
    polluter: str  # node ids
    victim: str
    leak_file: str  # relative to root, as the report gives it
    leak_line: int
    target: str
    name: str


def make_suite(root: Path, tests: int, kind: Kind, per_file: int = 100) -> Suite:
    """``tests`` tests; the polluter is 2% in, the victim 2% before the end."""
    if tests < 4:
        raise SystemExit("--tests must be at least 4")
    for rel, text in PACKAGE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:randomly -p no:cacheprovider\npythonpath = .\n")
    (root / "tests").mkdir()
    at_polluter = max(1, tests // 50)
    at_victim = tests - 1 - max(1, tests // 50)
    polluter = victim = leak_file = ""
    leak_line = 0
    for start in range(0, tests, per_file):
        rel = f"tests/test_gen_{start // per_file:03d}.py"
        body = HEADER
        for n in range(start, min(start + per_file, tests)):
            if n == at_polluter:
                polluter = f"{rel}::{kind.polluter}"
                body += kind.polluter_src
                lines = body.splitlines()
                leak_file = rel
                leak_line = next(i for i, line in enumerate(lines, 1)
                                 if line.strip() == kind.leak_line)
            elif n == at_victim:
                victim = f"{rel}::{kind.victim}"
                body += kind.victim_src
            else:
                body += FILLER.format(n=n, m=n % 7)
        (root / rel).write_text(body)
    return Suite(root, tests, polluter, victim, leak_file, leak_line, kind.target, kind.name)


# -- environments ------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    env.pop("SHOP_MODE", None)
    # Every run loads cached bytecode, as installed packages do (the warm-up run writes it).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def install_dtp(python: str, cache: Path) -> Path:
    """detect-test-pollution, pinned and hash-checked, in ``cache``; it needs only pytest."""
    target = cache / f"detect-test-pollution-{DTP_VERSION}"
    if (target / "detect_test_pollution.py").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="dtp-", dir=cache))
    requirements = staging / "requirements.txt"
    requirements.write_text(f"detect-test-pollution=={DTP_VERSION} --hash=sha256:{DTP_SHA256}\n")
    print(f"installing detect-test-pollution {DTP_VERSION} into {target} ...", flush=True)
    result = subprocess.run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", "--no-deps",
         "--only-binary", ":all:", "--require-hashes", "--target", str(staging / "lib"),
         "-r", str(requirements)],
        capture_output=True, text=True)
    if result.returncode != 0 or not (staging / "lib" / "detect_test_pollution.py").is_file():
        raise SystemExit(f"could not install detect-test-pollution {DTP_VERSION}:\n"
                         f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    os.replace(staging / "lib", target)
    requirements.unlink()
    staging.rmdir()
    return target


def check_python(python: str) -> str:
    result = subprocess.run(
        [python, "-c", "import sys, pytest, patchtrace; "
                       "print(sys.version.split()[0], pytest.__version__, patchtrace.__version__)"],
        capture_output=True, text=True, env=base_env())
    if result.returncode != 0:
        raise SystemExit(f"{python} needs pytest and patchtrace installed:\n{result.stderr}")
    py, pytest_version, pt_version = result.stdout.split()
    return f"python {py}, pytest {pytest_version}, patchtrace {pt_version}"


# -- the three arms ----------------------------------------------------------------------------


@dataclass
class Outcome:
    seconds: float
    runs: int
    executed: int
    named: str = "-"
    line: str = "-"
    leaked: str = "-"
    victim: str = "-"
    problems: list[str] = field(default_factory=list)


_COUNTS = re.compile(r"(\d+) (passed|failed|error|errors|skipped)\b")


def run_pytest(python: str, suite: Suite, traced: bool, report: Path | None = None
               ) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = base_env()
    if traced:
        env["PATCHTRACE"] = "1"
        if report is not None:
            env["PATCHTRACE_JSON"] = str(report)
    started = time.perf_counter()
    result = subprocess.run([python, "-m", "pytest", "-p", "no:randomly", "-q", "tests"],
                            cwd=suite.root, env=env, capture_output=True, text=True)
    return time.perf_counter() - started, result


def check_failures(result: subprocess.CompletedProcess[str], suite: Suite, what: str) -> int:
    """The suite must fail exactly the victim; returns the number of tests run."""
    tail = result.stdout.strip().splitlines()[-1:] or [""]
    counts = {kind: int(n) for n, kind in _COUNTS.findall(tail[0])}
    failed = re.findall(r"^FAILED (\S+)", result.stdout, re.MULTILINE)
    if failed != [suite.victim] or counts.get("failed") != 1 or result.returncode != 1:
        raise SystemExit(f"{what}: expected exactly {suite.victim} to fail, got {failed} "
                         f"(exit {result.returncode}):\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return sum(counts.values())


def plain(python: str, suite: Suite) -> Outcome:
    seconds, result = run_pytest(python, suite, traced=False)
    return Outcome(seconds, 1, check_failures(result, suite, "plain pytest"))


def patchtrace(python: str, suite: Suite, scratch: Path) -> Outcome:
    report_path = scratch / "patchtrace.json"
    report_path.unlink(missing_ok=True)
    seconds, result = run_pytest(python, suite, traced=True, report=report_path)
    outcome = Outcome(seconds, 1, check_failures(result, suite, "PATCHTRACE=1 pytest"))
    problems = outcome.problems
    try:
        report: dict[str, Any] = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        problems.append(f"no readable JSON report at {report_path}: {exc}")
        return outcome
    leaks: list[dict[str, Any]] = report.get("leaks") or []
    if report.get("tests") != suite.tests:
        problems.append(f"report says tests={report.get('tests')}, the suite ran {suite.tests}")
    ours = [leak for leak in leaks if leak.get("polluter") == suite.polluter]
    others = [leak for leak in leaks if leak.get("polluter") != suite.polluter]
    for leak in others:
        problems.append(f"unexpected leak {leak.get('id')} {leak.get('kind')} "
                        f"{leak.get('target')} {leak.get('name')!r} blamed on "
                        f"{leak.get('polluter')} (victims {leak.get('victims')})")
    if not ours:
        problems.append(f"no leak blamed on {suite.polluter}; "
                        f"{len(leaks)} leak(s) reported in all")
        if leaks:
            outcome.named = str(leaks[0].get("polluter"))
        return outcome
    if len(ours) > 1:
        problems.append(f"{len(ours)} leaks blamed on the polluter, expected one: "
                        + ", ".join(f"{x.get('target')} {x.get('name')!r}" for x in ours))
    leak = ours[0]
    outcome.named = str(leak.get("polluter"))
    where = leak.get("where") or {}
    outcome.line = f"{where.get('file')}:{where.get('line')}" if where else "none"
    outcome.leaked = f"{leak.get('target')} {leak.get('name')}"
    victims = leak.get("victims") or []
    outcome.victim = "linked" if suite.victim in victims else "NOT linked"
    expected_where = f"{suite.leak_file}:{suite.leak_line}"
    if outcome.line != expected_where:
        problems.append(f"where is {outcome.line}, the leaking statement is {expected_where}")
    if (leak.get("target"), leak.get("name")) != (suite.target, suite.name):
        problems.append(f"leaked target is {outcome.leaked}, expected {suite.target} "
                        f"{suite.name}")
    if victims != [suite.victim]:
        problems.append(f"victims are {victims}, expected [{suite.victim!r}]")
    return outcome


def dtp(python: str, suite: Suite, dtp_lib: Path) -> Outcome:
    env = base_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(dtp_lib), env.get("PYTHONPATH")]))
    # It runs `python -m pytest -p detect_test_pollution ...`: leave patchtrace's plugin out,
    # as on a machine without patchtrace.
    env["PYTEST_ADDOPTS"] = " ".join(filter(None, [env.get("PYTEST_ADDOPTS"),
                                                   "-p no:patchtrace"]))
    started = time.perf_counter()
    # As its console script does: under `-m` it would pass `-p __main__` to its pytest runs.
    result = subprocess.run(
        [python, "-c", "import sys, detect_test_pollution as d; sys.exit(d.main())",
         "--failing-test", suite.victim, "--tests", "tests"],
        cwd=suite.root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    found = re.search(r"^-> the polluting test is: (.+)$", result.stdout, re.MULTILINE)
    discovered = re.search(r"^-> discovered (\d+) tests!$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not found or not discovered:
        raise SystemExit(f"detect-test-pollution gave no answer (exit {result.returncode}):\n"
                         f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    # Its runs, from its source: collect-only, the victim alone, everything then the victim,
    # one run per bisection step (the first half then the victim), the final double check.
    remaining = [int(n) for n in re.findall(r"^- (\d+) tests remaining", result.stdout,
                                            re.MULTILINE)]
    runs = 1 + 1 + 1 + len(remaining) + 1
    executed = 1 + int(discovered[1]) + sum(n // 2 + 1 for n in remaining) + 2
    outcome = Outcome(seconds, runs, executed, named=found[1].strip(), victim="given")
    if outcome.named != suite.polluter:
        raise SystemExit(f"detect-test-pollution named {outcome.named}, expected "
                         f"{suite.polluter}:\n{result.stdout[-3000:]}")
    return outcome


# -- main --------------------------------------------------------------------------------------


def _median(outcomes: list[Outcome]) -> float:
    return statistics.median(o.seconds for o in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kind", choices=sorted(KINDS), default="patch")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--cache-dir", type=Path, default=Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patchtrace-bench")
    parser.add_argument("--keep", type=Path, default=None,
                        help="generate the suite in this (new) directory and keep it")
    args = parser.parse_args()

    versions = check_python(args.python)
    dtp_lib = install_dtp(args.python, args.cache_dir)
    with tempfile.TemporaryDirectory(prefix="pt-blame-") as tmp:
        scratch = Path(tmp)
        root = args.keep.resolve() if args.keep else scratch / "suite"
        root.mkdir(parents=True)
        suite = make_suite(root, args.tests, KINDS[args.kind])
        print(f"{versions}; {args.tests} tests, --kind {args.kind}, {args.rounds} rounds")
        print(f"  polluter {suite.polluter} (line {suite.leak_line})\n  victim   {suite.victim}")
        plain(args.python, suite)  # warm the file cache and bytecode; checks the suite
        rows: dict[str, list[Outcome]] = {"plain": [], "patchtrace": [], "dtp": []}
        for n in range(args.rounds):
            rows["plain"].append(plain(args.python, suite))
            rows["patchtrace"].append(patchtrace(args.python, suite, scratch))
            rows["dtp"].append(dtp(args.python, suite, dtp_lib))
            print(f"  round {n + 1}: " + "  ".join(
                f"{key} {outcomes[-1].seconds:.2f}s" for key, outcomes in rows.items()),
                flush=True)
        if args.keep:
            print(f"  suite kept in {root}")

    labels = {"plain": "pytest, plain (reference)", "patchtrace": "patchtrace, PATCHTRACE=1",
              "dtp": f"detect-test-pollution {DTP_VERSION}"}
    print()
    print(f"{'tool':<28}{'median s':>9}{'runs':>6}{'tests run':>11}  names / line / leaked target"
          "  (victim)")
    for key, outcomes in rows.items():
        last = outcomes[-1]
        what = "-" if key == "plain" else (f"{last.named} / {last.line} / {last.leaked}"
                                           f"  ({last.victim})")
        print(f"{labels[key]:<28}{_median(outcomes):>9.2f}{last.runs:>6}{last.executed:>11}  "
              f"{what}")
    pt, bis, ref = rows["patchtrace"][-1], rows["dtp"][-1], _median(rows["plain"])
    ratio = _median(rows["dtp"]) / _median(rows["patchtrace"])
    print(f"\ndetect-test-pollution / patchtrace: {ratio:.1f}x "
          f"wall time, {bis.runs / pt.runs:.0f}x pytest runs, "
          f"{bis.executed / pt.executed:.2f}x tests executed")
    print(f"patchtrace / plain pytest: {_median(rows['patchtrace']) / ref:.2f}x wall time")
    for key in ("plain", "patchtrace", "dtp"):
        print(f"  {key:<11} runs: " + " ".join(f"{o.seconds:.2f}" for o in rows[key]))

    problems = sorted({p for o in rows["patchtrace"] for p in o.problems})
    if problems:
        print("\n" + "!" * 100)
        print(f"PATCHTRACE MISMATCH: the report does not say what the suite did (--kind "
              f"{args.kind}).")
        print(f"  expected polluter {suite.polluter}, where {suite.leak_file}:{suite.leak_line}, "
              f"target {suite.target} {suite.name}, victims [{suite.victim}]")
        for problem in problems:
            print(f"  - {problem}")
        print("!" * 100)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
