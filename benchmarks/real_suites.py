"""Overhead and findings of PATCHTRACE=1 on the test suites of real projects.

    python benchmarks/real_suites.py [--suites attrs,click] [--rounds 5] [--python PYTHON]
                                     [--cache DIR] [--leaks] [--patchtrace SRC_OR_WHEEL]
                                     [--old SRC_OR_WHEEL] [--prepare]

For each suite: the pinned source distribution is downloaded from PyPI (``pip download
--no-binary :all:``) into the cache and unpacked; a virtualenv is made with ``--python``;
the project, its pinned test requirements, pytest and patchtrace (built from this
checkout, installed non-editable so ``patchtrace.pth`` is in site-packages) are installed
into it. The suite is then run once plain and once traced without timing (warm bytecode
for both legs; the traced warm-up also writes the JSON report), then plain and traced,
alternating, ``--rounds`` times each.

Printed per suite, side by side: tests run, median plain and traced seconds, their ratio,
the time tracing adds per test, how many boundary checks of a timed traced run took more
than 20 ms and the longest one (patchtrace's private ``_PATCHTRACE_BOUNDARY_TIMES`` hook),
and the number of leaks in the JSON report (kept in the cache, under ``reports/``). Every
run writes a JUnit XML file; the per-test outcomes of each traced run are compared with
the plain ones and any difference is reported loudly (and makes the exit status 1), as is
a difference between two plain runs (a flaky test).

``--old SRC`` measures a second patchtrace beside the first (the old design, e.g. a
``git archive`` of commit 7150871 unpacked into a directory): each suite gets a second
virtualenv (``...-old``) with that wheel, one more untimed warm-up (its JSON report is
``reports/<suite>-<version>-py<python>-old.json``), and each round runs plain, traced-old
and traced-new in turn. Rows then print both traced legs side by side, with the CPU time
(user + system) of the pytest process and of the children it waited for (``os.wait4``),
whose ratio is far less sensitive to a loaded machine than the wall-clock ratio, and a
summary line: the median and the largest ratio over the suites, wall and CPU, for each leg,
against issue 15's targets. A design without the boundary-times hook prints "—" there.
Outcome differences of the old leg are printed but do not set the exit status (they are
the old design's, measured, not this checkout's).

``--prepare`` only fills the cache (sdists, sources, every leg's venv with its wheel
installed) and runs nothing: a later timing run then spends its time on the suites.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST = ("pytest==8.1.1", "pluggy==1.4.0", "iniconfig==2.0.0", "packaging==24.0")
# attrs 23.2.0 predates pytest 8: its TestAssoc::test_unknown nests pytest.raises around
# pytest.deprecated_call, which pytest 8 reports as DID NOT WARN.
PYTEST_7 = ("pytest==7.4.4", "pluggy==1.4.0", "iniconfig==2.0.0", "packaging==24.0")
COMMON_ARGS = ("-p", "no:randomly", "-q", "-p", "no:cacheprovider")
SLOW_MS = 20.0
#: issue 15's targets for the real suites: the median ratio and the largest one
TARGET_MEDIAN = 1.08
TARGET_MAX = 1.25
#: patchtrace's private benchmark hook: each boundary check's duration, one line each
BOUNDARY_TIMES = "_PATCHTRACE_BOUNDARY_TIMES"


#: hypothesis's 200 ms deadline fails tests at random on a loaded shared machine, in plain
#: and traced runs alike (attrs, 3.12.1): the suite's own profile, without the deadline.
NO_DEADLINE = """
import pytest


@pytest.hookimpl(trylast=True)  # after the suite's conftest loaded its profile
def pytest_configure(config):
    from hypothesis import settings

    settings.register_profile("bench-no-deadline", settings(deadline=None))
    settings.load_profile("bench-no-deadline")
