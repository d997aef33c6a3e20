"""Child processes of a traced test session (CONTRACT: "Child processes of a test session").

The session marks its environment; the Python processes its tests start are not traced
(their output, files and exit status are as untraced, and they import nothing of ours), or,
under PATCHTRACE_CHILDREN=1, traced silently into the session's report. xdist workers are
part of the session. Real subprocesses throughout: the .pth line is what is under test.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from patchtrace import _session

from .conftest import load_report, package_suite, run_python

Enable = Callable[..., Path]

PKG = {"pkg/__init__.py": "", "pkg/mod.py": "def func():\n    return 'real'\n"}

#: a child that prints to both streams, writes a file, leaks a patch and exits with 3
CHILD = """\
import sys
from unittest import mock
import pkg.mod

mock.patch("pkg.mod.func").start()
sys.stderr.write("child stderr\\n")
print("child stdout", sorted(m for m in sys.modules if m.startswith("patchtrace")))
with open(sys.argv[1], "w") as handle:
    handle.write("child file\\n")
sys.exit(3)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester = package_suite(pytester, PKG)
    (pytester.path / "child.py").write_text(CHILD)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, timeout=180)


#: A test that runs the child as a test would (inheriting os.environ), then again
#: untraced (no PATCHTRACE* at all), and compares everything the child produced.
COMPARE = """
import os, subprocess, sys

def run_child(env, name):
    out = os.path.join(os.getcwd(), name)
    result = subprocess.run([sys.executable, "child.py", out], env=env,
                            capture_output=True)
    with open(out, "rb") as handle:
        return result.returncode, result.stdout, result.stderr, handle.read()

def untraced():
    return {{k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}}

def test_child_as_untraced():
    env = {env}
    assert os.environ["PATCHTRACE_SESSION"] == str(os.getpid())
    seen = run_child(env, "seen.txt")
    assert seen == run_child(untraced(), "plain.txt")
    assert seen == (3, b"child stdout []\\n", b"child stderr\\n", b"child file\\n")
"""


def test_a_marked_child_is_byte_identical_to_untraced(suite: pytest.Pytester,
                                                       traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_kids=COMPARE.format(env="dict(os.environ)") + """
def test_a_real_environ_leak():
    os.environ["PT_REAL_LEAK"] = "1"
""")
    result = run(suite)
    result.assert_outcomes(passed=2)
    report = load_report(report_path)
    # the mark is no leak of any test (an environment leak beside it is), and the child's
    # patch is nobody's in this session
    assert [(leak["target"], leak["name"]) for leak in report["leaks"]] == [
        ("os.environ", "PT_REAL_LEAK")]
    assert report["children"] == []


def test_control_an_unmarked_child_would_be_traced(suite: pytest.Pytester,
                                                    traced_env: Enable) -> None:
    # The control twin: the same child with the mark taken out of its environment is
    # traced as before (patchtrace's summary on its stderr): the comparison above can fail.
    traced_env()
    env = "{k: v for k, v in os.environ.items() if k != 'PATCHTRACE_SESSION'}"
    suite.makepyfile(test_kids=COMPARE.format(env=env))
    result = run(suite)
    result.assert_outcomes(failed=1)
    assert "patchtrace._autostart" in result.stdout.str()  # the child's sys.modules


PARENT_JSON = """
import os, subprocess, sys

def test_child_with_the_parents_paths():
    report = os.environ["PATCHTRACE_JSON"]
    env = {env}
    result = subprocess.run([sys.executable, "child.py", "out.txt"], env=env)
    assert result.returncode == 3
    assert os.path.exists(report) == {written}
    # one more that outlives the session by a second
    subprocess.Popen([sys.executable, "-c",
                      "import time; time.sleep(1.5); exec(open('child.py').read())",
                      "late.txt"], env=env)
"""


