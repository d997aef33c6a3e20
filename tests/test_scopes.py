"""Class and module fixtures are scopes of their own (setUpClass, setUpModule, scope="class"),
under pytest and under plain ``python -m unittest``; a test class's own attributes are its
bookkeeping. Every "nothing" here has a twin in the same run that expects one leak."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import load_report, package_suite, run_python

Enable = Callable[..., Path]

PKG = {
    "pkg/__init__.py": "",
    "pkg/mod.py": 'TIMEOUT = 30\n\ndef func():\n    return "real"\n',
}

UNITTEST_CLASSES = """
import os
import unittest
from unittest import mock

import pkg.mod


class TestTidy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.patcher = mock.patch.object(pkg.mod, "TIMEOUT", 1)
        cls.patcher.start()
        cls.client = object()
        os.environ["PT_CLASS_ENV"] = "1"

    @classmethod
    def tearDownClass(cls):
        cls.patcher.stop()
        del os.environ["PT_CLASS_ENV"]

    def test_one(self):
        self.assertEqual(pkg.mod.TIMEOUT, 1)

    def test_two(self):
        self.assertEqual(os.environ["PT_CLASS_ENV"], "1")


class TestForgets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.patcher = mock.patch.object(pkg.mod, "func", return_value="fake")
        cls.patcher.start()  # LINE:forgotten

    @classmethod
    def tearDownClass(cls):
        pass  # forgets cls.patcher.stop()

    def test_one(self):
        self.assertEqual(pkg.mod.func(), "fake")

    def test_two(self):
        self.assertEqual(pkg.mod.func(), "fake")
"""


def line(source: str, marker: str) -> int:
    """The line number of ``# LINE:marker`` in ``source`` as written to its file."""
    return next(i for i, text in enumerate(source.splitlines(), 1)
                if text.endswith(f"# LINE:{marker}"))


def _rows(report_path: Path) -> list[tuple[str, str, str | None, str | None, str | None, int]]:
    return sorted((leak["kind"], leak["polluter"], leak["fixture"], leak["target"],
                   leak["name"], leak["where"]["line"] if leak["where"] else -1)
                  for leak in load_report(report_path)["leaks"])


def test_setupclass_under_pytest(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {**PKG, "test_ut.py": UNITTEST_CLASSES})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=4)
    # TestTidy: nothing (not its patch, not its env var, not cls.patcher / cls.client);
    # TestForgets: its one patch, blamed on its first test, setUpClass named.
    assert _rows(report_path) == [
        ("patch-not-stopped", "test_ut.py::TestForgets::test_one", "TestForgets.setUpClass",
         "module:pkg.mod", "func", line(UNITTEST_CLASSES, "forgotten"))]


def test_class_scoped_fixtures(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    source = """
        import os
        from unittest import mock
        import pytest
        import pkg.mod


        class TestTidy:
            @pytest.fixture(scope="class", autouse=True)
            @classmethod
            def patched(cls, request):
                cls.patcher = mock.patch.object(pkg.mod, "TIMEOUT", 2)
                cls.patcher.start()
                os.environ["PT_FIX_ENV"] = "1"
                yield
                cls.patcher.stop()
                del os.environ["PT_FIX_ENV"]

            def test_a(self):
                assert pkg.mod.TIMEOUT == 2

            def test_b(self):
                assert os.environ["PT_FIX_ENV"] == "1"


        class TestForgets:
            @pytest.fixture(scope="class", autouse=True)
            @classmethod
            def patched(cls, request):
                request.cls.patcher = mock.patch.object(pkg.mod, "func", return_value="x")
                request.cls.patcher.start()  # LINE:fixture
                yield

            def test_a(self):
                assert pkg.mod.func() == "x"

            def test_b(self):
                assert pkg.mod.func() == "x"
    """.replace("\n        ", "\n")
    package_suite(pytester, {**PKG, "test_fix.py": source})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=4)
    assert _rows(report_path) == [
        ("patch-not-stopped", "test_fix.py::TestForgets::test_a", "patched",
         "module:pkg.mod", "func", line(source, "fixture"))]


def test_setupclass_and_setupmodule_under_plain_unittest(pytester: pytest.Pytester,
                                                        tmp_path: Path) -> None:
    leaky_module = """
import os
import unittest


def setUpModule():
    os.environ["PT_MODULE_LEAK"] = "1"  # LINE:module


class TestInLeakyModule(unittest.TestCase):
    def test_reads(self):
        self.assertEqual(os.environ["PT_MODULE_LEAK"], "1")

    def test_reads_again(self):
        self.assertEqual(os.environ["PT_MODULE_LEAK"], "1")
"""
    package_suite(pytester, {**PKG, "test_ut.py": UNITTEST_CLASSES, "test_mods.py": """
import os
import unittest


def setUpModule():
    os.environ["PT_MODULE_TIDY"] = "1"


def tearDownModule():
    del os.environ["PT_MODULE_TIDY"]


class TestInTidyModule(unittest.TestCase):
    def test_reads(self):
        self.assertEqual(os.environ["PT_MODULE_TIDY"], "1")
""", "test_modleak.py": leaky_module})
    report_path = tmp_path / "report.json"
    done = run_python("", pytester.path, env={"PATCHTRACE": "1",
                                              "PATCHTRACE_JSON": str(report_path)},
                      args=["-m", "unittest", "test_mods", "test_ut", "test_modleak"])
    assert done.returncode == 0, done.stderr
    assert "Ran 7 tests" in done.stderr
    assert _rows(report_path) == [
        ("binding-changed", "test_modleak.TestInLeakyModule.test_reads", "setUpModule",
         "os.environ", "PT_MODULE_LEAK", line(leaky_module, "module")),
        ("patch-not-stopped", "test_ut.TestForgets.test_one", "TestForgets.setUpClass",
         "module:pkg.mod", "func", line(UNITTEST_CLASSES, "forgotten")),
    ]
