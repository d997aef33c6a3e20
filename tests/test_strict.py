"""Strict mode, end to end: which test's teardown gets the error, what it says, and the
exit status. Real pytest subprocesses, as in test_plugin.py (in-process runs would restore
sys.modules themselves and hide what we trace)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from patchtrace.pytest_plugin import PatchtraceLeakError

from .conftest import load_report, package_suite

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
    return package_suite(pytester, PKG)


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
        "patchtrace (strict): this test leaked pkg.mod.func and 1 more:",
        f"  L1 patch-not-stopped: patch('pkg.mod.func') started at test_own.py:5 was never "
        f"stopped; {FIX}",
        lit("  L2 binding-changed: os.environ['PT_MODE'] changed at test_own.py:6: <missing> "
            "-> 'fast'; restore it in teardown*"),
        "*short test summary info*",
        "ERROR test_own.py::test_polluter - patchtrace (strict): this test leaked*",
    ])
    assert_no_internals(result)
    assert "ERROR test_own.py::test_clean" not in result.stdout.str()
    assert 'message="failed on teardown with &quot;patchtrace (strict): this test leaked ' \
           'pkg.mod.func and 1 more:&quot;"' in junit.read_text()
    # The error quotes the leaked value; that does not make the polluter its own victim.
    leaks = load_report(report_path)["leaks"]
    assert [(leak["polluter"], leak["victims"]) for leak in leaks] == [
        ("test_own.py::test_polluter", []), ("test_own.py::test_polluter", [])]


def test_a_teardown_that_already_failed_gets_no_second_error(suite: pytest.Pytester,
                                                             traced_env: Enable) -> None:
    traced_env("strict")
    suite.makepyfile(test_broken="""
        import pytest
        from unittest import mock

        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("teardown broke")

        def test_polluter(broken):
            mock.patch("pkg.mod.func").start()
    """)
    result = run(suite)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: teardown broke*", "*patchtrace: 1 leak*"])
    assert "patchtrace (strict): this test leaked" not in result.stdout.str()


# -- fixtures of wider scope ---------------------------------------------------------------------
WIDE_MODULE = """
    import pytest
    from unittest import mock

    @pytest.fixture(scope="module")
    def patched():
        mock.patch("pkg.mod.func").start()
        yield

    def test_first(patched):
        pass

    def test_second(patched):
        pass

    def test_last():
        pass
