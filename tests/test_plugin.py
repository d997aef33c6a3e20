"""The pytest plugin, end to end: real pytest subprocesses on small suites.

In-process runs restore sys.modules themselves and would hide exactly what we trace, so
every test here uses ``runpytest_subprocess``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import leaks_by_kind, load_report, package_suite

Enable = Callable[..., Path]

PKG = {
    "pkg/__init__.py": "",
    "pkg/mod.py": """
TIMEOUT = 30
REGISTRY = []

def func():
    return "real"

class Util:
    @staticmethod
    def helper():
        return 1
""",
    "pkg/cache.py": """
import functools

@functools.lru_cache(maxsize=None)
def remember(key, value=None):
    return value
""",
    "pkg/sub/__init__.py": "",
    "pkg/sub/leaf.py": "VALUE = 1\n",
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return package_suite(pytester, PKG)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*args, timeout=120)


def one(report: dict[str, Any], kind: str) -> dict[str, Any]:
    found = leaks_by_kind(report).get(kind, [])
    assert len(found) == 1, (kind, report["leaks"])
    return found[0]


# -- every kind ------------------------------------------------------------------------------
def test_patch_not_stopped_names_test_line_and_victim(suite: pytest.Pytester,
                                                        traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_a="""
        from unittest import mock
        import pkg.mod

        def test_polluter():
            mock.patch("pkg.mod.func").start()

        def test_innocent():
            assert True

        def test_victim():
            assert pkg.mod.func() == "real"
    """)
    result = run(suite)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*pollution present*",
        "L1 patch-not-stopped: pkg.mod.func from test_a.py::test_polluter (used by this test)",
        "*patchtrace: 1 leak from 1 polluter*",
    ])
    leak = one(load_report(report_path), "patch-not-stopped")
    assert leak["polluter"] == "test_a.py::test_polluter"
    assert leak["phase"] == "call" and leak["fixture"] is None
    assert leak["target"] == "module:pkg.mod" and leak["name"] == "func"
    assert leak["where"] == {"file": "test_a.py", "line": 5, "function": "test_polluter"}
    assert leak["stack"][-1] == leak["where"]
    assert leak["before"]["type"] == "function" and not leak["before"]["is_mock"]
    assert leak["value"]["is_mock"] and leak["value"]["type"] == "MagicMock"
    assert leak["alive_via"] == ["module pkg.mod", "attribute func"]
    assert leak["victims"] == ["test_a.py::test_victim"]
    # the innocent test ran too but used nothing: only the victim has evidence
    # (the read log names the calls: the test's == called the return value's __eq__)
    assert leak["victim_evidence"] == {"test_a.py::test_victim":
                                       "called the leaked mock 2x: pkg.mod.func() 1x, "
                                       "pkg.mod.func().__eq__() 1x"}
    assert "was never stopped" in leak["message"]


def test_monkeypatch_never_undone(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_mp="""
        import pytest
        import pkg.mod

        def test_polluter():
            mp = pytest.MonkeyPatch()
            mp.setattr(pkg.mod, "TIMEOUT", 1)
    """)
    run(suite).assert_outcomes(passed=1)
    leak = one(load_report(report_path), "patch-not-stopped")
    assert leak["where"]["line"] == 6
    assert "undo()" in leak["message"]


def test_direct_stores_env_builtins_and_sys_modules(suite: pytest.Pytester,
                                                     traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_direct="""
        import builtins, os, sys
        from unittest import mock
        import pkg.mod

        def test_module_attribute():
            pkg.mod.TIMEOUT = 0

        def test_environment():
            os.environ["PT_LEAKED"] = "yes"

        def test_builtins():
            builtins.pt_helper = mock.MagicMock()

        def test_sys_modules():
            sys.modules["pt_fake_module"] = mock.MagicMock()

        def test_victim():
            assert pkg.mod.TIMEOUT == 30
    """)
    run(suite).assert_outcomes(passed=4, failed=1)
    found = {(leak["target"], leak["name"]): leak
             for leak in leaks_by_kind(load_report(report_path))["binding-changed"]}
    assert set(found) == {("module:pkg.mod", "TIMEOUT"), ("os.environ", "PT_LEAKED"),
                          ("builtins", "pt_helper"), ("sys.modules", "pt_fake_module")}
    timeout = found[("module:pkg.mod", "TIMEOUT")]
    assert timeout["where"]["line"] == 6 and timeout["before"]["repr"] == "30"
    assert timeout["victims"] == ["test_direct.py::test_victim"]
    assert found[("os.environ", "PT_LEAKED")]["where"]["line"] == 9
    assert found[("sys.modules", "pt_fake_module")]["where"]["line"] == 15


def test_restore_mismatch_of_a_staticmethod(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_static="""
        from pkg.mod import Util

        def test_polluter():
            original = Util.helper
            Util.helper = lambda: 2
            Util.helper = original
    """)
    run(suite).assert_outcomes(passed=1)
    leak = one(load_report(report_path), "restore-mismatch")
    assert leak["target"] == "class:pkg.mod.Util" and leak["name"] == "helper"
    assert leak["before"]["type"] == "staticmethod" and leak["value"]["type"] == "function"
    assert leak["where"]["line"] == 6  # the restoring line


def test_mock_survived_in_a_cache_and_a_registry(suite: pytest.Pytester,
                                                 traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_escape="""
        from unittest import mock
        import pkg.cache, pkg.mod

        def test_cache():
            fake = mock.MagicMock(name="cached")
            pkg.cache.remember("k", fake)

        def test_registry():
            pkg.mod.REGISTRY.append(mock.Mock(name="registered"))

        def test_garbage_only():
            a = mock.MagicMock(); b = mock.MagicMock()
            a.other = b; b.other = a  # a cycle: garbage, not a leak
    """)
    run(suite).assert_outcomes(passed=3)
    survived = leaks_by_kind(load_report(report_path))["mock-survived"]
    by_test = {leak["polluter"].split("::")[1]: leak for leak in survived}
    assert set(by_test) == {"test_cache", "test_registry"}
    assert by_test["test_cache"]["where"]["line"] == 5
    assert any("lru_cache" in step for step in by_test["test_cache"]["alive_via"])
    assert by_test["test_registry"]["alive_via"][:2] == ["module pkg.mod", "attribute REGISTRY"]
    assert by_test["test_cache"]["target"] is None


def test_module_reloaded_and_dropped(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_modules="""
        import importlib, sys
        from unittest import mock
        import pkg.mod, pkg.sub.leaf
        from pkg.mod import Util  # holds the class a reload replaces

        def test_reload():
            importlib.reload(pkg.mod)

        def test_dropped():
            del sys.modules["pkg.sub.leaf"]  # present before the test, absent after

        def test_imported_and_dropped():  # absent before and after: nothing
            with mock.patch.dict(sys.modules):
                import pkg.sub.other
    """)
    suite.path.joinpath("pkg/sub/other.py").write_text("VALUE = 2\n")
    run(suite).assert_outcomes(passed=3)
    report = load_report(report_path)
    reloaded = one(report, "module-reloaded")
    assert reloaded["name"] == "pkg.mod" and reloaded["where"]["line"] == 7
    assert "Util" in reloaded["message"] and "test_modules" in reloaded["message"]
    dropped = one(report, "module-dropped")
    assert dropped["name"] == "pkg.sub.leaf"
    assert dropped["polluter"] == "test_modules.py::test_dropped"
    assert len(report["leaks"]) == 2


def test_resources_changed(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_res="""
        import logging, os, signal

        def test_chdir(tmp_path):
            os.chdir(tmp_path)

        def test_handler():
            logging.getLogger().addHandler(logging.NullHandler())

        def test_signal():
            signal.signal(signal.SIGUSR2, lambda *a: None)
    """)
    run(suite).assert_outcomes(passed=3)
    found = {(leak["target"], leak["polluter"].split("::")[1])
             for leak in leaks_by_kind(load_report(report_path))["resource-changed"]}
    assert found == {("cwd", "test_chdir"), ("logging", "test_handler"),
                     ("signal", "test_signal")}


# -- scopes -----------------------------------------------------------------------------------
def test_wide_fixtures_are_checked_when_finalized(suite: pytest.Pytester,
                                                  traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_scope="""
        import os
        from unittest import mock
        import pytest
        import pkg.mod

        @pytest.fixture(scope="module")
        def leaky():
            mock.patch.object(pkg.mod, "TIMEOUT", 1).start()
            os.environ["PT_MODULE_FIXTURE"] = "1"
            yield

        @pytest.fixture(scope="module")
        def tidy():
            with mock.patch.object(pkg.mod, "func", return_value="fake"):
                os.environ["PT_TIDY"] = "1"
                yield
                del os.environ["PT_TIDY"]

        def test_first(leaky, tidy):
            assert pkg.mod.TIMEOUT == 1

        def test_second(leaky, tidy):
            assert pkg.mod.func() == "fake"
    """)
    run(suite).assert_outcomes(passed=2)
    report = load_report(report_path)
    assert {(leak["kind"], leak["name"]) for leak in report["leaks"]} == {
        ("patch-not-stopped", "TIMEOUT"), ("binding-changed", "PT_MODULE_FIXTURE")}
    for leak in report["leaks"]:
        assert leak["polluter"] == "test_scope.py::test_first"
        assert leak["fixture"] == "leaky" and leak["phase"] == "setup"


def test_collection_leaks(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makeconftest("""
        import os
        os.environ["PT_FROM_CONFTEST"] = "1"
    """)
    suite.makepyfile(test_collect="""
        from unittest import mock
        mock.patch("pkg.mod.func").start()

        def test_nothing():
            pass
    """)
    run(suite).assert_outcomes(passed=1)
    leaks = load_report(report_path)["leaks"]
    assert {(leak["kind"], leak["name"]) for leak in leaks} == {
        ("patch-not-stopped", "func"), ("binding-changed", "PT_FROM_CONFTEST")}
    for leak in leaks:
        assert leak["polluter"] == "<collection>" and leak["phase"] == "collection"
    patch = next(leak for leak in leaks if leak["name"] == "func")
    assert patch["where"] == {"file": "test_collect.py", "line": 2, "function": "<module>"}


# -- modes and configuration --------------------------------------------------------------------
def test_option_and_ini_turn_it_on(suite: pytest.Pytester, tmp_path: Path) -> None:
    suite.makepyfile(test_opt="""
        import os
        def test_polluter():
            os.environ["PT_OPT"] = "1"
    """)
    result = run(suite, "--patchtrace", f"--patchtrace-json={tmp_path / 'r.json'}")
    result.stdout.fnmatch_lines(["*patchtrace: 1 leak*"])
    assert load_report(tmp_path / "r.json")["leaks"][0]["name"] == "PT_OPT"
    suite.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly\npatchtrace = strict\n")
    run(suite).assert_outcomes(passed=1, errors=1)


POLLUTER = """
    import os
    from unittest import mock

    def test_polluter():
        os.environ["PT_OVERRIDE"] = "1"
        mock.patch("pkg.mod.func").start()
