"""Issue 17, the first day with patchtrace: what a new user trips on.

Settings and commands, in real subprocesses (the ``.pth`` path, pytest, the CLI).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from patchtrace.config import OFF, ON, from_env, parse_bool, parse_mode

from .conftest import load_report, package_suite, run_python

PROBE = "import sys; print('patchtrace' in sys.modules)"
LEAKY = "def test_leaky():\n    import os\n    os.environ['PT_FIRST_DAY'] = '1'\n"


# -- true/yes/false/no, any case, everywhere ---------------------------------------------------
@pytest.mark.parametrize("value", ["true", "TRUE", "Yes", "yes", "1", "ON", "report"])
def test_report_words(value: str) -> None:
    assert parse_mode(value) == "report"
    assert from_env({"PATCHTRACE": value}).mode == "report"


@pytest.mark.parametrize("value", ["false", "FALSE", "No", "no", "0", "Off", ""])
def test_off_words(value: str) -> None:
    assert parse_mode(value) == "off"


def test_mode_and_companions_share_their_words() -> None:
    """The CONTRACT: the same words mean on and off for PATCHTRACE and every companion."""
    assert set(ON) - {"report"} == {"1", "on", "true", "yes"}
    assert set(OFF) == {"0", "off", "false", "no", ""}
    for word in ON:
        if word != "report":
            assert parse_bool(word, "X") is True
    for word in OFF:
        assert parse_bool(word, "X") is False


@pytest.mark.parametrize("value", ["false", "FALSE", "no", "No"])
def test_the_pth_line_reads_false_and_no_as_off(tmp_path: Path, value: str) -> None:
    result = run_python(PROBE, tmp_path, {"PATCHTRACE": value})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert result.stderr == ""
    control = run_python(PROBE, tmp_path, {"PATCHTRACE": "yes"})
    assert control.stdout.strip() == "True", control.stderr
    assert control.stderr == ""


@pytest.mark.parametrize("value", ["true", "Yes"])
def test_pytest_accepts_true_and_yes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                     value: str) -> None:
    package_suite(pytester, {"test_a.py": LEAKY})
    report = pytester.path / "r.json"
    monkeypatch.setenv("PATCHTRACE", value)
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=1)
    assert [leak["name"] for leak in load_report(report)["leaks"]] == ["PT_FIRST_DAY"]


def test_pytest_reads_false_as_off(pytester: pytest.Pytester,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {"test_a.py": LEAKY})
    report = pytester.path / "r.json"
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    monkeypatch.setenv("PATCHTRACE", "False")
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=1)
    assert not report.exists()
    assert "patchtrace:" not in result.stdout.str() + result.stderr.str()
    monkeypatch.setenv("PATCHTRACE", "1")  # the control: the same suite, traced
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1)
    assert report.exists()


# -- a bad companion is reported once and ignored; tracing stays on ----------------------------
def test_a_bad_companion_is_a_problem_not_an_error() -> None:
    config = from_env({"PATCHTRACE": "1", "PATCHTRACE_PDB": "maybe"})
    assert config.enabled and not config.pdb
    assert config.problems == (
        "patchtrace: PATCHTRACE_PDB='maybe' is not understood; accepted values: "
        "1, on, true, yes, 0, off, false, no, (empty); ignored",)
    assert from_env({"PATCHTRACE": "1", "PATCHTRACE_PDB": "yes"}).problems == ()


def test_a_script_with_a_bad_companion_is_traced(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    (tmp_path / "helper_mod.py").write_text("TIMEOUT = 30\n")
    code = "import helper_mod\nhelper_mod.TIMEOUT = 0\n"
    result = run_python(code, tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_PDB": "maybe",
                                         "PATCHTRACE_JSON": str(report)})
    assert result.returncode == 0
    lines = [line for line in result.stderr.splitlines() if "not understood" in line]
    assert lines == ["patchtrace: PATCHTRACE_PDB='maybe' is not understood; accepted values: "
                     "1, on, true, yes, 0, off, false, no, (empty); ignored"]
    assert [leak["name"] for leak in load_report(report)["leaks"]] == ["TIMEOUT"]


def test_pytest_with_a_bad_companion_is_one_usage_error(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pytest a value that cannot be understood is a usage error (CONTRACT), said
    once although both the .pth line and the plugin read the environment."""
    package_suite(pytester, {"test_a.py": LEAKY})
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "perhaps")
    result = pytester.runpytest_subprocess(timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("PATCHTRACE_SHOW_SECRETS='perhaps' is not understood") == 1, output
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "0")  # control: a good value runs
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1)


