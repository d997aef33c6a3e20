"""What the patch-not-used hint costs a failing test, with thousands of modules loaded.

    python benchmarks/bench_hints.py [--rounds 5] [--repeat 5] [--no-site]

Generates a small suite whose conftest imports every importable standard-library module
and package (submodules included) and, unless ``--no-site``, every package of the running
environment's site-packages, so that ``sys.modules`` is as large as a big real suite's. Its
tests, each ``--repeat`` times:

* ``test_plain``: fails, patches nothing (what any failing test costs);
* ``test_hint``: fails with ``patch("os.getcwd")`` never used while ``app.client`` did
  ``from os import getcwd``: the hint is computed and found;
* ``test_used``: fails with a patch that was used (the search stops before looking);
* ``test_pass``: passes with an unused patch (nothing is computed at all).

Each round is one ``PATCHTRACE=1 python -m pytest`` run. A conftest hook times each test's
whole protocol (setup, call, teardown and report) and wraps patchtrace's two hint entry
points (``_hints.calls_at_failure`` before the report, ``_hints.hints_for_failure`` after)
to time the hint work alone. Printed: ``len(sys.modules)``, and per kind of test the median
and smallest per-test time and time of the hint work, in milliseconds (on a busy machine
the smallest is the better estimate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CONFTEST = textwrap.dedent('''
    import importlib
    import json
    import os
    import pkgutil
    import sys
    import sysconfig
    import time
    import warnings

    import pytest

    from patchtrace.analysis import hints as _hints

    SKIP = {"antigravity", "this", "idlelib", "turtledemo", "turtle", "tkinter", "test",
            "__phello__", "__hello__", "lib2to3", "ensurepip", "venv", "pydoc_data", "xxlimited",
            "xxlimited_35", "_xxtestfuzz", "_tkinter", "_testcapi", "_testinternalcapi",
            "_testmultiphase", "_testbuffer", "_testimportmultiple", "_testsinglephase",
            "_testclinic", "_ctypes_test", "pip", "setuptools", "_distutils_hack", "pkg_resources"}

    def _quiet_import(name):
        if name.split(".")[0] in SKIP or name.endswith(("__main__", ".tests", ".test")) \\
                or ".tests." in name or ".test." in name:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return importlib.import_module(name)
        except BaseException:
            return None

    def _load_everything():
        names = sorted(sys.stdlib_module_names)
        if os.environ.get("BENCH_SITE") == "1":
            site = sysconfig.get_paths()["purelib"]
            names += sorted(m.name for m in pkgutil.iter_modules([site]))
        for name in names:
            module = _quiet_import(name)
            path = getattr(module, "__path__", None)
            if path is None:
                continue
            for info in pkgutil.walk_packages(path, prefix=name + ".", onerror=lambda n: None):
                _quiet_import(info.name)

    _load_everything()
    TIMES = {}
    HINT = {}
    _current = [None]

    def _timed(function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                HINT[_current[0]] = HINT.get(_current[0], 0.0) + time.perf_counter() - start
        return timed

    _hints.calls_at_failure = _timed(_hints.calls_at_failure)
    _hints.hints_for_failure = _timed(_hints.hints_for_failure)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(item, nextitem):
        _current[0] = item.nodeid
        start = time.perf_counter()
        try:
            return (yield)
        finally:
            TIMES[item.nodeid] = time.perf_counter() - start

    def pytest_sessionfinish(session):
        with open(os.environ["BENCH_OUT"], "w") as handle:
            json.dump({"modules": len(sys.modules), "times": TIMES, "hint": HINT}, handle)
''')

TESTS = textwrap.dedent('''
    from unittest import mock

    import pytest

    import app.client

    REPEAT = range(int(__import__("os").environ["BENCH_REPEAT"]))

    @pytest.mark.parametrize("n", REPEAT)
    def test_plain(n):
        assert app.client.where() == "/nowhere"

    @pytest.mark.parametrize("n", REPEAT)
    def test_hint(n):
        with mock.patch("os.getcwd", return_value="/fake"):
            assert app.client.where() == "/fake"

    @pytest.mark.parametrize("n", REPEAT)
    def test_used(n):
        with mock.patch("app.client.getcwd", return_value="/fake"):
            assert app.client.where() == "/elsewhere"

    @pytest.mark.parametrize("n", REPEAT)
    def test_pass(n):
        with mock.patch("os.getcwd", return_value="/fake"):
            assert app.client.where() != "/fake"
''')

CLIENT = "from os import getcwd\n\n\ndef where():\n    return getcwd()\n"
KINDS = ("plain", "hint", "used", "pass")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="tests of each kind per run")
    parser.add_argument("--no-site", action="store_true",
                        help="load the standard library only, not site-packages")
    args = parser.parse_args()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    hint: dict[str, list[float]] = {kind: [] for kind in KINDS}
    modules: list[int] = []
    with tempfile.TemporaryDirectory(prefix="bench-hints-") as tmp:
        root = Path(tmp)
        (root / "app").mkdir()
        (root / "app" / "__init__.py").write_text("")
        (root / "app" / "client.py").write_text(CLIENT)
        (root / "conftest.py").write_text(CONFTEST)
        (root / "test_bench.py").write_text(TESTS)
        (root / "pytest.ini").write_text(
            "[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n")
        out = root / "bench.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
        env.update(PATCHTRACE="1", BENCH_OUT=str(out), BENCH_REPEAT=str(args.repeat),
                   BENCH_SITE="0" if args.no_site else "1", PYTHONDONTWRITEBYTECODE="1")
        for _ in range(args.rounds):
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:warnings"], cwd=root, env=env,
                capture_output=True, text=True, timeout=900)
            if "patchtrace: patch not used" not in result.stdout or not out.exists():
                print(result.stdout[-3000:], result.stderr[-3000:], sep="\n")
                print("no hint in the run: the benchmark measured nothing", file=sys.stderr)
                return 1
            data = json.loads(out.read_text())
            modules.append(data["modules"])
            for nodeid, seconds in data["times"].items():
                kind = nodeid.split("::")[1].partition("[")[0].removeprefix("test_")
                times[kind].append(seconds * 1000)
                hint[kind].append(data["hint"].get(nodeid, 0.0) * 1000)
    print(f"python {sys.version.split()[0]}, {args.rounds} runs x {args.repeat} tests of each "
          f"kind; len(sys.modules) in the tests: {min(modules)}..{max(modules)}")
    print(f"{'test':<40} {'per test, ms: median':>21} {'min':>6}  "
          f"{'hint work, ms: median':>21} {'min':>6}")
    labels = {
        "plain": "failing, no patch",
        "hint": "failing, unused patch: hint found",
        "used": "failing, patch used: no search",
        "pass": "passing, unused patch: nothing run",
    }
    for kind in KINDS:
        print(f"{labels[kind]:<40} {statistics.median(times[kind]):>21.2f} "
              f"{min(times[kind]):>6.2f}  {statistics.median(hint[kind]):>21.2f} "
              f"{min(hint[kind]):>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