"""


def test_command_line_overrides_environment(suite: pytest.Pytester, traced_env: Enable,
                                            tmp_path: Path) -> None:
    """With PATCHTRACE=1 tracing starts before pytest parses its command line; every
    --patchtrace-* option must still win over its variable."""
    env_report = traced_env(PATCHTRACE_HTML=str(tmp_path / "env.html"),
                            PATCHTRACE_GRAPHS=str(tmp_path / "env-graphs"))
    suite.makepyfile(test_over=POLLUTER)
    out = tmp_path / "out"
    result = run(suite, "--patchtrace=strict", f"--patchtrace-json={out / 'r.json'}",
                 f"--patchtrace-html={out / 'r.html'}", f"--patchtrace-graphs={out / 'graphs'}",
                 "--patchtrace-ignore=os.environ.PT_OVERRIDE")
    result.assert_outcomes(passed=1, errors=1)  # strict, from the option
    assert [leak["name"] for leak in load_report(out / "r.json")["leaks"]] == ["func"]
    assert (out / "r.html").is_file()
    assert sorted(p.name for p in (out / "graphs").iterdir()) == ["L1.dot", "L1.svg"]
    assert not env_report.exists()
    assert not (tmp_path / "env.html").exists() and not (tmp_path / "env-graphs").exists()


def test_environment_overrides_ini_and_command_line_overrides_both(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    suite.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n"
                  f"patchtrace = strict\npatchtrace_json = {tmp_path / 'ini.json'}\n")
    suite.makepyfile(test_over=POLLUTER)
    run(suite).assert_outcomes(passed=1, errors=1)  # the ini key alone turns it on
    assert (tmp_path / "ini.json").exists()
    (tmp_path / "ini.json").unlink()
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_JSON", str(tmp_path / "env.json"))
    run(suite).assert_outcomes(passed=1)  # report mode, from the variable
    assert (tmp_path / "env.json").exists() and not (tmp_path / "ini.json").exists()
    run(suite, f"--patchtrace-json={tmp_path / 'cli.json'}").assert_outcomes(passed=1)
    assert len(load_report(tmp_path / "cli.json")["leaks"]) == 2


UNTRACED = """
    import gc
    import sys
    import unittest
    from unittest import mock

    import _pytest.monkeypatch

    def test_nothing_of_patchtrace_is_left():
        import patchtrace._tracer

        assert patchtrace._tracer.current() is None
        for cls in (mock._patch, _pytest.monkeypatch.MonkeyPatch, unittest.TestCase):
            wrapped = [n for n, v in vars(cls).items() if getattr(v, "__patchtrace__", False)]
            assert wrapped == [], (cls, wrapped)
        ours = [x for x in (*gc.callbacks, *sys.meta_path)
                if "patchtrace" in str(getattr(x, "__module__", ""))
                or "patchtrace" in type(x).__module__]
        assert ours == []

    def test_polluter():
        mock.patch("pkg.mod.func").start()
