"""The "we are inside our own wrapper" state is per thread.

While one thread runs a patch's ``__enter__`` (our wrapper silences the lower sources so
one change is recorded once), another thread's write is its own change and is recorded.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Iterator
from unittest import mock

import pytest

from patchtrace import _tracer
from patchtrace.config import Config
from patchtrace.ledger import Mutation, Scope


@pytest.fixture
def tracer() -> Iterator[_tracer.Tracer]:
    tracer = _tracer.start(Config())
    tracer.scope = Scope("unit", "call")
    module = types.ModuleType("pt_quiet_target")
    module.func = lambda: "real"  # type: ignore[attr-defined]
    sys.modules["pt_quiet_target"] = module
    try:
        yield tracer
    finally:
        tracer.stop()
        sys.modules.pop("pt_quiet_target", None)
        for key in ("PT_QUIET_OTHER", "PT_QUIET_SAME"):
            os.environ.pop(key, None)


def env_records(tracer: _tracer.Tracer, mark: int, name: str) -> list[Mutation]:
    return [m for m in tracer.ledger.since(mark)
            if m.target == "os.environ" and m.name == name and m.source == "audit"]


def _enter_while(action: object) -> None:
    """Start and stop a patch whose ``new_callable`` runs ``action`` inside ``__enter__``."""
    def new_callable() -> object:
        action()  # type: ignore[operator]
        return mock.MagicMock()

    with mock.patch("pt_quiet_target.func", new_callable=new_callable):
        pass


def test_another_threads_write_during_enter_is_recorded(tracer: _tracer.Tracer) -> None:
    mark = len(tracer.ledger)
    inside = threading.Event()
    written = threading.Event()

    def other() -> None:
        inside.wait(10)
        os.environ["PT_QUIET_OTHER"] = "1"
        written.set()

    thread = threading.Thread(target=other)
    thread.start()

    def block() -> None:
        assert tracer.busy > 0  # really inside our wrapper, in this thread
        inside.set()
        assert written.wait(10)

    _enter_while(block)
    thread.join(10)
    [record] = env_records(tracer, mark, "PT_QUIET_OTHER")
    assert record.op == "set" and record.after.repr == "'1'"
    assert tracer.busy == 0 and not tracer.inside


def test_the_same_threads_write_during_enter_stays_quiet(tracer: _tracer.Tracer) -> None:
    # The control twin: the state still silences the thread that is inside the wrapper.
    mark = len(tracer.ledger)
    _enter_while(lambda: os.environ.__setitem__("PT_QUIET_SAME", "1"))
    assert env_records(tracer, mark, "PT_QUIET_SAME") == []
    os.environ["PT_QUIET_SAME"] = "2"  # outside the wrapper: recorded again
    assert [m.after.repr for m in env_records(tracer, mark, "PT_QUIET_SAME")] == ["'2'"]


def test_quiet_nests_and_unwinds_per_thread() -> None:
    tracer = _tracer.Tracer(Config())
    seen: list[int] = []
    with tracer.quiet():
        with tracer.quiet():
            assert tracer.busy == 2
            thread = threading.Thread(target=lambda: seen.append(tracer.busy))
            thread.start()
            thread.join()
        assert tracer.busy == 1
    assert seen == [0]
    assert tracer.busy == 0 and tracer.inside == {}
    tracer.busy += 1  # the older spelling still works, per thread
    assert tracer.inside and tracer.busy == 1
    tracer.busy -= 1
    assert not tracer.inside
