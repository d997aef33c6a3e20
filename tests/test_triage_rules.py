"""Rules found by triaging real suites by hand (docs/real-world.md, fourth triage), and the
private benchmark hook that ``benchmarks/real_suites.py`` reads.

Each rule is tested on a small suite run in a subprocess; every case that expects no leak
has a twin in the same run that expects one, so none can pass with detection off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


def _rows(report_path: Path) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return sorted((leak["kind"], leak["polluter"], leak["fixture"], leak["target"],
                   leak["name"]) for leak in load_report(report_path)["leaks"])


# -- the private benchmark hook ---------------------------------------------------------------
def test_boundary_times_are_appended_when_asked(pytester: pytest.Pytester,
                                                traced_env: Enable,
                                                tmp_path: Path) -> None:
    times = tmp_path / "times.tsv"
    times.write_text("earlier\t1.000\n")  # appended to, never truncated
    traced_env(_PATCHTRACE_BOUNDARY_TIMES=str(times))
    package_suite(pytester, {"test_x.py": """
import pytest

@pytest.fixture(scope="module")
def wide():
    yield 1

def test_one(wide, request):
    from patchtrace import pytest_plugin
    assert request.config.stash[pytest_plugin._STATE].times is not None

def test_two(wide):
    pass
"""})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    lines = times.read_text().splitlines()
    assert lines[0] == "earlier\t1.000"
    kinds = [line.split("\t")[0] for line in lines[1:]]
    assert sorted(kinds) == ["begin", "begin", "collection", "end", "end", "finish",
                             "fixture"]
    for line in lines[1:]:
        assert float(line.split("\t")[1]) >= 0.0


def test_boundary_times_cost_nothing_when_unset(pytester: pytest.Pytester,
                                                traced_env: Enable,
                                                tmp_path: Path) -> None:
    # The twin: the same traced run without the variable holds no timer (the plugin skips
    # the clock) and writes nothing; its one leak shows the run was traced.
    report_path = traced_env()
    package_suite(pytester, {"test_x.py": """
import os
from patchtrace import pytest_plugin

def test_hook_is_off(request):
    assert request.config.stash[pytest_plugin._STATE].times is None

def test_leaks():
    os.environ["PT_TRIAGE_LEFT"] = "1"
"""})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    assert [leak["name"] for leak in load_report(report_path)["leaks"]] == ["PT_TRIAGE_LEFT"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patchtrace.json"]


# -- an open wider scope's entry in sys.meta_path, swapped by a plugin ------------------------
# The rule: what an open wider scope (a module fixture, setUpClass) put into sys.meta_path
# belongs to it; a new entry of the same type that replaces it while the scope is open (a
# plugin pausing and resuming the scope's finder around each report, as pyfakefs' does) is
# still the scope's, judged when the scope ends. A scope that leaves it there is reported,
# once, as the scope's.
SWAPPING_PLUGIN = """
import sys
import pytest


class Finder:
    def find_spec(self, *args):
        return None


STATE = {"finder": None}


def install():
    STATE["finder"] = Finder()
    sys.meta_path.insert(0, STATE["finder"])


def uninstall():
    sys.meta_path.remove(STATE["finder"])
    STATE["finder"] = None


@pytest.fixture(scope="module")
def tidy_finder():
    install()
    yield
    uninstall()


@pytest.fixture(scope="module")
def leaky_finder():
    install()
    yield
    STATE["finder"] = None  # forgets to take it out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_logreport(report):
    pause = report.when == "call" and STATE["finder"] is not None
    if pause:
        uninstall()
    yield
    if pause:
        install()
"""


def test_a_wide_scopes_finder_swapped_by_a_plugin_is_the_scopes(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {
        "conftest.py": SWAPPING_PLUGIN,
        "test_a_tidy.py": """
import pytest
pytestmark = pytest.mark.usefixtures("tidy_finder")

def test_one():
    pass

def test_two():
    pass

def test_three():
    pass
""",
        "test_b_leaky.py": """
