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