"""


@dataclass(frozen=True)
class Suite:
    """A project whose source distribution ships its tests."""

    name: str
    version: str
    requires: tuple[str, ...]
    """Test requirements, pinned, installed next to the project."""
    args: tuple[str, ...] = ()
    """Extra pytest arguments (paths, ini overrides)."""
    deselect: tuple[tuple[str, str], ...] = ()
    """(node id, reason) of tests not run: they need the network, or flake."""
    pytest: tuple[str, ...] = PYTEST
    plugin: str = ""
    """Source of a small pytest plugin loaded with ``-p`` (from the cache, not the suite)."""

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


# With these pins every test passes offline on Python 3.11 (the first six on 3.12 too; twine's
# own pytest.ini disables sockets and ignores its integration tests); one test of responses
# is deselected, with its reason.
# Transitive requirements are not pinned: each venv's ``pip freeze`` is kept in freeze.txt.
SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("attrs", "23.2.0",
          ("hypothesis==6.98.17", "pympler==1.0.1", "cloudpickle==3.0.0",
           "zope.interface==6.2"), pytest=PYTEST_7, plugin=NO_DEADLINE),
    Suite("click", "8.1.7", ()),
    Suite("structlog", "24.1.0",
          ("freezegun==1.4.0", "pretend==1.0.9", "pytest-asyncio==0.23.5",
           "simplejson==3.19.2")),
    Suite("cookiecutter", "2.6.0",
          ("pytest-mock==3.12.0", "freezegun==1.4.0"),
          # setup.cfg's addopts ask for pytest-cov: measure the tests, not coverage.
          ("-o", "addopts=")),
    Suite("pytest-mock", "3.14.0",
          ("pytest-asyncio==0.23.5", "mock==5.1.0")),
    Suite("twine", "5.0.0",
          # The expected check/metadata messages are those of docutils, readme-renderer
          # and pkginfo of early 2024.
          ("pretend==1.0.9", "pytest-socket==0.7.0", "build==1.1.1", "setuptools==69.2.0",
           "pkginfo==1.9.6", "readme-renderer==43.0", "docutils==0.20.1")),
    # The third triage: suites chosen because they were never tuned to, and because they
    # do what trips a tracer. freezegun patches time and datetime in every loaded module,
    # and its unittest classes freeze time in setUpClass (maya, optional, is left out).
    Suite("freezegun", "1.4.0", ()),
    # pyfakefs replaces os, io, builtins.open, pathlib and shutil in every loaded module and
    # adds a meta-path finder; its own suite is unittest-style (setUpClassPyfakefs).
    Suite("pyfakefs", "5.3.5", (),
          # pytest_tests/pytest_fixture_test.py imports a missing module on purpose and
          # pytest_check_failed_plugin_test.py reads what a separate failing run left:
          # pyfakefs's own tox does not run them in its main run either.
          ("pyfakefs/tests", "pyfakefs/pytest_tests",
           "--ignore=pyfakefs/pytest_tests/pytest_fixture_test.py",
           "--ignore=pyfakefs/pytest_tests/pytest_check_failed_plugin_test.py")),
    # testfixtures: unittest-style, Replacer/replace() of module attributes, LogCapture of
    # logging, Popen mocks, sybil doctests. Twisted and Django parts left out.
    Suite("testfixtures", "8.1.0", ("sybil==6.0.3",),
          ("testfixtures/tests", "--ignore=testfixtures/tests/test_twisted.py",
           "--ignore=testfixtures/tests/test_django")),
    # loguru configures logging and its own global logger in every test; its
    # exception-formatting tests start one Python subprocess per case (about a hundred) and
    # its multiprocessing tests start fork and spawn workers (and so the resource tracker).
    Suite("loguru", "0.7.2", ("freezegun==1.2.2", "colorama==0.4.6"),
          ("tests", "--ignore=tests/typesafety", "--ignore=tests/test_type_hinting.py"),
          pytest=PYTEST_7),
    # python-dotenv writes os.environ and chdirs; its CLI tests run the dotenv command
    # through sh, and a zip-import test runs a Python script (subprocesses).
    Suite("python-dotenv", "1.0.1", ("sh==2.0.6", "click==8.1.7"),
          deselect=tuple((f"tests/test_main.py::{name}",
                          "expects chmod to deny access: fails plain and traced alike when "
                          "run as root") for name in ("test_set_key_permission_error",
                                                     "test_set_key_unauthorized_file"))),
    # responses patches requests' HTTPAdapter.send with unittest.mock in every test.
    Suite("responses", "0.25.0",
          ("pytest-asyncio==0.23.5", "pytest-httpserver==1.0.10", "tomli-w==1.0.0"),
          # Its async tests expect pytest-asyncio in auto mode (its CI's setting).
          ("responses/tests", "-o", "asyncio_mode=auto"),
          deselect=(("responses/tests/test_matchers.py::test_fail_matchers_error",
                     "expects verify=True in its message; a CA bundle set in the environment "
                     "(REQUESTS_CA_BUNDLE) makes requests pass the bundle's path instead"),)),
    # mock (the unittest.mock backport): a unittest suite that patches everything,
    # builtins and sys.modules included, with mock classes patchtrace does not know.
    Suite("mock", "5.1.0", (), ("mock/tests", "-o", "python_files=test*.py")),
    # schedule: a unittest suite that replaces datetime.datetime by hand and leaves the mock
    # jobs of each test in the module-level default scheduler (cleared by the next setUp):
    # surviving mocks in every test.
    Suite("schedule", "1.2.1", ("mock==5.1.0",), ("test_schedule.py",)),
    # Issue 15's two: sh's tests start a child process in almost every test (179 tests, each
    # running a Python script or a shell tool through sh), so what a traced session costs
    # its children shows; transitions' tests hand MagicMock callbacks to state machines
    # (on_enter_*, before/after, conditions), with mock classes patchtrace tracks.
    Suite("sh", "2.0.6", (), ("tests/sh_test.py",)),
    Suite("transitions", "0.9.0", ("mock==5.1.0", "dill==0.3.8", "pycodestyle==2.11.1"),
          # its pytest.ini stops at the first failure (-x): run every test
          ("tests", "-o", "addopts=-rf")),
)}


@dataclass
class Leg:
    """One traced patchtrace (this checkout's, or ``--old``'s) on one suite."""

    label: str
    """"new" or "old": names its venv, its report and its problems."""
    venv: Path
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """User + system seconds of each timed run (the pytest process and its reaped children)."""
    leaks: int | None = None
    report: Path | None = None
    report_tests: int = 0
    """The ``tests`` of the JSON report, read two seconds after the traced warm-up."""
    slow: list[int] = field(default_factory=list)
    """Per timed traced run: boundary checks longer than SLOW_MS."""
    over_50: list[int] = field(default_factory=list)
    """Per timed traced run: boundary checks longer than 50 ms (issue 15's limit)."""
    timed: bool = False
    """Whether this patchtrace wrote the boundary-times file at all (the old design may not)."""
    longest: float = 0.0
    """The longest boundary check of any timed traced run, ms."""
    longest_what: str = ""
    first_notes: str = ""
    warm: float = float("nan")
    """Wall seconds of the warm-up (not a timed round: cold bytecode, the report written)."""


@dataclass
class Result:
    suite: Suite
    tests: int = 0
    plain: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)
    """The traced legs, in the order each round runs them: [old,] new."""
    failed: list[str] = field(default_factory=list)
    """Tests that fail or error in the plain warm-up run (not tracing's doing)."""
    problems: list[str] = field(default_factory=list)
    warm: float = float("nan")
    """Wall seconds of the plain warm-up (not a timed round)."""

    @property
    def new(self) -> Leg:
        return self.legs[-1]

    @property
    def old(self) -> Leg | None:
        return self.legs[0] if len(self.legs) > 1 else None

    # The single-leg names the rest of the script (and its readers) know.
    @property
    def traced(self) -> list[float]:
        return self.new.seconds

    @property
    def leaks(self) -> int | None:
        return self.new.leaks

    @property
    def report(self) -> Path | None:
        return self.new.report


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a setup command; its failure ends the benchmark."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False,
                            env=base_env() if env is None else env)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{result.stdout[-3000:]}"
                         f"{result.stderr[-3000:]}")
    return result


