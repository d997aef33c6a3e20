"""One finding per change per process state, across pytest-xdist workers (design rule 7);
a reload's message masked like every other value; ``python -m patchtrace report`` says
what the run said, through the same model and writer.

Each behaviour has a control in the same setup that must show the other outcome.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest

from patchtrace.leak import Leak
from patchtrace.render import _view
from patchtrace.render import terminal as rich_terminal
from patchtrace.render.secrets import mask_values
from patchtrace.values import ValueSummary

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


# -- unit: which leaks are the same change on another worker ----------------------------------
def _leak(leak_id: str, name: str = "CURRENT", value_type: str = "App",
          polluter: str = "t.py::test_1", kind: str = "binding-changed") -> Leak:
    leak = Leak(kind, polluter, "call", "module:pkg.lib", name,  # type: ignore[arg-type]
                value=ValueSummary(value_type, f"<{value_type}>", False))
    leak.id = leak_id
    return leak


def test_the_same_change_on_two_workers_is_folded_under_the_first() -> None:
    first, other = _leak("gw0-L1"), _leak("gw1-L1", polluter="u.py::test_5")
    third = _leak("gw2-L4", polluter="v.py::test_9")
    model = _view.build([], workers=[third, other, first], tests=9, mutations=9, rootdir=".")
    assert [leak.id for leak in model.leaks] == ["gw0-L1", "gw1-L1", "gw2-L4"]  # all kept
    assert {key: [leak.id for leak in leaks] for key, leaks in model.same_change.items()} \
        == {"gw0-L1": ["gw1-L1", "gw2-L4"]}


def test_other_changes_and_one_process_are_never_folded() -> None:
    # control for the test above: everything here differs in one of the rule's parts
    leaks = [
        _leak("gw0-L1"),
        _leak("gw0-L3", polluter="t.py::test_3"),        # the same worker: its own process
        _leak("gw1-L1", name="OTHER"),                    # another name
        _leak("gw1-L2", value_type="Session"),            # another type of value
        _leak("gw1-L3", kind="restore-mismatch"),         # another kind
        _leak("L1"), _leak("L2", polluter="t.py::test_2"),  # no worker: one process
    ]
    assert _view.same_change(leaks) == {}
    known = _leak("gw1-L4")
    known.known = True  # a baseline leak is one line at the end, never folded
    assert _view.same_change([_leak("gw0-L1"), known]) == {}
    assert _view.same_change([_leak("gw0-L1"), _leak("gw1-L4")]) != {}


@pytest.mark.parametrize("verbosity", [-1, 0, 1])
def test_a_folded_leak_keeps_its_id_in_the_terminal(verbosity: int) -> None:
    first, other = _leak("gw0-L1"), _leak("gw1-L1", polluter="u.py::test_5")
    other.repeats, other.victims = 2, ["u.py::test_victim"]
    lone = _leak("gw1-L2", name="OTHER", polluter="u.py::test_6")
    model = _view.build([], workers=[first, other, lone], tests=9, mutations=9, rootdir=".")
    lines = rich_terminal.render(model.leaks, verbosity=verbosity, width=200,
                                 same_change=model.same_change)
    text = "\n".join(lines)
    assert ("same change on another worker: gw1-L1 binding-changed pkg.lib.CURRENT "
            "from u.py::test_5, also left by 2 later tests; victims: u.py::test_victim") in text
    assert text.count("binding-changed pkg.lib.CURRENT") == 2  # a block, and one line
    assert "u.py::test_5\n" not in text + "\n"  # no group of its own for the folded leak
    assert "gw1-L2 binding-changed pkg.lib.OTHER" in text  # control: its own block
    assert "u.py::test_6" in lines
    unfolded = "\n".join(rich_terminal.render(model.leaks, verbosity=verbosity, width=200))
    assert "same change on another worker" not in unfolded  # without the model's folding


# -- pytest-xdist: a library pointer set by every test, on two workers --------------------------
POINTER = {
    "pkg/__init__.py": "",
    "pkg/lib.py": "class App:\n    pass\n\nCURRENT = None\nOTHER = None\n",
}


def _pointer_suite(pytester: pytest.Pytester, second_name: str) -> pytest.Pytester:
    files = dict(POINTER)
    for test_file, name in (("test_one.py", "CURRENT"), ("test_two.py", second_name)):
        files[test_file] = "import pkg.lib\n\n" + "".join(
            f"def test_{n}():\n    pkg.lib.{name} = pkg.lib.App()\n\n" for n in (1, 2, 3))
    return package_suite(pytester, files)


def _summary(stdout: str) -> list[str]:
    """The run's patchtrace summary: the headline (without pytest's separator) and the
    lines after it up to pytest's next section, less the line about the JSON file the run
    wrote (the report command writes none)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if re.fullmatch(r"[=-]+ patchtrace: (no leaks|\d+ leaks? from).* [=-]+", line))
    out = [re.sub(r"^[=-]+ | [=-]+$", "", lines[start])]
    for line in lines[start + 1:]:
        if re.fullmatch(r"=+ .* =+", line):
            break
        if not line.startswith("patchtrace: JSON report written to"):
            out.append(line)
    return out


