"""Stack capture: the right line and function whichever way a frame's position is kept."""

from __future__ import annotations

import sys

from patchtrace import stack
from patchtrace.stack import _LINENO_CHEAP, capture, line_of


def _caught() -> tuple[stack.Stack, int]:
    """A stack captured by our caller's caller, and the line it was captured at."""
    return capture(1), sys._getframe(1).f_lineno


def test_a_frame_near_its_start_keeps_its_line() -> None:
    captured, line = _caught()
    item = captured._items[0]
    assert item[2] is None and item[1] == line  # f_lineno read directly: it was cheap
    where = captured.where()
    assert where is not None
    assert (where.line, where.function) == (line, "test_a_frame_near_its_start_keeps_its_line")


def test_a_frame_far_into_its_code_keeps_code_and_offset() -> None:
    total = 0
    # Enough bytecode before the capture that f_lineno would walk a long line table.
    for value in range(3):
        total += value
        total -= value
        assert total == 0, f"{total} {value}"
        assert value >= 0, f"{value} {total}"
        assert value < 3, f"{value} {total} {value}"
        assert isinstance(value, int), f"{value!r} {total!r}"
    assert sys._getframe().f_lasti >= _LINENO_CHEAP
    captured, line = _caught()
    item = captured._items[0]
    assert item[2] is sys._getframe().f_code  # the line is computed only when shown
    where = captured.where()
    assert where is not None
    assert where.line == line
    assert where.function == "test_a_frame_far_into_its_code_keeps_code_and_offset"


def test_line_of_agrees_with_f_lineno_on_every_frame() -> None:
    def inner() -> list[tuple[int, int]]:
        out = []
        frame = sys._getframe()
        while frame is not None:
            out.append((line_of(frame.f_code, frame.f_lasti), frame.f_lineno))
            frame = frame.f_back
        return out

    pairs = next(inner() for _ in range(1))  # from inside a generator's frame
    try:
        raise ValueError
    except ValueError:
        pairs += inner()
    assert pairs and all(computed == real for computed, real in pairs)


def test_hidden_frames_are_kept_by_file_only_unless_asked() -> None:
    import contextlib

    def both() -> tuple[stack.Stack, stack.Stack]:
        return capture(0), capture(0, hidden=True)

    @contextlib.contextmanager
    def cm():  # type: ignore[no-untyped-def]
        yield both()  # called by contextlib's __enter__: a hidden (standard library) frame

    with cm() as (plain, full):
        pass

    def contextlib_item(captured: stack.Stack) -> tuple[str, int, object]:
        return next(item for item in captured._items
                    if item[0] == contextlib.__file__)

    assert contextlib_item(plain)[1:] == (0, None)  # no f_code read for it
    assert contextlib_item(full)[1] > 0  # its position: a line, or an offset in its code
    assert [f.function for f in full.frames(hidden=True)
            if f.file == contextlib.__file__] == ["__enter__"]
    assert [f.function for f in plain.frames(hidden=True)
            if f.file == contextlib.__file__] == ["?"]  # kept by file only: not parsed
    assert plain.where() == full.where()
    assert plain.where() is not None and plain.where().function == "both"

