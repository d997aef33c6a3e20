"""``python -m patchtrace``, in real subprocesses: run, report and graph."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import run_python

ECHO = "import json, os, sys; print(json.dumps([os.environ.get('PATCHTRACE'), sys.argv[1:]]))"


@pytest.mark.parametrize("args", [["--", "a", "--", "b"], ["a", "--"], ["--"], []])
def test_run_removes_only_its_own_separator(tmp_path: Path, args: list[str]) -> None:
    """The first ``--`` after ``run`` is ours; every later one belongs to the command."""
    (tmp_path / "echo.py").write_text(ECHO)
    result = run_python("", tmp_path, args=[
        "-m", "patchtrace", "run", "--strict", "--", sys.executable, "echo.py", *args])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["strict", args]


def test_run_without_its_own_separator_passes_everything(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(ECHO)
    result = run_python("", tmp_path, args=[
        "-m", "patchtrace", "run", sys.executable, "echo.py", "--", "x"])
    assert json.loads(result.stdout) == ["1", ["--", "x"]]


def test_run_without_a_command_says_how(tmp_path: Path) -> None:
    result = run_python("", tmp_path, args=["-m", "patchtrace", "run", "--"])
    assert result.returncode == 2
    assert "give a command" in result.stderr


@pytest.mark.parametrize("command", ["report", "graph"])
@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"),
     ("{not json", "bad.json: Expecting property name"),
     ('{"schema": "other"}', "is not a patchtrace report"),
     ('{"schema": "patchtrace-report/1", "leaks": [{"id": "L1", "before": 3}]}',
      "not a readable patchtrace report")],
)
def test_an_unreadable_report_is_one_line_and_status_2(tmp_path: Path, command: str,
                                                       content: str | None,
                                                       reason: str) -> None:
    if content is not None:
        (tmp_path / "bad.json").write_text(content)
    result = run_python("", tmp_path, args=["-m", "patchtrace", command, "bad.json"])
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("patchtrace: ") and reason in line, line
    assert result.stdout == ""


def test_graph_into_a_place_that_cannot_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("def func():\n    return 1\n")
    report = tmp_path / "out.json"
    run_python("from unittest import mock\nmock.patch('helper_mod.func').start()\n", tmp_path,
               {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report)})
    (tmp_path / "taken").write_text("a file")
    result = run_python("", tmp_path, args=["-m", "patchtrace", "graph", str(report),
                                            "-o", "taken"])
    assert result.returncode == 2
    assert result.stderr.startswith("patchtrace: cannot write graphs to taken:")
    done = run_python("", tmp_path, args=["-m", "patchtrace", "graph", str(report),
                                          "-o", "graphs"])
    assert done.returncode == 0, done.stderr
    assert sorted(Path(line).name for line in done.stdout.split()) == ["L1.dot", "L1.svg"]
