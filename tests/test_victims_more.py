"""Victims beyond patched and rebound names: mocks in ``sys.modules``, surviving mocks, and
process-wide resources (environment, cwd, ``sys.path``, ``sys.modules``, loggers, signal
handlers).

Every case has a polluter, a victim that passes alone and fails after it (checked by a
second, untraced run of the victim alone), and a clean twin: a later test that fails in
the same place of the code without using the leaked value, and is not linked (the link is
made by evidence, not by order). Each link's words are checked (``victim_evidence``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import load_report


def _line(text: str, needle: str) -> int:
    """The 1-based line of ``needle`` in a file written from ``text`` (dedented)."""
    import textwrap

    lines = textwrap.dedent(text).splitlines()
    (found,) = [i for i, line in enumerate(lines, 1) if needle in line]
    return found


def _suite(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    import textwrap

    for path, text in files.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    pytester.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n")


def _leak(report: dict[str, Any], kind: str, target: str | None,
          name: str | None) -> dict[str, Any]:
    (leak,) = [leak for leak in report["leaks"]
               if (leak["kind"], leak["target"], leak["name"]) == (kind, target, name)]
    return leak


def _alone_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                  *victims: str) -> None:
    """Without its polluter (and untraced), each victim passes: it fails only after it."""
    monkeypatch.delenv("PATCHTRACE", raising=False)
    result = pytester.runpytest_subprocess(*victims, timeout=120)
    result.assert_outcomes(passed=len(victims))


# -- a module replaced by a mock ----------------------------------------------------------------
POLLUTER_GATEWAY = """
    import sys
    from unittest import mock

    from shop import billing

    def test_offline_charge():
        sys.modules["gateway"] = mock.MagicMock()  # BUG: never put back
        assert billing.charge(1)
"""


def test_a_module_replaced_by_a_mock_links_the_test_that_called_it(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester, {
        "gateway.py": "def send(amount):\n    return {'status': 'sent', 'amount': amount}\n",
        "shop/__init__.py": "",
        "shop/billing.py": """
            def charge(amount):
                import gateway
                return gateway.send(amount)

            def fee(amount):
                return amount
        """,
        "test_a.py": POLLUTER_GATEWAY,
        "test_b.py": """
            from shop import billing

            def test_charge():
                result = billing.charge(2)
                assert result is None or type(result) is dict and result["status"] == "sent"

            def test_fee():  # the twin: fails in the same module, never calls the gateway
                assert billing.fee(2) == 3
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1, failed=2)
    leak = _leak(load_report(report_path), "binding-changed", "sys.modules", "gateway")
    assert leak["where"]["line"] == _line(POLLUTER_GATEWAY, 'sys.modules["gateway"]')
    assert leak["victims"] == ["test_b.py::test_charge"]
    evidence = leak["victim_evidence"]["test_b.py::test_charge"]
    assert evidence.startswith("called the leaked mock ")
    assert "sys.modules['gateway'].send() 1x" in evidence
    _alone_passes(pytester, monkeypatch, "test_b.py::test_charge")


WRAPPER_STATE = """
    import gc
    from unittest import mock

    import pytest

    def counter():
        return mock.CallableMixin.__dict__["_increment_mock_call"]

    def state():
        f = counter()
        own = getattr(f, "__patchtrace__", False) is False and f.__module__ == "unittest.mock"
        return "mock's own" if own else "wrapper"

    def pytest_runtest_logstart(nodeid, location):  # before the boundary arms the read log
        gc.collect()  # the mocks of earlier tests that nothing holds are gone

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logfinish(nodeid, location):  # after the boundary: frozen
        with open("states.txt", "a") as out:
            out.write(f"after {nodeid.rpartition('::')[2]}: {state()}\\n")
"""


