"""Import-time mutations in conftest.py files and test modules (issue 14).

The rootdir conftest and nested ones (the rootdir's is loaded before collection starts)
and every test module's top level run while pytest collects: what they store and never
undo is reported with polluter ``<collection>``, phase ``collection``, the file and line of
the store and the standard advice. Run this file under 3.11 (the version-tag scan and the
source lookup over the collected files) and 3.12+ (dict watchers): both must say the same.
Each polluting suite has a clean twin (the same tests; the conftest imports normally and
sets the fakes in a fixture that undoes them) that reports nothing and whose victims pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_report, package_suite

Enable = Callable[..., Path]

ADVICE = "never mutate sys.modules or builtins at module scope in conftest.py; use a fixture"


def dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def line(source: str, marker: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1)
                if text.endswith(f"# LINE:{marker}"))


PROJECT = {
    "pkg/__init__.py": "",
    "pkg/core.py": "VALUE = 1\n",
    "heavy_dep.py": "def compute():\n    return 42\n",
    "pt_blocked.py": "READY = True\n",
}

ROOT_CONFTEST = dedent("""
    import builtins
    import os
    import sys
    from unittest.mock import MagicMock

    sys.modules["heavy_dep"] = MagicMock()  # LINE:modules
    builtins.pt_helper = MagicMock()  # LINE:builtins
    os.environ["PT_COLLECT_MODE"] = "fake"  # LINE:environ
""")
NESTED_CONFTEST = dedent("""
    import colorsys
    from unittest.mock import MagicMock

    import pkg.core

    pkg.core.VALUE = MagicMock()  # LINE:attr
    colorsys.rgb_to_hsv = MagicMock()  # LINE:library
""")
MODULE_HEADER = dedent("""
    import sys

    sys.modules["pt_blocked"] = None  # LINE:blocker
""")

#: the same conftests, done properly: the real module imported normally, the fakes set by
#: a fixture whose undo puts everything back
CLEAN_ROOT_CONFTEST = dedent("""
    import builtins
    import sys
    from unittest.mock import MagicMock

    import pytest

    import heavy_dep  # noqa: F401  (imported normally)


    @pytest.fixture
    def fakes(monkeypatch):
        monkeypatch.setitem(sys.modules, "heavy_dep", MagicMock())
        monkeypatch.setattr(builtins, "pt_helper", MagicMock(), raising=False)
        monkeypatch.setenv("PT_COLLECT_MODE", "fake")
""")
CLEAN_NESTED_CONFTEST = dedent("""
    import colorsys
    from unittest.mock import MagicMock

    import pytest

    import pkg.core


    @pytest.fixture
    def fake_value(monkeypatch):
        monkeypatch.setattr(pkg.core, "VALUE", MagicMock())
        monkeypatch.setattr(colorsys, "rgb_to_hsv", MagicMock())
""")
CLEAN_MODULE_HEADER = dedent("""
    import sys

    import pytest


    @pytest.fixture
    def blocked(monkeypatch):
        monkeypatch.setitem(sys.modules, "pt_blocked", None)
""")

TESTS = dedent("""
    import os

    import pytest

    import pkg.core


    def test_a_heavy_victim():
        import heavy_dep
        assert heavy_dep.compute() == 42


    def test_b_builtins_victim():
        with pytest.raises(NameError):
            pt_helper  # noqa: F821


    def test_c_environ_victim():
        assert os.environ.get("PT_COLLECT_MODE", "real") == "real"


    def test_d_value_victim():
        assert pkg.core.VALUE == 1


    def test_d_library_victim():
        import colorsys
        assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
""")
LATER_TESTS = dedent("""
    def test_e_blocked_victim():
        import pt_blocked
        assert pt_blocked.READY
""")
CLEAN_USES = dedent("""


    def test_uses_the_fixtures(fakes, fake_value, blocked):
        import heavy_dep
        assert heavy_dep.compute() != 42
