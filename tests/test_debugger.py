"""The ``pt`` debugger commands, driven through real pdb sessions in subprocesses.

Each test writes a small suite, runs ``python -m pytest`` (or a script) in a subprocess with
``PATCHTRACE=1`` and the debugger commands on stdin, and reads the transcript. In-process
runs would share our own tracer and pdb class with the suite under test.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pdb
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from patchtrace import debugger
from patchtrace.debugger import _commands

# Until the plugin calls debugger.install() itself, each inner suite does it in a conftest.
CONFTEST = """
import patchtrace.debugger
patchtrace.debugger.install()
"""

MOD = """
import os

TAX = 0.2


def func():
    return "real"


class Shop:
    @staticmethod
    def greet():
        return "hello"
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATCHTRACE", "PYTEST_"))}
    env["PATCHTRACE"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _suite(tmp_path: Path, tests: str, *, conftest: str = CONFTEST) -> Path:
    (tmp_path / "mod.py").write_text(MOD)
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "test_it.py").write_text(tests)
    return tmp_path


def _pytest(path: Path, commands: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         *args],
        cwd=path, input=commands, env=_env(**env), capture_output=True, text=True, timeout=120,
    )


def _python(path: Path, commands: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=path, input=commands, env=_env(), capture_output=True,
        text=True, timeout=120,
    )


_PROMPT = re.compile(r"^(?:\(Pdb\+*\)|ipdb>|ipdb\+\+>) ?", re.MULTILINE)


def _out(result: subprocess.CompletedProcess[str]) -> str:
    """stdout with every debugger's prompt (pdb, pdb++, ipdb) written as ``(Pdb) ``."""
    return _PROMPT.sub("(Pdb) ", result.stdout)


FAILS_IN_WITH = """
from unittest import mock

import mod


def test_fails():
    with mock.patch("mod.func", return_value="fake"):
        assert mod.func() == "real"
"""

FAILS_IN_DECORATOR = """
from unittest import mock

import mod


@mock.patch("mod.func", return_value="fake")
def test_fails(m):
    assert mod.func() == "real"
"""


@pytest.mark.parametrize("tests", [FAILS_IN_WITH, FAILS_IN_DECORATOR], ids=["with", "decorator"])
def test_patches_lists_the_undone_patch_as_active_when_raised(tmp_path: Path, tests: str) -> None:
    _suite(tmp_path, tests)
    result = _pytest(tmp_path, "p mod.func\npt patches\ncontinue\n", "--pdb")
    out = _out(result)
    assert "(Pdb) <function func at" in out  # the patch is already undone
    assert "1 patch active when AssertionError was raised (1 undone since" in out
    assert "#" in out and "patch('mod.func')" in out
    assert "state: active when raised; undone while AssertionError propagated" in out
    assert "scope: test_it.py::test_fails (call)" in out
    if tests is FAILS_IN_WITH:
        assert "test_it.py:8 in test_fails: with mock.patch(" in out
    else:
        assert "(applied by a @patch decorator" in out
    assert "1 failed" in out


def test_patches_shows_still_active_ones_and_hides_machinery(tmp_path: Path) -> None:
    _suite(tmp_path, """
import os
from unittest import mock

import mod


def test_fails(monkeypatch):
    monkeypatch.setenv("SHOP_REGION", "us")
    with mock.patch("mod.TAX", 0.5):
        assert mod.TAX == 0.2
""")
    result = _pytest(tmp_path, "pt patches\npt patches all\ncontinue\n", "--pdb")
    out = _out(result)
    assert "2 patches active when AssertionError was raised (1 undone since, 1 still active)" \
        in out
    assert "monkeypatch.setenv(os.environ['SHOP_REGION'])" in out
    assert "state: active now" in out
    # pytest-mock and pytest's own start-up patches are counted, not listed, unless asked
    if "more made by pytest or plugins" in out:
        assert "`pt patches all` lists them" in out


