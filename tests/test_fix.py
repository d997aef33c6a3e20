"""From a diagnosis to a verified fix: ``reproduce``, ``suggested_patch``, ``fix --apply``.

Every rewrite is proven on a small suite in three steps: a traced run finds the leak and
its victim fails; ``python -m patchtrace fix --apply`` applies the suggested patch cleanly;
a second traced run passes (victim and polluter) and reports no leak.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_report, package_suite

pytest.importorskip("libcst")

PKG = {
    "pkg/__init__.py": "",
    "pkg/fast.py": "def dumps(value):\n    return str(value)\n",
    "pkg/mod.py": textwrap.dedent("""\
        TIMEOUT = 30


        def send(amount):
            return {"status": "sent", "amount": amount}


        class Money:
            @staticmethod
            def round(value):
                return round(value, 2)

            def total(self, values):
                return self.round(sum(values))
        """),
}


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    return subprocess.run([sys.executable, "-m", "patchtrace", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _traced(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
            report: Path) -> pytest.RunResult:
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_JSON", str(report))
    try:
        return pytester.runpytest_subprocess(timeout=120)
    finally:
        monkeypatch.delenv("PATCHTRACE")
        monkeypatch.delenv("PATCHTRACE_JSON")


# (id, test file text, the polluter, text the patch must add)
CASES: list[tuple[str, str, str, str]] = [
    ("patch-start-with-block", """\
        from unittest import mock
        from pkg import mod

        def test_polluter():
            send = mock.patch("pkg.mod.send", return_value={"status": "mocked"}).start()
            assert mod.send(1) == {"status": "mocked"}
            send.assert_called_once_with(1)

        def test_victim():
            assert mod.send(2)["status"] == "sent"
        """, "test_polluter", '+    with mock.patch("pkg.mod.send", return_value={"status": '
         '"mocked"}) as send:'),
    ("patch-object-start-mocker", """\
        from unittest import mock
        from pkg import mod

        def test_polluter(mocker):
            mock.patch.object(mod, "send", return_value={"status": "mocked"}).start()
            assert mod.send(1)["status"] == "mocked"

        def test_victim():
            assert mod.send(2)["status"] == "sent"
        """, "test_polluter", '+    mocker.patch.object(mod, "send", return_value={"status": '
         '"mocked"})'),
    ("patch-start-unittest-test", """\
        import unittest
        from unittest import mock
        from pkg import mod

        class TestSend(unittest.TestCase):
            def test_polluter(self):
                fake = mock.patch.object(mod, "send").start()
                mod.send(1)
                fake.assert_called_once_with(1)

            def test_victim(self):
                self.assertEqual(mod.send(2)["status"], "sent")
        """, "test_polluter", "+        self.addCleanup(fake_patcher.stop)"),
    ("patch-start-setup", """\
        import unittest
        from unittest import mock
        from pkg import mod

        class TestA(unittest.TestCase):
            def setUp(self):
                self.fake = mock.patch("pkg.mod.send").start()

            def test_polluter(self):
                mod.send(1)
                self.fake.assert_called_once_with(1)

        class TestB(unittest.TestCase):
            def test_victim(self):
                self.assertEqual(mod.send(2)["status"], "sent")
        """, "test_polluter", "+        self.addCleanup(patcher.stop)"),
    ("patcher-start-module-fixture", """\
        import pytest
        from unittest import mock
        from pkg import mod

        @pytest.fixture(scope="module")
        def fake():
            patcher = mock.patch.object(mod, "send", return_value={"status": "mocked"})
            patcher.start()
            yield

        def test_polluter(fake):
            assert mod.send(1)["status"] == "mocked"
        """, "test_polluter", "+    patcher.stop()"),
    ("start-returned-by-fixture", """\
        import pytest
        from unittest import mock
        from pkg import mod

        @pytest.fixture
        def fake():
            return mock.patch("pkg.mod.send").start()

        def test_polluter(fake):
            mod.send(1)
            fake.assert_called_once_with(1)

        def test_victim():
            assert mod.send(2)["status"] == "sent"
        """, "test_polluter", "+    yield patcher.start()"),
    ("environ-setitem", """\
        import os

        def test_polluter():
            os.environ["APP_MODE"] = "sandbox"
            assert os.environ["APP_MODE"] == "sandbox"

        def test_victim():
            assert os.environ.get("APP_MODE", "live") == "live"
        """, "test_polluter", '+    monkeypatch.setenv("APP_MODE", "sandbox")'),
    ("environ-update", """\
        import os

        def test_polluter(tmp_path):
            os.environ.update({"APP_MODE": "sandbox"}, APP_LEVEL="3")
            assert os.environ["APP_LEVEL"] == "3"

        def test_victim():
            assert os.environ.get("APP_MODE", "live") == "live"
        """, "test_polluter", '+    monkeypatch.setenv("APP_LEVEL", "3")'),
    ("environ-delitem", """\
        import os

        def test_polluter():
            del os.environ["HOME"]
            assert "HOME" not in os.environ

        def test_victim():
            assert os.environ.get("HOME")
        """, "test_polluter", '+    monkeypatch.delenv("HOME")'),
    ("environ-unittest", """\
        import os
        import unittest

        class TestEnv(unittest.TestCase):
            def test_polluter(self):
                os.environ["APP_MODE"] = "sandbox"
                self.assertEqual(os.environ["APP_MODE"], "sandbox")

            def test_victim(self):
                self.assertEqual(os.environ.get("APP_MODE", "live"), "live")
        """, "test_polluter", "+        patcher = mock.patch.dict(os.environ)"),
    ("sys-modules", """\
        import sys
        from unittest import mock

        def test_polluter():
            sys.modules["pkg.fast"] = mock.MagicMock()
            from pkg import fast
            fast.dumps(1)

        def test_victim():
            import importlib
            assert not isinstance(importlib.import_module("pkg.fast"), mock.MagicMock)
        """, "test_polluter", '+    monkeypatch.setitem(sys.modules, "pkg.fast", '
         'mock.MagicMock())'),
    ("module-attribute", """\
        from pkg import mod

        def test_polluter():
            mod.TIMEOUT = 1
            assert mod.TIMEOUT == 1

        def test_victim():
            assert mod.TIMEOUT == 30
        """, "test_polluter", '+    monkeypatch.setattr(mod, "TIMEOUT", 1)'),
    ("class-staticmethod", """\
        from pkg.mod import Money

        def test_polluter():
            Money.round = staticmethod(lambda value: 1.0)
            assert Money().total([0.5, 0.5]) == 1.0

        def test_victim():
            assert Money().total([0.333, 0.333]) == 0.67
        """, "test_polluter", '+    monkeypatch.setattr(Money, "round", '
         'staticmethod(lambda value: 1.0))'),
    ("restore-mismatch", """\
        from unittest import mock
        from pkg.mod import Money

        def test_polluter():
            original = Money.round
            Money.round = mock.Mock(return_value=1.0)
            try:
                assert Money().total([0.5, 0.5]) == 1.0
            finally:
                Money.round = original

        def test_victim():
            assert Money().total([0.333, 0.333]) == 0.67
        """, "test_polluter", '+    original = vars(Money)["round"]'),
    ("class-attribute-unittest", """\
        import unittest
        from pkg.mod import Money

        class TestMoney(unittest.TestCase):
            def test_polluter(self):
                Money.round = staticmethod(lambda value: 1.0)
                self.assertEqual(Money().total([0.5, 0.5]), 1.0)

            def test_victim(self):
                self.assertEqual(Money().total([0.333, 0.333]), 0.67)
        """, "test_polluter", '+        patcher = mock.patch.object(Money, "round", '
         'staticmethod(lambda value: 1.0))'),
    ("sys-path-insert", """\
        import sys

        def test_polluter(tmp_path):
            sys.path.insert(0, str(tmp_path))
            assert sys.path[0] == str(tmp_path)

        def test_victim():
            assert not sys.path[0].endswith("test_polluter0")
        """, "test_polluter", "+    monkeypatch.syspath_prepend(str(tmp_path))"),
    ("sys-path-unittest", """\
        import sys
        import unittest

        class TestPath(unittest.TestCase):
            def test_polluter(self):
                sys.path.append("/nowhere/at/all")
                self.assertIn("/nowhere/at/all", sys.path)

            def test_victim(self):
                self.assertNotIn("/nowhere/at/all", sys.path)
        """, "test_polluter",
     "+        self.addCleanup(sys.path.__setitem__, slice(None), sys.path[:])"),
    ("chdir", """\
        import os

        START = os.getcwd()

        def test_polluter(tmp_path):
            os.chdir(tmp_path)
            assert os.getcwd() == str(tmp_path)

        def test_victim():
            assert os.getcwd() == START
        """, "test_polluter", "+    monkeypatch.chdir(tmp_path)"),
    ("chdir-unittest", """\
        import os
        import tempfile
        import unittest

        START = os.getcwd()

        class TestCwd(unittest.TestCase):
            def test_polluter(self):
                os.chdir(tempfile.gettempdir())

            def test_victim(self):
                self.assertEqual(os.getcwd(), START)
        """, "test_polluter", "+        self.addCleanup(os.chdir, os.getcwd())"),
]


def _leaks_of(report: dict[str, Any], polluter: str) -> list[dict[str, Any]]:
    return [leak for leak in report["leaks"] if leak["polluter"].endswith("::" + polluter)]


@pytest.mark.slow
@pytest.mark.parametrize(("test_text", "polluter", "added"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rewrite_applies_fixes_the_victim_and_removes_the_leak(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
        test_text: str, polluter: str, added: str) -> None:
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent(test_text)})
    report_path = pytester.path / "report.json"
    first = _traced(pytester, monkeypatch, report_path)
    report = load_report(report_path)
    leak = _leaks_of(report, polluter)[0]
    patch = leak["suggested_patch"]
    assert patch is not None, leak
    assert patch.startswith("--- a/test_case.py\n+++ b/test_case.py\n@@ "), patch
    assert added in patch.splitlines(), patch
    assert leak["verified"] is None and leak["known"] is False
    victims = [v for v in leak["victims"] if v.endswith("test_victim")]
    outcomes = first.parseoutcomes()
    if "test_victim" in test_text:  # the victim fails before the fix
        assert outcomes.get("failed") == 1, first.stdout.str()
    if victims:  # ... and when it is linked, its failure has a command to reproduce it
        assert leak["reproduce"] == (
            "python -m pytest -p no:randomly -p no:cacheprovider "
            f"'{leak['polluter']}' '{victims[0]}'")
    else:
        assert leak["reproduce"] is None
    applied = _cli(pytester.path, "fix", str(report_path), "--apply")
    assert applied.returncode == 0, applied.stderr
    assert f"{leak['id']}: applied to test_case.py" in applied.stdout, applied.stdout
    second = _traced(pytester, monkeypatch, report_path)
    second.assert_outcomes(passed=outcomes.get("passed", 0) + outcomes.get("failed", 0))
    assert load_report(report_path)["leaks"] == [], (pytester.path / "test_case.py").read_text()


# -- a refusal in a real report ------------------------------------------------------------------
def test_a_leak_without_a_safe_rewrite_has_a_null_patch_and_the_fix_text(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent("""\
        import os
        from pkg import mod

        os.environ["AT_IMPORT"] = "1"

        def test_polluter():
            mod.TIMEOUT = 1
        """)})
    report_path = pytester.path / "report.json"
    _traced(pytester, monkeypatch, report_path).assert_outcomes(passed=1)
    leaks = {leak["polluter"].split("::")[-1]: leak for leak in load_report(report_path)["leaks"]}
    assert leaks["<collection>"]["suggested_patch"] is None
    assert leaks["test_polluter"]["suggested_patch"] is not None  # the control twin
    shown = _cli(pytester.path, "fix", str(report_path))
    assert shown.returncode == 0, shown.stderr
    assert "  no safe rewrite: the statement runs at module level (while the module is " \
        "imported): move it into a fixture" in shown.stdout
    # a store at collection gets the advice for import-time code (issue 14)
    assert "  fix: never mutate sys.modules or builtins at module scope in conftest.py; " \
        "use a fixture" in shown.stdout
    assert '+    monkeypatch.setattr(mod, "TIMEOUT", 1)' in shown.stdout.splitlines()


def test_apply_leaves_a_file_that_changed_since_the_report(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent("""\
        from pkg import mod

        def test_polluter():
            mod.TIMEOUT = 1
        """)})
    report_path = pytester.path / "report.json"
    _traced(pytester, monkeypatch, report_path)
    changed = (pytester.path / "test_case.py").read_text().replace("= 1", "= 2")
    (pytester.path / "test_case.py").write_text(changed)
    result = _cli(pytester.path, "fix", str(report_path), "--apply")
    assert "L1: not applied to test_case.py: the file no longer holds the lines the patch " \
        "changes" in result.stdout
    assert (pytester.path / "test_case.py").read_text() == changed


# -- fix --verify on the bundled examples --------------------------------------------------------
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
def test_verify_on_the_examples_verifies_every_safe_rewrite(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(EXAMPLES, root / "examples",
                    ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    (root / "tox.ini").write_text("[pytest]\naddopts = -p no:randomly -p no:cacheprovider\n")
    report_path = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    env.update(PATCHTRACE="1", PATCHTRACE_JSON=str(report_path))
    run = subprocess.run([sys.executable, "-m", "pytest", "examples/tests"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout
    before = (root / "examples/tests/test_env.py").read_text()
    result = _cli(root, "fix", str(report_path), "--verify")
    assert result.returncode == 0, result.stderr
    verified = load_report(tmp_path / "report.verified.json")
    by_kind = {leak["id"]: leak for leak in verified["leaks"]}
    with_patch = [leak for leak in by_kind.values() if leak["suggested_patch"]]
    assert len(with_patch) == 6, result.stdout  # all but the mock in the lru_cache
    assert all(leak["verified"] is True for leak in with_patch), result.stdout
    assert [leak["verified"] for leak in by_kind.values() if not leak["suggested_patch"]] == \
        [None]
    assert "report with `verified` written to" in result.stdout
    assert (root / "examples/tests/test_env.py").read_text() == before  # scratch copy only
    assert load_report(report_path)["leaks"][0]["verified"] is None  # the original report


def test_verify_says_false_when_the_victim_still_fails(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The control of the verification: a patch after which the victim still fails (each
    of the two leaks needs its own fix) is not verified."""
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent("""\
        import os
        from pkg import mod

        def test_polluter():
            os.environ["APP_MODE"] = "sandbox"
            mod.TIMEOUT = 1

        def test_victim():
            assert (os.environ.get("APP_MODE", "live"), mod.TIMEOUT) == ("live", 30)
        """)})
    report_path = pytester.path / "report.json"
    _traced(pytester, monkeypatch, report_path)
    result = _cli(pytester.path, "fix", str(report_path), "--verify", "-o", "out.json")
    verified = load_report(pytester.path / "out.json")
    assert [leak["verified"] for leak in verified["leaks"] if leak["victims"]] == [False, False], \
        result.stdout
    assert "NOT verified: the victim or the polluter failed with the patch" in result.stdout