"""


@pytest.mark.parametrize("where", ["environment", "ini"])
def test_off_on_the_command_line_stops_tracing(suite: pytest.Pytester, traced_env: Enable,
                                               where: str) -> None:
    """``--patchtrace=off`` wins over PATCHTRACE=1 (whose .pth started tracing at
    interpreter start, and must be undone) and over the ini key."""
    if where == "environment":
        report_path = traced_env("strict")
    else:
        report_path = suite.path / "r.json"
        suite.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n"
                      f"patchtrace = strict\npatchtrace_json = {report_path}\n")
    suite.makepyfile(test_off=UNTRACED)
    result = run(suite, "--patchtrace=off")
    result.assert_outcomes(passed=2)
    assert "patchtrace:" not in result.stdout.str() + result.stderr.str()
    assert not report_path.exists()


def test_the_option_alone_sees_conftest_mutations(suite: pytest.Pytester,
                                                  tmp_path: Path) -> None:
    """Options are read before the initial conftests are imported, as the variable is."""
    suite.makeconftest("""
        import os
        os.environ["PT_FROM_CONFTEST"] = "1"
    """)
    suite.makepyfile(test_x="def test_x(): pass")
    run(suite, "--patchtrace", f"--patchtrace-json={tmp_path / 'r.json'}")
    [leak] = load_report(tmp_path / "r.json")["leaks"]
    assert (leak["name"], leak["polluter"]) == ("PT_FROM_CONFTEST", "<collection>")


def test_a_bare_option_leaves_the_next_argument_a_test_path(suite: pytest.Pytester,
                                                           tmp_path: Path) -> None:
    """The contract spells it --patchtrace[=report|strict]: bare, it takes no value."""
    suite.makepyfile(test_chosen=POLLUTER, test_other="def test_other(): pass")
    result = run(suite, "--patchtrace", "test_chosen.py", f"--patchtrace-json={tmp_path / 'a'}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*patchtrace: 2 leaks from 1 polluter*"])
    assert len(load_report(tmp_path / "a")["leaks"]) == 2
    # the same when the bare flag comes from addopts and the path from the command line
    suite.makeini("[pytest]\npythonpath = .\n"
                  "addopts = -p no:randomly -p no:cacheprovider --patchtrace\n")
    result = run(suite, "test_chosen.py::test_polluter", "-p", "no:xdist")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*patchtrace: 2 leaks from 1 polluter*"])
    run(suite, "--patchtrace=strict", "test_chosen.py").assert_outcomes(passed=1, errors=1)


def test_a_bare_option_followed_by_a_mode_says_how_to_write_it(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_x="def test_x(): pass")
    result = run(suite, "--patchtrace", "strict")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*patchtrace: --patchtrace takes its value after '=': "
                                 "write --patchtrace=strict*"])


@pytest.mark.parametrize(
    ("how", "value"),
    [("env", "nonsense"), ("option", "sometimes")],
)
def test_bad_configuration_is_a_usage_error(suite: pytest.Pytester,
                                            monkeypatch: pytest.MonkeyPatch,
                                            how: str, value: str) -> None:
    suite.makepyfile(test_x="def test_x(): pass")
    if how == "env":
        monkeypatch.setenv("PATCHTRACE", value)
        result = run(suite)
        name = "PATCHTRACE"
    else:
        result = run(suite, f"--patchtrace={value}")
        name = "--patchtrace"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{name}='{value}' is not understood; accepted values:*strict*"])


def test_ignore_list_from_ini_and_environment(suite: pytest.Pytester,
                                              traced_env: Enable) -> None:
    report_path = traced_env(PATCHTRACE_IGNORE="os.environ.PT_ENV_IGNORED")
    suite.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly\n"
                  "patchtrace_ignore =\n    module:pkg.mod.TIMEOUT\n")
    suite.makepyfile(test_ign="""
        import os
        import pkg.mod

        def test_polluter():
            pkg.mod.TIMEOUT = 1
            os.environ["PT_ENV_IGNORED"] = "1"
            os.environ["PT_ENV_KEPT"] = "1"
    """)
    run(suite).assert_outcomes(passed=1)
    assert [leak["name"] for leak in load_report(report_path)["leaks"]] == ["PT_ENV_KEPT"]


# -- no false alarms, no changed outcomes --------------------------------------------------------
CLEAN_SUITE = """
import functools, gc, logging, os, sys, warnings
from unittest import mock
import pytest
import pkg.mod

