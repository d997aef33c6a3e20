"""State a test can leave that is not a binding: every logger, signal handlers, the asyncio
event loop, sys.path copies, sys attributes and module keys created or removed. Each kind
has a polluter, a victim that fails only after it, and a clean twin (the same code, undone
properly) that leaves nothing; each leak names its line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from patchtrace.boundary import snapshot

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


def line(source: str, marker: str) -> int:
    """The line number of ``# LINE:marker`` in ``source`` as written to its file."""
    return next(i for i, text in enumerate(source.splitlines(), 1)
                if text.endswith(f"# LINE:{marker}"))


def dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def run_suite(pytester: pytest.Pytester, files: dict[str, str],
              *args: str) -> pytest.RunResult:
    package_suite(pytester, files)
    return pytester.runpytest_subprocess(*args, timeout=120)


def rows(report_path: Path) -> set[tuple[str, str, str | None, str | None, int | None]]:
    """(kind, polluter function, target, name, where.line) of every leak."""
    return {(leak["kind"], leak["polluter"].split("::")[-1], leak["target"], leak["name"],
             leak["where"]["line"] if leak["where"] else None)
            for leak in load_report(report_path)["leaks"]}


def failed(result: pytest.RunResult) -> set[str]:
    """The test functions the short summary lists as failed."""
    return {text.split("::")[-1].split(" ")[0] for text in result.outlines
            if text.startswith("FAILED ")}


LOGGING = dedent("""
    import logging
    import logging.config

    DB = logging.getLogger("app.db")  # exists before any test: dictConfig disables it


    def test_dictconfig_twin():
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


    def test_dictconfig_polluter():
        logging.config.dictConfig({"version": 1})  # LINE:dictconfig


    def test_victim_of_dictconfig(caplog):
        logging.getLogger("app.db").warning("lost")
        assert "lost" in caplog.text


    def test_handler_polluter():
        logging.getLogger("app.web").addHandler(logging.StreamHandler())  # LINE:handler


    def test_handler_twin():
        handler = logging.StreamHandler()
        logging.getLogger("app.api").addHandler(handler)
        logging.getLogger("app.api").removeHandler(handler)


    def test_level_polluter():
        logging.getLogger("app.jobs").setLevel(logging.ERROR)  # LINE:level


    def test_victim_of_level(caplog):
        caplog.set_level(logging.INFO)
        logging.getLogger("app.jobs").info("started")
        assert "started" in caplog.text


    def test_level_twin():
        logger = logging.getLogger("app.mail")
        logger.setLevel(logging.ERROR)
        logger.setLevel(logging.NOTSET)


    def test_propagate_polluter():
        logging.getLogger("app.cache").propagate = False  # LINE:propagate


    def test_propagate_twin():
        logging.getLogger("app.queue").propagate = False
        logging.getLogger("app.queue").propagate = True


    def test_uses_caplog_and_a_new_quiet_logger(caplog):  # pytest's own handler, a fresh logger
        logging.getLogger("app.fresh").info("x")
""")