# -- baselines and strict mode -------------------------------------------------------------------
THREE_LEAKS = """\
    import os
    from unittest import mock
    from pkg import mod

    os.environ["AT_IMPORT"] = "1"

    def test_env():
        os.environ["APP_MODE"] = "sandbox"

    def test_attr():
        mod.TIMEOUT = 1
    """


def test_baseline_strict_fails_on_the_new_leak_only(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent(THREE_LEAKS)})
    report_path = pytester.path / "report.json"
    _traced(pytester, monkeypatch, report_path).assert_outcomes(passed=2)
    assert len(load_report(report_path)["leaks"]) == 3
    made = _cli(pytester.path, "baseline", str(report_path))
    assert made.returncode == 0, made.stderr
    (pytester.path / "baseline.json").write_text(made.stdout)
    # lines move (two comment lines on top) and a new leak is added
    (pytester.path / "test_case.py").write_text(
        "# moved\n# down\n" + textwrap.dedent(THREE_LEAKS)
        + "\ndef test_new():\n    mock.patch('pkg.mod.send').start()\n")
    monkeypatch.setenv("PATCHTRACE", "strict")
    monkeypatch.setenv("PATCHTRACE_JSON", str(report_path))
    result = pytester.runpytest_subprocess("--patchtrace-baseline=baseline.json", timeout=120)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_new*",
                                 "*3 known leaks, see the baseline*",
                                 "ERROR test_case.py::test_new - patchtrace (strict): *"])
    report = load_report(report_path)
    assert sorted((leak["polluter"].split("::")[-1], leak["known"])
                  for leak in report["leaks"]) == [
        ("<collection>", True), ("test_attr", True), ("test_env", True), ("test_new", False)]
    # the control: without the new leak, the baseline lets the strict run pass
    (pytester.path / "test_case.py").write_text(textwrap.dedent(THREE_LEAKS))
    monkeypatch.setenv("PATCHTRACE_BASELINE", "baseline.json")
    passed = pytester.runpytest_subprocess(timeout=120)
    assert passed.ret == 0, passed.stdout.str()
    passed.stdout.fnmatch_lines(["*3 known leaks, see the baseline*"])
    # and without the baseline, the same run fails
    monkeypatch.delenv("PATCHTRACE_BASELINE")
    assert pytester.runpytest_subprocess(timeout=120).ret == 1


