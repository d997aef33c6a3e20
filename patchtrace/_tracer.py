"""The process-wide tracer: owns the ledger, the current scope and the sources.

There is one tracer per process (like ``faulthandler``'s state, tracing is process-wide
by nature). Sources call :meth:`Tracer.record`; drivers (the pytest plugin, the unittest
glue, ``patchtrace.tracing()``) move :attr:`Tracer.scope` and ask for boundary checks.
"""

from __future__ import annotations

import threading
import weakref
from _thread import get_ident
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol

from . import stack as _stack
from ._vocab import Op, SourceName
from .ledger import PROCESS, Ledger, Scope, seal_raw, thread_of_caller

_MAIN: Final = threading.main_thread().ident

if TYPE_CHECKING:
    from .config import Config

__all__ = ["Source", "Tracer", "current", "start", "stop"]


class Source(Protocol):
    """One way of seeing mutations. ``install`` and ``uninstall`` are idempotent."""

    name: str

    def install(self, tracer: Tracer) -> None: ...

    def uninstall(self) -> None: ...


class Tracer:
    def __init__(self, config: Config | None = None) -> None:
        from .config import Config

        self.config = config if config is not None else Config()
        self.ledger = Ledger()
        self.scope: Scope = PROCESS
        #: thread id -> depth inside our wrappers (see :attr:`busy`); no entry: not inside.
        #: Never replaced: its truth is the cheap "is any thread inside?" test of the hot
        #: paths (``tracer.inside and tracer.busy``), exact without a lock.
        self.inside: dict[int, int] = {}
        self.sources: list[Source] = []
        self.enabled = False
        #: the leak detector of the driver (pytest plugin, unittest glue, process), if any
        self.detector: Any = None
        self._failed: set[str] = set()
        #: one line per part disabled by an internal error (pytest's fd capture can swallow
        #: the stderr line, so the terminal summary repeats them)
        self.errors: list[str] = []
        #: a traced child of a test session (PATCHTRACE_CHILDREN=1) prints nothing of ours
        self.silent = False
        #: calls recorded by the calls source (signal.signal, logging configuration, ...):
        #: the boundary comparison re-reads what they change only when this moved
        self.calls = 0
        self._lock = threading.Lock()

    # -- quiet: "this thread is inside our own code" ---------------------------------------
    @property
    def busy(self) -> int:
        """> 0 while one of our wrappers runs the original operation *in this thread*:
        lower-level sources (audit hook, dict watcher) stay quiet so one change is recorded
        once. Per thread: another thread's write at that moment is still recorded.

        Lower sources read it before they record; on their hot path they first test
        :attr:`inside` (a plain attribute: no call while no thread is inside a wrapper).
        """
        inside = self.inside
        return inside.get(get_ident(), 0) if inside else 0

    @busy.setter
    def busy(self, value: int) -> None:
        if value > 0:
            self.inside[get_ident()] = value
        else:
            self.inside.pop(get_ident(), None)

    def hush(self) -> None:
        """Enter our own code in this thread (the wrappers' fast form of ``busy += 1``)."""
        inside = self.inside
        ident = get_ident()
        inside[ident] = inside.get(ident, 0) + 1

    def unhush(self) -> None:
        """Leave it again (``busy -= 1``)."""
        inside = self.inside
        ident = get_ident()
        depth = inside.get(ident, 0) - 1
        if depth > 0:
            inside[ident] = depth
        else:
            inside.pop(ident, None)

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """Our own change (the session marker, a raw write back): no source records it."""
        self.hush()
        try:
            yield
        finally:
            self.unhush()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self.enabled:
            return
        from . import _captured  # noqa: F401  (captures open, os.replace, ... before any test)
        from .sources import default_sources

        self.sources = default_sources()
        self.enabled = True
        for source in self.sources:
            self._guarded(source.name, source.install, self)

    def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        for source in reversed(self.sources):
            self._guarded(source.name, source.uninstall)

    def source(self, name: str) -> Source | None:
        for source in self.sources:
            if source.name == name:
                return source
        return None

    # -- recording ------------------------------------------------------------------------
    def record(
        self,
        op: Op,
        source: SourceName,
        target: object,
        name: str | None,
        before: object,
        after: object,
        *,
        token: int | None = None,
        desc: object = None,
        patcher: object = None,
        stack: _stack.Stack | tuple[Any, ...] | None = None,
        holder: object = None,
        hint: object = None,
        unwinding: tuple[str, int] | None = None,
    ) -> int:
        """Append one lazy record (see :mod:`patchtrace.ledger`) and return its seq.

        ``target`` is the target string, or the object itself (named when the record is
        read, with ``hint``); ``desc`` a string or ``(function, argument)`` (see
        ``ledger.materialise``); ``stack`` defaults to the caller's raw stack.
        """
        if stack is None:
            stack = _stack.capture_raw(1)
        if source == "calls":
            self.calls += 1
        ledger = self.ledger
        scope = self.scope
        if type(target) is str:
            hint = None
            if holder is not None and target.startswith("object:"):
                try:
                    hint = weakref.ref(holder)
                except TypeError:
                    pass
        seq = ledger._count + 1
        if token == seq:  # a patch: its token is its seq (one int object for both)
            seq = token
        raw = (seq, op, source, target, hint, name, before, after, stack, scope,
               token, desc, None if get_ident() == _MAIN else thread_of_caller(), unwinding,
               False)
        if scope is PROCESS:
            # No boundary will come to seal a process-scope record: never hold user objects.
            raw = seal_raw(raw)
        return ledger.add(raw, patcher)

    # -- failure containment --------------------------------------------------------------
    def internal_error(self, part: str, exc: BaseException) -> None:
        """Say once that ``part`` failed; the run goes on without it."""
        with self._lock:
            if part in self._failed:
                return
            self._failed.add(part)
            self.errors.append(f"{part}: {type(exc).__name__}: {exc}")
        if self.silent:
            return
        from . import _captured

        # The real stderr, captured at start: pytest may be capturing sys.stderr now.
        _captured.say(f"patchtrace: internal error in {part} ({type(exc).__name__}: {exc}); "
                      f"{part} is disabled for the rest of this run")

    def failed(self, part: str) -> bool:
        return part in self._failed

    def _guarded(self, part: str, func: Callable[..., Any], *args: Any) -> None:
        try:
            func(*args)
        except Exception as exc:
            self.internal_error(part, exc)


_TRACER: Tracer | None = None


def current() -> Tracer | None:
    """The running tracer, or None."""
    tracer = _TRACER
    return tracer if tracer is not None and tracer.enabled else None


def get_or_create(config: Config | None = None) -> Tracer:
    global _TRACER
    if _TRACER is None:
        _TRACER = Tracer(config)
    elif config is not None:
        _TRACER.config = config
    return _TRACER


def start(config: Config | None = None) -> Tracer:
    tracer = get_or_create(config)
    tracer.start()
    return tracer


def stop() -> None:
    if _TRACER is not None:
        _TRACER.stop()