def base_env() -> dict[str, str]:
    """The environment of every child: no tracing settings, bytecode caches on."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items()
            if not k.startswith("PATCHTRACE") and k not in drop}


def fetch(suite: Suite, cache: Path) -> Path:
    """Download and unpack the sdist; return the unpacked source tree."""
    downloads = cache / "sdists"
    downloads.mkdir(parents=True, exist_ok=True)
    stem = f"{suite.name}-{suite.version}"
    archives = [p for p in downloads.glob("*.tar.gz")
                if p.name.lower().replace("_", "-") == f"{stem}.tar.gz".lower()]
    if not archives:
        # The project as a source distribution; its build requirements may be wheels.
        run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", suite.name, "--dest", str(downloads), suite.pin])
        archives = [p for p in downloads.glob("*.tar.gz")
                    if p.name.lower().replace("_", "-") == f"{stem}.tar.gz".lower()]
    if not archives:
        raise SystemExit(f"pip download of {suite.pin} gave no .tar.gz in {downloads}")
    source = cache / "src" / stem
    if not source.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp, \
                tarfile.open(archives[0]) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(tmp, filter="data")
            else:
                archive.extractall(tmp)
            (top,) = Path(tmp).iterdir()
            source.parent.mkdir(parents=True, exist_ok=True)
            top.rename(source)
    return source


def build_patchtrace(source: Path, into: Path, python: str) -> Path:
    """A wheel of patchtrace (this checkout by default), built once per invocation: the
    core may have changed since the last one. A wheel given as the source is used as is."""
    if source.suffix == ".whl":
        return source
    run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(into),
         str(source)])
    (wheel,) = into.glob("patchtrace-*.whl")
    return wheel


def describe(source: Path) -> str:
    """Which patchtrace is measured: the wheel, or the source tree's commit. The wheel is
    built from the working tree, so uncommitted changes to what goes into it are measured
    too: say so."""
    if source.suffix == ".whl":
        return str(source)
    git = ["git", "-C", str(source)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False)
    if head.returncode != 0:
        return f"{source} (not a git checkout)"
    changed = subprocess.run([*git, "status", "--porcelain", "--", "patchtrace", "src-pth",
                              "pyproject.toml"], capture_output=True, text=True,
                             check=False).stdout.splitlines()
    if changed:
        return (f"{source} at {head.stdout.strip()} WITH {len(changed)} UNCOMMITTED "
                "CHANGE(S) built into the wheel (commit them, or pass --patchtrace a wheel, "
                "to measure a commit)")
    return f"{source} at {head.stdout.strip()}"


def interpreter_tag(python: str) -> str:
    out = run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    return out.stdout.strip()


def prepare_venv(suite: Suite, source: Path, cache: Path, python: str, version: str,
                 wheel: Path, leg: str = "new") -> Path:
    """One virtualenv per suite, Python and leg; the project is installed once, patchtrace
    always. The old leg's venv is a venv of its own, installed the same way (a copy would
    keep console scripts whose shebangs run the new leg's Python)."""
    suffix = "" if leg == "new" else f"-{leg}"
    venv = cache / "venvs" / f"{suite.name}-{suite.version}-py{version}{suffix}"
    wanted = hashlib.sha256(repr((suite.pin, suite.requires, suite.pytest)).encode()).hexdigest()
    stamp = venv / "installed.sha256"
    vpython = str(venv / "bin" / "python")
    if not stamp.exists() or stamp.read_text() != wanted:
        if venv.exists():
            shutil.rmtree(venv)
        run([python, "-m", "venv", str(venv)])
        pip = [vpython, "-m", "pip", "install", "--quiet"]
        run([*pip, "--upgrade", "pip"])
        run([*pip, str(source), *suite.requires, *suite.pytest])
        stamp.write_text(wanted)
    # The checkout's patchtrace, with its dependencies, over whatever was there.
    run([vpython, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps",
         str(wheel)])
    run([vpython, "-m", "pip", "install", "--quiet", str(wheel)])
    freeze = run([vpython, "-m", "pip", "freeze"]).stdout
    (venv / "freeze.txt").write_text(freeze)
    return venv