def test_a_child_never_writes_the_parents_report(suite: pytest.Pytester,
                                                 traced_env: Enable) -> None:
    report_path = traced_env()
    html_path = suite.path / "report.html"
    suite.makepyfile(test_kids=PARENT_JSON.format(env="dict(os.environ)", written=False))
    result = run(suite, f"--patchtrace-html={html_path}")
    result.assert_outcomes(passed=1)
    before = report_path.read_bytes()
    html = html_path.read_bytes()
    deadline = time.monotonic() + 20
    while not (suite.path / "late.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the late child has written its file and is exiting
    assert (suite.path / "late.txt").exists()
    assert report_path.read_bytes() == before and html_path.read_bytes() == html
    report = load_report(report_path)
    assert report["tests"] == 1 and report["leaks"] == []


def test_control_an_unmarked_child_writes_the_parents_path(suite: pytest.Pytester,
                                                           traced_env: Enable) -> None:
    report_path = traced_env()
    env = "{k: v for k, v in os.environ.items() if k != 'PATCHTRACE_SESSION'}"
    suite.makepyfile(test_kids=PARENT_JSON.format(env=env, written=True))
    result = run(suite)
    result.assert_outcomes(passed=1)
    time.sleep(3)  # the late, unmarked child overwrites the session's report
    report = load_report(report_path)
    assert report["tests"] == 0 and report["leaks"][0]["polluter"] == "<process>"


# -- the .pth line and the mark, directly --------------------------------------------------------
PROBE = "import sys; print(sorted(m for m in sys.modules if m.startswith('patchtrace')))"


@pytest.mark.parametrize("mark", ["12345", "1", "garbage"])
def test_a_marked_child_imports_nothing_of_patchtrace(tmp_path: Path, mark: str) -> None:
    result = run_python(PROBE, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_SESSION": mark})
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")


def test_control_an_unmarked_or_children_process_imports_patchtrace(tmp_path: Path) -> None:
    unmarked = run_python(PROBE, tmp_path, {"PATCHTRACE": "1"})
    assert "patchtrace._autostart" in unmarked.stdout
    children = run_python(PROBE, tmp_path, {"PATCHTRACE_SESSION": f"1:{tmp_path}"})
    assert "patchtrace._autostart" in children.stdout and children.stderr == ""


def test_marker_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_session.VARIABLE, raising=False)
    marker = _session.mark(None, children=True)
    assert marker is not None and marker.directory is not None
    assert os.environ[_session.VARIABLE] == f"{os.getpid()}:{marker.directory}"
    assert _session.other() is None  # our own mark (a pytester in-process run)
    assert _session.mark(None, children=False) is None  # already marked: left alone
    path = _session.write_child(marker, command=["x"], started_by="t.py::t",
                                leaks=[_FakeLeak()])
    assert path is not None
    assert _session.collect(marker) == [{"command": ["x"], "started_by": "t.py::t",
                                         "leaks": [{"id": "L1"}]}]
    _session.unmark(None, marker)
    assert _session.VARIABLE not in os.environ and not os.path.exists(marker.directory)
    monkeypatch.setenv(_session.VARIABLE, "1")
    other = _session.other()
    assert other is not None and other.pid == 1 and other.directory is None
    assert _session.started_by({"PYTEST_CURRENT_TEST": "a/t.py::T::t[x (y)] (call)"}) == \
        "a/t.py::T::t[x (y)]"


class _FakeLeak:
    def to_json(self) -> dict[str, object]:
        return {"id": "L1"}


# -- PATCHTRACE_CHILDREN ---------------------------------------------------------------------
LEAKY_CHILD = """\
from unittest import mock
import pkg.mod
mock.patch("pkg.mod.func").start()  # CHILD-LEAK
print("ok")
"""

RUNS_CHILD = """
import os, subprocess, sys

def test_runs_child():
    result = subprocess.run([sys.executable, "leaky.py", "arg"], capture_output=True,
                            text=True)
    # traced silently: its output is its own
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok\\n", "")

def test_clean_child():
    subprocess.run([sys.executable, "-c", "print('clean')"], check=True)
"""


@pytest.mark.parametrize("how", ["env", "option", "ini"])
def test_children_leaks_are_in_the_sessions_report(suite: pytest.Pytester,
                                                   traced_env: Enable, how: str) -> None:
    report_path = traced_env(**({"PATCHTRACE_CHILDREN": "1"} if how == "env" else {}))
    args = ["--patchtrace-children"] if how == "option" else []
    if how == "ini":
        suite.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n"
                      "patchtrace_children = yes\n")
    (suite.path / "leaky.py").write_text(LEAKY_CHILD)
    suite.makepyfile(test_kids=RUNS_CHILD)
    result = run(suite, *args)
    result.assert_outcomes(passed=2)
    report = load_report(report_path)
    assert report["leaks"] == []
    [child] = report["children"]  # the clean child hands over nothing
    assert child["command"][0] == sys.executable and child["command"][1:] == ["leaky.py", "arg"]
    assert child["started_by"] == "test_kids.py::test_runs_child"
    [leak] = child["leaks"]
    assert (leak["kind"], leak["target"], leak["name"]) == (
        "patch-not-stopped", "module:pkg.mod", "func")
    assert leak["where"] == {"file": "leaky.py", "line": 3, "function": "<module>"}
    result.stdout.fnmatch_lines(["patchtrace: 1 leak in a child process started by "
                                 "test_kids.py::test_runs_child: *leaky.py arg"])


def test_control_without_children_they_stay_out(suite: pytest.Pytester,
                                                traced_env: Enable) -> None:
    report_path = traced_env()
    (suite.path / "leaky.py").write_text(LEAKY_CHILD)
    suite.makepyfile(test_kids=RUNS_CHILD)
    run(suite).assert_outcomes(passed=2)
    assert load_report(report_path)["children"] == []


def test_a_bad_children_value_is_a_usage_error(suite: pytest.Pytester,
                                               traced_env: Enable) -> None:
    traced_env(PATCHTRACE_CHILDREN="maybe")
    suite.makepyfile(test_x="def test_x(): pass")
    result = run(suite)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PATCHTRACE_CHILDREN='maybe' is not understood*"])