@functools.lru_cache(maxsize=None)
def cached(x):
    return object()

@pytest.fixture(scope="session")
def session_patch():
    with mock.patch.object(pkg.mod, "REGISTRY", []):
        yield

@pytest.fixture(scope="class")
def class_env():
    os.environ["PT_CLASS"] = "1"
    yield
    del os.environ["PT_CLASS"]

def test_context_managers():
    with mock.patch("pkg.mod.func", return_value=1), mock.patch.dict(os.environ, A="1"):
        assert pkg.mod.func() == 1

@mock.patch("pkg.mod.func")
@mock.patch.object(pkg.mod, "TIMEOUT", 3)
def test_decorators(fake):
    assert pkg.mod.TIMEOUT == 3

def test_monkeypatch_fixture(monkeypatch, tmp_path):
    monkeypatch.setattr(pkg.mod, "TIMEOUT", 1)
    monkeypatch.setattr("pkg.mod.Util.helper", staticmethod(lambda: 2))
    monkeypatch.setenv("PT_MP", "1")
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "pt_fake", mock.MagicMock())

def test_mocker(mocker):
    mocker.patch("pkg.mod.func", return_value=2)
    mocker.patch.object(pkg.mod, "TIMEOUT", 9)
    spy = mocker.spy(pkg.mod.Util, "helper")
    assert pkg.mod.func() == 2 and spy() == 1