def test_every_logger(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    result = run_suite(pytester, {"test_log.py": LOGGING})
    result.assert_outcomes(passed=9, failed=2)
    assert failed(result) == {"test_victim_of_dictconfig", "test_victim_of_level"}
    found = {row for row in rows(report_path) if (row[3] or "").startswith("app")}
    assert found == {
        ("resource-changed", "test_dictconfig_polluter", "logging", "app.db",
         line(LOGGING, "dictconfig")),
        ("resource-changed", "test_handler_polluter", "logging", "app.web",
         line(LOGGING, "handler")),
        ("resource-changed", "test_level_polluter", "logging", "app.jobs",
         line(LOGGING, "level")),
        # an attribute store: no call to wrap; the snapshot finds it, the test's source
        # has the line
        ("resource-changed", "test_propagate_polluter", "logging", "app.cache",
         line(LOGGING, "propagate")),
    }
    # Only the polluters: no twin, no caplog handler, no new quiet logger, nothing else.
    assert {row[1] for row in rows(report_path)} == {
        "test_dictconfig_polluter", "test_handler_polluter", "test_level_polluter",
        "test_propagate_polluter"}
    leak = next(leak for leak in load_report(report_path)["leaks"] if leak["name"] == "app.db")
    # One finding for one dictConfig call, however many loggers it disabled (the ones
    # pytest and the standard library made exist too), named by the first of them.
    assert re.match(r"\"\d+ loggers enabled: 'app.db', ", leak["before"]["repr"])
    assert re.match(r"\"\d+ loggers disabled: 'app.db', ", leak["value"]["repr"])
    handler = next(leak for leak in load_report(report_path)["leaks"]
                   if leak["name"] == "app.web")
    assert "disabled=False handlers=[]" in handler["before"]["repr"]
    assert "handlers=[<StreamHandler" in handler["value"]["repr"]
    assert "disable_existing_loggers=False" in handler["fix"]
    # the victims pass alone: they fail only after their polluter
    alone = pytester.runpytest_subprocess("-k", "victim", timeout=120)
    alone.assert_outcomes(passed=2, deselected=9)


OTHERS = dedent("""
    import asyncio
    import signal
    import sys
    import warnings


    def test_signal_polluter():
        signal.signal(signal.SIGUSR1, lambda *args: None)  # LINE:signal


    def test_victim_of_signal():
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


    def test_signal_twin():
        old = signal.signal(signal.SIGUSR2, lambda *args: None)
        signal.signal(signal.SIGUSR2, old)


    def test_loop_polluter():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # LINE:loop
        loop.close()


    def test_victim_of_loop():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = asyncio.get_event_loop()
        try:
            assert not loop.is_closed()
        finally:
            loop.close()
            asyncio.set_event_loop(None)


    def test_loop_twin():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.close()
        asyncio.set_event_loop(None)


    def test_tracebacklimit_polluter():
        sys.tracebacklimit = 0  # LINE:tracebacklimit


    def test_victim_of_tracebacklimit():
        assert not hasattr(sys, "tracebacklimit")


    def test_tracebacklimit_twin():
        sys.tracebacklimit = 5
        del sys.tracebacklimit


    def test_recursionlimit_polluter():
        sys.setrecursionlimit(sys.getrecursionlimit() + 7)  # LINE:recursion


    def test_recursionlimit_twin():
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(old + 9)
        sys.setrecursionlimit(old)
""")


def test_signals_loop_and_sys(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    result = run_suite(pytester, {"test_other.py": OTHERS})
    result.assert_outcomes(passed=8, failed=3)
    assert failed(result) == {"test_victim_of_signal", "test_victim_of_loop",
                              "test_victim_of_tracebacklimit"}
    assert rows(report_path) == {
        ("resource-changed", "test_signal_polluter", "signal", "SIGUSR1",
         line(OTHERS, "signal")),
        ("resource-changed", "test_loop_polluter", "asyncio", "event_loop",
         line(OTHERS, "loop")),
        ("binding-changed", "test_tracebacklimit_polluter", "module:sys", "tracebacklimit",
         line(OTHERS, "tracebacklimit")),
        ("resource-changed", "test_recursionlimit_polluter", "module:sys", "recursionlimit",
         line(OTHERS, "recursion")),
    }
    loop = next(leak for leak in load_report(report_path)["leaks"]
                if leak["target"] == "asyncio")
    assert "closed=True" in loop["value"]["repr"]
    alone = pytester.runpytest_subprocess("-k", "victim", timeout=120)
    alone.assert_outcomes(passed=3, deselected=8)


PATH_CONFTEST = dedent("""
    import os
    import sys
    import pytest

    LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
    if LIB not in sys.path:
        sys.path.append(LIB)  # once, as the suite starts


    @pytest.fixture
    def lib_first():
        sys.path.insert(0, LIB)  # LINE:fixture
        yield


    @pytest.fixture
    def lib_first_tidy():
        sys.path.insert(0, LIB)
        yield
        sys.path.remove(LIB)
""")
PATH_TESTS = dedent("""
    import sys
    from conftest import LIB


    def test_polluter(lib_first):
        pass


    def test_polluter_again(lib_first):  # one more copy each time
        pass


    def test_victim():
        assert sys.path.count(LIB) == 1


    def test_twin(lib_first_tidy):
        pass


    def test_own_append():
        sys.path.append(LIB)  # LINE:append
""")


def test_sys_path_copies(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    result = run_suite(pytester, {"conftest.py": PATH_CONFTEST, "test_path.py": PATH_TESTS})
    result.assert_outcomes(passed=4, failed=1)
    assert failed(result) == {"test_victim"}
    found = {(leak["polluter"].split("::")[-1], leak["target"], leak["where"]["file"],
              leak["where"]["line"], leak["before"]["repr"], leak["value"]["repr"])
             for leak in load_report(report_path)["leaks"]}
    root = repr(str(pytester.path / "lib"))
    fixture = line(PATH_CONFTEST, "fixture")
    # One more copy by each later test is the same change (kind, target, entry, type):
    # reported once, for the first test, with the later ones counted in repeats.
    assert found == {
        ("test_polluter", "sys.path", "conftest.py", fixture, repr(f"{root} x1"),
         repr(f"{root} x2")),
    }
    (leak,) = load_report(report_path)["leaks"]
    assert [t.split("::")[-1] for t in leak["repeat_tests"]] == [
        "test_polluter_again", "test_own_append"]
    assert leak["repeats"] == 2
    alone = pytester.runpytest_subprocess("-k", "victim", timeout=120)
    alone.assert_outcomes(passed=1, deselected=4)


MODULE_KEYS = dedent("""
    import pkg.mod


    def test_del_polluter():
        del pkg.mod.helper  # LINE:del


    def test_pop_polluter():
        pkg.mod.__dict__.pop("other")  # LINE:pop


    def test_victim():
        assert pkg.mod.helper() == 1 and pkg.mod.other() == 2


    def test_twin():
        saved = pkg.mod.__dict__.pop("third")
        pkg.mod.third = saved
""")


def test_module_keys_removed(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    result = run_suite(pytester, {
        "pkg/__init__.py": "",
        "pkg/mod.py": "def helper():\n    return 1\n\ndef other():\n    return 2\n\n"
                      "def third():\n    return 3\n",
        "test_keys.py": MODULE_KEYS})
    result.assert_outcomes(passed=3, failed=1)
    assert rows(report_path) == {
        ("binding-changed", "test_del_polluter", "module:pkg.mod", "helper",
         line(MODULE_KEYS, "del")),
        ("binding-changed", "test_pop_polluter", "module:pkg.mod", "other",
         line(MODULE_KEYS, "pop")),
    }


# -- unit: the logger snapshot --------------------------------------------------------------
@pytest.fixture
def loggers() -> Any:
    names = [f"pt_unit.l{i}" for i in range(50)]
    made = [logging.getLogger(name) for name in names]
    yield made
    for logger in made:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate, logger.disabled = True, False


def test_logger_changes_by_state(loggers: list[logging.Logger]) -> None:
    first = snapshot.take()
    assert [c for c in snapshot.diff(first, snapshot.take()) if c.target == "logging"] == []
    handler = logging.NullHandler()
    loggers[3].addHandler(handler)
    loggers[4].disabled = True
    loggers[5].handlers.append(handler)  # in place, no addHandler
    loggers[6].handlers = [handler]  # rebound
    second = snapshot.take()
    changed = {c.name: c for c in snapshot.diff(first, second) if c.target == "logging"}
    assert set(changed) == {"pt_unit.l3", "pt_unit.l4", "pt_unit.l5", "pt_unit.l6"}
    assert all(c.target == "logging" and c.kind == "resource-changed"
               for c in changed.values())
    assert "disabled=True" in repr(changed["pt_unit.l4"].after)
    # A swap of one handler for another, same count: still seen (identity, never ==).
    loggers[3].removeHandler(handler)
    loggers[3].addHandler(logging.NullHandler())
    assert [c.name for c in snapshot.diff(second, snapshot.take())
            if c.target == "logging"] == ["pt_unit.l3"]


def test_a_new_logger_needs_a_line_and_a_quiet_one_is_nothing() -> None:
    before = snapshot.take()
    quiet = logging.getLogger("pt_unit.new.quiet")
    library = logging.getLogger("pt_unit.new.library")
    library.addHandler(logging.NullHandler())  # the library idiom: nothing
    loud = logging.getLogger("pt_unit.new.loud")
    loud.setLevel(logging.DEBUG)
    try:
        changes = snapshot.diff(before, snapshot.take())
    finally:
        loud.setLevel(logging.NOTSET)
    assert [(c.name, c.needs_line) for c in changes
            if c.target == "logging"] == [("pt_unit.new.loud", True)]
    assert quiet.handlers == []


def test_logger_snapshot_reuses_unchanged_parts_with_2000_loggers() -> None:
    """With 2,000 loggers an unchanged process is compared without listing them again (the
    cost itself is measured by benchmarks/bench_resources.py, not asserted here)."""
    for i in range(2000):
        logging.getLogger(f"pt_cost.p{i % 40}.m{i}")
    snapshot.take()
    rebuilds = snapshot._loggers.rebuilds
    first, second = snapshot.take(), snapshot.take()
    parts = zip(first.logging[:3], second.logging[:3], strict=True)  # type: ignore[index]
    assert all(a is b for a, b in parts)  # names, handlers, attributes: skipped by identity
    assert snapshot.diff(first, second) == []
    assert snapshot._loggers.rebuilds == rebuilds, "loggerDict did not change"
    logging.getLogger("pt_cost.one_more")
    snapshot.take()
    assert snapshot._loggers.rebuilds == rebuilds + 1  # control: a new logger is listed


def test_reading_the_event_loop_creates_nothing_and_warns_nothing() -> None:
    import asyncio
    import warnings

    events = sys.modules["asyncio.events"]
    policy_before = events.__dict__.get("_event_loop_policy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        snapshot.take()
    assert events.__dict__.get("_event_loop_policy") is policy_before
    loop = asyncio.new_event_loop()
    try:
        before = snapshot.take()
        asyncio.set_event_loop(loop)
        changes = snapshot.diff(before, snapshot.take())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    changes = [c for c in changes if c.target == "asyncio"]
    assert [(c.target, c.name) for c in changes] == [("asyncio", "event_loop")]
    assert changes[0].after is loop


CALLS = dedent("""
    import asyncio
    import locale
    import logging
    import socket

    LOCALE = locale.setlocale(locale.LC_ALL)


    class Policy(asyncio.DefaultEventLoopPolicy):
        pass


    def test_basicconfig_twin():
        root = logging.getLogger()
        saved = root.handlers[:], root.level
        logging.basicConfig(level=logging.DEBUG, force=True)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


    def test_basicconfig_polluter():
        logging.basicConfig(level=logging.DEBUG, force=True)  # LINE:basicconfig


    def test_victim_of_basicconfig():  # pytest's own handlers are subclasses
        assert not [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]


    def test_policy_twin():
        saved = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(Policy())
        asyncio.set_event_loop_policy(saved)


    def test_policy_polluter():
        asyncio.set_event_loop_policy(Policy())  # LINE:policy


    def test_victim_of_policy():
        assert type(asyncio.get_event_loop_policy()) is not Policy


    def test_timeout_twin():
        socket.setdefaulttimeout(5)
        socket.setdefaulttimeout(None)


    def test_timeout_polluter():
        socket.setdefaulttimeout(3)  # LINE:timeout


    def test_victim_of_timeout():
        assert socket.getdefaulttimeout() is None


    def test_locale_twin():
        old = locale.setlocale(locale.LC_ALL)
        locale.setlocale(locale.LC_ALL, "C")
        locale.setlocale(locale.LC_ALL, old)


    def test_locale_polluter():
        locale.setlocale(locale.LC_ALL, "C")  # LINE:locale


    def test_victim_of_locale():
        assert locale.setlocale(locale.LC_ALL) == LOCALE


    def test_pytests_own_logging(caplog):  # log_cli, log_file, caplog: never reported
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.INFO, logger="app.z")
        logging.getLogger("app.z").info("x")
""")


def test_more_calls_and_pytests_own_logging(pytester: pytest.Pytester, traced_env: Enable,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    report_path = traced_env()
    files = {"test_calls.py": CALLS}
    package_suite(pytester, files)
    # Run under a C.UTF-8 locale so that setlocale(LC_ALL, "C") is a change.
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    options = ("-o", "log_cli=true", "--log-level=DEBUG",
               f"--log-file={pytester.path / 'log.txt'}")
    result = pytester.runpytest_subprocess(*options, timeout=120)
    result.assert_outcomes(passed=9, failed=4)
    assert failed(result) == {"test_victim_of_basicconfig", "test_victim_of_policy",
                              "test_victim_of_timeout", "test_victim_of_locale"}
    assert rows(report_path) == {
        ("resource-changed", "test_basicconfig_polluter", "logging", "root",
         line(CALLS, "basicconfig")),
        ("resource-changed", "test_policy_polluter", "asyncio", "policy",
         line(CALLS, "policy")),
        ("resource-changed", "test_timeout_polluter", "module:socket", "getdefaulttimeout()",
         line(CALLS, "timeout")),
        ("resource-changed", "test_locale_polluter", "module:locale", "setlocale()",
         line(CALLS, "locale")),
    }
    alone = pytester.runpytest_subprocess("-k", "victim", *options, timeout=120)
    alone.assert_outcomes(passed=4, deselected=9)