def test_a_bad_ini_companion_is_one_usage_error(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_a=LEAKY)
    pytester.makeini("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n"
                     "patchtrace_pdb = sometimes\n")
    monkeypatch.setenv("PATCHTRACE", "1")
    result = pytester.runpytest_subprocess(timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("ini patchtrace_pdb='sometimes' is not understood") == 1, output


def test_a_bad_mode_under_pytest_is_one_usage_error(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {"test_a.py": LEAKY})
    monkeypatch.setenv("PATCHTRACE", "maybe")
    result = pytester.runpytest_subprocess(timeout=120)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert output.count("PATCHTRACE='maybe' is not understood") == 1, output
    result.stderr.fnmatch_lines(["ERROR: patchtrace: PATCHTRACE='maybe' is not understood*"])


def test_a_bad_mode_in_a_script_is_still_one_line(tmp_path: Path) -> None:
    result = run_python("print('still here')", tmp_path, {"PATCHTRACE": "maybe"})
    assert result.stdout.strip() == "still here"
    assert result.stderr.count("PATCHTRACE='maybe' is not understood") == 1, result.stderr
    assert result.stderr.strip().endswith("tracing is off")


# -- python -m patchtrace -----------------------------------------------------------------------
def _cli(*args: str, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PATCHTRACE")}
    return subprocess.run([sys.executable, "-m", "patchtrace", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, **kwargs)  # type: ignore[call-overload]


def test_run_a_command_that_does_not_exist(tmp_path: Path) -> None:
    result = _cli("run", "--", "patchtrace-no-such-command", "--flag", cwd=tmp_path)
    assert result.returncode == 127
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "patchtrace-no-such-command" in lines[0]
    control = _cli("run", "--", sys.executable, "-c", "raise SystemExit(3)", cwd=tmp_path)
    assert control.returncode == 3, control.stderr


def test_a_command_that_cannot_be_executed(tmp_path: Path) -> None:
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    result = _cli("run", "--", str(script), cwd=tmp_path)
    assert result.returncode == 126
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def _report_with_many_leaks(tmp_path: Path, count: int = 400) -> Path:
    from patchtrace.leak import Leak
    from patchtrace.render import json as json_report

    leaks = [Leak("binding-changed", f"tests/test_a.py::test_{i}", "call", "os.environ",
                  f"PT_VAR_{i}") for i in range(count)]
    for number, leak in enumerate(leaks, 1):
        leak.id = f"L{number}"
    path = tmp_path / "r.json"
    json_report.write(str(path), json_report.build(leaks, tests=count, mutations=count))
    return path


def test_report_into_a_closed_pipe(tmp_path: Path) -> None:
    path = _report_with_many_leaks(tmp_path)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PATCHTRACE")}
    shell = f"'{sys.executable}' -m patchtrace report '{path}' | head -1"
    result = subprocess.run(["sh", "-c", shell], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert "Traceback" not in result.stderr, result.stderr
    assert "BrokenPipeError" not in result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("patchtrace: 400 leaks")


def test_no_arguments_prints_usage_and_exits_2(tmp_path: Path) -> None:
    result = _cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: python -m patchtrace" in result.stderr + result.stdout


def test_help_is_plain_text_and_every_argument_has_help(tmp_path: Path) -> None:
    result = _cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "``" not in result.stdout and ":func:" not in result.stdout
    from patchtrace.cli import _parser

    parser = _parser()
    subparsers = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert subparsers
    for name, sub in subparsers[0].choices.items():  # type: ignore[union-attr]
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, f"{name}: {action.dest} has no help"
        text = _cli(name, "--help", cwd=tmp_path).stdout
        assert "``" not in text, text


def test_report_headline_matches_pytest(tmp_path: Path) -> None:
    path = _report_with_many_leaks(tmp_path, 1)
    data = json.loads(path.read_text())
    data["tests"] = 1
    path.write_text(json.dumps(data))
    result = _cli("report", str(path), cwd=tmp_path)
    assert result.stdout.splitlines()[0] == "patchtrace: 1 leak from 1 polluter in 1 test"


# -- one headline, plural right -----------------------------------------------------------------
def test_the_headline_counts_in_words() -> None:
    from patchtrace.leak import Leak
    from patchtrace.render.terminal import headline

    one = Leak("binding-changed", "t.py::test_a", "call", "os.environ", "A")
    other = Leak("binding-changed", "t.py::test_b", "call", "os.environ", "B")
    assert headline([], 1) == "patchtrace: no leaks in 1 test"
    assert headline([], 2) == "patchtrace: no leaks in 2 tests"
    assert headline([one], 1) == "patchtrace: 1 leak from 1 polluter in 1 test"
    assert headline([one, other], 3) == "patchtrace: 2 leaks from 2 polluters in 3 tests"
    assert headline([one], 0) == "patchtrace: 1 leak from 1 polluter"  # a script


def test_pytest_says_no_leaks_in_1_test(pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {"test_a.py": "def test_clean():\n    pass\n"})
    monkeypatch.setenv("PATCHTRACE", "1")
    result = pytester.runpytest_subprocess(timeout=120)
    result.stdout.fnmatch_lines(["*- patchtrace: no leaks in 1 test -*"])
    pytester.makepyfile(test_b=LEAKY)  # the control: the same run with a leak
    result = pytester.runpytest_subprocess(timeout=120)
    result.stdout.fnmatch_lines(["*= patchtrace: 1 leak from 1 polluter in 2 tests =*"])


def test_unittest_says_the_same_headline(tmp_path: Path) -> None:
    (tmp_path / "test_ut.py").write_text(
        "import os, unittest\n\nclass T(unittest.TestCase):\n"
        "    def test_clean(self):\n        pass\n")
    result = run_python("", tmp_path, {"PATCHTRACE": "1"}, args=["-m", "unittest", "test_ut"])
    assert "patchtrace: no leaks in 1 test\n" in result.stderr, result.stderr
    (tmp_path / "test_ut.py").write_text(
        "import os, unittest\n\nclass T(unittest.TestCase):\n"
        "    def test_leaky(self):\n        os.environ['PT_FIRST_DAY'] = '1'\n"
        "    def test_clean(self):\n        pass\n")
    result = run_python("", tmp_path, {"PATCHTRACE": "1"}, args=["-m", "unittest", "test_ut"])
    assert "patchtrace: 1 leak from 1 polluter in 2 tests\n" in result.stderr, result.stderr


# -- PATCHTRACE_IGNORE covers a mock kept only by the ignored binding ----------------------------
def test_chain_binding_names_the_binding_a_chain_starts_from() -> None:
    from patchtrace.boundary.survivors import _chain_binding

    assert _chain_binding(["sys.modules['yamlish']"]) == ("sys.modules", "yamlish")
    assert _chain_binding(["module pkg.mod", "attribute REGISTRY", "[0]"]) == (
        "module:pkg.mod", "REGISTRY")
    assert _chain_binding(["module builtins", "attribute open"]) == ("builtins", "open")
    assert _chain_binding(["class pkg.C", "class attribute y of pkg.C"]) == ("class:pkg.C", "y")
    assert _chain_binding(["frame locals 'x' of thread MainThread in f"]) is None


SURVIVOR = """
import sys
from unittest import mock
import pkg.mod

def test_polluter():
    fake = mock.MagicMock()
    sys.modules["yamlish"] = fake
    if KEEP_ELSEWHERE:
        pkg.mod.REGISTRY.append(fake)

def test_later():
    import gc
    gc.collect()

def test_last():
    pass
"""


@pytest.mark.parametrize(("ignore", "elsewhere", "kinds"), [
    ("sys.modules:yamlish", False, []),
    # the controls: not ignored, the binding is reported (and the mock with it); ignored, but
    # also held by a list that is not ignored, the mock is reported
    ("", False, [("binding-changed", "sys.modules")]),
    ("sys.modules:yamlish", True, [("mock-survived", None)]),
])
def test_ignore_covers_a_mock_that_survives_only_through_the_ignored_binding(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ignore: str,
        elsewhere: bool, kinds: list[tuple[str, str | None]]) -> None:
    package_suite(pytester, {"pkg/__init__.py": "", "pkg/mod.py": "REGISTRY = []\n",
                             "test_s.py": f"KEEP_ELSEWHERE = {elsewhere}\n" + SURVIVOR})
    report = pytester.path / "r.json"
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    monkeypatch.setenv("PATCHTRACE_IGNORE", ignore)
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=3)
    leaks = load_report(report)["leaks"]
    assert [(leak["kind"], leak["target"]) for leak in leaks] == kinds, leaks


# -- pytest-xdist: one id per leak everywhere ---------------------------------------------------
XDIST_FILES = {
    "pkg/__init__.py": "",
    "pkg/mod.py": "TIMEOUT = 30\nMODE = 'real'\n",
    "conftest.py": """
import pytest
import pkg.mod

@pytest.fixture(scope="session", autouse=True)
def wide():
    pkg.mod.MODE = "fixture"   # never undone, made once on each worker
    yield
""",
    "test_a.py": """
import pkg.mod

def test_polluter():
    pkg.mod.TIMEOUT = 0

def test_victim():
    assert pkg.mod.TIMEOUT == 30
""",
    "test_b.py": """
def test_b1():
    pass

def test_b2():
    pass
""",
}


def test_xdist_ids_are_the_same_in_every_output(pytester: pytest.Pytester,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    import re

    package_suite(pytester, XDIST_FILES)
    report = pytester.path / "r.json"
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    runs = []
    for _ in range(2):
        result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadfile", timeout=120)
        result.assert_outcomes(passed=3, failed=1)
        leaks = load_report(report)["leaks"]
        ids = [leak["id"] for leak in leaks]
        assert len(set(ids)) == len(ids), ids
        assert all(re.fullmatch(r"gw[01]-L\d+", i) for i in ids), ids
        # the wide fixture's leak: once per worker, each labelled with its worker
        wide = [leak for leak in leaks if leak["name"] == "MODE"]
        assert len(wide) == 2
        assert {leak["id"].partition("-")[0] for leak in wide} == {"gw0", "gw1"}
        # the per-failure section names the leak by the id of the summary and the JSON
        text = result.stdout.str()
        section = re.findall(r"^(gw\d-L\d+) binding-changed: pkg\.mod\.TIMEOUT from", text,
                             re.MULTILINE)
        [timeout] = [leak for leak in leaks if leak["name"] == "TIMEOUT"]
        assert section == [timeout["id"]], text
        summary = re.findall(r"(gw\d-L\d+) binding-changed pkg\.mod\.(\w+)", text)
        assert sorted(summary) == sorted((leak["id"], leak["name"]) for leak in leaks), text
        assert ids == sorted(ids, key=lambda i: (i.split("-")[0], int(i.split("L")[1])))
        runs.append(sorted((leak["name"], leak["polluter"], leak["fixture"]) for leak in leaks))
    assert runs[0] == runs[1]


# -- a store made by a lambda names the test it is in ---------------------------------------------
def test_a_lambda_frame_is_named_after_its_function() -> None:
    from patchtrace import stack

    captured = (lambda: stack.capture())()
    where = captured.where()
    assert where is not None and where.function == "test_a_lambda_frame_is_named_after_its_function"
    assert [f.function for f in captured.frames()][-1] == where.function
    comprehension = next(stack.capture() for _ in range(1)).where()
    assert comprehension is not None
    assert comprehension.function == "test_a_lambda_frame_is_named_after_its_function"


def test_a_lambda_store_names_the_enclosing_test(pytester: pytest.Pytester,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {"pkg_l.py": "X = 1\nY = 1\n", "test_l.py": """\
import pkg_l

def test_lambda_store():
    set_it = lambda: setattr(pkg_l, "X", 2)
    set_it()

class TestC:
    def test_method(self):
        (lambda: pkg_l.__dict__.__setitem__("Y", 3))()
"""})
    report = pytester.path / "r.json"
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    leaks = {leak["name"]: leak for leak in load_report(report)["leaks"]}
    assert leaks["X"]["where"] == {"file": "test_l.py", "line": 4, "function": "test_lambda_store"}
    assert {f["function"] for f in leaks["X"]["stack"]} == {"test_lambda_store"}
    if sys.version_info >= (3, 12):  # a store through __dict__ is seen by dict watchers only
        assert leaks["Y"]["where"] == {"file": "test_l.py", "line": 9, "function": "test_method"}
        assert {f["function"] for f in leaks["Y"]["stack"]} == {"test_method"}


# -- why(): one chain is one path; a REPL shows the tree once ----------------------------------
WHY_SETUP = """\
import sys, types
from unittest import mock
import patchtrace
holder = types.ModuleType("pt_why_holder")
sys.modules["pt_why_holder"] = holder
holder.REGISTRY = [mock.MagicMock()]
"""


def test_why_draws_one_chain_as_one_path() -> None:
    import io
    import types
    from unittest import mock

    import patchtrace

    holder = types.ModuleType("pt_why_unit")
    sys.modules["pt_why_unit"] = holder
    try:
        holder.REGISTRY = [mock.MagicMock()]  # type: ignore[attr-defined]
        out = io.StringIO()
        returned = patchtrace.why(holder.REGISTRY[0], file=out)  # type: ignore[attr-defined,func-returns-value]
    finally:
        del sys.modules["pt_why_unit"]
    assert returned is None
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("(MagicMock) is alive via")
    assert lines[1:] == ["└── module pt_why_unit", "    -> attribute REGISTRY",
                         "    -> list index 0"], lines
    assert sum(line.count("├──") + line.count("└──") for line in lines) == 1  # no fork


def test_why_in_a_repl_shows_the_tree_once(tmp_path: Path) -> None:
    stdin = WHY_SETUP + "patchtrace.why(holder.REGISTRY[0])\nholder.REGISTRY\n"
    result = subprocess.run([sys.executable, "-i", "-q"], input=stdin, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.count("is alive via") == 1, result.stdout
    assert "Explanation(" not in result.stdout + result.stderr
    assert "[<MagicMock id=" in result.stdout  # the control: the REPL does show values


def test_pt_why_draws_one_path(tmp_path: Path) -> None:
    code = WHY_SETUP + "import pdb\npdb.set_trace()\n"
    env = dict(__import__("os").environ, PATCHTRACE="1")
    result = subprocess.run([sys.executable, "-c", code], input="pt why holder.REGISTRY[0]\nc\n",
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    out = result.stdout
    assert "└── module pt_why_holder\n" in out, out + result.stderr
    assert "    -> attribute REGISTRY\n" in out and "    -> list index 0\n" in out
    assert "├──" not in out


# -- pt patches all names pytest's own patches --------------------------------------------------
def test_pt_patches_all_names_pytests_own_patches(pytester: pytest.Pytester,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_a="""
        def test_a(tmp_path, monkeypatch):
            monkeypatch.setenv("PT_FIRST_DAY", "1")
            breakpoint()
    """)
    monkeypatch.setenv("PATCHTRACE", "1")
    result = pytester.run(sys.executable, "-m", "pytest", "-p", "no:randomly", "-s",
                          stdin=b"pt patches all\nc\n", timeout=120)
    out = result.stdout.str()
    assert "os.environ['PT_FIRST_DAY']" in out  # the control: the listing is there
    assert "?._tmp_path_factory" not in out, out
    assert "monkeypatch.setattr(<_pytest.config.Config object>._tmp_path_factory)" in out


# -- secrets inside values are masked in every output -------------------------------------------
FAKE_GITHUB = "ghp_" + "0123456789abcdefghij0123456789abcdef"
SECRETS_TEST = f"""\
import os
import pkg.mod

def test_secrets():
    os.environ["DATABASE_URL"] = "postgres://admin:hunter2@db/prod"
    os.environ["API_TOKEN"] = "plainsecretvalue"
    pkg.mod.HEADER = "Bearer abcdefgh12345678"
    pkg.mod.GH = "{FAKE_GITHUB}"
"""
SECRET_TEXTS = ("hunter2", "plainsecretvalue", "abcdefgh12345678", FAKE_GITHUB)


def test_mask_values_masks_credentials_inside_values() -> None:
    from patchtrace.render.secrets import mask_values

    assert mask_values("'postgres://admin:hunter2@db/prod'") == "'postgres://admin:***@db/prod'"
    assert mask_values("Bearer abcdefgh12345678") == "Bearer ***"
    assert mask_values(f"token={FAKE_GITHUB}") == "token=***"
    assert mask_values("AKIA" + "IOSFODNN7EXAMPLE") == "***"
    assert mask_values("xoxb-" + "1234567890-abcdefghij") == "***"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9"
    assert mask_values(f"'{jwt}'") == "'***'"
    # the controls: ordinary values are left alone
    for text in ("https://example.com/a:b", "mysql://db/prod", "git@github.com:x/y.git",
                 "'Bearer'", "ghp_short", "http://localhost:8000/x@y"):
        assert mask_values(text) == text


def test_secrets_inside_values_are_masked_in_every_output(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {"pkg/__init__.py": "", "pkg/mod.py": "HEADER = ''\nGH = ''\n",
                             "test_s.py": SECRETS_TEST})
    report, page, graphs = (pytester.path / "r.json", pytester.path / "r.html",
                            pytester.path / "graphs")
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    monkeypatch.setenv("PATCHTRACE_HTML", str(page))
    monkeypatch.setenv("PATCHTRACE_GRAPHS", str(graphs))
    result = pytester.runpytest_subprocess("-v", timeout=120)
    result.assert_outcomes(passed=1)
    outputs = {"terminal": result.stdout.str(), "json": report.read_text(),
               "html": page.read_text(),
               "graphs": "".join(p.read_text() for p in sorted(graphs.iterdir()))}
    assert outputs["graphs"]
    for name, text in outputs.items():
        for secret in SECRET_TEXTS:
            assert secret not in text, (name, secret)
    for name in ("terminal", "json", "html"):
        assert "postgres://admin:***@db/prod" in outputs[name], name
        assert "Bearer ***" in outputs[name], name
    data = load_report(report)
    values = {leak["name"]: leak["value"]["repr"] for leak in data["leaks"]}
    assert values == {"DATABASE_URL": "'postgres://admin:***@db/prod'", "API_TOKEN": "'***'",
                      "HEADER": "'Bearer ***'", "GH": "'***'"}
    from patchtrace.cli import main

    assert main(["report", str(report)]) == 1  # a saved report is shown masked too
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")  # the control: opted out, shown
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1)
    assert "hunter2" in report.read_text() and FAKE_GITHUB in report.read_text()


# -- graphs: one edge per reference, real tooltips, whole titles ---------------------------------
def _restore_mismatch_graph() -> object:
    from patchtrace.render import graph

    g = graph.Graph("L4 restore-mismatch: shop.calc.Calc.scale")
    g.add(graph.Node("target", ["function", "<function Calc.scale at 0x1>"], "target"))
    g.add_chain(["class shop.calc.Calc", "class attribute scale"], "target")  # the report's
    g.add_chain(["class shop.calc.Calc", "class attribute scale of shop.calc.Calc"],
                "target")  # the analyzer's words for the same reference
    return g


def test_the_restore_mismatch_graph_has_one_edge() -> None:
    from patchtrace.render import graph

    g = _restore_mismatch_graph()
    assert [e.label for e in g.edges] == ["class attribute scale"]  # type: ignore[attr-defined]
    dot = graph.to_dot(g)  # type: ignore[arg-type]
    assert dot.count(" -> ") == 1
    svg = graph.builtin_svg(g)  # type: ignore[arg-type]
    assert svg.count('class="pt-edge"') == 1
    assert "class attribute scale of" not in dot + svg
    # the control: two different references stay two edges
    g2 = graph.Graph("t")
    g2.add(graph.Node("target", ["x"], "target"))
    g2.add_chain(["class a.C", "class attribute x"], "target")
    g2.add_chain(["class a.C", "class attribute y"], "target")
    assert len(g2.edges) == 2


def test_tooltips_have_real_newlines() -> None:
    from patchtrace.render import graph

    g = _restore_mismatch_graph()
    dot = graph.to_dot(g)  # type: ignore[arg-type]
    assert 'tooltip="function\\n<function Calc.scale at 0x1>"' in dot  # DOT's newline escape
    assert "\\\\n" not in dot
    builtin = graph.builtin_svg(g)  # type: ignore[arg-type]
    assert "<title>function\n&lt;function Calc.scale at 0x1&gt;</title>" in builtin
    if graph._find_dot() is not None:
        svg = graph.to_svg(g)  # type: ignore[arg-type]
        assert "\\n" not in svg
        assert "function&#10;&lt;function Calc.scale" in svg


def test_the_builtin_renderer_does_not_clip_long_titles() -> None:
    from patchtrace.render import graph

    title = ("L12 mock-survived: <MagicMock name='a_rather_long_name_for_a_mock_in_a_registry' "
             "id='140462306946768'> from tests/test_with_a_long_name.py::TestGroup::test_it")
    g = graph.Graph(title)
    g.add(graph.Node("target", ["x"], "target"))
    svg = graph.builtin_svg(g, id_prefix="t")
    width = float(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    lines = re.findall(r'font-weight="bold" fill="#111827">([^<]*)</text>', svg)
    assert " ".join(lines) == title.replace("'", "&#x27;").replace("<", "&lt;").replace(
        ">", "&gt;")
    assert len(lines) > 1
    for line in lines:  # each line fits the picture at 13px bold monospace (~8px a char)
        assert len(line.replace("&#x27;", "'").replace("&lt;", "<").replace("&gt;", ">")) * 8 \
            < width
    dot = graph.to_dot(g)
    assert "..." not in dot.splitlines()[1]


# -- HTML: collapsed trivial graphs, a message that does not repeat its rows, real links ---------
def _html_leak(tmp_path: Path, *, file: str, chain: list[str] | None) -> object:
    from patchtrace.leak import Leak
    from patchtrace.stack import Frame
    from patchtrace.values import ValueSummary

    frame = Frame(file, 2, "test_x")
    leak = Leak("binding-changed", "t.py::test_x", "call", "module:pkg.mod", "TIMEOUT",
                where=frame, stack=[frame], before=ValueSummary("int", "30", False),
                value=ValueSummary("int", "0", False))
    leak.id = "L1"
    leak.alive_via = chain
    return leak


def test_html_rows_links_and_collapsed_graphs(tmp_path: Path) -> None:
    from patchtrace.render import html

    (tmp_path / "t.py").write_text("import pkg.mod\npkg.mod.TIMEOUT = 0\n")
    two = _html_leak(tmp_path, file="t.py", chain=["module pkg.mod", "attribute TIMEOUT"])
    text = html.render([two], tests=1, mutations=1, rootdir=str(tmp_path))  # type: ignore[list-item]
    [message] = re.findall(r'<p class="pt-msg">(.*?)</p>', text)
    assert message == "pkg.mod.TIMEOUT changed at t.py:2"  # no "30 -> 0", no "fix: ..."
    assert '<p class="pt-fix">fix: ' in text and '<dt>change</dt>' in text  # the rows are there
    href = (tmp_path / "t.py").resolve().as_uri() + "#L2"
    assert f'<a class="pt-where" href="{href}"' in text
    assert '<details class="pt-graph"><summary>' in text  # two boxes: collapsed
    longer = _html_leak(tmp_path, file="gone.py",
                        chain=["module pkg.mod", "attribute REGISTRY", "list index 0"])
    text = html.render([longer], tests=2, mutations=1, rootdir=str(tmp_path))  # type: ignore[list-item]
    assert '<details class="pt-graph" open><summary>' in text  # the control: a real chain
    assert '<span class="pt-file">gone.py:2</span>' in text  # no file: not a link
    assert 'class="pt-where"' not in text
    assert "No leaks found in 1 test." in html.render([], tests=1, mutations=0)
