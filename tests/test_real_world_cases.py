"""False alarms found on real suites (docs/real-world.md), each reduced to a small case.

Every case here is the standard library, the import system or an installed library
managing its own state: none of them is a test's pollution, so none is a leak.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import load_report

CASES = {
    "asyncio_policy": """
        import asyncio

        def test_reads_the_policy():  # creates the default policy lazily
            assert asyncio.get_event_loop_policy() is not None
    """,
    "class_annotations": """
        import abc

        def test_reads_annotations():  # stores an empty __annotations__ in abc.ABC
            assert getattr(abc.ABC, "__annotations__", None) == {}
    """,
    "import_side_effects": """
        def test_uses_library():  # the library rewrites sys.modules as it is imported
            import aliaslib  # noqa: F401
    """,
    "warnings_registry": """
        import pytest
        import oldapi

        def test_calls_deprecated_api():  # warn() keeps __warningregistry__ in our globals
            with pytest.deprecated_call():
                assert oldapi.old_api() == 1
    """,
    "syspath_rebound": """
        import sys

        def test_restores_by_rebinding():  # same entries, new list object
            saved = list(sys.path)
            sys.path.append("/nonexistent")
            sys.path = saved
    """,
    "syspath_duplicate": """
        import sys
        import pathhelper

        def test_inserts_an_entry_already_there():  # as pytest's Package.setup can
            pathhelper.prepend(sys.path[-1])  # no statement of the test's edits sys.path
    """,
    "pytester_inner_run": """
        pytest_plugins = "pytester"

        def test_inner_run(pytester):  # our report modules, dropped by pytester's restore
            pytester.makepyfile("def test_ok():\\n    assert True\\n")
            pytester.runpytest().assert_outcomes(passed=1)
    """,
}

ALIASLIB = '''
import sys, types

class _Lazy(types.ModuleType):
    pass

sys.modules["aliaslib_compat"] = sys.modules["json"]  # like requests.packages
_new = _Lazy(__name__)
_new.__dict__.update(sys.modules[__name__].__dict__)
sys.modules[__name__] = _new  # like pygments.lexers
'''
PATHHELPER = '''
import sys

def prepend(entry):  # like _pytest.pathlib.import_path: sys.path[0] is not the root
    sys.path.insert(0, entry)
'''
OLDAPI = '''
import warnings

def old_api():
    warnings.warn("old_api is deprecated", DeprecationWarning, stacklevel=2)
    return 1
'''


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_leak(case: str, pytester: pytest.Pytester,
                 traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    pytester.path.joinpath("aliaslib.py").write_text(ALIASLIB)
    pytester.path.joinpath("oldapi.py").write_text(OLDAPI)
    pytester.path.joinpath("pathhelper.py").write_text(PATHHELPER)
    pytester.makepyfile(**{f"test_{case}": CASES[case]})
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1)
    leaks = load_report(report_path)["leaks"]
    if case == "pytester_inner_run":
        # Modules the inner run imported for the first time and pytester's restore then
        # dropped, while they stay attributes of their package, are true (if harmless)
        # module-dropped leaks of pytester's: which ones depends on the Python and the
        # plugins installed. patchtrace's own modules must not be among them.
        leaks = [leak for leak in leaks if leak["kind"] != "module-dropped"
                 or leak["name"].startswith("patchtrace")]
    assert leaks == []


def test_libraries_adjusting_their_own_functions(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # hypothesis rewrites __code__ of functions it generates (and of the @given wrapper),
    # and its pytest plugin sets hypothesis.core.running_under_pytest from a hook.
    pytest.importorskip("hypothesis")
    report_path = traced_env()
    pytester.makepyfile(test_h="""
        from hypothesis import given, strategies as st

        class TestX:
            @given(st.integers())
            def test_ints(self, x):
                assert isinstance(x, int)
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1)
    assert load_report(report_path)["leaks"] == []


def test_an_executor_thread_shutting_down_is_not_leaked(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # pytest-asyncio closes its loop after every async test: executor.shutdown(wait=False).
    # The worker thread is still alive right after teardown and ends a moment later.
    report_path = traced_env()
    pytester.makepyfile(test_loop="""
        import asyncio, threading, time
        import pytest

        @pytest.fixture
        def loop():
            loop = asyncio.new_event_loop()
            yield loop
            loop.close()

        def test_uses_the_default_executor(loop):
            loop.run_until_complete(loop.run_in_executor(None, time.sleep, 0.05))

        def test_leaves_a_thread_running():
            threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=2)
    leaks = load_report(report_path)["leaks"]
    assert [(leak["polluter"].split("::")[1], leak["target"]) for leak in leaks] == [
        ("test_leaves_a_thread_running", "module:threading")]


def test_a_leak_that_breaks_rich_still_gets_a_summary(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # The terminal summary renders with rich, which imports what a leak may have broken.
    traced_env()
    pytester.makepyfile(test_r="""
        import sys

        def test_blocks_rich():
            for name in [n for n in sys.modules if n == "rich" or n.startswith("rich.")]:
                del sys.modules[name]
            sys.modules["rich"] = None
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*patchtrace: 1 leak from 1 polluter*",
        "L1 binding-changed sys.modules['rich'] from test_r.py::test_blocks_rich at test_r.py:6",
    ])


