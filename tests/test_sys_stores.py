"""Stores on ``sys`` and ``warnings``: compared at boundaries (pytest rebinds some of their
attributes around every test), still blamed on the test and line that made them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import leak_rows


def test_sys_and_warnings_attributes(pytester: pytest.Pytester,
                                     traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    pytester.makepyfile(test_a="""
        import sys, warnings

        def test_platform():
            sys.platform = "win32"

        def test_warn_silenced():
            warnings.warn = lambda *args, **kwargs: None

        def test_restored(capsys):
            saved = sys.platform
            sys.platform = "darwin"
            sys.platform = saved
            print("captured")
            warnings.simplefilter("ignore")
            assert capsys.readouterr().out == "captured\\n"
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=3)
    assert leak_rows(report_path) == {
        ("test_platform", "module:sys", "platform", 4),
        ("test_warn_silenced", "module:warnings", "warn", 7),
    }