def outcomes(junit: Path) -> dict[str, str]:
    """Node-ish id -> outcome(s) from a JUnit XML file."""
    found: dict[str, list[str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        key = f"{case.get('classname')}::{case.get('name')}"
        tags = [child.tag for child in case
                if child.tag in ("failure", "error", "skipped")]
        found.setdefault(key, []).extend(tags or ["passed"])
    return {k: "+".join(sorted(v)) for k, v in found.items()}


@dataclass
class Run:
    seconds: float
    outcomes: dict[str, str]
    returncode: int
    notes: str
    """What stderr says about patchtrace (its internal errors are said there)."""
    cpu: float = 0.0
    """User + system seconds of the pytest process and of the children it waited for."""


def run_child(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str, float,
                                                                         float]:
    """Run one pytest: (exit status, stdout, stderr, wall seconds, CPU seconds). Output goes
    to files (not pipes: nothing reads them while it runs), so that this process can reap
    the child itself with ``os.wait4`` and read its resource usage."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (child.returncode, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"), elapsed,
                usage.ru_utime + usage.ru_stime)


def run_suite(suite: Suite, venv: Path, source: Path, junit: Path, traced: bool,
              report: Path | None = None, log: Path | None = None,
              times: Path | None = None) -> Run:
    env = base_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    if traced:
        env["PATCHTRACE"] = "1"
    if times is not None:
        times.unlink(missing_ok=True)
        env[BOUNDARY_TIMES] = str(times)
    if report is not None:
        env["PATCHTRACE_JSON"] = str(report)
    cmd = [str(venv / "bin" / "python"), "-m", "pytest", *COMMON_ARGS, *suite.args,
           f"--junitxml={junit}"]
    if suite.plugin:
        plugins = venv / "bench-plugins"
        plugins.mkdir(exist_ok=True)
        module = f"bench_{suite.name.replace('-', '_')}"
        (plugins / f"{module}.py").write_text(suite.plugin)
        env["PYTHONPATH"] = str(plugins)
        cmd[3:3] = ["-p", module]
    for node, _reason in suite.deselect:
        cmd.append(f"--deselect={node}")
    junit.unlink(missing_ok=True)
    returncode, stdout, stderr, elapsed, cpu = run_child(cmd, source, env)
    # 0: all passed, 1: some failed (compared below); anything else is not a test result.
    broken = returncode not in (0, 1) or not junit.exists()
    if broken and not traced:
        raise SystemExit(f"{suite.name} (plain) exited {returncode}:\n"
                         f"{stdout[-4000:]}{stderr[-3000:]}")
    notes = _notes(stderr)
    if broken:  # tracing broke the run: say so, and compare what there is
        log = log or junit.with_suffix(".log")
        notes = f"traced run exited {returncode}:\n{stdout[-2000:]}\n{notes}"
    if log is not None:
        log.write_text(f"$ {' '.join(cmd)}\n{stdout}\n--- stderr ---\n{stderr}")
    found = outcomes(junit) if junit.exists() else {}
    return Run(elapsed, found, returncode, notes, cpu)


def _notes(stderr: str) -> str:
    """What stderr says about patchtrace: its messages, errors and warnings, and the frames
    of patchtrace in a traceback (the rest of a traceback is pytest's and pluggy's)."""
    keep: dict[str, None] = {}
    for line in stderr.splitlines():
        frame = line.lstrip().startswith('File "')
        if (frame and "/patchtrace/" in line) or (not frame and (
                "patchtrace" in line.lower() or "Error:" in line or "Warning:" in line)):
            keep[line] = None
    return "\n".join(keep)


def _same_text(notes: str) -> str:
    """Notes with numbers blanked: the same warning about pytest's numbered temporary
    directories (``pytest-of-root/pytest-468/...``) is not news in every round."""
    return re.sub(r"\d+", "N", notes)


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    return [f"{key}: {a.get(key, 'not run')} -> {b.get(key, 'not run')}"
            for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def compare(result: Result, plain: Run, traced: Run, when: str, leg: str = "new") -> None:
    """Tracing must change no test's outcome, nor the exit status of the run. The new leg's
    differences say "OUTCOME DIFFERS" (the exit status); the old leg's "OLD DESIGN: ..."."""
    say = "OUTCOME DIFFERS" if leg == "new" else "OLD DESIGN: OUTCOME DIFFERS"
    for line in differences(plain.outcomes, traced.outcomes):
        result.problems.append(f"{say} plain -> traced-{leg} ({when}): {line}")
    if plain.returncode != traced.returncode:
        result.problems.append(f"{say} plain -> traced-{leg} ({when}): exit status "
                               f"{plain.returncode} -> {traced.returncode}")


def warm_up(result: Result, leg: Leg, base: Run, source: Path, cache: Path, version: str,
            work: Path) -> None:
    """A leg's untimed warm-up: it writes the leg's JSON report (and its output beside it),
    whose test count is checked to be the parent's."""
    suite = result.suite
    reports = cache / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    suffix = "" if leg.label == "new" else f"-{leg.label}"
    leg.report = reports / f"{suite.name}-{suite.version}-py{version}{suffix}.json"
    leg.report.unlink(missing_ok=True)
    first = run_suite(suite, leg.venv, source, work / f"warm-traced-{leg.label}.xml", True,
                      leg.report, leg.report.with_suffix(".log"))
    leg.first_notes = first.notes
    leg.warm = first.seconds
    tag = "" if leg.label == "new" else f"{leg.label.upper()} DESIGN: "
    if first.notes:
        result.problems.append(f"{tag}traced stderr (see {leg.report.with_suffix('.log')}):\n"
                               f"{first.notes[-3000:]}")
    compare(result, base, first, "warm-up", leg.label)
    if leg.report.exists():
        # The parent's report: it counts the parent's tests (JUnit cases, or one fewer), and
        # no child process replaced it after the run (multiprocessing's resource tracker
        # exits after its parent: give such a child time to write).
        time.sleep(2)
        data = json.loads(leg.report.read_text())
        leg.leaks = len(data["leaks"])
        leg.report_tests = int(data.get("tests", 0))
        if not len(first.outcomes) - 1 <= leg.report_tests <= len(first.outcomes):
            result.problems.append(
                f"{tag}JSON REPORT NOT THE PARENT'S? it counts {leg.report_tests} tests, "
                f"the run had {len(first.outcomes)}")
    else:
        result.problems.append(f"{tag}no JSON report written to {leg.report}")


def timed_traced(result: Result, leg: Leg, base: Run, plain: Run, source: Path, work: Path,
                 n: int) -> None:
    """One timed traced run of a leg, its boundary times read, its outcomes compared."""
    times = work / f"traced-{leg.label}-{n}.times"
    traced = run_suite(result.suite, leg.venv, source, work / f"traced-{leg.label}-{n}.xml",
                       True, times=times)
    leg.seconds.append(traced.seconds)
    leg.cpu.append(traced.cpu)
    leg.timed = leg.timed or times.exists()
    boundaries = read_times(times)
    leg.slow.append(sum(1 for _what, ms in boundaries if ms > SLOW_MS))
    leg.over_50.append(sum(1 for _what, ms in boundaries if ms > 50.0))
    for what, ms in boundaries:
        if ms > leg.longest:
            leg.longest, leg.longest_what = ms, what
    compare(result, plain, traced, f"round {n + 1}", leg.label)
    if traced.notes and _same_text(traced.notes) != _same_text(leg.first_notes):
        tag = "" if leg.label == "new" else f"{leg.label.upper()} DESIGN: "
        result.problems.append(f"{tag}traced stderr (round {n + 1}):\n{traced.notes[-3000:]}")


def measure(suite: Suite, legs: list[Leg], source: Path, rounds: int, cache: Path,
            version: str, work: Path) -> Result:
    """Untimed warm-ups (bytecode for every leg; each traced one writes its leg's JSON
    report), then ``rounds`` rounds of plain and each traced leg in turn."""
    result = Result(suite, legs=legs)
    base = run_suite(suite, result.new.venv, source, work / "warm-plain.xml", False)
    result.tests = len(base.outcomes)
    result.warm = base.seconds
    result.failed = sorted(k for k, v in base.outcomes.items()
                           if "failure" in v or "error" in v)
    for leg in reversed(legs):  # new first: its report is the one the triage reads
        warm_up(result, leg, base, source, cache, version, work)

    for n in range(rounds):
        plain = run_suite(suite, result.new.venv, source, work / f"plain-{n}.xml", False)
        result.plain.append(plain.seconds)
        result.plain_cpu.append(plain.cpu)
        for line in differences(base.outcomes, plain.outcomes):
            result.problems.append(f"flaky (differs between plain runs): {line}")
        for leg in legs:
            timed_traced(result, leg, base, plain, source, work, n)
    return result


HEADER = (f"  {'suite':<22} {'tests':>6} {'plain s':>8} {'traced s':>9} {'ratio':>7}"
          f" {'us/test':>8} {f'>{SLOW_MS:.0f}ms':>6} {'max ms':>8} {'leaks':>6}")


def _median(values: list[float] | list[int]) -> float:
    return statistics.median(values) if values else float("nan")


def row(r: Result) -> str:
    p = _median(r.plain)
    t = _median(r.traced)
    per_test = (t - p) / r.tests * 1e6 if r.tests else float("nan")
    leaks = "?" if r.leaks is None else str(r.leaks)
    slow = f"{statistics.median(r.new.slow):.0f}" if r.new.slow else "?"
    return (f"  {r.suite.pin:<22} {r.tests:>6} {p:>8.2f} {t:>9.2f} {t / p:>6.3f}x"
            f" {per_test:>+8.0f} {slow:>6} {r.new.longest:>8.1f} {leaks:>6}"
            f"{'  (' + r.new.longest_what + ')' if r.new.longest_what else ''}")


#: with --old: both traced legs, wall and CPU, side by side
HEADER_OLD = (f"  {'suite':<22} {'tests':>6} {'plain s':>8} {'old s':>8} {'old x':>7}"
              f" {'new s':>8} {'new x':>7} {'old us/t':>9} {'new us/t':>9}"
              f" {'cpu s':>7} {'cpu old':>8} {'cpu new':>8}"
              f" {f'new>{SLOW_MS:.0f}':>6} {'new max':>8} {f'old>{SLOW_MS:.0f}':>6}"
              f" {'old max':>8} {'leaks':>9}")


def ratios(r: Result, leg: Leg) -> tuple[float, float]:
    """(wall, CPU) ratio of a leg's median to the plain median."""
    return (_median(leg.seconds) / _median(r.plain), _median(leg.cpu) / _median(r.plain_cpu))


def _boundaries(leg: Leg) -> tuple[str, str]:
    """(how many checks over SLOW_MS, the longest in ms), "—" for a design without the hook."""
    if not leg.seconds:
        return "?", "?"
    if not leg.timed:
        return "—", "—"
    return f"{statistics.median(leg.slow):.0f}", f"{leg.longest:.1f}"


def row_old(r: Result) -> str:
    old, new = r.old, r.new
    assert old is not None
    p = _median(r.plain)
    cells = []
    for leg in (old, new):
        t = _median(leg.seconds)
        cells.append((t, t / p, (t - p) / r.tests * 1e6 if r.tests else float("nan")))
    (old_t, old_x, old_us), (new_t, new_x, new_us) = cells
    cpu_old = ratios(r, old)[1]
    cpu_new = ratios(r, new)[1]
    new_slow, new_max = _boundaries(new)
    old_slow, old_max = _boundaries(old)
    leaks = f"{'?' if new.leaks is None else new.leaks}/{'?' if old.leaks is None else old.leaks}"
    return (f"  {r.suite.pin:<22} {r.tests:>6} {p:>8.2f} {old_t:>8.2f} {old_x:>6.3f}x"
            f" {new_t:>8.2f} {new_x:>6.3f}x {old_us:>+9.0f} {new_us:>+9.0f}"
            f" {_median(r.plain_cpu):>7.2f} {cpu_old:>7.3f}x {cpu_new:>7.3f}x"
            f" {new_slow:>6} {new_max:>8} {old_slow:>6} {old_max:>8} {leaks:>9}"
            f"{'  (new max: ' + new.longest_what + ')' if new.longest_what else ''}")


def summary(results: list[Result]) -> list[str]:
    """Median and largest ratio over the suites, wall and CPU, per leg, against the targets."""
    lines = []
    timed = [r for r in results if r.plain and r.new.seconds]
    if not timed:
        return ["  no timed rounds: no ratios"]
    for label in ("old", "new"):
        legs = [(r, leg) for r in timed for leg in r.legs if leg.label == label]
        if not legs:
            continue
        for kind, index in (("wall", 0), ("cpu", 1)):
            values = [ratios(r, leg)[index] for r, leg in legs]
            med, top = statistics.median(values), max(values)
            worst = max(legs, key=lambda pair: ratios(pair[0], pair[1])[index])[0].suite.name
            verdict = ("met" if med <= TARGET_MEDIAN and top <= TARGET_MAX else "MISSED")
            lines.append(f"  {label} {kind:<4}: median {med:.3f}x (target <= {TARGET_MEDIAN}x),"
                         f" max {top:.3f}x ({worst}; target <= {TARGET_MAX}x): {verdict}"
                         f" [{len(values)} suites]")
        over = [(r.suite.name, _median(leg.over_50)) for r, leg in legs if leg.timed]
        if over:
            total = sum(n for _name, n in over)
            worst_suites = ", ".join(f"{name} {n:.0f}" for name, n in over if n)
            lines.append(f"  {label} boundaries > 50 ms per run (median): {total:.0f}"
                         f"{' (' + worst_suites + ')' if worst_suites else ''}; the target"
                         " allows the first after a collection that found survivors, which"
                         " this hook does not tell apart")
    return lines


def read_times(path: Path) -> list[tuple[str, float]]:
    """(what, ms) of each boundary check the traced run timed; none when it wrote none."""
    if not path.exists():
        return []
    found = []
    for line in path.read_text().splitlines():
        what, _, ms = line.partition("\t")
        try:
            found.append((what, float(ms)))
        except ValueError:
            continue
    return found


def print_leaks(report: Path) -> None:
    for leak in json.loads(report.read_text())["leaks"]:
        where = leak.get("where") or {}
        print(f"    {leak['id']:>4} {leak['kind']:<18} {leak['target']}"
              f"{'' if leak.get('name') is None else ' ' + str(leak['name'])}"
              f"  [{leak['polluter']} {leak['phase']}]"
              f"  {where.get('file')}:{where.get('line')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", default=",".join(SUITES),
                        help=f"comma-separated, from: {', '.join(SUITES)}")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--cache", type=Path,
                        default=Path.home() / ".cache" / "patchtrace-bench")
    parser.add_argument("--leaks", action="store_true", help="list every leak found")
    parser.add_argument("--patchtrace", type=Path, default=REPO,
                        help="patchtrace to install: a source tree or a wheel "
                             "(default: this checkout)")
    parser.add_argument("--old", type=Path, default=None,
                        help="a second patchtrace (the old design: a source tree or a wheel), "
                             "measured beside the first in a venv of its own")
    parser.add_argument("--prepare", action="store_true",
                        help="fill the cache (sources, venvs, wheels installed) and run nothing")
    args = parser.parse_args()
    names = [n.strip() for n in args.suites.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(SUITES)}")
    cache: Path = args.cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    python = shutil.which(args.python) or args.python
    version = interpreter_tag(python)

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="pt-real-") as tmp:
        wheel = build_patchtrace(args.patchtrace.resolve(), Path(tmp) / "wheel", python)
        print(f"patchtrace: {describe(args.patchtrace.resolve())}", flush=True)
        old_wheel = None
        if args.old is not None:
            old_wheel = build_patchtrace(args.old.resolve(), Path(tmp) / "old-wheel", python)
            print(f"old patchtrace: {describe(args.old.resolve())}", flush=True)
        for name in names:
            suite = SUITES[name]
            print(f"{suite.pin}: preparing", flush=True)
            source = fetch(suite, cache)
            legs = []
            if old_wheel is not None:
                legs.append(Leg("old", prepare_venv(suite, source, cache, python, version,
                                                    old_wheel, "old")))
            legs.append(Leg("new", prepare_venv(suite, source, cache, python, version, wheel)))
            if args.prepare:
                print(f"{suite.pin}: prepared {', '.join(str(leg.venv) for leg in legs)}",
                      flush=True)
                continue
            work = Path(tmp) / name
            work.mkdir()
            print(f"{suite.pin}: running ({args.rounds} rounds)", flush=True)
            result = measure(suite, legs, source, args.rounds, cache, version, work)
            results.append(result)
            for test in result.failed:
                print(f"  fails plain too (deselect it, with a reason?): {test}")
            for problem in result.problems:
                print(f"  !!! {problem}", flush=True)
            if args.leaks and result.report is not None and result.report.exists():
                print_leaks(result.report)
            if result.old is not None and args.leaks and result.old.report is not None \
                    and result.old.report.exists():
                print(f"  old design's leaks ({result.old.leaks}): {result.old.report}")
            # Not a measurement (cold bytecode, the report written): an idea of the size.
            print(f"  warm-up (untimed rounds, not in the medians): plain {result.warm:.2f} s"
                  + "".join(f", traced-{leg.label} {leg.warm:.2f} s" for leg in result.legs),
                  flush=True)
            # as soon as it is measured
            if old_wheel is None:
                print(f"{HEADER}\n{row(result)}", flush=True)
            else:
                print(f"{HEADER_OLD}\n{row_old(result)}", flush=True)

    if args.prepare:
        return
    legs_said = "plain, traced-old, traced-new" if old_wheel is not None else "alternating"
    print(f"\npython {version}, {args.rounds} rounds, {legs_said}, medians")
    if old_wheel is None:
        print(HEADER)
        for r in results:
            print(row(r))
    else:
        print(HEADER_OLD)
        for r in results:
            print(row_old(r))
        print("  (x: median traced / median plain; us/t: time added per test; cpu: user+sys"
              " of pytest and its reaped children; leaks: new/old)")
        for line in summary(results):
            print(line)
    for r in results:
        if r.report is not None and r.report.exists():
            print(f"  leaks of {r.suite.name}: {r.report}")
    said_outcomes(results, "OLD DESIGN: OUTCOME DIFFERS",
                  "the old design changed test outcomes (not this checkout's doing):")
    if said_outcomes(results, "OUTCOME DIFFERS", "!!! tracing changed test outcomes:"):
        raise SystemExit(1)


def said_outcomes(results: list[Result], prefix: str, title: str) -> bool:
    """Print the problems starting with ``prefix`` under ``title``; whether there were any."""
    found = [(r.suite.name, p) for r in results for p in r.problems if p.startswith(prefix)]
    if found:
        print(f"\n{title}")
        for name, problem in found:
            print(f"  {name}: {problem}")
    return bool(found)


if __name__ == "__main__":
    main()