def _vendor(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    """Install ``files`` as if into site-packages (a path naming site-packages)."""
    site = pytester.path / "vendor" / "site-packages"
    for path, text in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(site)!r})\n")


def test_a_library_building_itself_through_a_helper_is_not_a_leak(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # cryptography's utils.deprecated(): called by a module body, it replaces that module
    # in sys.modules while it is being imported.
    report_path = traced_env()
    _vendor(pytester, {
        "cryptolike/__init__.py": "",
        "cryptolike/utils.py": (
            "import sys, types\n"
            "class _Wrapped(types.ModuleType):\n"
            "    pass\n"
            "def deprecated(value, module_name):\n"
            "    module = sys.modules[module_name]\n"
            "    wrapped = _Wrapped(module_name)\n"
            "    wrapped.__dict__.update(module.__dict__)\n"
            "    sys.modules[module_name] = wrapped\n"
            "    return value\n"),
        "cryptolike/algorithms.py": (
            "from cryptolike import utils\n"
            "OLD = utils.deprecated(object(), __name__)\n"),
    })
    pytester.makepyfile(test_c="""
        def test_lazy_import():
            import cryptolike.algorithms  # noqa: F401
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1)
    assert load_report(report_path)["leaks"] == []


def test_a_library_decorator_on_the_test_is_not_a_plugin_hook(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # freezegun's @freeze_time wraps the test function; its stop() leaves time.clock = None.
    # Called by pytest as the test function (not by pluggy as a hook), it is the test's.
    report_path = traced_env()
    _vendor(pytester, {"freezelike/__init__.py": (
        "import functools, time\n"
        "def freeze(func):\n"
        "    @functools.wraps(func)\n"
        "    def wrapper(*args, **kwargs):\n"
        "        try:\n"
        "            return func(*args, **kwargs)\n"
        "        finally:\n"
        "            time.clock = None\n"
        "    return wrapper\n")})
    pytester.makepyfile(test_f="""
        import time
        from freezelike import freeze

        @freeze
        def test_decorated():
            assert time.time() > 0
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1)
    if sys.version_info >= (3, 12):  # 3.10/3.11 compare library modules at boundaries
        leaks = load_report(report_path)["leaks"]
        assert [(leak["polluter"], leak["target"], leak["name"]) for leak in leaks] == [
            ("test_f.py::test_decorated", "module:time", "clock")]


def test_own_global_flipped_by_the_library_and_put_back_by_a_fixture(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # attrs' validators: set_disabled() flips the module's own global (a store we do not
    # record); an autouse fixture puts the default back directly. Nothing changed.
    report_path = traced_env()
    pytester.makepyfile(settings="""
        validators_enabled = True

        def set_disabled(disabled):
            global validators_enabled
            validators_enabled = not disabled
    """, test_s="""
        import pytest
        import settings

        @pytest.fixture(autouse=True)
        def _reset_default():
            yield
            settings.validators_enabled = True

        def test_set_disabled():
            settings.set_disabled(True)
            assert settings.validators_enabled is False

        def test_value_is_back():
            assert settings.validators_enabled is True
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=2)
    assert load_report(report_path)["leaks"] == []


@pytest.mark.parametrize("capture", ["fd", "no"])
def test_stdout_left_closed_is_blamed_on_its_test(
        capture: str, pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # structlog's test_stdout_monkeypatch: capsys is torn down first, then monkeypatch's
    # undo "restores" the CaptureIO it saw, leaving sys.stdout bound to a closed stream.
    report_path = traced_env()
    pytester.makepyfile(test_out="""
        import io, sys

        def test_polluter(monkeypatch, capsys):
            monkeypatch.setattr(sys, "stdout", io.StringIO())

        def test_innocent():
            pass
    """)
    pytester.runpytest_subprocess("-p", "no:randomly", f"--capture={capture}", timeout=120)
    leaks = load_report(report_path)["leaks"]
    assert [(leak["polluter"], leak["target"], leak["name"], leak["where"]["line"])
            for leak in leaks] == [("test_out.py::test_polluter", "module:sys", "stdout", 4)]