"""


@pytest.mark.parametrize("args", [(), ("-n", "2", "--dist", "loadfile")],
                         ids=["one-process", "xdist"])
def test_a_module_fixture_leak_fails_the_test_that_finalized_it(
        suite: pytest.Pytester, traced_env: Enable, args: tuple[str, ...]) -> None:
    """pytest finalizes a module fixture in the teardown of the module's last test: the
    error is raised there; the report still blames the test whose setup ran it."""
    report_path = traced_env("strict")
    suite.makepyfile(test_wide=WIDE_MODULE)
    result = run(suite, *args)
    result.assert_outcomes(passed=3, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_last*",
        "patchtrace (strict): fixture 'patched' leaked pkg.mod.func:",
        "  set up by test_wide.py::test_first (module scope), finalized in this test's teardown",
        f"  {'gw?-' if args else ''}L1 patch-not-stopped: patch('pkg.mod.func') started at "
        f"test_wide.py:6 was never stopped; {FIX}",
        "*short test summary info*",
        "ERROR test_wide.py::test_last - patchtrace (strict): fixture 'patched' leaked*",
    ])
    assert_no_internals(result)
    [leak] = load_report(report_path)["leaks"]
    assert (leak["polluter"], leak["fixture"], leak["phase"]) == (
        "test_wide.py::test_first", "patched", "setup")


def test_class_and_session_fixture_leaks_fail_the_test_that_finalized_them(
        suite: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env("strict")
    suite.makeconftest("""
        import os
        import pytest

        @pytest.fixture(scope="session")
        def everywhere():
            os.environ["PT_SESSION_WIDE"] = "1"
            yield
    """)
    suite.makepyfile(test_a_class="""
        import pytest
        from unittest import mock

        class TestGroup:
            @pytest.fixture(scope="class", autouse=True)
            @classmethod
            def patched(cls):
                mock.patch("pkg.mod.func").start()
                yield

            def test_in_class(self, everywhere):
                pass

            def test_last_in_class(self):
                pass

        def test_after_class():
            pass
    """, test_b_end="""
        def test_last_of_all():
            pass
    """)
    result = run(suite)
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of TestGroup.test_last_in_class*",
        "patchtrace (strict): fixture 'patched' leaked pkg.mod.func:",
        "  set up by test_a_class.py::TestGroup::test_in_class (class scope), finalized in "
        "this test's teardown",
        "*ERROR at teardown of test_last_of_all*",
        "patchtrace (strict): fixture 'everywhere' leaked os.environ['PT_SESSION_WIDE']:",
        "  set up by test_a_class.py::TestGroup::test_in_class (session scope), finalized in "
        "this test's teardown",
        lit("  L2 binding-changed: os.environ['PT_SESSION_WIDE'] changed at conftest.py:6:*"),
    ])
    assert_no_internals(result)
    leaks = load_report(report_path)["leaks"]
    assert [(leak["fixture"], leak["polluter"]) for leak in leaks] == [
        ("patched", "test_a_class.py::TestGroup::test_in_class"),
        ("everywhere", "test_a_class.py::TestGroup::test_in_class")]


def test_a_fixture_finalized_while_the_next_test_is_set_up(suite: pytest.Pytester,
                                                           traced_env: Enable) -> None:
    """A parametrized module fixture is finalized in the setup of the first test of the
    next parameter: that test runs, and its teardown says the fixture was finalized in
    its setup."""
    traced_env("strict")
    suite.makepyfile(test_param="""
        import pytest
        from unittest import mock

        @pytest.fixture(scope="module", params=["a", "b"])
        def patched(request):
            mock.patch("pkg.mod.func", name=request.param).start()
            yield

        def test_it(patched):
            pass

        def test_other(patched):
            pass
    """)
    result = run(suite)
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines([
        lit("*ERROR at teardown of test_it[b]*"),
        "patchtrace (strict): fixture 'patched' leaked pkg.mod.func:",
        lit("  set up by test_param.py::test_it[a] (module scope), finalized in this test's "
            "setup"),
        lit("*ERROR at teardown of test_other[b]*"),
        "patchtrace (strict): fixture 'patched' leaked pkg.mod.func:",
        lit("  set up by test_param.py::test_it[b] (module scope), finalized in this test's "
            "teardown"),
    ])


# -- mocks confirmed as survivors after their test ended ------------------------------------------
SURVIVOR = """
    import gc
    from unittest import mock
    import pkg.cache

    def test_polluter():
        pkg.cache.remember("k", mock.MagicMock(name="Escaped"))

    def test_innocent():
        gc.collect()  # the full collection that confirms test_polluter's mock

    def test_after():
        pass
"""


@pytest.mark.parametrize("mode", ["strict", "report"])
def test_a_survivor_confirmed_later_fails_no_innocent_test(suite: pytest.Pytester,
                                                           traced_env: Enable,
                                                           mode: str) -> None:
    report_path = traced_env(mode)
    suite.makepyfile(test_survivor=SURVIVOR)
    result = run(suite)
    result.assert_outcomes(passed=3)
    [leak] = load_report(report_path)["leaks"]
    assert (leak["kind"], leak["polluter"]) == ("mock-survived", "test_survivor.py::test_polluter")
    result.stdout.fnmatch_lines(["*patchtrace: 1 leak from 1 polluter*",
                                 "test_survivor.py::test_polluter"])
    assert "PatchtraceLeakError" not in result.stdout.str()
    if mode == "strict":
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            ["patchtrace (strict): no test failed, but these leaks fail the run (exit status 1)"])
    else:
        assert result.ret == pytest.ExitCode.OK
        assert "patchtrace (strict)" not in result.stdout.str()


def test_a_later_polluter_is_told_only_of_its_own_leak(suite: pytest.Pytester,
                                                       traced_env: Enable) -> None:
    traced_env("strict")
    suite.makepyfile(test_survivor="""
        import gc
        import os
        from unittest import mock
        import pkg.cache

        def test_polluter():
            pkg.cache.remember("k", mock.MagicMock(name="Escaped"))

        def test_later():
            gc.collect()
            os.environ["PT_LATER"] = "1"
    """)
    result = run(suite)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_later*",
        "patchtrace (strict): this test leaked os.environ['PT_LATER']:",
        lit("  L? binding-changed: os.environ['PT_LATER'] changed at test_survivor.py:11:*"),
        "*patchtrace: 2 leaks from 2 polluters*",
    ])
    assert "Escaped" not in errors_section(result)


def test_the_marker_does_not_hide_another_tests_survivor(suite: pytest.Pytester,
                                                         traced_env: Enable) -> None:
    """patchtrace_ignore drops the marked test's own leaks, not an earlier test's mock
    that happened to be confirmed at the marked test's boundary."""
    report_path = traced_env("strict")
    suite.makepyfile(test_marked="""
        import gc
        import os
        import pytest
        from unittest import mock
        import pkg.cache

        def test_polluter():
            pkg.cache.remember("k", mock.MagicMock(name="Escaped"))

        @pytest.mark.patchtrace_ignore
        def test_marked():
            gc.collect()
            os.environ["PT_MARKED"] = "1"
    """)
    result = run(suite)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [leak] = load_report(report_path)["leaks"]
    assert (leak["kind"], leak["polluter"]) == ("mock-survived", "test_marked.py::test_polluter")


