"""``__class__`` and ``__code__`` swaps (seen by the audit hook) left in place are leaks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import load_report


def test_code_and_class_swaps_left_in_place(pytester: pytest.Pytester,
                                            traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    pytester.mkpydir("pkg")
    pytester.path.joinpath("pkg", "mod.py").write_text(
        "def func():\n    return 'real'\n"
        "class Box:\n    def size(self):\n        return 1\n")
    pytester.makepyfile(test_a="""
        import sys, types
        import pkg.mod

        def fake():
            return "fake"

        def test_code_swap_leaks():
            pkg.mod.func.__code__ = fake.__code__

        def test_code_swap_restored():
            original = pkg.mod.Box.size.__code__
            pkg.mod.Box.size.__code__ = (lambda self: 2).__code__
            pkg.mod.Box.size.__code__ = original

        class Loud(types.ModuleType):
            pass

        def test_module_class_swap_leaks():
            sys.modules["pkg.mod"].__class__ = Loud

        def test_victim():
            assert pkg.mod.func() == "real"
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=3, failed=1)
    leaks = load_report(report_path)["leaks"]
    found = {(leak["polluter"].split("::")[1], leak["target"], leak["name"]): leak
             for leak in leaks}
    assert set(found) == {
        ("test_code_swap_leaks", "module:pkg.mod", "func.__code__"),
        ("test_module_class_swap_leaks", "module:pkg.mod", "__class__"),
    }
    code_leak = found[("test_code_swap_leaks", "module:pkg.mod", "func.__code__")]
    assert code_leak["kind"] == "binding-changed"
    assert code_leak["where"]["line"] == 8
    assert code_leak["victims"] == ["test_a.py::test_victim"]