""")


def suite(pytester: pytest.Pytester, *, clean: bool) -> pytest.Pytester:
    files = dict(PROJECT)
    if clean:
        files["conftest.py"] = CLEAN_ROOT_CONFTEST
        files["tests/conftest.py"] = CLEAN_NESTED_CONFTEST
        files["tests/test_state.py"] = CLEAN_MODULE_HEADER + TESTS + CLEAN_USES
    else:
        files["conftest.py"] = ROOT_CONFTEST
        files["tests/conftest.py"] = NESTED_CONFTEST
        files["tests/test_state.py"] = MODULE_HEADER + TESTS
    files["tests/test_z_later.py"] = LATER_TESTS
    return package_suite(pytester, files)


def by_name(report: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    return {leak["name"]: leak for leak in report["leaks"]}


def test_import_time_stores_are_collection_leaks(pytester: pytest.Pytester,
                                                 traced_env: Enable) -> None:
    report_path = traced_env()
    result = suite(pytester, clean=False).runpytest_subprocess(timeout=120)
    result.assert_outcomes(failed=6)
    found = by_name(load_report(report_path))
    header_line = line(MODULE_HEADER, "blocker")
    assert {name: (leak["kind"], leak["target"], leak["where"] and (
        leak["where"]["file"], leak["where"]["line"])) for name, leak in found.items()} == {
        "heavy_dep": ("binding-changed", "sys.modules",
                      ("conftest.py", line(ROOT_CONFTEST, "modules"))),
        "pt_helper": ("binding-changed", "builtins",
                      ("conftest.py", line(ROOT_CONFTEST, "builtins"))),
        "PT_COLLECT_MODE": ("binding-changed", "os.environ",
                            ("conftest.py", line(ROOT_CONFTEST, "environ"))),
        "VALUE": ("binding-changed", "module:pkg.core",
                  ("tests/conftest.py", line(NESTED_CONFTEST, "attr"))),
        # a library module: on 3.10/3.11 the version-tag scan finds it at the boundary
        "rgb_to_hsv": ("binding-changed", "module:colorsys",
                       ("tests/conftest.py", line(NESTED_CONFTEST, "library"))),
        "pt_blocked": ("binding-changed", "sys.modules", ("tests/test_state.py", header_line)),
    }
    victims = {name: leak["victims"] for name, leak in found.items()}
    assert victims == {
        "heavy_dep": ["tests/test_state.py::test_a_heavy_victim"],
        "pt_helper": ["tests/test_state.py::test_b_builtins_victim"],
        "PT_COLLECT_MODE": ["tests/test_state.py::test_c_environ_victim"],
        "VALUE": ["tests/test_state.py::test_d_value_victim"],
        "rgb_to_hsv": ["tests/test_state.py::test_d_library_victim"],
        "pt_blocked": ["tests/test_z_later.py::test_e_blocked_victim"],
    }
    for leak in found.values():
        assert (leak["polluter"], leak["phase"], leak["fixture"]) == (
            "<collection>", "collection", None)
        assert leak["fix"].startswith(ADVICE)
        assert ADVICE in leak["message"]
        assert all(leak["victim_evidence"][v] for v in leak["victims"])
    # the terminal wraps it: its words, in order, across the lines of the summary
    assert " ".join(ADVICE.split()) in " ".join(
        text.strip(" │└├─") for text in result.outlines)


def test_clean_twin_conftest_reports_nothing(pytester: pytest.Pytester,
                                            traced_env: Enable) -> None:
    report_path = traced_env()
    result = suite(pytester, clean=True).runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=7)
    assert load_report(report_path)["leaks"] == []


def test_a_project_module_building_itself_at_import_is_not_collection(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    """The rule is "pytest imported it": a package that a conftest imports builds itself
    at its top level (an alias in sys.modules, an optional import blocked) as it would
    outside the tests; only the conftest's own top-level stores are the suite's doing."""
    report_path = traced_env()
    package_suite(pytester, {
        "pkg/__init__.py": dedent("""
            import sys

            sys.modules["pkg_alias"] = sys.modules[__name__]
            sys.modules["pkg_optional_speedups"] = None  # blocks an optional import
        """),
        "conftest.py": dedent("""
            import os

            import pkg  # noqa: F401

            os.environ["PT_SET_BY_CONFTEST"] = "1"  # LINE:control
        """),
        "test_x.py": "def test_x():\n    pass\n",
    })
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1)
    leaks = load_report(report_path)["leaks"]
    # the control: the conftest's own store is reported, the package's are not
    assert [(leak["name"], leak["where"]["line"]) for leak in leaks] == [
        ("PT_SET_BY_CONFTEST", 5)]