def test_paths_stay_relative_while_the_test_mocks_os_getcwd(tmp_path: Path) -> None:
    _suite(tmp_path, """
from unittest import mock

import mod


def test_fails(mocker):
    mocker.patch("os.getcwd", return_value="/somewhere/else")
    with mock.patch("mod.func", return_value="fake"):
        assert mod.func() == "real"
""")
    result = _pytest(tmp_path, "pt patches\npt history mod.func\ncontinue\n", "--pdb")
    out = _out(result)
    # still mocked at the prompt (mocker undoes its patches at teardown)
    assert "os.getcwd: <built-in function getcwd> -> <MagicMock" in out, out
    # the paths are relative to where the run started, not to what the mock returns
    assert re.search(r"^ +test_it\.py:8 in test_fails: mocker\.patch\(", out, re.MULTILINE), out
    assert re.search(r"^ +test_it\.py:9 in test_fails: with mock\.patch\(", out,
                     re.MULTILINE), out
    assert re.search(r"\(call\) at test_it\.py:9 in test_fails$", out, re.MULTILINE), out
    assert str(tmp_path) not in out.partition("(Pdb) ")[2]
    assert "1 failed" in out


def test_repatch_and_unpatch_round_trip(tmp_path: Path) -> None:
    _suite(tmp_path, """
from unittest import mock

import mod


def test_fails():
    with mock.patch("mod.func") as fake, mock.patch.object(mod.Shop, "greet") as greet:
        assert mod.func() == "real"
""")
    commands = "\n".join([
        "print('BEFORE', id(mod.func), id(vars(mod.Shop)['greet']))",
        "pt repatch",
        "print('REPATCHED', id(mod.func), mod.func is fake, vars(mod.Shop)['greet'] is greet)",
        "pt repatch",
        "pt unpatch",
        "print('AFTER', id(mod.func), id(vars(mod.Shop)['greet']))",
        "print('STATIC', type(vars(mod.Shop)['greet']).__name__, mod.Shop.greet())",
        "pt unpatch",
        "continue",
    ]) + "\n"
    result = _pytest(tmp_path, commands, "--pdb")
    out = _out(result)
    before = re.search(r"BEFORE (\d+) (\d+)", out)
    after = re.search(r"AFTER (\d+) (\d+)", out)
    assert before is not None and after is not None, out
    assert before.groups() == after.groups()
    assert re.search(r"REPATCHED \d+ True True", out), out
    assert "2 patches re-applied as when AssertionError was raised" in out
    assert "already re-applied (2 bindings)" in out
    assert "restored 2 bindings as they were before pt repatch" in out
    assert "STATIC staticmethod hello" in out
    assert "nothing is re-applied" in out


LATER_TEST_CHECKS = """
from unittest import mock

import mod

ORIGINAL = mod.func


def test_fails():
    with mock.patch("mod.func"):
        assert mod.func() == "real"


def test_later():
    assert mod.func is ORIGINAL
    assert mod.func() == "real"
"""


@pytest.mark.parametrize("leave", ["continue", "c", "next"])
def test_leaving_the_prompt_restores(tmp_path: Path, leave: str) -> None:
    _suite(tmp_path, LATER_TEST_CHECKS)
    result = _pytest(tmp_path, f"pt repatch\np mod.func.__class__.__name__\n{leave}\n", "--pdb")
    out = _out(result)
    assert "(Pdb) 'MagicMock'" in out
    assert "patchtrace: restored 1 binding re-applied by pt repatch" in out
    assert "1 failed, 1 passed" in out, out


@pytest.mark.parametrize("leave", ["quit", ""], ids=["quit", "eof"])
def test_quit_and_eof_restore(tmp_path: Path, leave: str) -> None:
    marker = tmp_path / "seen.txt"
    conftest = CONFTEST + f"""

def pytest_unconfigure(config):
    import mod
    with open({str(marker)!r}, "w") as f:
        f.write(mod.func.__class__.__name__)
"""
    _suite(tmp_path, LATER_TEST_CHECKS, conftest=conftest)
    result = _pytest(tmp_path, "pt repatch\n" + (leave + "\n" if leave else ""), "--pdb")
    assert "re-applied" in _out(result)
    assert "patchtrace: restored 1 binding" in _out(result)
    assert marker.read_text() == "function"


