"""What counts as a leak (docs/design.md): a difference between the state before a scope
and after it that later code can observe, reported once, on the line that made it.

Each rule has a clean twin that must report nothing and a control that must report, in
the same run, so that no test here can pass with detection switched off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_report, package_suite

Enable = Callable[..., Path]

PKG = {
    "pkg/__init__.py": "",
    "pkg/conf.py": """
import datetime
from pathlib import Path

DB_PATH = Path("/tmp/pt-db")
WHEN = datetime.date(2020, 1, 1)

def connect(timeout=30, retries=None):
    return timeout

class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__

OBJ = AlwaysEqual()
""",
    "pkg/sub/__init__.py": "",
    "pkg/sub/leaf.py": "VALUE = 1\n",
    "pkg/sub/fresh.py": "VALUE = 2\n",
    "pkg/sub/loaded.py": "VALUE = 3\n",
    "pkg/settings.py": """
import os

MODE = os.environ.get("PT_MODE", "prod")

class Thing:
    pass

def make():
    return Thing()
""",
    "pkg/registry.py": "ITEMS = []\n",
    "pkg/plugin.py": """
from pkg import registry

class Plugin:
    pass

registry.ITEMS.append(Plugin)
""",
    "pkg/lib.py": """
class App:
    pass

CURRENT = None
""",
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return package_suite(pytester, PKG)


def rows(report: dict[str, Any]) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    """(test function, kind, name) -> leak; each key once."""
    out: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for leak in report["leaks"]:
        key = (leak["polluter"].split("::")[-1], leak["kind"], leak["name"])
        assert key not in out, report["leaks"]
        out[key] = leak
    return out


def test_values_put_back_and_modules_absent_before_and_after(
        suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_values="""
        import datetime, importlib, os, sys
        from pathlib import Path
        import pytest
        import pkg.conf, pkg.sub.leaf

        @pytest.fixture
        def same_db():
            conf = importlib.import_module("pkg.conf")  # re-imported: the same module
            conf.DB_PATH = Path("/tmp/pt-db")  # the value it already has
            yield

        def test_equal_values(same_db):
            pkg.conf.WHEN = datetime.date(2020, 1, 1)
            pkg.conf.connect.__defaults__ = (30, None)

        def test_import_then_remove():
            import pkg.sub.fresh
            del sys.modules["pkg.sub.fresh"]

        def test_loader_imports_and_pops():
            importlib.import_module("pkg.sub.loaded")
            sys.modules.pop("pkg.sub.loaded")

        def test_set_and_undone(monkeypatch):
            monkeypatch.setenv("PT_SET_UNDONE", "1")
            os.environ["PT_SET_DEL"] = "1"
            del os.environ["PT_SET_DEL"]

        def test_env_update():
            os.environ.update({"PT_UPD": "1"})

        def test_other_value():
            pkg.conf.DB_PATH = Path("/tmp/other")

        def test_user_eq_is_not_trusted():
            pkg.conf.OBJ = pkg.conf.AlwaysEqual()

        def test_dropped():
            del sys.modules["pkg.sub.leaf"]

        def test_blocker():
            sys.modules["pt_blocked"] = None

        def test_victim_of_blocker():
            import pt_blocked  # noqa: F401
    """)
    result = suite.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=9, failed=1)
    found = rows(load_report(report_path))
    assert set(found) == {
        ("test_env_update", "binding-changed", "PT_UPD"),
        ("test_other_value", "binding-changed", "DB_PATH"),
        ("test_user_eq_is_not_trusted", "binding-changed", "OBJ"),
        ("test_dropped", "module-dropped", "pkg.sub.leaf"),
        ("test_blocker", "binding-changed", "pt_blocked"),
    }
    blocker = found[("test_blocker", "binding-changed", "pt_blocked")]
    assert blocker["victims"] == ["test_values.py::test_victim_of_blocker"]
    assert blocker["value"]["repr"] == "None"
    assert found[("test_other_value", "binding-changed", "DB_PATH")]["where"]["line"] == 33


def test_reloads_dormant_patches_and_repeats(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_state="""
        import importlib, logging, signal, time
        from unittest import mock
        import pytest
        import pkg.settings, pkg.plugin, pkg.lib

        def test_reload_put_back(monkeypatch):
            monkeypatch.setenv("PT_MODE", "test")
            importlib.reload(pkg.settings)
            assert pkg.settings.MODE == "test"
            monkeypatch.undo()
            importlib.reload(pkg.settings)

        def test_reload_in_finally(monkeypatch):
            monkeypatch.setenv("PT_MODE", "test")
            importlib.reload(pkg.settings)
            try:
                assert pkg.settings.MODE == "test"
            finally:
                importlib.reload(pkg.settings)  # monkeypatch still active: MODE stays

        def test_reload_leaves_old_class_in_registry():
            importlib.reload(pkg.plugin)

        @pytest.fixture
        def no_sleep():
            with mock.patch("time.sleep"):
                yield

        def test_dormant(no_sleep):
            mock.patch("time.sleep").start()

        def test_sleep_is_real():
            assert not isinstance(time.sleep, mock.Mock)

        def test_not_stopped():
            mock.patch("pkg.settings.make").start()

        def handler_a(*args):
            pass

        def handler_b(*args):
            pass

        def test_handler_a():
            signal.signal(signal.SIGUSR1, handler_a)

        def test_handler_b():  # over the one test_handler_a left: a leak too
            signal.signal(signal.SIGUSR1, handler_b)

        def test_handler_restored():  # the original back: never a leak
            signal.signal(signal.SIGUSR1, signal.SIG_DFL)

        def test_app_1():
            pkg.lib.CURRENT = pkg.lib.App()

        def test_app_2():
            pkg.lib.CURRENT = pkg.lib.App()

        def test_app_3():
            pkg.lib.CURRENT = pkg.lib.App()
    """)
    result = suite.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=12)
    report = load_report(report_path)
    found = rows(report)
    assert set(found) == {
        ("test_reload_in_finally", "module-reloaded", "pkg.settings"),
        ("test_reload_leaves_old_class_in_registry", "module-reloaded", "pkg.plugin"),
        ("test_dormant", "patch-dormant", "sleep"),
        ("test_not_stopped", "patch-not-stopped", "make"),
        ("test_handler_a", "resource-changed", "SIGUSR1"),
        ("test_app_1", "binding-changed", "CURRENT"),
    }
    final = found[("test_reload_in_finally", "module-reloaded", "pkg.settings")]
    assert final["where"]["line"] == 19  # the reload that made the final state
    assert "MODE 'prod' -> 'test'" in final["message"]
    registry = found[("test_reload_leaves_old_class_in_registry", "module-reloaded",
                      "pkg.plugin")]
    assert "Plugin" in registry["message"] and "pkg.registry" in registry["message"]
    dormant = found[("test_dormant", "patch-dormant", "sleep")]
    assert "stopall" in dormant["message"] and dormant["where"]["line"] == 30
    assert dormant["victims"] == []
    handler = found[("test_handler_a", "resource-changed", "SIGUSR1")]
    assert (handler["repeats"], handler["repeat_tests"]) == (1, ["test_state.py::test_handler_b"])
    app = found[("test_app_1", "binding-changed", "CURRENT")]
    assert app["repeats"] == 2
    assert app["repeat_tests"] == ["test_state.py::test_app_2", "test_state.py::test_app_3"]
    result.stdout.fnmatch_lines(["*also left by 2 later tests*"])


def test_lazy_initialization_by_a_library_and_library_frames_never_where(
        suite: pytest.Pytester, traced_env: Enable, monkeypatch: pytest.MonkeyPatch) -> None:
    # An installed library (a path naming site-packages) and an installed pytest plugin
    # (a distribution with a pytest11 entry point, found through PYTHONPATH).
    site = suite.path / "vendor" / "site-packages"
    files = {
        "lazylib/__init__.py": (
            "def complete(cls):\n"
            "    cls.__lazy_validator__ = object()  # first use: fills in a new attribute\n"
            "def set_existing(module):\n"
            "    module.MODE = 'changed-by-lib'  # an existing binding of another module\n"),
        "fakeplug/__init__.py": (
            "def helper(module):\n"
            "    module.LEVEL = 'changed-by-plugin'\n"),
        "fakeplug-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: fakeplug\nVersion: 1.0\n",
        "fakeplug-1.0.dist-info/entry_points.txt": "[pytest11]\nfakeplug = fakeplug\n",
    }
    for path, text in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    monkeypatch.setenv("PYTHONPATH", str(site))
    suite.makepyfile(models="""
        MODE = "prod"
        LEVEL = "info"

        class User:
            name = "user"
    """, test_lazy="""
        import lazylib, models
        from fakeplug import helper

        def test_lazy():
            lazylib.complete(models.User)

        def test_existing():
            lazylib.set_existing(models)

        def test_plugin_helper():
            helper(models)
    """)
    report_path = traced_env()
    result = suite.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=3)
    found = rows(load_report(report_path))
    assert set(found) == {("test_existing", "binding-changed", "MODE"),
                          ("test_plugin_helper", "binding-changed", "LEVEL")}
    existing = found[("test_existing", "binding-changed", "MODE")]
    assert existing["where"]["file"] == "test_lazy.py" and existing["where"]["line"] == 8
    assert any("lazylib" in frame["file"] for frame in existing["stack"])  # shown, not where
    plugin = found[("test_plugin_helper", "binding-changed", "LEVEL")]
    assert plugin["where"]["line"] == 11
    assert not any("fakeplug" in frame["file"] for frame in plugin["stack"])
