"""Our own work survives a polluted process, and says honestly what it wrote.

A suite that leaves ``builtins.open`` mocked, ``os.replace`` patched or
``sys._getframe = None`` still gets its reports, written with references captured when
tracing started; a report that cannot be written says so, and the run's outcome is
unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from patchtrace import _captured

from .conftest import load_report, package_suite, run_python

Enable = Callable[..., Path]

PKG = {"pkg/__init__.py": "", "pkg/mod.py": "def func():\n    return 'real'\n"}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return package_suite(pytester, PKG)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, timeout=120)


LEFT_PATCHED = {
    "open": 'mock.patch("builtins.open", mock.mock_open(read_data="{}")).start()',
    "replace": 'mock.patch("os.replace", side_effect=OSError("patched")).start()',
    "makedirs": 'mock.patch("os.makedirs", side_effect=OSError("patched")).start()',
    "getcwd": 'mock.patch("os.getcwd", return_value="/nonexistent/elsewhere").start()',
    "json": 'mock.patch.multiple("json", dump=mock.DEFAULT, dumps=mock.DEFAULT).start()',
}


@pytest.mark.parametrize("name", sorted(LEFT_PATCHED))
def test_reports_are_written_with_what_was_captured_at_start(
        suite: pytest.Pytester, traced_env: Enable, monkeypatch: pytest.MonkeyPatch,
        name: str) -> None:
    traced_env()
    # relative, so that writing it needs the working directory (os.getcwd)
    monkeypatch.setenv("PATCHTRACE_JSON", "reports/patchtrace.json")
    report_path = suite.path / "reports" / "patchtrace.json"
    html_path = suite.path / "out" / "report.html"
    suite.makepyfile(test_left=f"""
        import json, os
        from unittest import mock
        import pkg.mod

        def test_leaves_it_patched():
            mock.patch("pkg.mod.func").start()
            {LEFT_PATCHED[name]}
    """)
    result = run(suite, f"--patchtrace-html={html_path}")
    result.assert_outcomes(passed=1)
    report = load_report(report_path)  # a real, complete report, parsed by the real json
    targets = {(leak["target"], leak["name"]) for leak in report["leaks"]}
    assert ("module:pkg.mod", "func") in targets, report["leaks"]
    assert html_path.read_text().startswith("<!DOCTYPE html>") or "<html" in html_path.read_text()
    result.stdout.fnmatch_lines(["patchtrace: JSON report written to reports/patchtrace.json",
                                 f"patchtrace: HTML report written to {html_path}"])
    assert "could not write" not in result.stdout.str()
    assert not list(report_path.parent.glob("*.tmp*"))


def test_stacks_survive_sys_getframe_set_to_none(suite: pytest.Pytester,
                                                  traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_frames="""
        import os, sys

        def test_breaks_getframe():
            sys._getframe = None

        def test_later_pollution():
            os.environ["PT_AFTER_GETFRAME"] = "1"  # LATER-LINE
    """)
    # hypothesis' plugin imports typing at the end of the run, which needs sys._getframe
    result = run(suite, "-p", "no:hypothesispytest")
    result.assert_outcomes(passed=2)
    report = load_report(report_path)
    later = [leak for leak in report["leaks"] if leak["name"] == "PT_AFTER_GETFRAME"]
    assert len(later) == 1, report["leaks"]
    # the stack of a mutation made after the breakage still names the line
    source = (suite.path / "test_frames.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "LATER-LINE" in text)
    assert later[0]["where"]["line"] == line
    # the summary still names it and its line: as rich's tree when rich was imported before
    # the breakage, else in plain lines (importing rich afterwards needs sys._getframe)
    out = result.stdout.str()
    assert "patchtrace: 1 leak from 1 polluter in 2 tests" in out, out
    summary = out.split("patchtrace: 1 leak from 1 polluter in 2 tests", 1)[1]
    assert "PT_AFTER_GETFRAME" in summary, out
    assert f"test_frames.py:{line}" in summary, out
    result.stdout.fnmatch_lines([f"patchtrace: JSON report written to {report_path}"])


def test_a_report_that_cannot_be_written_says_so(suite: pytest.Pytester) -> None:
    blocker = suite.path / "a_file"
    blocker.write_text("")
    bad = blocker / "report.json"
    suite.makepyfile(test_x="""
        import pkg.mod
        from unittest import mock

        def test_polluter():
            mock.patch("pkg.mod.func").start()
    """)
    result = run(suite, "--patchtrace", f"--patchtrace-json={bad}")
    assert result.ret == pytest.ExitCode.OK  # the run's outcome is unchanged
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"patchtrace: could not write {bad} (Not a directory)"])
    assert "written to" not in result.stdout.str()
    assert not bad.exists()


def test_a_written_report_is_said_also_without_leaks(suite: pytest.Pytester) -> None:
    # the control twin: the same run with a writable path, and nothing leaked
    good = suite.path / "reports" / "report.json"
    suite.makepyfile(test_x="def test_clean():\n    pass\n")
    result = run(suite, "--patchtrace", f"--patchtrace-json={good}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*patchtrace: no leaks in 1 test*",
                                 f"patchtrace: JSON report written to {good}"])
    assert load_report(good)["leaks"] == []
    assert "could not write" not in result.stdout.str()


def test_a_script_says_what_it_could_not_write(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    bad = tmp_path / "a_file" / "out.json"
    good = tmp_path / "out.json"
    code = "import os\nos.environ['X_SCRIPT'] = '1'\nprint('ok')\n"
    failed = run_python(code, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(bad)})
    assert failed.returncode == 0 and failed.stdout.strip() == "ok"
    assert failed.stderr.splitlines() == [f"patchtrace: could not write {bad} (Not a directory)"]
    written = run_python(code, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(good)})
    assert written.stderr.splitlines() == [f"patchtrace: JSON report written to {good}"]
    assert load_report(good)["leaks"] == []


# -- the captured primitives, directly ---------------------------------------------------------
def test_makedirs_and_write_atomic_ignore_later_patches(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("called the patched function")

    for name in ("mkdir", "makedirs", "replace", "getcwd", "stat"):
        monkeypatch.setattr(os, name, broken)
    monkeypatch.setattr("builtins.open", broken)
    target = tmp_path / "a" / "b" / "c.txt"
    _captured.write_atomic(str(target), "hello")
    _captured.write_atomic(str(target.with_suffix(".bin")), b"\x00\x01")
    monkeypatch.undo()
    assert target.read_text() == "hello"
    assert target.with_suffix(".bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["c.bin", "c.txt"]


def test_write_atomic_leaves_no_temporary_file_when_it_fails(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError) as info:  # a directory cannot be replaced by a file
        _captured.write_atomic(str(tmp_path / "dir"), "x")
    assert _captured.reason(info.value) == "Is a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]