def test_bad_commands_keep_the_session_alive(tmp_path: Path) -> None:
    _suite(tmp_path, FAILS_IN_WITH)
    commands = "\n".join([
        "pt bogus",
        "pt history",
        "pt history nosuch.attr",
        "pt why nosuch",
        "pt graph",
        "pt patches extra words",
        "pt",
        "p 6 * 7",
        "continue",
    ]) + "\n"
    out = _out(_pytest(tmp_path, commands, "--pdb"))
    assert "*** pt: unknown subcommand 'bogus'" in out
    assert "*** pt history: usage: pt history EXPR" in out
    assert "*** pt history: NameError: name 'nosuch' is not defined" in out
    assert "*** pt why: NameError" in out
    assert "*** pt graph: usage" in out
    assert "*** pt patches: usage" in out
    assert "pt repatch            re-apply" in out  # bare `pt` is `pt help`
    assert "(Pdb) 42" in out
    assert "1 failed" in out


def test_history_of_attributes_and_environment(tmp_path: Path) -> None:
    _suite(tmp_path, """
from unittest import mock

import mod


def test_fails(monkeypatch):
    monkeypatch.setenv("SHOP_REGION", "us")
    with mock.patch("mod.func"):
        pass
    with mock.patch("mod.func"):
        assert False
""")
    commands = "pt history mod.func\npt history os.environ['SHOP_REGION']\npt history mod\n" \
               "pt history module:mod func\ncontinue\n"
    out = _out(_pytest(tmp_path, commands, "--pdb"))
    assert "4 mutations of mod.func, oldest first:" in out
    assert out.count("[undone while AssertionError propagated]") >= 1
    assert "1 mutation of os.environ['SHOP_REGION']" in out
    assert "monkeypatch.setenv(os.environ['SHOP_REGION'])" in out
    assert "test_it.py::test_fails (call) at test_it.py:" in out
    assert "4 mutations of mod, oldest first:" in out
    assert "4 mutations of module:mod func" in out


LEAKS = """
from unittest import mock

import mod


def test_leaky():
    mock.patch("mod.func", return_value=1).start()
    assert mod.func() == 1


def test_after():
    pass
"""


def test_stop_at_leak_has_the_leak_in_scope(tmp_path: Path) -> None:
    _suite(tmp_path, LEAKS)
    # one stop per leak: enough `continue`s for whatever else the run finds
    commands = "p leak.kind\np type(obj).__name__\npt leaks\n" + "continue\n" * 10
    result = _pytest(tmp_path, commands, PATCHTRACE_PDB="1")
    out = _out(result)
    assert "patchtrace: leak patch-not-stopped in test_it.py::test_leaky" in out
    assert "patch('mod.func') started at test_it.py:8 was never stopped" in out
    assert "(Pdb) 'patch-not-stopped'" in out
    assert "(Pdb) 'MagicMock'" in out
    assert re.search(r"\d+ leaks? found so far:", out)
    assert "2 passed" in out


def test_stop_at_leak_quit_ends_the_run(tmp_path: Path) -> None:
    _suite(tmp_path, LEAKS)
    result = _pytest(tmp_path, "quit\n", PATCHTRACE_PDB="1")
    assert "(Pdb)" in _out(result)
    assert "Quitting debugger" in _out(result) + result.stderr
    assert "2 passed" not in _out(result)  # test_after never ran


def test_stop_at_leak_does_not_stop_without_a_terminal_unless_forced(tmp_path: Path) -> None:
    _suite(tmp_path, LEAKS)
    (tmp_path / "pytest.ini").write_text("[pytest]\npatchtrace_pdb = 1\n")
    result = _pytest(tmp_path, "p leak\ncontinue\n")
    assert "(Pdb)" not in _out(result)
    assert "not stopping at leaks: stdin is not a terminal" in _out(result)
    assert "2 passed" in _out(result)


def test_trace_session_has_pt(tmp_path: Path) -> None:
    _suite(tmp_path, """
def test_one(monkeypatch):
    monkeypatch.setattr("mod.TAX", 0.9)
    import mod
    assert mod.TAX == 0.9
""")
    out = _out(_pytest(tmp_path, "pt patches\npt repatch\ncontinue\n", "--trace"))
    assert "patches active now (no exception is being debugged)" in out
    assert "*** pt repatch: no exception is being debugged" in out
    assert "1 passed" in out


def test_the_plain_function_works_from_any_prompt(tmp_path: Path) -> None:
    _suite(tmp_path, FAILS_IN_WITH)
    out = _out(_pytest(
        tmp_path, '!import patchtrace.debugger as d; d.pt("patches")\ncontinue\n', "--pdb"
    ))
    assert "state: active when raised; undone while AssertionError propagated" in out


