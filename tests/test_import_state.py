"""Import state a test can leave (issue 14): a module dropped from ``sys.modules`` by
``patch.dict(sys.modules)`` or a snapshot restore while objects from it are still held, a
module re-imported by test after test, and ``sys.modules`` wiped by prefix and
re-imported. Each has a polluter, victims that fail only after it (``isinstance`` or
``except`` meeting the other copy), their evidence, and a clean twin that reports nothing.
Run under 3.11 (lines from the test's source) and 3.12+ (dict watchers) alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


def dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def line(source: str, marker: str) -> int:
    return next(i for i, text in enumerate(source.splitlines(), 1)
                if text.endswith(f"# LINE:{marker}"))


APP = {
    "app/__init__.py": "",
    "app/registry.py": "HANDLERS = []\nRAISERS = []\n",
    "app/plugin.py": dedent("""
        class Handler:
            pass


        class PluginError(Exception):
            pass


        def fail():
            raise PluginError("boom")
    """),
    "app/tidy.py": "class Thing:\n    pass\n",
    "app/snap.py": "class Handler:\n    pass\n",
    "app/snaptidy.py": "class Handler:\n    pass\n",
}


def rows(report: dict[str, Any]) -> dict[tuple[str, str | None], dict[str, Any]]:
    """(polluter function, module name) -> leak"""
    return {(leak["polluter"].split("::")[-1], leak["name"]): leak for leak in report["leaks"]}


def short(victims: list[str]) -> list[str]:
    return [v.split("::")[-1] for v in victims]


# -- patch.dict(sys.modules) and snapshot restores --------------------------------------------
DROP_TESTS = dedent("""
    import sys
    from unittest import mock

    import pytest

    from app import registry


    def test_a_polluter():
        with mock.patch.dict(sys.modules, {"heavy": mock.MagicMock()}):  # LINE:patch
            from app import plugin
            registry.HANDLERS.append(plugin.Handler())
            registry.RAISERS.append(plugin.fail)


    def test_b_twin():
        with mock.patch.dict(sys.modules, {"heavy": mock.MagicMock()}):
            from app import tidy
            assert tidy.Thing()  # nothing of app.tidy kept


    def test_c_snapshot_polluter():
        saved = dict(sys.modules)
        from app import snap
        registry.HANDLERS.append(snap.Handler())
        sys.modules.clear()  # LINE:restore
        sys.modules.update(saved)


    def test_d_snapshot_twin():
        saved = dict(sys.modules)
        from app import snaptidy
        assert snaptidy.Handler()
        sys.modules.clear()
        sys.modules.update(saved)


    def test_e_isinstance_victim():
        from app.plugin import Handler
        from app.snap import Handler as SnapHandler
        assert all(isinstance(h, (Handler, SnapHandler)) for h in registry.HANDLERS)


    def test_f_except_victim():
        from app.plugin import PluginError
        for raiser in registry.RAISERS:
            with pytest.raises(PluginError):
                raiser()


    def test_g_unrelated_failure():
        from app.plugin import Handler
        assert Handler is None, "fails for its own reasons"
""")


def test_patch_dict_and_snapshot_drop_modules_in_use(pytester: pytest.Pytester,
                                                     traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {**APP, "test_drop.py": DROP_TESTS})
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=4, failed=3)
    found = rows(load_report(report_path))
    assert set(found) == {("test_a_polluter", "app.plugin"),
                          ("test_c_snapshot_polluter", "app.snap")}
    plugin = found[("test_a_polluter", "app.plugin")]
    assert (plugin["kind"], plugin["target"], plugin["where"]["line"]) == (
        "module-dropped", "sys.modules", line(DROP_TESTS, "patch"))
    assert "app.plugin.Handler of the dropped copy is still held by module app.registry" \
        in plugin["message"]
    # the unrelated failure names Handler too, but meets no old copy: no evidence, no link
    assert short(plugin["victims"]) == ["test_e_isinstance_victim", "test_f_except_victim"]
    evidence = {v.split("::")[-1]: text for v, text in plugin["victim_evidence"].items()}
    assert evidence == {
        "test_e_isinstance_victim":
            "read app.registry.HANDLERS, which holds the old copy of app.plugin.Handler",
        "test_f_except_victim": "raised app.plugin.PluginError of the old copy, which an "
                                "except against the new copy does not catch",
    }
    snap = found[("test_c_snapshot_polluter", "app.snap")]
    assert (snap["kind"], snap["target"], snap["where"]["line"]) == (
        "module-dropped", "sys.modules", line(DROP_TESTS, "restore"))
    assert short(snap["victims"]) == ["test_e_isinstance_victim"]
    assert list(snap["victim_evidence"].values()) == [
        "read app.registry.HANDLERS, which holds the old copy of app.snap.Handler"]
    # the victims pass without their polluters
    alone = pytester.runpytest_subprocess("-k", "victim or twin", timeout=120)
    alone.assert_outcomes(passed=4)
    assert load_report(report_path)["leaks"] == []


# -- every re-import --------------------------------------------------------------------------
REIMPORT_TESTS = dedent("""
    import sys
    from unittest import mock

    import app.plugin

    HANDLER = app.plugin.Handler()  # made from the copy imported at collection


    def test_a_reimport():
        del sys.modules["app.plugin"]  # LINE:first
        import app.plugin  # noqa: F401


    def test_b_reimport_again():
        sys.modules.pop("app.plugin")
        import app.plugin  # noqa: F401


    def test_c_reimport_third():
        sys.modules.pop("app.plugin")
        import app.plugin  # noqa: F401


    def test_d_twin():
        with mock.patch.dict(sys.modules):
            sys.modules.pop("app.plugin")
            import app.plugin as fresh
            assert fresh.Handler()


    def test_e_victim():
        from app.plugin import Handler
        assert isinstance(HANDLER, Handler)


    def test_f_local_victim():
        handler = HANDLER
        from app.plugin import Handler
        assert isinstance(handler, Handler)
