"""Threads a scope left running: leaks only if they are still running a while later."""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = ["Threads"]

#: How long a thread left by a scope may take to end before it counts as leaked (seconds).
_THREAD_GRACE: Final = 1.0


@final
class Threads:
    """The threads scopes left running, each with the leak it is if it keeps running."""

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending: list[tuple[weakref.ref[Any], float, Leak]] = []

    def add(self, thread: object, leak: Leak) -> bool:
        """Judge ``leak`` later, once ``thread`` had time to end; False when it cannot be
        followed (no weak reference): then it is reported now."""
        try:
            self._pending.append((weakref.ref(thread), time.monotonic(), leak))
        except TypeError:
            return False
        return True

    def settle(self, *, final: bool = False) -> list[Leak]:
        """Threads a scope left running are leaks only if they are still running a while
        later (as in CPython's regrtest, which waits up to a second): an executor told to
        shut down with ``wait=False`` (asyncio's ``loop.close()``) ends on its own."""
        if not self._pending:
            return []
        out: list[Leak] = []
        keep: list[tuple[weakref.ref[Any], float, Leak]] = []
        now = time.monotonic()
        for ref, seen, leak in self._pending:
            thread = ref()
            if thread is None:
                continue
            if final:
                try:
                    thread.join(max(0.0, _THREAD_GRACE - (time.monotonic() - seen)))
                except Exception:
                    pass
            if not thread.is_alive():
                continue
            if final or now - seen >= _THREAD_GRACE:
                out.append(leak)
            else:
                keep.append((ref, seen, leak))
        self._pending = keep
        return out