def test_stopall():
    mock.patch.object(pkg.mod, "TIMEOUT", 5).start()
    mock.patch.stopall()

def test_capture_logging_warnings(capsys, caplog, tmp_path):
    print("out"); logging.getLogger("x").warning("w")
    warnings.simplefilter("ignore")
    warnings.warn("hidden")
    (tmp_path / "f").write_text("x")
    assert "out" in capsys.readouterr().out

def test_imports_and_caches():
    import json, decimal, pkg.sub.leaf  # new modules are not pollution
    cached(1)

def test_garbage_mocks():
    for _ in range(3):
        m = mock.MagicMock(); m.child.parent = m

def test_failure_keeps_a_mock_in_the_traceback():
    m = mock.MagicMock()
    m()
    assert False, "expected failure"

def test_after_failure():
    pass

def test_session_fixture(session_patch):
    assert pkg.mod.REGISTRY == []

class TestClass:
    def test_one(self, class_env):
        assert os.environ["PT_CLASS"] == "1"

    def test_two(self, class_env):
        pass

@pytest.mark.skip(reason="skipped")
def test_skipped():
    pass

@pytest.mark.xfail(reason="expected")
def test_xfail():
    mock.patch.dict(os.environ, {"PT_X": "1"})
    assert False
"""


def test_no_false_alarms_and_same_outcomes(suite: pytest.Pytester, traced_env: Enable,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    suite.makepyfile(test_clean=CLEAN_SUITE)
    plain = run(suite)
    report_path = traced_env()
    traced = run(suite)
    expected = {"passed": 12, "failed": 1, "skipped": 1, "xfailed": 1}
    plain.assert_outcomes(**expected)
    traced.assert_outcomes(**expected)
    report = load_report(report_path)
    assert report["leaks"] == [], report["leaks"]
    assert report["tests"] == 15
    traced.stdout.fnmatch_lines(["*patchtrace: no leaks in 15 tests*"])
    assert "internal error" not in traced.stderr.str() + traced.stdout.str()


def test_unittest_style_tests_under_pytest(suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_ut="""
        import unittest
        from unittest import mock
        import pkg.mod

        class Leaky(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                mock.patch.object(pkg.mod, "TIMEOUT", 2).start()

            def setUp(self):
                mock.patch("pkg.mod.func").start()

            def test_a(self):
                pass

        class Tidy(unittest.TestCase):
            def setUp(self):
                patcher = mock.patch("pkg.mod.func")
                patcher.start()
                self.addCleanup(patcher.stop)

            def test_b(self):
                pass
    """)
    run(suite).assert_outcomes(passed=2)
    leaks = {leak["name"]: leak for leak in load_report(report_path)["leaks"]}
    assert set(leaks) == {"TIMEOUT", "func"}
    assert leaks["func"]["polluter"] == "test_ut.py::Leaky::test_a"
    assert leaks["func"]["where"]["function"] == "setUp"
    assert leaks["TIMEOUT"]["polluter"] == "test_ut.py::Leaky::test_a"
    assert leaks["TIMEOUT"]["where"]["function"] == "setUpClass"


def test_xdist_workers_report_to_the_controller(suite: pytest.Pytester,
                                                traced_env: Enable) -> None:
    pytest.importorskip("xdist")
    report_path = traced_env()
    suite.makepyfile(**{
        f"test_x{i}": f"""
            import os
            def test_polluter_{i}():
                os.environ["PT_XDIST_{i}"] = "1"

            def test_clean_{i}():
                pass
        """ for i in range(4)
    })
    result = run(suite, "-n", "2")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["*patchtrace: 4 leaks from 4 polluters*"])
    report = load_report(report_path)
    assert report["tests"] == 8
    assert sorted(leak["polluter"] for leak in report["leaks"]) == [
        f"test_x{i}.py::test_polluter_{i}" for i in range(4)]
    ids = [leak["id"] for leak in report["leaks"]]  # labelled with their worker, unique
    assert len(set(ids)) == 4 and all(i.startswith(("gw0-L", "gw1-L")) for i in ids), ids


def test_pytest_randomly_seed_is_reported(suite: pytest.Pytester, traced_env: Enable) -> None:
    pytest.importorskip("pytest_randomly")
    report_path = traced_env()
    suite.makeini("[pytest]\npythonpath = .\n")
    suite.makepyfile(test_r="""
        import os
        def test_polluter():
            os.environ["PT_RANDOM"] = "1"
    """)
    result = run(suite, "-p", "randomly", "-p", "no:cacheprovider", "--randomly-seed=1234")
    result.stdout.fnmatch_lines([
        "*test order: pytest-randomly seed 1234 (reproduce with -p randomly --randomly-seed=1234)"])
    assert load_report(report_path)["randomly_seed"] == 1234
    # The hint is a command line pytest accepts, and it reproduces the same order.
    [hint] = [line for line in result.stdout.lines if "reproduce with" in line]
    again = run(suite, *hint.split("reproduce with ")[1].rstrip(")").split(),
                "-p", "no:cacheprovider")
    assert again.ret == pytest.ExitCode.OK, again.stderr.str()
    again.stdout.fnmatch_lines(["*pytest-randomly seed 1234*"])


def test_secret_environment_values_are_masked(suite: pytest.Pytester,
                                              traced_env: Enable) -> None:
    report_path = traced_env()
    suite.makepyfile(test_secret="""
        import os
        def test_polluter():
            os.environ["API_TOKEN"] = "hunter2-real"
    """)
    result = run(suite, "-v")
    # The source line is the user's own code and is shown as written; values are masked.
    assert "now 'hunter2-real'" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*before <missing>  ->  now '***'*"])
    assert "hunter2-real" not in report_path.read_text()
    leak = one(load_report(report_path), "binding-changed")
    assert leak["name"] == "API_TOKEN" and "***" in leak["value"]["repr"]


def test_works_without_xdist_installed(suite: pytest.Pytester, traced_env: Enable) -> None:
    traced_env()
    suite.makepyfile(test_plain="def test_x(): pass")
    run(suite, "-p", "no:xdist").assert_outcomes(passed=1)


def test_ignore_marker_same_outcome_on_and_off(suite: pytest.Pytester,
                                              traced_env: Enable) -> None:
    suite.makepyfile(test_mark="""
        import os
        import pytest

        @pytest.mark.patchtrace_ignore
        def test_known_polluter():
            os.environ["PT_MARKED"] = "1"
    """)
    run(suite, "--strict-markers").assert_outcomes(passed=1)  # tracing off
    report_path = traced_env()
    run(suite, "--strict-markers").assert_outcomes(passed=1)
    assert load_report(report_path)["leaks"] == []