def test_why_and_graph_never_end_the_session(tmp_path: Path) -> None:
    _suite(tmp_path, LEAKS.replace("test_after", "test_fails").replace(
        "    pass", "    assert mod.func() == 'real'"))
    out = _out(_pytest(tmp_path, "pt why mod.func\npt graph mod.func g.svg\np 'alive'\ncontinue\n",
                  "--pdb"))
    assert "(Pdb) 'alive'" in out
    assert "graph of mod.func written to" in out or "graphs are not available" in out \
        or "*** pt graph:" in out


SCRIPT = """
from unittest import mock

import mod

with mock.patch.object(mod, "TAX", 0.9):
    print(1 / 0)
"""

SCRIPT_HANDLED = """
from unittest import mock

import patchtrace.debugger

import mod

try:
    with mock.patch.object(mod, "TAX", 0.9):
        print(1 / 0)
except ZeroDivisionError:
    patchtrace.debugger.post_mortem()
    breakpoint()
    handled = True
print("FINAL", mod.TAX)
"""


def test_python_m_pdb_post_mortem(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(MOD)
    (tmp_path / "script.py").write_text("import patchtrace.debugger\n"
                                        "patchtrace.debugger.install()\n" + SCRIPT)
    out = _out(_python(tmp_path, "continue\npt patches\npt repatch\np mod.TAX\nquit\n",
                  "-m", "pdb", "script.py"))
    assert "state: active when raised; undone while ZeroDivisionError propagated" in out
    assert "(Pdb) 0.9" in out
    assert "patchtrace: restored 1 binding" in out


def test_post_mortem_and_breakpoint(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(MOD)
    (tmp_path / "script.py").write_text(SCRIPT_HANDLED)
    commands = "pt patches\npt repatch\np mod.TAX\ncontinue\npt patches\ncontinue\n"
    out = _out(_python(tmp_path, commands, "script.py"))
    assert out.count("state: active when raised; undone while ZeroDivisionError") == 2, out
    assert "(Pdb) 0.9" in out
    assert "FINAL 0.2" in out


# -- in-process units ----------------------------------------------------------------------------


def test_install_and_uninstall_leave_pdb_untouched() -> None:
    base = pdb.Pdb
    was_installed = debugger.installed()
    before = dict(vars(base))
    debugger.install()
    debugger.install()
    assert debugger.installed()
    assert hasattr(base, "do_pt") and hasattr(base, "complete_pt")
    assert getattr(base.interaction, "__patchtrace__", False)
    debugger.uninstall()
    debugger.uninstall()
    assert dict(vars(base)) == before
    if was_installed:
        debugger.install()


def test_split_expressions() -> None:
    split = _commands._split_expr
    assert split("mod.func") == ("mod", "func", None)
    assert split("os.environ['HOME']") == ("os.environ", None, "'HOME'")
    assert split("a.b[c[1]]") == ("a.b", None, "c[1]")
    assert split("mod") == ("mod", None, None)
    assert split("f(x).y") == ("f(x)", "y", None)


def test_help_lists_every_subcommand() -> None:
    for sub in ("patches", "history", "why", "graph", "repatch", "unpatch", "leaks", "help"):
        assert f"pt {sub}" in _commands._HELP


@pytest.mark.parametrize("module", ["pdbpp", "IPython"])
def test_other_debuggers(tmp_path: Path, module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    _suite(tmp_path, FAILS_IN_WITH)
    args = ["--pdb"]
    if module == "IPython":
        args.append("--pdbcls=IPython.terminal.debugger:TerminalPdb")
    commands = "pt patches\npt repatch\np mod.func.__class__.__name__\ncontinue\n"
    out = _out(_pytest(tmp_path, commands, *args))
    assert "state: active when raised; undone while AssertionError propagated" in out
    assert "'MagicMock'" in out
    assert "patchtrace: restored 1 binding" in out


# -- pt leaks masks what the reports mask ----------------------------------------------------

TOKEN = "ghp_" + "a1B2c3D4e5" * 4
DB_URL = "postgres://admin:s3cr3t-pw@db.example/prod"

SECRET_LEAKS = f"""
import os


def test_env():
    os.environ["API_TOKEN"] = {TOKEN!r}
    os.environ["DB_URL"] = {DB_URL!r}
    os.environ["APP_MODE"] = "debug-mode"


def test_after():
    pass
"""


def _env_leak(leak_id: str, name: str, value: str) -> Any:
    from patchtrace.leak import Leak
    from patchtrace.stack import Frame
    from patchtrace.values import MISSING, ValueSummary

    leak = Leak("binding-changed", "test_it.py::test_env", "call", "os.environ", name,
                where=Frame("test_it.py", 6, "test_env"), before=MISSING,
                value=ValueSummary("str", repr(value), False), obj=value)
    leak.id = leak_id
    return leak


def _pt_leaks(monkeypatch: pytest.MonkeyPatch, leaks: list[Any]) -> str:
    """What ``pt leaks`` prints for a detector holding ``leaks`` (the command, driven directly)."""
    from patchtrace import _tracer
    from patchtrace.debugger._context import _Context

    tracer = types.SimpleNamespace(detector=types.SimpleNamespace(leaks=leaks))
    monkeypatch.setattr(_tracer, "current", lambda: tracer)
    out = io.StringIO()
    _commands._cmd_leaks(_Context({}, {}, [], out), "")
    return out.getvalue()


def test_pt_leaks_masks_secrets_as_the_terminal_report_does(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from patchtrace.render import _view, report

    monkeypatch.delenv("PATCHTRACE_SHOW_SECRETS", raising=False)
    leaks = [_env_leak("L1", "API_TOKEN", TOKEN), _env_leak("L2", "DB_URL", DB_URL),
             _env_leak("L3", "APP_MODE", "debug-mode")]
    text = _pt_leaks(monkeypatch, leaks)
    assert TOKEN not in text and "s3cr3t-pw" not in text
    assert "os.environ['API_TOKEN'] changed at test_it.py:6: <missing> -> '***'" in text
    assert "postgres://admin:***@db.example/prod" in text
    # control: a value that is not a secret is shown as it is
    assert "os.environ['APP_MODE'] changed at test_it.py:6: <missing> -> 'debug-mode'" in text
    # the same masking as the terminal report's: each line is the report model's sentence,
    # and the terminal shows the same masked value
    model = _view.build(leaks, tests=2, mutations=3, rootdir=".")
    terminal = "\n".join(report.leak_lines(
        model, types.SimpleNamespace(verbosity=0, color=False, width=200)))  # type: ignore[arg-type]
    for shown in model.leaks:
        assert f"  {shown.id} binding-changed in test_it.py::test_env: {shown.message()}" in text
        assert f"now {shown.value.repr}" in terminal
    # the detector's own leaks are not changed (masked copies are shown)
    assert leaks[0].value.repr == repr(TOKEN)


def test_pt_leaks_shows_secrets_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin: with PATCHTRACE_SHOW_SECRETS=1 the same command shows both secrets, so the
    test above looked where they would be."""
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")
    text = _pt_leaks(monkeypatch, [_env_leak("L1", "API_TOKEN", TOKEN),
                                   _env_leak("L2", "DB_URL", DB_URL)])
    assert TOKEN in text and "s3cr3t-pw" in text


def test_pt_leaks_in_a_session_masks_as_the_report(tmp_path: Path) -> None:
    _suite(tmp_path, SECRET_LEAKS)
    result = _pytest(tmp_path, "pt leaks\n" + "continue\n" * 10, PATCHTRACE_PDB="1")
    out = _out(result)
    assert "leaks found so far:" in out, out
    assert TOKEN not in out + result.stderr and "s3cr3t-pw" not in out + result.stderr
    listed = [line for line in out.splitlines() if " binding-changed in test_it.py::" in line]
    [token] = [line for line in listed if "API_TOKEN" in line]
    assert "<missing> -> '***'" in token, token
    assert any("postgres://admin:***@db.example/prod" in line for line in listed), listed
    # control: not a secret, shown as is, by pt leaks and by the terminal report alike
    assert any("-> 'debug-mode'" in line for line in listed), listed
    assert "now 'debug-mode'" in out
    assert "now '***'" in out  # the terminal report's masking of the same value
    assert "2 passed" in out
