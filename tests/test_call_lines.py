"""A line for every change that a call made (issue 14), and the one guarded wrapper.

Each wrapped function (and each edit of an import-system list, read from the source) has a
polluter whose leak names the call's line and a clean twin, in the same run, that undoes
it and leaves nothing. A call on the same resource that did not make the change found
(a ``removeHandler`` after the ``setLevel`` that leaked, a filter added inside
``catch_warnings``) never lends it its line. The wrapper itself is tested on its own:
transparent, quiet, switched off for good by a failing part, undone exactly.
"""

from __future__ import annotations

import inspect
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from patchtrace._tracer import Tracer
from patchtrace.ledger import NOTHING
from patchtrace.sources import _wrap, calls
from patchtrace.sources._wrap import SKIP, Group, around, is_wrapper
from patchtrace.values import LoggerState, is_mock

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


def dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def line(source: str, marker: str) -> int:
    """The line number of ``# LINE:marker`` in ``source``."""
    return next(i for i, text in enumerate(source.splitlines(), 1)
                if text.endswith(f"# LINE:{marker}"))


def rows(report_path: Path) -> set[tuple[str, str, str | None, str | None, int | None]]:
    """(kind, polluter function, target, name, where.line) of every leak."""
    return {(leak["kind"], leak["polluter"].split("::")[-1], leak["target"], leak["name"],
             leak["where"]["line"] if leak["where"] else None)
            for leak in load_report(report_path)["leaks"]}


def run(pytester: pytest.Pytester, files: dict[str, str], *args: str) -> pytest.RunResult:
    package_suite(pytester, files)
    return pytester.runpytest_subprocess(*args, timeout=180)


# -- every wrapped call, in one run -----------------------------------------------------------
CALLS = dedent("""
    import asyncio
    import contextlib
    import io
    import locale
    import logging
    import logging.config
    import signal
    import socket
    import sys
    import threading
    import warnings

    PRE = logging.getLogger("lines.pre")
    PRE_HANDLER = logging.NullHandler()
    PRE.addHandler(PRE_HANDLER)  # at import: not a test's doing
    PRE2 = logging.getLogger("lines.pre2")
    PRE2_HANDLER = logging.NullHandler()
    PRE2.addHandler(PRE2_HANDLER)


    def stream():
        return logging.StreamHandler(io.StringIO())


    @contextlib.contextmanager
    def verbose(name, handler):  # the loguru conftest's make_logging_logger, in short
        logger = logging.getLogger(name)
        logger.setLevel("DEBUG")  # LINE:helper_level
        logger.addHandler(handler)
        try:
            yield logger
        finally:
            logger.removeHandler(handler)  # the handler goes; the level stays


    class Policy(asyncio.DefaultEventLoopPolicy):
        pass


    def trace(frame, event, arg):
        return None


    def test_signal_twin():
        old = signal.signal(signal.SIGUSR2, lambda *args: None)
        signal.signal(signal.SIGUSR2, old)


    def test_signal_polluter():
        signal.signal(signal.SIGUSR1, lambda *args: None)  # LINE:signal


    def test_add_handler_twin():
        logger, handler = logging.getLogger("lines.add2"), stream()
        logger.addHandler(handler)
        logger.removeHandler(handler)


    def test_add_handler_polluter():
        logging.getLogger("lines.add").addHandler(stream())  # LINE:add


    def test_remove_handler_twin():
        PRE2.removeHandler(PRE2_HANDLER)
        PRE2.addHandler(PRE2_HANDLER)


    def test_remove_handler_polluter():
        PRE.removeHandler(PRE_HANDLER)  # LINE:remove


    def test_set_level_twin():
        logger = logging.getLogger("lines.level2")
        logger.setLevel(logging.DEBUG)
        logger.setLevel(logging.NOTSET)


    def test_set_level_polluter():
        with verbose("lines.level", stream()) as logger:
            logger.debug("x")


    def test_dict_config_twin():
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,
                                   "loggers": {"lines.dict2": {"level": "DEBUG"}}})
        logging.getLogger("lines.dict2").setLevel(logging.NOTSET)


    def test_dict_config_polluter():
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False,  # LINE:dict
                                   "loggers": {"lines.dict": {"level": "DEBUG"}}})


    def test_basic_config_twin():
        root = logging.getLogger()
        saved = root.handlers[:], root.level
        logging.basicConfig(level=logging.DEBUG, force=True)
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


    def test_basic_config_polluter():
        logging.basicConfig(level=logging.DEBUG, force=True)  # LINE:basic


    def test_policy_twin():
        saved = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(Policy())
        asyncio.set_event_loop_policy(saved)


    def test_policy_polluter():
        asyncio.set_event_loop_policy(Policy())  # LINE:policy


    def test_loop_twin():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.close()
        asyncio.set_event_loop(None)


    def test_loop_polluter():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # LINE:loop
        loop.close()


    def test_recursion_twin():
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(old + 13)
        sys.setrecursionlimit(old)


    def test_recursion_polluter():
        sys.setrecursionlimit(sys.getrecursionlimit() + 11)  # LINE:recursion


    def test_timeout_twin():
        socket.setdefaulttimeout(3)
        socket.setdefaulttimeout(None)


    def test_timeout_polluter():
        socket.setdefaulttimeout(7)  # LINE:timeout


    def test_locale_twin():
        old = locale.setlocale(locale.LC_ALL)
        locale.setlocale(locale.LC_ALL, "C")
        locale.setlocale(locale.LC_ALL, old)


    def test_locale_polluter():
        locale.setlocale(locale.LC_ALL, "C")  # LINE:locale


    def test_excepthook_twin():
        old = threading.excepthook
        threading.excepthook = lambda args: None
        threading.excepthook = old


    def test_excepthook_polluter():
        threading.excepthook = lambda args: None  # LINE:excepthook


    def test_filterwarnings_twin():
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="twin")


    def test_filterwarnings_polluter():
        warnings.filterwarnings("ignore", message="lines")  # LINE:filterwarnings


    def test_settrace_twin():
        old = sys.gettrace()
        sys.settrace(trace)
        sys.settrace(old)


    def test_settrace_polluter():
        sys.settrace(trace)  # LINE:settrace


    def test_setprofile_twin():
        old = sys.getprofile()
        sys.setprofile(trace)
        sys.setprofile(old)


    def test_setprofile_polluter():
        sys.setprofile(trace)  # LINE:setprofile
""")


