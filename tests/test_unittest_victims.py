"""Victims under plain ``python -m unittest`` (the ``.pth`` path, no pytest): a failing test
gets its "pollution present" lines in the report at exit and the leak its ``victims`` and
``victim_evidence``, as under pytest; a failing twin that did not use the leak is listed
as running with the pollution present, not as a victim."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from .conftest import run_python

SUITE = """\
import os
import signal
import unittest
from unittest import mock

import shop


def on_usr1(signum, frame):
    pass


class Polluting(unittest.TestCase):
    def test_mock_gateway(self):
        mock.patch("shop.send").start()

    def test_sandbox(self):
        os.environ["SHOP_MODE"] = "sandbox"

    def test_usr1(self):
        signal.signal(signal.SIGUSR1, on_usr1)


class Victim(unittest.TestCase):
    def test_receipt(self):
        self.assertEqual(shop.receipt(), "sent")

    def test_mode(self):
        self.assertEqual(shop.mode(), "live")

    def test_usr1_default(self):
        self.assertIs(signal.getsignal(signal.SIGUSR1), signal.SIG_DFL)

    def test_unrelated(self):
        self.assertEqual(shop.total([1, 2]), 4)
"""

SHOP = """\
import os

def send():
    return "sent"

def receipt():
    return send()

def mode():
    key = "_".join(["SHOP", "MODE"])
    return os.environ.get(key, "live")

def total(items):
    return sum(items)
"""


def _line(needle: str) -> int:
    (found,) = [i for i, line in enumerate(SUITE.splitlines(), 1) if needle in line]
    return found


def test_a_failing_unittest_test_is_linked_to_the_leak_it_used(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "test_ut.py").write_text(SUITE)
    report = tmp_path / "out.json"
    result = run_python("", tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report)},
                        args=["-m", "unittest", "test_ut"])
    assert "FAILED (failures=4)" in result.stderr, result.stderr
    leaks = {leak["target"]: leak for leak in json.loads(report.read_text())["leaks"]}
    patch, env, sig = leaks["module:shop"], leaks["os.environ"], leaks["signal"]
    assert (patch["kind"], patch["name"], patch["where"]["line"]) == (
        "patch-not-stopped", "send", _line('mock.patch("shop.send")'))
    assert (env["kind"], env["name"], env["where"]["line"]) == (
        "binding-changed", "SHOP_MODE", _line('os.environ["SHOP_MODE"]'))
    assert (sig["kind"], sig["name"], sig["where"]["line"]) == (
        "resource-changed", "SIGUSR1", _line("signal.signal("))
    # assertEqual compared the mock's return value: a call of the mock's too
    assert patch["victim_evidence"] == {"test_ut.Victim.test_receipt":
                                        "called the leaked mock 2x: shop.send() 1x, "
                                        "shop.send().__eq__() 1x"}
    assert env["victim_evidence"] == {"test_ut.Victim.test_mode": "read os.environ['SHOP_MODE']"}
    assert sig["victim_evidence"] == {
        "test_ut.Victim.test_usr1_default": "read signal.getsignal(SIGUSR1)"}
    # the twin failed with all three in place, and used none of them
    assert all("test_ut.Victim.test_unrelated" not in leak["victims"] for leak in leaks.values())
    err = result.stderr
    section = err[err.index("pollution present when test_ut.Victim.test_unrelated failed"):]
    block = textwrap.dedent("\n".join(section.splitlines()[1:4]))
    assert [line.split(":")[0] for line in block.splitlines()] == [
        f"{patch['id']} patch-not-stopped", f"{env['id']} binding-changed",
        f"{sig['id']} resource-changed"]
    assert "(used by this test)" not in block
    assert (f"{env['id']} binding-changed: os.environ['SHOP_MODE'] from "
            "test_ut.Polluting.test_sandbox (used by this test)") in err


def test_the_victims_pass_without_their_polluters(tmp_path: Path) -> None:
    (tmp_path / "shop.py").write_text(SHOP)
    (tmp_path / "test_ut.py").write_text(SUITE)
    result = run_python("", tmp_path, args=[
        "-m", "unittest", "test_ut.Victim.test_receipt", "test_ut.Victim.test_mode",
        "test_ut.Victim.test_usr1_default"])
    assert result.returncode == 0, result.stderr
    assert "Ran 3 tests" in result.stderr


def test_the_glue_keeps_its_state_in_one_object_a_test_can_reset() -> None:
    """In-process unit: what the report at exit reads (hints, pollution lines) and the open
    class and module scopes are one ``__slots__`` object; ``reset()`` starts afresh."""
    from patchtrace import _unittest

    state = _unittest._state
    saved = (state.found, state.pollution, state.open, state.pending)
    try:
        state.found = [{"test": "t.T.test_x", "message": "patch not used"}]
        state.pollution = {"t.T.test_x": ["L1 binding-changed: os.environ['X']"]}
        state.open = {("class", "t.T"): ("T.setUpClass", "t.T.test_x")}
        assert _unittest.hints() == [{"test": "t.T.test_x", "message": "patch not used"}]
        assert _unittest.pollution() == [("t.T.test_x", ["L1 binding-changed: os.environ['X']"])]
        state.reset()
        assert _unittest.hints() == [] and _unittest.pollution() == []
        assert state.open == {} and state.pending is None
        assert not hasattr(state, "__dict__")  # slots: no stray attribute can be added
    finally:
        state.found, state.pollution, state.open, state.pending = saved