def test_children_of_xdist_workers_reach_the_controller(suite: pytest.Pytester,
                                                       traced_env: Enable) -> None:
    pytest.importorskip("xdist")
    report_path = traced_env(PATCHTRACE_CHILDREN="1")
    (suite.path / "leaky.py").write_text(LEAKY_CHILD)
    suite.makepyfile(test_kids=RUNS_CHILD, test_more="""
        import os
        def test_worker_leak():
            os.environ["PT_WORKER_LEAK"] = "1"
    """)
    result = run(suite, "-n", "2")
    result.assert_outcomes(passed=3)
    report = load_report(report_path)
    assert [leak["name"] for leak in report["leaks"]] == ["PT_WORKER_LEAK"]  # still traced
    [child] = report["children"]
    assert child["started_by"] == "test_kids.py::test_runs_child"


@pytest.mark.parametrize("in_a_worker", [False, True])
def test_a_pytest_child_is_traced_silently_into_the_session(
        suite: pytest.Pytester, traced_env: Enable, in_a_worker: bool) -> None:
    # in_a_worker: the session itself runs in an xdist worker of an outer run, so every
    # process below inherits PYTEST_XDIST_WORKER; the child pytest is still no worker
    extra = {"PYTEST_XDIST_WORKER": "gw0"} if in_a_worker else {}
    report_path = traced_env(PATCHTRACE_CHILDREN="1", **extra)
    inner = suite.path / "inner"
    inner.mkdir()
    (inner / "test_inner.py").write_text(
        "from unittest import mock\nimport pkg.mod\n\n"
        "def test_inner_leak():\n    mock.patch('pkg.mod.func').start()\n")
    suite.makepyfile(test_outer="""
        import os, subprocess, sys
        def test_runs_pytest():
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                 "-p", "no:cacheprovider", "inner/test_inner.py"],
                capture_output=True, text=True)
            assert result.returncode == 0, result.stdout
            assert "patchtrace" not in result.stdout + result.stderr
    """)
    result = run(suite, "--ignore=inner")
    result.assert_outcomes(passed=1)
    [child] = load_report(report_path)["children"]
    assert child["started_by"] == "test_outer.py::test_runs_pytest"
    [leak] = child["leaks"]
    assert leak["polluter"] == "inner/test_inner.py::test_inner_leak"


# -- python -m unittest ----------------------------------------------------------------------
UNITTEST_SESSION = """\
import os, subprocess, sys, unittest

class T(unittest.TestCase):
    def test_child(self):
        result = subprocess.run([sys.executable, "leaky.py"], capture_output=True, text=True)
        self.assertEqual((result.stdout, result.stderr), ("ok\\n", ""))
"""


@pytest.mark.parametrize("children", [False, True])
def test_a_unittest_session_marks_its_children(tmp_path: Path, children: bool) -> None:
    for path, text in PKG.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    (tmp_path / "leaky.py").write_text(LEAKY_CHILD)
    (tmp_path / "test_ut.py").write_text(UNITTEST_SESSION)
    report = tmp_path / "out.json"
    env = {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report), "PYTHONPATH": str(tmp_path)}
    if children:
        env["PATCHTRACE_CHILDREN"] = "1"
    os.environ.pop("PYTEST_CURRENT_TEST", None)  # started from a shell, not by this test
    result = run_python("", tmp_path, env, args=["-m", "unittest", "test_ut"])
    assert "OK" in result.stderr, result.stderr
    data = json.loads(report.read_text())
    assert data["leaks"] == []
    if children:
        [child] = data["children"]
        assert child["started_by"] is None and child["command"][1:] == ["leaky.py"]
        assert child["leaks"][0]["name"] == "func"
        assert "patchtrace: 1 leak in a child process started by ?: " in result.stderr
    else:
        assert data["children"] == []
        assert "child process" not in result.stderr


def test_a_traced_script_does_not_mark_its_children(tmp_path: Path) -> None:
    # `PATCHTRACE=1 tox` / a script that starts pytest: the script is no test session, so
    # the processes it starts are traced as before (the CONTRACT's first table).
    (tmp_path / "leaky.py").write_text("import os\nos.environ['X'] = '1'\n")
    code = ("import os, subprocess, sys\n"
            "print('PATCHTRACE_SESSION' in os.environ)\n"
            "subprocess.run([sys.executable, '-c', "
            "'import sys; print(\"patchtrace._autostart\" in sys.modules)'])\n")
    result = run_python(code, tmp_path, {"PATCHTRACE": "1"})
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_untraced_pytest_sets_no_mark(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
        import os
        def test_x():
            assert "PATCHTRACE_SESSION" not in os.environ
    """)
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_in_process_run_takes_its_mark_away(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="""
        import os
        def test_x():
            assert os.environ["PATCHTRACE_SESSION"] == str(os.getpid())
    """)
    assert "PATCHTRACE_SESSION" not in os.environ
    pytester.runpytest("--patchtrace", "-p", "no:randomly").assert_outcomes(passed=1)
    assert "PATCHTRACE_SESSION" not in os.environ