""")


def test_every_reimport_is_counted(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {**APP, "test_reimport.py": REIMPORT_TESTS})
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=4, failed=2)
    (leak,) = load_report(report_path)["leaks"]
    assert (leak["kind"], leak["target"], leak["name"], leak["where"]["line"]) == (
        "module-replaced", "sys.modules", "app.plugin", line(REIMPORT_TESTS, "first"))
    assert leak["polluter"].endswith("::test_a_reimport")
    # the second and the third fresh import are the same change again, each counted
    assert leak["repeats"] == 2
    assert short(leak["repeat_tests"]) == ["test_b_reimport_again", "test_c_reimport_third"]
    assert short(leak["victims"]) == ["test_e_victim", "test_f_local_victim"]
    assert list(leak["victim_evidence"].values()) == [
        "read test_reimport.HANDLER, which holds the old copy of app.plugin.Handler",
        "met the old copy of app.plugin.Handler (local handler in test_f_local_victim) "
        "while sys.modules['app.plugin'] holds another"]
    alone = pytester.runpytest_subprocess("-k", "victim or twin", timeout=120)
    alone.assert_outcomes(passed=3)
    assert load_report(report_path)["leaks"] == []


# -- sys.modules wiped by prefix and re-imported --------------------------------------------------
WIPE_TESTS = dedent("""
    import sys

    from app.plugin import Handler

    HANDLER = Handler()


    def test_a_wipe():
        for name in list(sys.modules):
            if name.startswith("app"):
                del sys.modules[name]  # LINE:wipe
        import app.plugin  # noqa: F401


    def test_b_twin():
        saved = {k: v for k, v in sys.modules.items() if k.startswith("app")}
        for name in list(saved):
            del sys.modules[name]
        import app.plugin  # noqa: F401
        sys.modules.update(saved)


    def test_c_victim():
        import app.plugin
        assert isinstance(HANDLER, sys.modules["app.plugin"].Handler)
""")


def test_prefix_wipe_and_reimport(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {**APP, "test_wipe.py": WIPE_TESTS})
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=2, failed=1)
    found = rows(load_report(report_path))
    assert {polluter for polluter, _ in found} == {"test_a_wipe"}
    plugin = found[("test_a_wipe", "app.plugin")]
    assert (plugin["kind"], plugin["target"], plugin["where"]["line"]) == (
        "module-replaced", "sys.modules", line(WIPE_TESTS, "wipe"))
    assert short(plugin["victims"]) == ["test_c_victim"]
    (evidence,) = plugin["victim_evidence"].values()
    assert evidence.startswith("read test_wipe.") and evidence.endswith(
        ", which holds the old copy of app.plugin.Handler")
    # the package and its registry were wiped and re-imported too; what was not imported
    # again is dropped: each at the line of the wipe
    assert {(name, leak["kind"]) for (_, name), leak in found.items()} == {
        ("app", "module-replaced"), ("app.plugin", "module-replaced")}
    assert {leak["where"]["line"] for leak in found.values()} == {line(WIPE_TESTS, "wipe")}
    alone = pytester.runpytest_subprocess("-k", "victim or twin", timeout=120)
    alone.assert_outcomes(passed=2)
    assert load_report(report_path)["leaks"] == []