def test_an_unreadable_baseline_is_one_line_and_tracing_goes_on(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent("""\
        from pkg import mod

        def test_attr():
            mod.TIMEOUT = 1
        """)})
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_BASELINE", "missing.json")
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if "baseline" in line and "rootdir" not in line]
    assert lines == ["patchtrace: cannot read the baseline missing.json (No such file or "
                     "directory); every leak counts as new"]
    result.stdout.fnmatch_lines(["*patchtrace: 1 leak from 1 polluter*"])


# -- GitHub annotations --------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "level"), [("1", "warning"), ("strict", "error")])
def test_github_actions_gets_one_workflow_command_per_leak(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str,
        level: str) -> None:
    package_suite(pytester, {**PKG, "test_case.py": textwrap.dedent("""\
        import os

        def test_env():
            os.environ["APP_MODE"] = "50%: on\\noff"
        """)})
    monkeypatch.setenv("PATCHTRACE", mode)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = pytester.runpytest_subprocess(timeout=120)
    commands = [line for line in result.outlines if line.startswith("::")]
    assert commands == [
        f"::{level} file=test_case.py,line=4,title=patchtrace L1 binding-changed::"
        "os.environ['APP_MODE'] changed at test_case.py:4: <missing> -> '50%25: on\\noff'; "
        "restore it in teardown, or set it with monkeypatch.setenv / monkeypatch.delenv / "
        "mock.patch.dict(os.environ, ...) so that it is undone"]
    monkeypatch.setenv("GITHUB_ACTIONS", "false")  # the control: not on GitHub, no command
    assert not [line for line in pytester.runpytest_subprocess(timeout=120).outlines
                if line.startswith("::")]