import pytest
pytestmark = pytest.mark.usefixtures("leaky_finder")

def test_one():
    pass

def test_two():
    pass
""",
        "test_c_after.py": """
import sys
import conftest

def test_after():
    assert sum(type(f) is conftest.Finder for f in sys.meta_path) == 1
""",
    })
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=6)
    rows = _rows(report_path)
    assert [row[:4] for row in rows] == [
        ("resource-changed", "test_b_leaky.py::test_one", "leaky_finder", "sys.meta_path")]
    assert "conftest.Finder object" in str(rows[0][4])


def test_a_setupclass_finder_swapped_by_a_plugin_is_the_classs(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {
        "conftest.py": SWAPPING_PLUGIN,
        "test_ut.py": """
import unittest
import conftest


class TestTidy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        conftest.install()
        cls.addClassCleanup(conftest.uninstall)

    def test_one(self):
        pass

    def test_two(self):
        pass


class TestLeaky(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        conftest.install()

    @classmethod
    def tearDownClass(cls):
        conftest.STATE["finder"] = None

    def test_one(self):
        pass

    def test_two(self):
        pass
""",
    })
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=4)
    assert [row[:4] for row in _rows(report_path)] == [
        ("resource-changed", "test_ut.py::TestLeaky::test_one", "TestLeaky.setUpClass",
         "sys.meta_path")]


# -- our own work never looks sys._getframe up at call time -------------------------------------
# attrs' test_missing_sys_getframe deletes sys._getframe; pytest's log capture then removes
# its handler, and the logging wrapper looked sys._getframe up: "internal error ... calls
# source disabled", and every later handler leak went unseen. The import hook did the same
# (an AttributeError out of find_spec, into the test's import).
def test_a_deleted_sys_getframe_disables_nothing(pytester: pytest.Pytester,
                                                 traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {
        "fresh_module_pt.py": "X = 1\n",
        "test_x.py": """
import logging
import sys

LEAKY = logging.getLogger("pt.triage.leaky")


def test_without_getframe(monkeypatch):
    monkeypatch.delattr(sys, "_getframe")
    logging.getLogger("pt.triage.tidy").addHandler(logging.NullHandler())
    logging.getLogger("pt.triage.tidy").handlers.clear()
    import fresh_module_pt
    assert fresh_module_pt.X == 1


def test_later_handler_leak():
    LEAKY.addHandler(logging.NullHandler())
""",
    })
    result = pytester.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=2)
    assert "internal error" not in result.stdout.str() + result.stderr.str()
    assert [(row[0], row[1], row[3]) for row in _rows(report_path)] == [
        ("resource-changed", "test_x.py::test_later_handler_leak", "logging")]


# -- a pytest plugin's own fixture setting the event loop -----------------------------------------
# The rule (as for bindings): a change whose last call was made by pytest or an installed
# pytest plugin's own code, with no frame of the project or of a library it called on the
# way, is the test runner's state. pytest-asyncio 0.23's event_loop fixture closes the
# test's loop and sets a fresh one as it ends (structlog, 50 async tests); the same fixture
# written in the project's conftest.py is the project's, and its loop left behind a leak.
LOOP_FIXTURE = """
import asyncio
import pytest


@pytest.fixture
def {name}():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(asyncio.new_event_loop())  # a clean loop for who comes next
"""


def test_a_pytest_plugins_own_fixture_is_the_runners(pytester: pytest.Pytester,
                                                     traced_env: Enable,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    report_path = traced_env()
    site = pytester.path / "vendor" / "site-packages"
    package_suite(pytester, {
        "vendor/site-packages/pt_loop_plugin/__init__.py": LOOP_FIXTURE.format(
            name="plugin_loop"),
        "vendor/site-packages/pt_loop_plugin-1.0.dist-info/METADATA":
            "Metadata-Version: 2.1\nName: pt-loop-plugin\nVersion: 1.0\n",
        "vendor/site-packages/pt_loop_plugin-1.0.dist-info/entry_points.txt":
            "[pytest11]\npt_loop = pt_loop_plugin\n",
        "conftest.py": LOOP_FIXTURE.format(name="project_loop"),
        "test_loops.py": """
def test_a_with_the_plugins_loop(plugin_loop):
    assert plugin_loop.run_until_complete(_answer()) == 42


def test_b_with_the_projects_loop(project_loop):
    assert project_loop.run_until_complete(_answer()) == 42


async def _answer():
    return 42
""",
    })
    monkeypatch.setenv("PYTHONPATH", str(site))
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    assert [(row[0], row[1], row[3], row[4]) for row in _rows(report_path)] == [
        ("resource-changed", "test_loops.py::test_b_with_the_projects_loop", "asyncio",
         "event_loop")]


# -- a logger put back as it was before the first leak on it ---------------------------------------
# The rule (issue 13: "a test that puts the original back is never a leak"), for loggers: a
# logger's state is compared by value (level, propagate, disabled; its handlers by
# identity), and one change that disabled many loggers at once (twine's autouse fixture
# calls dictConfig, which disables every existing logger) remembers each logger's state
# before it. twine's CLI tests then call dictConfig(disable_existing_loggers=False), which
# enables them all again: 15 reports of loggers put back as they were.
def test_a_logger_put_back_as_it_was_is_a_repair(pytester: pytest.Pytester,
                                                 traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {"test_loggers.py": """
import logging

LOGGERS = [logging.getLogger(f"pt.lib.{n}") for n in "abc"]


def test_1_disables_them():
    for logger in LOGGERS:
        logger.disabled = True


def test_2_enables_them_again():
    for logger in LOGGERS:
        logger.disabled = False


def test_3_disables_one():
    LOGGERS[0].disabled = True


def test_4_enables_it_again():
    LOGGERS[0].disabled = False


def test_5_changes_a_level():
    LOGGERS[1].setLevel(logging.DEBUG)
"""})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=5)
    rows = [(row[1].split("::")[-1], row[4]) for row in _rows(report_path)]
    assert sorted(rows) == [("test_1_disables_them", "pt.lib.a"),
                            ("test_3_disables_one", "pt.lib.a"),
                            ("test_5_changes_a_level", "pt.lib.b")]


# -- a binding an open wider scope set, taken off and put back around each report ----------------
# The rule: a binding that an open wider scope (a module fixture, setUpClass) set is the
# scope's while it is open. A plugin's hook that takes the scope's patch off and puts an
# equal one back around each call report (pyfakefs' pause/resume: a new bound method of
# the same function on the same fake module), and the scope's finalizer putting the old
# value back in the teardown of its last test, leave nothing of the test's (pyfakefs on
# 3.12: 175 reports). The scope that leaves its patch is reported when it ends; a test
# that sets another value on such a binding is still reported.
PAUSING_PLUGIN = """
import pytest
import target_mod


class Fake:
    def exists(self, path):
        return True


STATE = {"fake": None, "saved": None}


def patch():
    target_mod.exists = STATE["fake"].exists  # a new bound method every time


def unpatch():
    target_mod.exists = STATE["saved"]


def start():
    STATE["fake"], STATE["saved"] = Fake(), target_mod.exists
    patch()


@pytest.fixture(scope="module")
def tidy_fake():
    start()
    yield
    unpatch()
    STATE["fake"] = None


@pytest.fixture(scope="module")
def leaky_fake():
    start()
    yield
    STATE["fake"] = None  # forgets to put target_mod.exists back


@pytest.fixture(scope="module")
def limit():
    target_mod.LIMIT = 5
    yield
    target_mod.LIMIT = 3


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_logreport(report):
    pause = report.when == "call" and STATE["fake"] is not None
    if pause:
        unpatch()
    yield
    if pause:
        patch()
"""


def test_a_wide_scopes_binding_paused_and_resumed_is_the_scopes(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {
        "target_mod.py": "import os\n\nexists = os.path.exists\nLIMIT = 3\n",
        "conftest.py": PAUSING_PLUGIN,
        "test_a_tidy.py": """
import pytest
pytestmark = pytest.mark.usefixtures("tidy_fake")

def test_one():
    pass

def test_two():
    pass

def test_three():
    pass
""",
        "test_b_leaky.py": """
import pytest
pytestmark = pytest.mark.usefixtures("leaky_fake")

def test_one():
    pass

def test_two():
    pass
""",
        "test_c_limit.py": """
import pytest
import target_mod
pytestmark = pytest.mark.usefixtures("limit")

def test_sets_another_limit():
    target_mod.LIMIT = 7

def test_reads_the_limit():
    assert target_mod.LIMIT == 7
""",
    })
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=7)
    assert {(row[1], row[2], row[3], row[4]) for row in _rows(report_path)} == {
        ("test_b_leaky.py::test_one", "leaky_fake", "module:target_mod", "exists"),
        ("test_c_limit.py::test_sets_another_limit", None, "module:target_mod", "LIMIT")}


# -- the state before the scope, when a recorded store came before the module's own --------------
# The rule: the value to compare with is the one from before the scope's first store, be it
# recorded (a fixture's) or the module's own (a reload re-running its body). pyfakefs'
# fixture patches example.Path, reloads example (whose own code then stores a fake Path),
# and puts the real Path back at teardown: on 3.12 the module's own store was taken as the
# first, and the real Path put back was reported as a change from the fake.
def test_a_recorded_store_before_the_modules_own_sets_the_baseline(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {
        "helper.py": "class Real:\n    pass\n\n\nCURRENT = Real()\n",
        "mod.py": "import helper\n\nVALUE = helper.CURRENT\n",
        "conftest.py": """
import importlib
import pytest
import helper
import mod


class Fake:
    pass


def swap():
    original = mod.VALUE
    mod.VALUE = Fake()                # a recorded store
    saved, helper.CURRENT = helper.CURRENT, Fake()
    importlib.reload(mod)             # the module's own store, over the recorded one
    helper.CURRENT = saved
    return original


@pytest.fixture
def tidy():
    original = swap()
    yield
    mod.VALUE = original              # the real one back


@pytest.fixture
def leaky():
    swap()
    yield
    mod.VALUE = Fake()                # another object left in place
""",
        "fresh_pt.py": "X = 1\n",
        "test_x.py": """
import sys


def test_a_tidy(tidy):
    pass


def test_a_imports_and_drops_a_module():  # absent before and after: nothing
    import fresh_pt
    del sys.modules["fresh_pt"]


def test_b_leaky(leaky):
    pass
""",
    })
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=3)
    assert [(row[1], row[3], row[4]) for row in _rows(report_path)] == [
        ("test_x.py::test_b_leaky", "module:mod", "VALUE")]


# -- os.environ rebound to an equal dict ---------------------------------------------------------
# The rule: the environment is compared by its content, whatever mapping os.environ is bound
# to. sh's FunctionalTests.tearDown does `os.environ = self._environ` (a dict copy): the
# binding os.environ changed (a true leak: later writes no longer reach child processes),
# but no variable did; patchtrace compared the bytes-keyed os.environ._data with the
# str-keyed dict and reported every variable as removed or added (38 reports in sh).
def test_os_environ_rebound_to_an_equal_copy_changes_no_variable(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    package_suite(pytester, {"test_env.py": """
import os


def test_a_rebinds_to_an_equal_copy():
    saved = os.environ.copy()
    os.environ = saved


def test_b_adds_a_variable_to_the_copy():
    os.environ["PT_TRIAGE_NEW"] = "1"
"""})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    assert [(row[0], row[1].split("::")[-1], row[3], row[4])
            for row in _rows(report_path)] == [
        ("binding-changed", "test_a_rebinds_to_an_equal_copy", "module:os", "environ"),
        ("binding-changed", "test_b_adds_a_variable_to_the_copy", "os.environ",
         "PT_TRIAGE_NEW")]
