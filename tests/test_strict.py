"""Strict mode, end to end: which test's teardown gets the error, what it says, and the
exit status. Real pytest subprocesses, as in test_plugin.py (in-process runs would restore
sys.modules themselves and hide what we trace)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from patchtrace.pytest_plugin import PatchtraceLeakError

from .conftest import load_report

Enable = Callable[..., Path]

PKG = {
    "pkg/__init__.py": "",
    "pkg/mod.py": 'def func():\n    return "real"\n',
    "pkg/cache.py": """
import functools

@functools.lru_cache(maxsize=None)
def remember(key, value=None):
    return value
""",
}

FIX = "stop it, or use it as a context manager / the mocker fixture"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    for path, text in PKG.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    pytester.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-ra", *args, timeout=120)


def lit(text: str) -> str:
    """``text`` as an fnmatch pattern that matches it literally (``os.environ['X']``)."""
    return text.replace("[", "[[]")


def errors_section(result: pytest.RunResult) -> str:
    return result.stdout.str().split(" ERRORS ")[1].split("\n=")[0]


def assert_no_internals(result: pytest.RunResult) -> None:
    """The error is the message: none of patchtrace's (or pytest's) own source lines."""
    errors = errors_section(result)
    for internal in ("pytest_plugin.py", "raise error", "def pytest_runtest_teardown",
                     "_pytest", "pluggy", "Traceback", "PatchtraceLeakError"):
        assert internal not in errors, internal


def test_the_error_is_a_failure_pytest_shows_without_a_traceback() -> None:
    assert issubclass(PatchtraceLeakError, AssertionError)
    assert issubclass(PatchtraceLeakError, pytest.fail.Exception)
    error = PatchtraceLeakError("patchtrace (strict): this test leaked x")
    assert str(error) == "patchtrace (strict): this test leaked x"
    assert error.pytrace is False


# -- the polluting test's own leaks ----------------------------------------------------------------
def test_strict_mode_fails_the_polluter_in_teardown(suite: pytest.Pytester, traced_env: Enable,
                                                    tmp_path: Path) -> None:
    report_path = traced_env("strict")
    suite.makepyfile(test_own="""
        import os
        from unittest import mock

        def test_polluter():
            mock.patch("pkg.mod.func").start()
            os.environ["PT_MODE"] = "fast"

        def test_clean():
            pass
    """)
    junit = tmp_path / "junit.xml"
    result = run(suite, f"--junitxml={junit}")
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_polluter*",
        "patchtrace (strict): this test leaked:",
        f"  L1 patch-not-stopped: patch('pkg.mod.func') started at test_own.py:5 was never "
        f"stopped; {FIX}",
        lit("  L2 binding-changed: os.environ['PT_MODE'] changed at test_own.py:6: <missing> "
            "-> 'fast'; restore it in teardown*"),
        "*short test summary info*",
        "ERROR test_own.py::test_polluter - patchtrace (strict): this test leaked*",
    ])
    assert_no_internals(result)
    assert "ERROR test_own.py::test_clean" not in result.stdout.str()
    assert 'message="failed on teardown with &quot;patchtrace (strict): this test ' \
           'leaked:&quot;"' in junit.read_text()
    # The error quotes the leaked value; that does not make the polluter its own victim.
    leaks = load_report(report_path)["leaks"]
    assert [(leak["polluter"], leak["victims"]) for leak in leaks] == [
        ("test_own.py::test_polluter", []), ("test_own.py::test_polluter", [])]