# -- the exit status ------------------------------------------------------------------------------
CLEAN = """
    from unittest import mock

    def test_clean():
        with mock.patch("pkg.mod.func"):
            pass
"""

CONFTEST_LEAK = """
    import os
    os.environ["PT_FROM_CONFTEST"] = "1"
"""

IGNORED = """
    import os
    import pytest

    @pytest.mark.patchtrace_ignore
    def test_marked():
        os.environ["PT_MARKED"] = "1"

    def test_ignored_by_name():
        os.environ["PT_IGNORED"] = "1"
"""

LEFT_TO_THE_END = """
    from unittest import mock
    import pkg.cache

    def test_polluter():
        pkg.cache.remember("k", mock.MagicMock(name="Escaped"))
"""


@pytest.mark.parametrize(("conftest", "tests", "ret"), [
    pytest.param(None, CLEAN, pytest.ExitCode.OK, id="clean"),
    pytest.param(None, IGNORED, pytest.ExitCode.OK, id="ignored"),
    pytest.param(CONFTEST_LEAK, CLEAN, pytest.ExitCode.TESTS_FAILED, id="collection"),
    pytest.param(None, LEFT_TO_THE_END, pytest.ExitCode.TESTS_FAILED, id="survivor-at-the-end"),
])
def test_a_strict_run_fails_exactly_when_a_leak_is_reported(
        suite: pytest.Pytester, traced_env: Enable, conftest: str | None, tests: str,
        ret: pytest.ExitCode) -> None:
    """Leaks no test raised (at collection, confirmed at the end) fail the run; ignored
    leaks do not."""
    report_path = traced_env("strict", PATCHTRACE_IGNORE="os.environ:PT_IGNORED")
    if conftest is not None:
        suite.makeconftest(conftest)
    suite.makepyfile(test_exit=tests)
    result = run(suite)
    result.assert_outcomes(passed=tests.count("def test_"))  # no test is failed for these
    leaks = load_report(report_path)["leaks"]
    assert result.ret == ret, leaks
    assert bool(leaks) == (ret != pytest.ExitCode.OK)
    if leaks:
        result.stdout.fnmatch_lines([
            f"*patchtrace: {len(leaks)} leak*",
            "patchtrace (strict): no test failed, but these leaks fail the run (exit status 1)",
        ])
    else:
        result.stdout.fnmatch_lines(["*patchtrace: no leaks in*"])


def test_report_mode_never_changes_an_outcome(suite: pytest.Pytester,
                                              traced_env: Enable) -> None:
    report_path = traced_env("1")
    suite.makepyfile(test_wide=WIDE_MODULE, test_survivor=SURVIVOR, test_own="""
        from unittest import mock

        def test_polluter():
            mock.patch("pkg.mod.func").start()
    """)
    result = run(suite)
    result.assert_outcomes(passed=7)
    assert result.ret == pytest.ExitCode.OK
    leaks = load_report(report_path)["leaks"]
    # test_own's patch of pkg.mod.func is the same change as test_wide's: one leak, repeated
    assert len(leaks) == 2 and sum(leak["repeats"] for leak in leaks) == 1