def test_every_wrapped_call_names_its_line(pytester: pytest.Pytester, traced_env: Enable,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    report_path = traced_env()
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # so that setlocale(LC_ALL, "C") is a change
    # pytest's warnings plugin undoes every test's filters itself: without it they leak
    result = run(pytester, {"test_calls.py": CALLS}, "-p", "no:warnings")
    result.assert_outcomes(passed=30)
    assert rows(report_path) == {
        ("resource-changed", "test_signal_polluter", "signal", "SIGUSR1", line(CALLS, "signal")),
        ("resource-changed", "test_add_handler_polluter", "logging", "lines.add",
         line(CALLS, "add")),
        ("resource-changed", "test_remove_handler_polluter", "logging", "lines.pre",
         line(CALLS, "remove")),
        # the setLevel that leaked, not the removeHandler that came after it (M1)
        ("resource-changed", "test_set_level_polluter", "logging", "lines.level",
         line(CALLS, "helper_level")),
        ("resource-changed", "test_dict_config_polluter", "logging", "lines.dict",
         line(CALLS, "dict")),
        ("resource-changed", "test_basic_config_polluter", "logging", "root",
         line(CALLS, "basic")),
        ("resource-changed", "test_policy_polluter", "asyncio", "policy", line(CALLS, "policy")),
        ("resource-changed", "test_loop_polluter", "asyncio", "event_loop", line(CALLS, "loop")),
        ("resource-changed", "test_recursion_polluter", "module:sys", "recursionlimit",
         line(CALLS, "recursion")),
        ("resource-changed", "test_timeout_polluter", "module:socket", "getdefaulttimeout()",
         line(CALLS, "timeout")),
        ("resource-changed", "test_locale_polluter", "module:locale", "setlocale()",
         line(CALLS, "locale")),
        ("binding-changed", "test_excepthook_polluter", "module:threading", "excepthook",
         line(CALLS, "excepthook")),
        ("resource-changed", "test_filterwarnings_polluter", "warnings", "filters",
         line(CALLS, "filterwarnings")),
        ("resource-changed", "test_settrace_polluter", "module:sys", "settrace",
         line(CALLS, "settrace")),
        ("resource-changed", "test_setprofile_polluter", "module:sys", "setprofile",
         line(CALLS, "setprofile")),
    }
    level = next(leak for leak in load_report(report_path)["leaks"]
                 if leak["name"] == "lines.level")
    assert "level=DEBUG" in level["value"]["repr"]
    assert [frame["function"] for frame in level["stack"]][-2:] == [
        "test_set_level_polluter", "verbose"]


# -- import-system lists: the line from the source, only when provable ------------------------
LISTS = dedent("""
    import sys
    import warnings

    for entry in ("/lines/pre", "/lines/pre2", "/lines/pre3"):
        sys.path.append(entry)  # at import: collection, not a test


    class Finder:
        def find_spec(self, *args):
            return None


    def hook(path):
        raise ImportError(path)


    def put_first(entry):
        sys.path.insert(0, entry)  # LINE:helper


    def test_insert_twin():
        sys.path.insert(0, "/lines/twin")
        sys.path.remove("/lines/twin")


    def test_insert_polluter():
        sys.path.insert(0, "/lines/inserted")  # LINE:insert


    def test_append_polluter():
        entry = "/lines/appended"
        sys.path.append(entry)  # LINE:append


    def test_remove_twin():
        sys.path.remove("/lines/pre2")
        sys.path.append("/lines/pre2")


    def test_remove_polluter():
        sys.path.remove("/lines/pre")  # LINE:remove


    def test_spelled_out_polluter():  # two edits, told apart by the entries they spell out
        sys.path.insert(0, "/lines/c1")  # LINE:c1
        sys.path.append("/lines/c2")  # LINE:c2


    def test_swap_polluter():  # told apart by what they do: one removes, one adds
        old, new = "/lines/pre3", "/lines/new"
        sys.path.remove(old)  # LINE:swap_remove
        sys.path.append(new)  # LINE:swap_add


    def test_ambiguous_polluter():  # either insert could have added either: no line
        first, second = "/lines/a1", "/lines/a2"
        sys.path.insert(0, first)
        sys.path.insert(0, second)


    def test_helper_polluter():
        put_first("/lines/helped")


    def test_meta_path_twin():
        finder = Finder()
        sys.meta_path.insert(0, finder)
        sys.meta_path.remove(finder)


    def test_meta_path_polluter():
        sys.meta_path.insert(0, Finder())  # LINE:meta


    def test_path_hooks_twin():
        sys.path_hooks.append(hook)
        sys.path_hooks.remove(hook)


    def test_path_hooks_polluter():
        sys.path_hooks.append(hook)  # LINE:hooks


    def test_simplefilter_twin():
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)


    def test_simplefilter_polluter():
        warnings.simplefilter("ignore", DeprecationWarning)  # LINE:simplefilter
""")


def test_list_edits_and_simplefilter(pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    result = run(pytester, {"test_lists.py": LISTS}, "-p", "no:warnings")
    result.assert_outcomes(passed=15)
    found = rows(report_path)
    path = {(row[1], row[3], row[4]) for row in found if row[2] == "sys.path"}
    assert path == {
        ("test_insert_polluter", "'/lines/inserted'", line(LISTS, "insert")),
        ("test_append_polluter", "'/lines/appended'", line(LISTS, "append")),
        ("test_remove_polluter", "'/lines/pre'", line(LISTS, "remove")),
        ("test_spelled_out_polluter", "'/lines/c1'", line(LISTS, "c1")),
        ("test_spelled_out_polluter", "'/lines/c2'", line(LISTS, "c2")),
        ("test_swap_polluter", "'/lines/pre3'", line(LISTS, "swap_remove")),
        ("test_swap_polluter", "'/lines/new'", line(LISTS, "swap_add")),
        ("test_ambiguous_polluter", "'/lines/a1'", None),
        ("test_ambiguous_polluter", "'/lines/a2'", None),
        ("test_helper_polluter", "'/lines/helped'", line(LISTS, "helper")),
    }
    others = {(row[1], row[2], row[4]) for row in found if row[2] != "sys.path"}
    assert others == {
        ("test_meta_path_polluter", "sys.meta_path", line(LISTS, "meta")),
        ("test_path_hooks_polluter", "sys.path_hooks", line(LISTS, "hooks")),
        ("test_simplefilter_polluter", "warnings", line(LISTS, "simplefilter")),
    }
    report = load_report(report_path)
    ambiguous = next(leak for leak in report["leaks"] if leak["name"] == "'/lines/a1'")
    assert ambiguous["where"] is None and ambiguous["stack"] == []
    assert "not seen as it happened" in result.stdout.str()


# -- calls that do not explain the change lend it no line -------------------------------------
CONFIG = dedent("""
    [loggers]
    keys=root,lines

    [handlers]
    keys=

    [formatters]
    keys=

    [logger_root]
    handlers=

    [logger_lines]
    level=DEBUG
    handlers=
    qualname={name}
""")
RESET = dedent("""
    import logging
    import logging.config
    import warnings


    def file_config(tmp_path, name):
        path = tmp_path / "logging.ini"
        path.write_text(CONFIG.format(name=name))
        return path


    def test_file_config_twin(tmp_path):
        logging.config.fileConfig(file_config(tmp_path, "lines.file2"),
                                  disable_existing_loggers=False)
        logging.getLogger("lines.file2").setLevel(logging.NOTSET)


    def test_file_config_polluter(tmp_path):
        path = file_config(tmp_path, "lines.file")
        logging.config.fileConfig(path, disable_existing_loggers=False)  # LINE:file


    def test_level_then_store():  # the last call on the logger did not make the change
        logger = logging.getLogger("lines.stored")
        logger.setLevel(logging.INFO)
        logger.setLevel(logging.NOTSET)
        logger.propagate = False  # LINE:propagate


    def test_reset_twin():
        with warnings.catch_warnings():
            warnings.resetwarnings()


    def test_reset_polluter():
        warnings.resetwarnings()  # LINE:reset
""")
INSIDE_BLOCK = dedent("""
    import warnings


    def test_filter_inside_a_block_then_a_direct_insert():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded, but its list is gone at the block's end
        warnings.filters.insert(0, ("error", None, UserWarning, None, 0))  # no call to see
""")


def test_a_call_that_did_not_make_the_change_lends_no_line(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    source = RESET.replace("import warnings\n", f"import warnings\n\nCONFIG = {CONFIG!r}\n", 1)
    result = run(pytester, {"test_reset.py": source}, "-p", "no:warnings")
    result.assert_outcomes(passed=5)
    assert rows(report_path) == {
        ("resource-changed", "test_file_config_polluter", "logging", "lines.file",
         line(source, "file")),
        # the store's line (from the source), not the setLevel(NOTSET) just before it
        ("resource-changed", "test_level_then_store", "logging", "lines.stored",
         line(source, "propagate")),
        ("resource-changed", "test_reset_polluter", "warnings", "filters", line(source, "reset")),
    }
    # the simplefilter inside catch_warnings is recorded, and is not the line of the filter
    # inserted behind the wrappers' back: that one is "not seen as it happened"
    result = run(pytester, {"test_reset.py": "", "test_inside.py": INSIDE_BLOCK},
                 "-p", "no:warnings", "test_inside.py")
    result.assert_outcomes(passed=1)
    assert rows(report_path) == {
        ("resource-changed", "test_filter_inside_a_block_then_a_direct_insert", "warnings",
         "filters", None)}


# -- a failing part is switched off, the user's call still works -------------------------------
SABOTAGE_CONFTEST = dedent("""
    import patchtrace.sources.calls as calls


    def broken(number):
        raise RuntimeError("recording failed on purpose")


    calls._signal_name = broken  # what the signal.signal wrapper records with
""")
SABOTAGED = dedent("""
    import signal
    import sys


    def handler(*args):
        pass


    def test_signal_still_works():
        old = signal.signal(signal.SIGUSR1, handler)
        assert signal.getsignal(signal.SIGUSR1) is handler
        assert signal.signal(signal.SIGUSR1, old) is handler
        assert signal.getsignal(signal.SIGUSR1) is old


    def test_signal_polluter():
        signal.signal(signal.SIGUSR2, handler)
        signal.signal(signal.SIGUSR2, handler)


    def test_other_calls_still_recorded():
        sys.setrecursionlimit(sys.getrecursionlimit() + 5)  # LINE:recursion
""")


def test_a_failing_wrapper_is_switched_off_and_the_call_still_works(
        pytester: pytest.Pytester, traced_env: Enable) -> None:
    report_path = traced_env()
    result = run(pytester, {"conftest.py": SABOTAGE_CONFTEST, "test_sabotaged.py": SABOTAGED})
    result.assert_outcomes(passed=3)
    # said once, in the summary (the stderr line of the moment is pytest's to capture)
    said = [text for text in result.outlines
            if "internal error" in text and "calls source (signal.signal)" in text]
    assert len(said) == 1, result.outlines
    assert "RuntimeError: recording failed on purpose" in said[0]
    assert len([text for text in result.errlines if "signal.signal" in text]) <= 1
    assert rows(report_path) == {
        # still found at the boundary, without a line
        ("resource-changed", "test_signal_polluter", "signal", "SIGUSR2", None),
        # the other wrappers go on recording
        ("resource-changed", "test_other_calls_still_recorded", "module:sys", "recursionlimit",
         line(SABOTAGED, "recursion")),
    }


# -- the wrapper on its own --------------------------------------------------------------------
class Owner:
    def method(self, a: int, b: int = 2, *, c: int = 3) -> tuple[int, int, int]:
        """The method's own words."""
        return (a, b, c)

    @staticmethod
    def static(x: int) -> int:
        return x * 2

    @classmethod
    def klass(cls, x: int) -> str:
        return f"{cls.__name__}:{x}"

    def fails(self, error: BaseException) -> None:
        raise error


@pytest.fixture
def wrapped() -> Iterator[tuple[Tracer, Group, list[tuple[str, Any]], type[Owner]]]:
    """A subclass of Owner with every method wrapped for a running tracer; ``seen`` lists
    (hook, what it got)."""
    tracer = Tracer()
    tracer.enabled = True
    group = Group("test")
    group.tracer = tracer
    seen: list[tuple[str, Any]] = []

    class Wrapped(Owner):
        method = Owner.__dict__["method"]
        static = Owner.__dict__["static"]
        klass = Owner.__dict__["klass"]
        fails = Owner.__dict__["fails"]

    for name in ("method", "static", "klass", "fails"):
        assert around(Wrapped, name, part=f"test ({name})", group=group,
                      before=lambda a, k, name=name: seen.append((f"before {name}", a)),
                      after=lambda t, a, k, r, name=name: seen.append((f"after {name}", r)))
    yield tracer, group, seen, Wrapped
    group.undo()


def test_a_wrapper_is_transparent(wrapped: Any) -> None:
    tracer, _group, seen, cls = wrapped
    obj = cls()
    assert obj.method(1, c=5) == (1, 2, 5)
    assert cls.static(4) == 8 and obj.static(4) == 8
    assert cls.klass(1) == "Wrapped:1"
    assert type(cls.__dict__["static"]) is staticmethod
    assert type(cls.__dict__["klass"]) is classmethod
    function = cls.__dict__["method"]
    assert function is not Owner.__dict__["method"] and is_wrapper(function)
    assert function.__wrapped__ is Owner.__dict__["method"]
    assert (function.__name__, function.__qualname__, function.__doc__, function.__module__) == (
        "method", "Owner.method", "The method's own words.", __name__)
    assert inspect.signature(function) == inspect.signature(Owner.method)
    # the same exception object, and no after hook for a call that raised
    error = KeyError("mine")
    with pytest.raises(KeyError) as caught:
        obj.fails(error)
    assert caught.value is error
    assert [hook for hook, _ in seen] == [
        "before method", "after method", "before static", "after static", "before static",
        "after static", "before klass", "after klass", "before fails"]
    assert seen[1] == ("after method", (1, 2, 5))
    assert tracer.errors == []


def test_a_wrapper_is_quiet_for_our_own_code_and_its_own_nested_calls(wrapped: Any) -> None:
    tracer, group, seen, cls = wrapped
    with tracer.quiet():  # patchtrace's own work in this thread
        assert cls().method(1) == (1, 2, 3)
    assert seen == []

    class Outer(cls):  # type: ignore[misc, valid-type]
        def calls_inner(self) -> tuple[int, int, int]:
            return self.method(7)  # type: ignore[no-any-return]

    around(Outer, "calls_inner", part="test (outer)", group=group,
           before=lambda a, k: seen.append(("before outer", a)))
    assert Outer().calls_inner() == (7, 2, 3)
    assert [hook for hook, _ in seen] == ["before outer"]  # the inner call is its own
    # ...per thread: another thread's call while this one is inside is recorded
    seen.clear()
    inside, release = threading.Event(), threading.Event()

    class Slow(cls):  # type: ignore[misc, valid-type]
        def wait(self) -> None:
            inside.set()
            release.wait(10)

    around(Slow, "wait", part="test (slow)", group=group)
    worker = threading.Thread(target=Slow().wait)
    worker.start()
    assert inside.wait(10)
    try:
        assert cls().method(3) == (3, 2, 3)
    finally:
        release.set()
        worker.join(10)
    assert [hook for hook, _ in seen] == ["before method", "after method"]
    # a tracer that stopped: calls pass straight through
    seen.clear()
    tracer.enabled = False
    assert cls().method(1) == (1, 2, 3)
    assert seen == []


@pytest.mark.parametrize("hook", ["before", "after"])
def test_a_failing_part_is_said_once_and_switched_off(hook: str) -> None:
    tracer = Tracer()
    tracer.enabled = True
    group = Group("test")
    group.tracer = tracer
    attempts: list[str] = []

    def broken(*args: Any) -> object:
        attempts.append("broken")
        raise RuntimeError("boom")

    def works(*args: Any) -> object:
        attempts.append("works")
        return None

    class Target:
        def bad(self, x: int) -> int:
            return x + 1

        def good(self, x: int) -> int:
            return x + 2

    around(Target, "bad", part="test (bad)", group=group, **{hook: broken})  # type: ignore[arg-type]
    around(Target, "good", part="test (good)", group=group, before=works)
    try:
        for _ in range(3):
            assert Target().bad(1) == 2  # the user's call still works, every time
            assert Target().good(1) == 3
        assert attempts == ["broken", "works", "works", "works"]  # off after the first
        assert group.off == {"test (bad)"}
        assert tracer.errors == ["test (bad): RuntimeError: boom"]
    finally:
        group.undo()


def test_undo_is_exact_idempotent_and_leaves_a_later_binding_alone() -> None:
    group = Group("test")

    class Target:
        def one(self) -> int:
            return 1

        def two(self) -> int:
            return 2

    originals = dict(Target.__dict__)
    assert around(Target, "one", part="p", group=group)
    assert around(Target, "one", part="p", group=group)  # already ours: not wrapped again
    assert around(Target, "two", part="p", group=group)
    assert not around(Target, "missing", part="p", group=group)
    assert len(group.saved) == 2
    assert Target.__dict__["one"].__wrapped__ is originals["one"]

    def theirs(self: object) -> int:
        return 22

    Target.two = theirs  # type: ignore[method-assign]
    group.undo()
    group.undo()
    assert Target.__dict__["one"] is originals["one"]
    assert Target.__dict__["two"] is theirs  # rebound since: not ours to put back
    assert group.saved == [] and group.tracer is None


def test_the_same_wrapper_under_a_re_exported_name() -> None:
    import types

    group = Group("test")
    inner = types.ModuleType("inner")
    outer = types.ModuleType("outer")

    def function() -> str:
        return "value"

    inner.function = outer.function = function  # type: ignore[attr-defined]
    assert around(inner, "function", part="p", group=group, also=(outer,))
    assert outer.function is inner.function is not function  # type: ignore[attr-defined]
    group.undo()
    assert outer.function is inner.function is function  # type: ignore[attr-defined]


def test_the_calls_source_is_undone_exactly() -> None:
    import socket

    before = (sys.setrecursionlimit, socket.setdefaulttimeout, logging.Logger.setLevel,
              signal.signal)
    tracer = Tracer()
    source = calls.CallsSource()
    source.install(tracer)
    source._instrument_socket(socket)
    source._instrument_logging(logging)
    source._instrument_signal(signal)
    assert is_wrapper(sys.setrecursionlimit) and is_wrapper(logging.Logger.__dict__["setLevel"])
    source.uninstall()
    source.uninstall()
    assert (sys.setrecursionlimit, socket.setdefaulttimeout, logging.Logger.setLevel,
            signal.signal) == before
    assert _wrap.SKIP is SKIP


# -- which record explains which change ----------------------------------------------------------
def _logger(level: int, *handlers: object) -> LoggerState:
    return LoggerState("app", (tuple(handlers), level, True, False))


def test_explains_checks_what_the_call_made() -> None:
    handler, other = object(), object()
    explains = calls.explains
    # setLevel: the level it set is the level now, and it moved
    assert explains("Logger.setLevel(...)", 10, _logger(0), _logger(10))
    assert explains("Logger.setLevel(...)", "DEBUG", _logger(0), _logger(10))
    assert not explains("Logger.setLevel(...)", 0, _logger(0, handler), _logger(0))
    assert not explains("Logger.setLevel(...)", 20, _logger(0), _logger(10))
    # addHandler / removeHandler: that handler, by identity
    assert explains("Logger.addHandler(...)", handler, _logger(0), _logger(0, handler))
    assert not explains("Logger.addHandler(...)", other, _logger(0), _logger(0, handler))
    assert explains("Logger.removeHandler(...)", handler, _logger(0, handler), _logger(0))
    assert not explains("Logger.removeHandler(...)", handler, _logger(0), _logger(10))
    # a dict of dictConfig's kind: any change of logging
    assert explains("logging.config.dictConfig(...)", NOTHING, "2 loggers enabled", "...")
    # signals: the handler it set, read back as it is (or as an int for SIG_IGN)
    assert explains("signal.signal(...)", handler, signal.SIG_DFL, handler)
    assert explains("signal.signal(...)", signal.SIG_IGN, handler, 1)
    assert not explains("signal.signal(...)", other, signal.SIG_DFL, handler)
    # filters: the tuple it inserted, in the list now and not before
    entry = ("ignore", None, Warning, None, 0)
    assert explains("warnings.simplefilter(...)", entry, ((), None), ((entry,), None))
    assert not explains("warnings.simplefilter(...)", entry, ((), None),
                        ((tuple(list(entry)),), None))
    assert explains("socket.setdefaulttimeout(...)", 3, None, 3.0)
    assert not explains("socket.setdefaulttimeout(...)", 3, None, 4.0)


def test_level_names_added_by_addlevelname() -> None:
    logging.addLevelName(7, "LINES_TRACE")
    try:
        assert calls.explains("Logger.setLevel(...)", "LINES_TRACE", _logger(0), _logger(7))
        assert "level=LINES_TRACE" in repr(_logger(7))
    finally:
        del logging._levelToName[7]  # type: ignore[attr-defined]
        del logging._nameToLevel["LINES_TRACE"]  # type: ignore[attr-defined]
    assert not calls.explains("Logger.setLevel(...)", "LINES_TRACE", _logger(0), _logger(7))


# -- the mock backport (M2) -------------------------------------------------------------------
def test_backport_mocks_are_mocks_by_their_names() -> None:
    backport = pytest.importorskip("mock", reason="the PyPI mock backport is not installed")
    spec = backport.Mock(spec=int)  # lies about __class__
    assert is_mock(backport.Mock()) and is_mock(backport.MagicMock()) and is_mock(spec)
    assert is_mock(backport.create_autospec(len))
    # by name and module: another copy of the backport (a test re-imports it) too
    fake_base = type("NonCallableMock", (), {"__module__": "mock.mock"})
    assert is_mock(type("Sub", (fake_base,), {})())
    # control: the same class name from any other module is not a mock
    elsewhere = type("NonCallableMock", (), {"__module__": "myproject.mocks"})
    assert not is_mock(elsewhere()) and not is_mock(object()) and not is_mock(3)


BACKPORT = dedent("""
    import os

    import mock

    REGISTRY = []


    def test_mock_left_in_a_registry():
        REGISTRY.append(mock.Mock(name="job"))  # LINE:survived


    def test_mock_used_and_dropped():
        job = mock.Mock(name="job")
        job()


    def test_patch_not_stopped():
        mock.patch("os.getcwd", return_value="/nowhere").start()  # LINE:patch


    def test_patch_stopped():
        patcher = mock.patch("os.getpid", return_value=0)
        patcher.start()
        patcher.stop()


    def test_victim():
        assert os.getcwd() != "/nowhere"
""")


def test_backport_mocks_and_patches_are_seen(pytester: pytest.Pytester,
                                             traced_env: Enable) -> None:
    pytest.importorskip("mock", reason="the PyPI mock backport is not installed")
    report_path = traced_env()
    result = run(pytester, {"test_backport.py": BACKPORT})
    result.assert_outcomes(passed=4, failed=1)
    assert rows(report_path) == {
        ("mock-survived", "test_mock_left_in_a_registry", None, None,
         line(BACKPORT, "survived")),
        ("patch-not-stopped", "test_patch_not_stopped", "module:os", "getcwd",
         line(BACKPORT, "patch")),
    }
    leaks = {leak["kind"]: leak for leak in load_report(report_path)["leaks"]}
    assert leaks["patch-not-stopped"]["value"]["is_mock"] is True
    assert leaks["patch-not-stopped"]["victims"] == ["test_backport.py::test_victim"]
    assert leaks["mock-survived"]["alive_via"][-2:] == ["attribute REGISTRY", "list index 0"]