def _report_command(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # COLUMNS as the run had it: rich wraps both summaries at the same width
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    return subprocess.run([sys.executable, "-m", "patchtrace", "report", str(path)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("second_name", ["CURRENT", "OTHER"])
def test_a_pointer_set_on_two_workers(pytester: pytest.Pytester, traced_env: Enable,
                                      monkeypatch: pytest.MonkeyPatch,
                                      second_name: str) -> None:
    """CURRENT on both workers: one leak per worker (separate process states, each for its
    own first test, its own repeats), explained once in the terminal. OTHER (the control):
    two changes, two explanations, nothing folded."""
    pytest.importorskip("xdist")
    report_path = traced_env()
    monkeypatch.setenv("COLUMNS", "200")
    suite = _pointer_suite(pytester, second_name)
    result = suite.runpytest_subprocess("-n", "2", "-p", "xdist", "--dist", "loadfile",
                                        timeout=180)
    result.assert_outcomes(passed=6)
    leaks = load_report(report_path)["leaks"]
    by_file = {leak["polluter"].partition("::")[0]: leak for leak in leaks}
    assert sorted(by_file) == ["test_one.py", "test_two.py"] and len(leaks) == 2, leaks
    workers = {leak["id"].partition("-")[0] for leak in leaks}
    assert len(workers) == 2 and all(re.fullmatch(r"gw\d-L1", leak["id"]) for leak in leaks)
    for test_file, leak in by_file.items():  # each worker: its own first test and repeats
        assert leak["polluter"] == f"{test_file}::test_1"
        assert (leak["repeats"], leak["repeat_tests"]) == (
            2, [f"{test_file}::test_2", f"{test_file}::test_3"])
    text = result.stdout.str()
    first, second = sorted(leaks, key=lambda leak: _view.id_order(leak["id"]))
    folded = (f"same change on another worker: {second['id']} binding-changed "
              f"pkg.lib.{second_name} from {second['polluter']}, also left by 2 later tests")
    if second_name == "CURRENT":
        assert text.count("fix: restore it in teardown") == 1, text
        assert folded in text, text
        assert f"{first['id']} binding-changed pkg.lib.CURRENT" in text
    else:
        assert text.count("fix: restore it in teardown") == 2, text
        assert "same change on another worker" not in text, text
    assert "patchtrace: 2 leaks from 2 polluters in 6 tests" in text
    # the report command says what the run said, from the same JSON
    shown = _report_command(report_path, suite.path)
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines() == _summary(text)


# -- the report command: the run's summary, line for line ---------------------------------------
def test_report_command_repeats_the_run_summary(pytester: pytest.Pytester,
                                                traced_env: Enable,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    report_path = traced_env()
    monkeypatch.setenv("COLUMNS", "100")
    suite = package_suite(pytester, {
        **POINTER,
        "pkg/client.py": "from os import getcwd\n\ndef where():\n    return getcwd()\n",
        "test_one.py": """
from unittest import mock
import pkg.client
import pkg.lib

def test_patch_not_used():  # a hint: the summary's hint line, in both
    with mock.patch("os.getcwd", return_value="/fake"):
        assert pkg.client.where() == "/fake"

def test_1():
    pkg.lib.CURRENT = pkg.lib.App()

def test_2():
    pkg.lib.CURRENT = pkg.lib.App()

def test_victim():
    assert pkg.lib.CURRENT is None
""",
    })
    result = suite.runpytest_subprocess("-p", "no:xdist", timeout=120)
    result.assert_outcomes(passed=2, failed=2)
    run = _summary(result.stdout.str())
    assert run[0] == "patchtrace: 1 leak from 1 polluter in 4 tests"
    [hint] = load_report(report_path)["hints"]
    assert f"patchtrace: 1 hint: {hint['test']}: {hint['message']}" in run, run
    assert any("also left by 1 later test" in line for line in run), run
    assert any("victims: test_one.py::test_victim" in line for line in run), run
    shown = _report_command(report_path, suite.path)
    assert shown.returncode == 1, shown.stderr
    assert shown.stdout.splitlines() == run
    # control: a clean run's report says so, as the run did, and exits 0
    clean = pytester.path / "clean.json"
    monkeypatch.setenv("PATCHTRACE_JSON", str(clean))
    result = suite.runpytest_subprocess("-p", "no:xdist", "test_one.py::test_victim",
                                        timeout=120)
    result.assert_outcomes(passed=1)
    assert _summary(result.stdout.str()) == ["patchtrace: no leaks in 1 test"]
    shown = _report_command(clean, suite.path)
    assert (shown.returncode, shown.stdout.splitlines()) == (
        0, ["patchtrace: no leaks in 1 test"])


# -- a reload's message: the values of the bindings it names are masked -------------------------
TOKEN = "ghp_" + "Q7x" * 12
#: the user part is long enough for the 60-character cut to fall before the "@"
URL = "postgres://reporting_service_account_name:hunter2hunter2hunter2@db.example.com/prod"
PASSWORD = "hunter2"

RELOAD = {
    "pkg/__init__.py": "",
    "pkg/cfg.py": """
import os

API_TOKEN = os.environ.get("PT_TOKEN", "none")
DB_URL = os.environ.get("PT_URL", "sqlite://")
""",
    "test_cfg.py": f"""
import importlib, os
import pkg.cfg

def test_reload():
    os.environ["PT_TOKEN"] = {TOKEN!r}
    os.environ["PT_URL"] = {URL!r}
    try:
        importlib.reload(pkg.cfg)
    finally:
        del os.environ["PT_TOKEN"], os.environ["PT_URL"]

def test_later():
    pass
""",
}


@pytest.mark.parametrize("show", [False, True])
def test_a_reload_message_is_masked(pytester: pytest.Pytester, traced_env: Enable,
                                    monkeypatch: pytest.MonkeyPatch, show: bool) -> None:
    """Masked in the terminal, the JSON and the HTML; the twin under
    PATCHTRACE_SHOW_SECRETS=1 shows both values, so the masking is what hides them."""
    html = pytester.path / "r.html"
    report_path = traced_env(PATCHTRACE_HTML=str(html),
                             PATCHTRACE_SHOW_SECRETS="1" if show else "0")
    monkeypatch.setenv("COLUMNS", "200")
    suite = package_suite(pytester, RELOAD)
    result = suite.runpytest_subprocess("-p", "no:xdist", timeout=120)
    result.assert_outcomes(passed=2)
    [leak] = load_report(report_path)["leaks"]
    assert leak["kind"] == "module-reloaded"
    text = result.stdout.str()
    terminal = next(line for line in text.splitlines() if "changed: " in line)
    outputs = {"json": leak["message"], "terminal": terminal,
               "html": unescape(html.read_text(encoding="utf-8"))}
    for where, shown in outputs.items():
        assert "API_TOKEN 'none' -> " in shown and "DB_URL 'sqlite://' -> " in shown, where
        assert (TOKEN in shown) is show, (where, shown)
        assert (PASSWORD in shown) is show, (where, shown)
        if not show:
            assert "API_TOKEN 'none' -> '***'" in shown, (where, shown)
            assert "postgres://reporting_service_account_name:***" in shown, (where, shown)


def test_credentials_cut_short_by_the_repr_limit_are_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHTRACE_SHOW_SECRETS", raising=False)
    cut = {
        "'postgres://service_account:s3cretpass...": "'postgres://service_account:***...",
        "x 'ghp_abcdefgh...; y": "x '***...; y",
        "'Bearer abc...": "'Bearer ***...",
        "AKIA12345...": "***...",
    }
    for text, masked in cut.items():
        assert mask_values(text) == masked
        assert mask_values(masked) == masked  # masked once: masking again changes nothing
    # controls: a cut text without a credential, and a URL whose password was masked whole
    for text in ("normal text...", "'http://host/path...", "'http://host:8080/a...",
                 "postgres://admin:***@db...", "a.b.c..."):
        assert mask_values(text) == text
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")
    assert all(mask_values(text) == text for text in cut)


@pytest.mark.parametrize("show", [False, True])
def test_hints_are_masked_by_the_model(monkeypatch: pytest.MonkeyPatch, show: bool) -> None:
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1" if show else "0")
    message = f"patch('pkg.conf.URL', {URL!r}) was never used; pkg.db.URL still holds it"
    hint = {"test": "t.py::test_x", "message": message, "holders": [f"module:pkg.db {TOKEN}"]}
    model = _view.build([_leak("L1")], tests=1, mutations=1, rootdir=".", hints=[hint])
    [shown] = model.hints
    assert (PASSWORD in shown["message"], TOKEN in shown["holders"][0]) == (show, show)
    assert shown["test"] == "t.py::test_x"
    if not show:
        assert "reporting_service_account_name:***@db.example.com" in shown["message"]