def test_the_mock_call_counter_is_wrapped_only_while_a_mock_is_watched(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # Nothing watched (no live leak, no mock of an earlier test alive): the class holds
    # mock's own function, so a MagicMock call costs what it costs untraced. A leaked mock
    # is watched: the wrapper is there during the next tests, and the test that called it
    # is linked by its calls; the wrapper stays while the leaked mock is watched (it is put
    # on and taken off only when that changes, not at every boundary).
    _suite(pytester, {
        "conftest.py": WRAPPER_STATE,
        "gateway.py": "def send(amount):\n    return {'status': 'sent'}\n",
        "test_a.py": """
            import sys
            from unittest import mock

            from conftest import state

            def test_clean():
                with mock.patch("gateway.send") as send:
                    send(1)
                assert state() == "mock's own"  # this test's own mock is not watched

            def test_leak():
                assert state() == "mock's own"  # test_clean's mock is gone: nothing watched
                sys.modules["gateway"] = mock.MagicMock()  # BUG: never put back
                assert state() == "mock's own"  # decided when the test began

            def test_calls():
                assert state() == "wrapper"
                import gateway
                assert gateway.send(1)["status"] == "sent"
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2, failed=1)
    leak = _leak(load_report(report_path), "binding-changed", "sys.modules", "gateway")
    assert leak["victims"] == ["test_a.py::test_calls"]
    evidence = leak["victim_evidence"]["test_a.py::test_calls"]
    assert evidence.startswith("called the leaked mock ")
    assert "sys.modules['gateway'].send() 1x" in evidence
    # after test_calls the leaked mock is still watched: the wrapper stays for the next test
    assert (pytester.path / "states.txt").read_text().splitlines() == [
        "after test_clean: mock's own", "after test_leak: mock's own",
        "after test_calls: wrapper"]


def test_the_mock_call_counter_goes_when_nothing_is_watched_any_more() -> None:
    import gc
    from unittest import mock

    from patchtrace import _tracer
    from patchtrace.config import Config
    from patchtrace.sources.reads import LOG
    from patchtrace.values import identity_key

    def wrapped() -> bool:
        return getattr(mock.CallableMixin.__dict__["_increment_mock_call"], "__patchtrace__",
                       False) is True

    own = mock.CallableMixin.__dict__["_increment_mock_call"]
    tracer = _tracer.start(Config())
    try:
        gc.collect()
        LOG.arm()
        assert not wrapped()  # nothing made before the test began: mock's own function
        leaked = mock.MagicMock()
        LOG.freeze()
        LOG.arm(mock_keys=frozenset({identity_key(leaked)}))
        assert wrapped()  # a live leak's mock is watched (the control of the line above)
        leaked.send(1)
        assert LOG.mock_calls[identity_key(leaked)] == [1, ["send()"]]
        LOG.freeze()
        assert wrapped()  # kept for the next test (put back only when that changes)
        del leaked
        gc.collect()
        LOG.arm()
        assert not wrapped()  # nothing watched any more: mock's own function again
        assert mock.CallableMixin.__dict__["_increment_mock_call"] is own
        LOG.arm(mock_keys=frozenset({1}))
    finally:
        tracer.stop()
    assert mock.CallableMixin.__dict__["_increment_mock_call"] is own  # stop() puts it back


# -- a mock that survived its test --------------------------------------------------------------
POLLUTER_CLIENT = """
    import gc
    from unittest import mock

    from shop import clients

    def test_health_check():
        fake = mock.MagicMock(name="FakeClient")
        with mock.patch.object(clients, "HttpClient", fake):
            assert clients.client_for("api.shop.test")

    def test_collect():
        gc.collect()  # a full collection: the survivor is confirmed before the victims run
"""


@pytest.mark.parametrize("confirmed", [False, True], ids=["before-a-collection", "confirmed"])
def test_a_surviving_mock_links_the_tests_that_called_or_hold_it(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch, confirmed: bool) -> None:
    # Unconfirmed, the survivor is found *by* the victim: a mock of an ended test that a
    # later test calls is alive after its test by that very fact.
    _suite(pytester, {
        "shop/__init__.py": "",
        "shop/clients.py": """
            import functools

            class HttpClient:
                def get(self, path):
                    return "GET " + path

            @functools.lru_cache(maxsize=None)
            def client_for(host):
                return HttpClient()
        """,
        "test_a.py": POLLUTER_CLIENT,
        "test_b.py": """
            from shop import clients

            def test_real_client():
                assert clients.client_for("api.shop.test").get("/") == "GET /"

            def test_client_type():
                client = clients.client_for("api.shop.test")
                assert type(client) is clients.HttpClient

            def test_new_client():  # the twin: fails on a client it made itself
                assert clients.HttpClient().get("/") == "GET /x"
        """,
    })
    report_path = traced_env()
    args = () if confirmed else ("-k", "not collect")
    pytester.runpytest_subprocess(*args, timeout=120).assert_outcomes(
        passed=2 if confirmed else 1, failed=3)
    leak = _leak(load_report(report_path), "mock-survived", None, None)
    assert leak["value"]["repr"].startswith("<MagicMock name='FakeClient'")
    assert leak["where"]["line"] == _line(POLLUTER_CLIENT, 'fake = mock.MagicMock(')
    assert any(step.startswith("lru_cache storage of client_for") for step in leak["alive_via"])
    assert leak["victims"] == ["test_b.py::test_real_client", "test_b.py::test_client_type"]
    assert leak["victim_evidence"] == {
        "test_b.py::test_real_client":
            "called the surviving mock 2x: FakeClient().get() 1x, FakeClient().get().__eq__() 1x",
        "test_b.py::test_client_type":
            "held the surviving mock (a child of it): local 'client' of test_client_type",
    }
    _alone_passes(pytester, monkeypatch, "test_b.py::test_real_client",
                  "test_b.py::test_client_type")


# -- environment keys ---------------------------------------------------------------------------
POLLUTER_ENV = """
    import os

    def test_sandbox():
        os.environ["APP_MODE"] = "sandbox"

    def test_no_region():
        del os.environ["APP_REGION"]
"""


def test_a_leaked_environment_key_links_the_tests_that_read_it(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The keys are built at run time: no string constant names them, only the read log
    # (os.environ.get / os.getenv / []) can tell which key was read.
    _suite(pytester, {
        "app/__init__.py": "",
        "app/settings.py": """
            import os

            PREFIX = "APP"

            def mode():
                return os.environ.get(PREFIX + "_MODE", "live")

            def region():
                return os.getenv("_".join([PREFIX, "REGION"]))

            def colour():
                return os.environ[PREFIX + "_COLOUR"]
        """,
        "test_a.py": POLLUTER_ENV,
        "test_b.py": """
            from app import settings

            def test_live_mode():
                assert settings.mode() == "live"

            def test_region():
                assert settings.region() == "eu"

            def test_colour():  # the twin: reads another key of the same module
                assert settings.colour() == "blue"
        """,
    })
    report_path = traced_env(APP_REGION="eu", APP_COLOUR="red")
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2, failed=3)
    report = load_report(report_path)
    mode = _leak(report, "binding-changed", "os.environ", "APP_MODE")
    region = _leak(report, "binding-changed", "os.environ", "APP_REGION")
    assert mode["where"]["line"] == _line(POLLUTER_ENV, 'os.environ["APP_MODE"]')
    assert region["where"]["line"] == _line(POLLUTER_ENV, 'del os.environ["APP_REGION"]')
    assert mode["victim_evidence"] == {"test_b.py::test_live_mode": "read os.environ['APP_MODE']"}
    assert region["victim_evidence"] == {
        "test_b.py::test_region": "read os.environ['APP_REGION']"}
    assert mode["victims"] == ["test_b.py::test_live_mode"]
    assert region["victims"] == ["test_b.py::test_region"]
    _alone_passes(pytester, monkeypatch, "test_b.py::test_live_mode", "test_b.py::test_region")


# -- the working directory ----------------------------------------------------------------------
POLLUTER_CWD = """
    import os

    def test_in_scratch(tmp_path):
        os.chdir(tmp_path)
"""


def test_a_leaked_cwd_links_the_tests_that_read_it(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester, {
        "config.txt": "real\n",
        "VERSION": "1.0\n",
        "app/__init__.py": "",
        "app/files.py": """
            import os

            HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

            def config_text():
                with open("config.txt") as handle:
                    return handle.read()

            def data_dir():
                return os.path.join(os.getcwd(), "app")

            def version():
                import pathlib

                return pathlib.Path("VERSION").read_text().strip()

            def missing_text():
                with open(os.path.join(HERE, "missing.txt")) as handle:
                    return handle.read()
        """,
        "test_a.py": POLLUTER_CWD,
        "test_b.py": """
            import os

            from app import files

            def test_config():
                assert files.config_text() == "real\\n"

            def test_data_dir():
                assert os.path.isdir(files.data_dir())

            def test_version():
                assert files.version() == "1.0"

            def test_missing():  # the twin: fails opening a file by its absolute path
                assert files.missing_text() == ""
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1, failed=4)
    leak = _leak(load_report(report_path), "resource-changed", "cwd", None)
    assert leak["where"]["line"] == _line(POLLUTER_CWD, "os.chdir(")
    assert leak["victim_evidence"] == {
        "test_b.py::test_config":
            "opened the relative path 'config.txt' in the leaked working directory",
        "test_b.py::test_data_dir": "called os.getcwd() in the leaked working directory",
        "test_b.py::test_version":
            "opened the relative path 'VERSION' in the leaked working directory",
    }
    assert leak["victims"] == ["test_b.py::test_config", "test_b.py::test_data_dir",
                               "test_b.py::test_version"]
    _alone_passes(pytester, monkeypatch, "test_b.py::test_config", "test_b.py::test_data_dir",
                  "test_b.py::test_version")


# -- sys.path -----------------------------------------------------------------------------------
POLLUTER_PATH = """
    import os
    import sys

    HERE = os.path.dirname(os.path.abspath(__file__))

    def test_vendored():
        sys.path.insert(0, os.path.join(HERE, "vendor"))

    def test_without_plugins():
        sys.path.remove(os.path.join(HERE, "plugins"))
"""


def test_a_leaked_sys_path_entry_links_the_imports_it_decided(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester, {
        "conftest.py": """
            import os
            import sys

            sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins"))
        """,
        "helpers.py": "SOURCE = 'project'\n",
        "other.py": "SOURCE = 'project'\n",
        "vendor/helpers.py": "SOURCE = 'vendor'\n",
        "plugins/extra.py": "READY = True\n",
        "test_a.py": POLLUTER_PATH,
        "test_b.py": """
            def test_helpers():
                import helpers
                assert helpers.SOURCE == "project"

            def test_extra():
                import extra
                assert extra.READY

            def test_other():  # the twin: an import that resolved elsewhere, then a failure
                import other
                assert other.SOURCE == "vendor"

            def test_absent():  # the twin: an import that fails with any sys.path
                import not_anywhere
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2, failed=4)
    report = load_report(report_path)
    vendor = str(pytester.path / "vendor")
    plugins = str(pytester.path / "plugins")
    # the name is the entry's repr, cut at 80 characters; before/value hold it whole
    (added,) = [leak for leak in report["leaks"] if leak["value"]["repr"] == repr(vendor)]
    (removed,) = [leak for leak in report["leaks"] if leak["before"]["repr"] == repr(plugins)]
    assert (added["kind"], added["target"]) == (removed["kind"], removed["target"]) == (
        "resource-changed", "sys.path")
    # named whole: two long entries cut at the same 80 characters were one binding, and
    # the removal was taken for a repair of the addition
    assert (added["name"], removed["name"]) == (repr(vendor), repr(plugins))
    assert added["where"]["line"] == _line(POLLUTER_PATH, "sys.path.insert(")
    assert removed["where"]["line"] == _line(POLLUTER_PATH, "sys.path.remove(")
    assert added["victim_evidence"] == {
        "test_b.py::test_helpers": f"imported 'helpers' from the leaked sys.path entry {vendor!r}"}
    assert removed["victim_evidence"] == {
        "test_b.py::test_extra":
            f"could not import 'extra', which is in the removed sys.path entry {plugins!r}"}
    assert added["victims"] == ["test_b.py::test_helpers"]
    assert removed["victims"] == ["test_b.py::test_extra"]
    _alone_passes(pytester, monkeypatch, "test_b.py::test_helpers", "test_b.py::test_extra")


# -- sys.modules[name] = None -------------------------------------------------------------------
POLLUTER_BLOCK = """
    import sys

    def test_without_fastjson():
        sys.modules["fastjson"] = None  # block the import (BUG: never put back)
"""


def test_a_blocked_import_links_the_test_whose_import_it_stopped(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester, {
        "fastjson.py": "def dumps(obj):\n    return str(obj)\n",
        "test_a.py": POLLUTER_BLOCK,
        "test_b.py": """
            def test_fastjson():
                import fastjson
                assert fastjson.dumps(1) == "1"

            def test_slowjson():  # the twin: an ImportError of another module
                import slowjson
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1, failed=2)
    leak = _leak(load_report(report_path), "binding-changed", "sys.modules", "fastjson")
    assert leak["where"]["line"] == _line(POLLUTER_BLOCK, 'sys.modules["fastjson"]')
    assert leak["victims"] == ["test_b.py::test_fastjson"]
    assert leak["victim_evidence"] == {"test_b.py::test_fastjson":
                                       "import of 'fastjson' failed on the leaked "
                                       "sys.modules['fastjson'] = None"}
    _alone_passes(pytester, monkeypatch, "test_b.py::test_fastjson")


# -- loggers ------------------------------------------------------------------------------------
POLLUTER_LOGGER = """
    import logging

    def test_quiet():
        logging.getLogger("shop.app").setLevel(logging.ERROR)  # BUG: never put back
"""


def test_a_leaked_logger_links_the_tests_that_log_through_it_or_hold_it(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester, {
        "shop/__init__.py": "",
        "shop/app.py": """
            import logging

            log = logging.getLogger("shop.app")
            other = logging.getLogger("shop.other")

            def work():
                log.warning("working")

            def rest():
                other.warning("resting")
        """,
        "test_a.py": POLLUTER_LOGGER,
        "test_b.py": """
            import logging

            from shop import app

            def test_work_is_logged(caplog):
                app.work()
                assert "working" in caplog.text

            def test_info_enabled():
                logger = logging.getLogger("shop.app")
                assert logger.isEnabledFor(logging.WARNING)

            def test_rest_is_logged(caplog):  # the twin: logs through another logger
                app.rest()
                assert "sleeping" in caplog.text
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1, failed=3)
    leak = _leak(load_report(report_path), "resource-changed", "logging", "shop.app")
    assert leak["where"]["line"] == _line(POLLUTER_LOGGER, "setLevel(")
    assert leak["victim_evidence"] == {
        "test_b.py::test_work_is_logged":
            "logs through the leaked logger 'shop.app' (shop.app.log)",
        "test_b.py::test_info_enabled":
            "held the leaked logger 'shop.app': local 'logger' of test_info_enabled",
    }
    assert leak["victims"] == ["test_b.py::test_work_is_logged", "test_b.py::test_info_enabled"]
    _alone_passes(pytester, monkeypatch, "test_b.py::test_work_is_logged",
                  "test_b.py::test_info_enabled")


# -- signal handlers ----------------------------------------------------------------------------
POLLUTER_SIGNAL = """
    import signal

    def on_usr1(signum, frame):
        raise RuntimeError("reloading")

    def test_reload_on_usr1():
        signal.signal(signal.SIGUSR1, on_usr1)  # BUG: never put back
"""


def test_a_leaked_signal_handler_links_the_tests_that_read_it(
        pytester: pytest.Pytester, traced_env: Callable[..., Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _suite(pytester, {
        "test_a.py": POLLUTER_SIGNAL,
        "test_b.py": """
            import signal

            def test_default_usr1():
                assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

            def test_ignored_usr2():  # the twin: reads another signal's handler
                assert signal.getsignal(signal.SIGUSR2) is signal.SIG_IGN
        """,
    })
    report_path = traced_env()
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=1, failed=2)
    leak = _leak(load_report(report_path), "resource-changed", "signal", "SIGUSR1")
    assert leak["where"]["line"] == _line(POLLUTER_SIGNAL, "signal.signal(")
    assert leak["victims"] == ["test_b.py::test_default_usr1"]
    assert leak["victim_evidence"] == {
        "test_b.py::test_default_usr1": "read signal.getsignal(SIGUSR1)"}
    _alone_passes(pytester, monkeypatch, "test_b.py::test_default_usr1")


# -- the pieces, on hand-built leaks ------------------------------------------------------------
def _failure(tb: Any = None, text: str = "", exc: object = None) -> Any:
    from patchtrace.analysis import victims as _victims

    return _victims.Failure("t::victim", lambda packages: set(), text, tb, exc,
                            frozenset, [])


def _traceback(func: Callable[[], object]) -> Any:
    try:
        func()
    except Exception as exc:
        return exc.__traceback__
    raise AssertionError("expected a failure")


def test_a_mock_shown_in_the_failure_message_is_evidence_and_another_is_not() -> None:
    from unittest import mock

    from patchtrace.analysis import victims as _victims

    leaked, other = mock.MagicMock(name="Fake"), mock.MagicMock(name="Other")
    child = leaked.client()  # a return value of a child: one of the family
    text = f"AssertionError: assert {child!r} == 'x'"
    assert _victims.mock_evidence(leaked, _failure(text=text), "surviving mock", "Fake") == \
        "its failure message shows the surviving mock"
    assert _victims.mock_evidence(other, _failure(text=text), "surviving mock", "Other") == ""


def test_a_failure_inside_the_leaked_handler_is_evidence_and_another_handler_is_not() -> None:
    from patchtrace.analysis import victims as _victims
    from patchtrace.leak import Leak

    def on_usr1() -> None:
        raise RuntimeError("reloading")

    def on_usr2() -> None:
        pass

    tb = _traceback(on_usr1)
    inside = Leak("resource-changed", "t::p", "call", "signal", "SIGUSR1", obj=on_usr1)
    elsewhere = Leak("resource-changed", "t::p", "call", "signal", "SIGUSR1", obj=on_usr2)
    assert _victims.resource_evidence(inside, _failure(tb)) == \
        "failed inside the leaked SIGUSR1 handler"
    assert _victims.resource_evidence(elsewhere, _failure(tb)) == ""


def test_a_removed_environment_key_is_in_place_until_it_is_set_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from patchtrace.analysis import victims as _victims
    from patchtrace.leak import Leak

    monkeypatch.delenv("PT_VICTIMS_REMOVED", raising=False)
    leak = Leak("binding-changed", "t::p", "call", "os.environ", "PT_VICTIMS_REMOVED")
    assert _victims.in_place(leak)
    monkeypatch.setenv("PT_VICTIMS_REMOVED", "back")
    assert not _victims.in_place(leak)


def test_a_sys_path_entry_is_in_place_while_added_and_a_count_of_copies_is_not_judged(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from patchtrace.analysis import victims as _victims
    from patchtrace.leak import Leak

    entry = str(tmp_path)
    added = Leak("resource-changed", "t::p", "call", "sys.path", repr(entry), obj=entry)
    copies = Leak("resource-changed", "t::p", "call", "sys.path", repr(entry),
                  obj=f"{entry!r} x2")
    monkeypatch.setattr(sys, "path", [entry, *sys.path])
    assert _victims.in_place(added)
    assert not _victims.in_place(copies)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != entry])
    assert not _victims.in_place(added)


def test_the_read_recorders_add_no_frame_to_a_users_traceback(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # os.environ["X"] goes through the recorder: the KeyError a user sees is as untraced
    _suite(pytester, {"test_a.py": """
        import os

        def test_missing_key():
            assert os.environ["PT_NOT_SET_ANYWHERE"]
    """})
    traced_env()
    result = pytester.runpytest_subprocess("--tb=long", timeout=120)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*KeyError: 'PT_NOT_SET_ANYWHERE'"])
    assert "patchtrace" + "/sources" not in result.stdout.str()
    out = result.stdout.str()
    assert "self = environ(" in out  # os's own frame is shown, as untraced, and not ours
