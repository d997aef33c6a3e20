"""The environment-variable path, in real subprocesses: the .pth line, scripts, unittest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import run_python

PROBE = "import sys; print('patchtrace' in sys.modules)"


@pytest.mark.parametrize("value", [None, "", "0", "off", "OFF"])
def test_off_imports_nothing(tmp_path: Path, value: str | None) -> None:
    env = {} if value is None else {"PATCHTRACE": value}
    result = run_python(PROBE, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert result.stderr == ""


def test_on_imports_patchtrace_but_not_rich_or_pytest(tmp_path: Path) -> None:
    code = "import sys; print(sorted(m for m in ('patchtrace', 'rich', 'pytest', 'objgraph') " \
           "if m in sys.modules))"
    result = run_python(code, tmp_path, {"PATCHTRACE": "1"})
    assert result.stdout.strip() == "['patchtrace']", result.stderr


def test_a_bad_value_says_one_line_and_the_program_runs(tmp_path: Path) -> None:
    result = run_python("print('still here')", tmp_path, {"PATCHTRACE": "nonsense"})
    assert result.returncode == 0
    assert result.stdout.strip() == "still here"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PATCHTRACE='nonsense'" in lines[0] and "strict" in lines[0]
    assert "tracing is off" in lines[0]


SCRIPT = """\
from unittest import mock
import helper_mod

mock.patch("helper_mod.func").start()
helper_mod.TIMEOUT = 0
print("done")
"""


def test_a_script_records_both_mutations_with_its_own_lines(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("TIMEOUT = 30\ndef func():\n    return 1\n")
    report = tmp_path / "out.json"
    result = run_python(SCRIPT, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    data = json.loads(report.read_text())
    leaks = {leak["name"]: leak for leak in data["leaks"]}
    assert set(leaks) == {"func", "TIMEOUT"}, data["leaks"]
    assert leaks["func"]["kind"] == "patch-not-stopped"
    assert leaks["TIMEOUT"]["kind"] == "binding-changed"
    for name, line in (("func", 4), ("TIMEOUT", 5)):
        assert leaks[name]["polluter"] == "<process>"
        assert leaks[name]["where"] == {"file": "script.py", "line": line, "function": "<module>"}
    assert "patchtrace: 2 leaks from 1 polluter\n" in result.stderr


def test_a_clean_script_is_silent(tmp_path: Path) -> None:
    code = "import os, logging\nlogging.basicConfig()\nos.environ['X_SCRIPT'] = '1'\nprint('ok')\n"
    result = run_python(code, tmp_path, {"PATCHTRACE": "1"})
    # A script may configure its own process: only what it patches and never restores
    # in other modules is reported.
    assert result.stdout.strip() == "ok"
    assert "leak" not in result.stderr
    # runpy stores __main__.__file__ from C, with no Python frame: not an internal error
    assert "internal error" not in result.stderr


def test_hostile_objects_do_not_break_the_program(tmp_path: Path) -> None:
    code = """
from unittest import mock
import helper_mod

class Hostile:
    def __repr__(self):
        raise RuntimeError("boom")
    def __eq__(self, other):
        raise RuntimeError("boom")
    __hash__ = None

helper_mod.TIMEOUT = Hostile()
mock.patch.object(helper_mod, "func", mock.MagicMock(spec=Hostile)).start()
print("survived")
"""
    (tmp_path / "helper_mod.py").write_text("TIMEOUT = 30\ndef func():\n    return 1\n")
    report = tmp_path / "out.json"
    result = run_python(code, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"
    leaks = json.loads(report.read_text())["leaks"]
    assert any("repr raised RuntimeError" in leak["value"]["repr"] for leak in leaks)


UNITTESTS = """\
import os
import unittest
from unittest import mock

import helper_mod


class Polluting(unittest.TestCase):
    def test_leaks(self):
        mock.patch("helper_mod.func").start()

    def test_clean(self):
        with mock.patch.dict(os.environ, {"UT_KEY": "1"}):
            pass


class Victim(unittest.TestCase):
    def test_victim(self):
        self.assertEqual(helper_mod.func(), 1)


if __name__ == "__main__":
    unittest.main()
"""


def test_plain_unittest_reports_per_test_id(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("def func():\n    return 1\n")
    (tmp_path / "test_ut.py").write_text(UNITTESTS)
    report = tmp_path / "out.json"
    result = run_python("", tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report)},
                        args=["-m", "unittest", "test_ut"])
    assert "FAILED (failures=1)" in result.stderr
    data = json.loads(report.read_text())
    assert data["tests"] == 3
    [leak] = data["leaks"]
    assert leak["polluter"] == "test_ut.Polluting.test_leaks"
    assert leak["where"]["line"] == 10


def test_python_m_patchtrace_reads_a_report(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("TIMEOUT = 30\ndef func():\n    return 1\n")
    report = tmp_path / "out.json"
    run_python(SCRIPT, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report)})
    result = run_python("", tmp_path, args=["-m", "patchtrace", "report", str(report)])
    assert result.returncode == 1  # leaks found
    assert "patchtrace: 2 leaks from 1 polluter\n" in result.stdout
    assert "helper_mod.func" in result.stdout
    assert sys.executable


def test_graphs_outside_pytest(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text("TIMEOUT = 30\ndef func():\n    return 1\n")
    graphs = tmp_path / "graphs"
    result = run_python(SCRIPT, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_GRAPHS": str(graphs)})
    assert result.returncode == 0, result.stderr
    assert sorted(p.suffix for p in graphs.iterdir()) == [".dot", ".dot", ".svg", ".svg"]
