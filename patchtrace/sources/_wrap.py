"""The one guarded wrapper: :func:`around`.

A source that needs to see a function being called (``signal.signal``,
``logging.Logger.setLevel``, ...) replaces it with a wrapper made here, never with a
hand-written one, so that every wrapper keeps the same promises:

* **transparent**: the original is called with the same arguments; its return value and
  its exceptions reach the caller unchanged; ``__name__``, ``__qualname__``, ``__doc__``,
  ``__module__`` and ``__wrapped__`` are the original's (``inspect.signature`` follows
  ``__wrapped__``); a ``staticmethod``/``classmethod`` in a class ``__dict__`` stays one;
* **reads guarded**: the original is read from the owner's raw ``__dict__``, never through
  ``getattr`` (no descriptor, no ``__getattr__`` of the owner runs);
* **quiet**: while patchtrace's own code runs in this thread (``Tracer.busy``) or while the
  same group's wrapper is already running in this thread (``basicConfig`` calling
  ``addHandler``), the original is called and nothing else happens: no recursion, one
  record per call the user made. With ``quiet=True`` the lower sources (audit hook, dict
  watchers) are also hushed while the original runs;
* **never raises into user code**: ``before`` and ``after`` are guarded; the first failure
  of a part is said once (``Tracer.internal_error``) and that part is really switched off:
  its wrapper calls the original and nothing else from then on;
* **undoable**: every replacement goes on the group's typed undo list; :meth:`Group.undo`
  restores in reverse order, is idempotent, and leaves alone an attribute someone else
  rebound since (the wrapper then passes every call straight through).

Hooks: ``before(args, kwargs)`` runs before the original and returns a ticket, or
:data:`SKIP` to leave this call alone; ``after(ticket, args, kwargs, result)`` runs after
the original returned (not when it raised). With ``skip_driver=True`` a call made directly
by pytest or pluggy (``stack.is_driver``: pytest's log capture adding and removing its
handler around every phase, its warning filters around every test) goes straight to the
original before any bookkeeping, for a group whose ``before`` would skip it anyway. A
wrapper is never wrapped again.
"""

from __future__ import annotations

from _thread import get_ident
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, final

from .. import stack as _stack

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["SKIP", "Group", "Saved", "around", "is_wrapper"]

Before = Callable[[tuple[Any, ...], dict[str, Any]], object]
After = Callable[[object, tuple[Any, ...], dict[str, Any], object], None]


class _Skip:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<skip>"


#: returned by a ``before`` hook: nothing to record for this call
SKIP: Final = _Skip()
#: the attribute that marks our wrappers
_MARK: Final = "__patchtrace__"
_UPDATED: Final = ("__module__", "__name__", "__qualname__", "__doc__")


@final
class Saved:
    """One entry of an undo list: ``owner.attr`` held ``original`` before ``wrapper``."""

    __slots__ = ("attr", "original", "owner", "wrapper")

    def __init__(self, owner: object, attr: str, original: object, wrapper: object) -> None:
        self.owner = owner
        self.attr = attr
        self.original = original
        self.wrapper = wrapper

    def __repr__(self) -> str:
        return f"Saved({self.attr!r})"


@final
class Group:
    """The wrappers of one source: the tracer they record for (None: pass through), who is
    inside one of them (per thread), which parts failed, and the undo list."""

    __slots__ = ("inside", "name", "off", "saved", "tracer")

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracer: Tracer | None = None
        #: thread id -> inside one of this group's wrappers (the nested calls are its own)
        self.inside: dict[int, int] = {}
        #: parts switched off by an internal error
        self.off: set[str] = set()
        self.saved: list[Saved] = []

    def fail(self, part: str, exc: BaseException) -> None:
        """Switch ``part`` off and say so once."""
        self.off.add(part)
        tracer = self.tracer
        if tracer is not None:
            try:
                tracer.internal_error(part, exc)
            except Exception:
                pass

    def undo(self) -> None:
        """Put every original back, last wrapped first. Idempotent."""
        saved, self.saved = self.saved, []
        for entry in reversed(saved):
            try:
                namespace = _namespace(entry.owner)
                if namespace is not None and namespace.get(entry.attr) is not entry.wrapper:
                    continue  # rebound since: theirs stays, ours passes calls through
                setattr(entry.owner, entry.attr, entry.original)
            except Exception:
                pass
        self.tracer = None


def _namespace(owner: object) -> Any:
    """The owner's raw ``__dict__`` (a mappingproxy for a class), read without its
    ``__getattr__``."""
    try:
        return object.__getattribute__(owner, "__dict__")
    except (AttributeError, TypeError):
        return None


def is_wrapper(obj: object) -> bool:
    """One of ours (read from the raw ``__dict__``: never a user ``__getattr__``)."""
    inner = obj.__func__ if type(obj) in (staticmethod, classmethod) else obj  # type: ignore[attr-defined]
    namespace = _namespace(inner)
    return type(namespace) is dict and namespace.get(_MARK) is True


def around(owner: object, attr: str, *, part: str, group: Group,
           before: Before | None = None, after: After | None = None, quiet: bool = False,
           also: tuple[object, ...] = (), skip_driver: bool = False) -> bool:
    """Wrap ``owner.attr`` (a module's function or a class's method) for ``group``.

    ``also``: other owners that hold the same original under the same name (a package
    re-exporting its submodule's function) get the same wrapper. True when wrapped (or
    already ours); False when there is nothing to wrap or wrapping failed (said once).
    """
    try:
        namespace = _namespace(owner)
        original = namespace.get(attr) if namespace is not None else None
        if original is None:
            return False
        if is_wrapper(original):
            return True
        kind = type(original)
        function = original.__func__ if kind in (staticmethod, classmethod) else original
        if not callable(function):
            return False
        wrapper = _make(function, part, group, before, after, quiet, skip_driver)
        for name in _UPDATED:
            try:
                setattr(wrapper, name, getattr(function, name))
            except (AttributeError, TypeError):
                pass
        wrapper.__wrapped__ = function  # type: ignore[attr-defined]
        setattr(wrapper, _MARK, True)
        bound: object = kind(wrapper) if kind in (staticmethod, classmethod) else wrapper
        setattr(owner, attr, bound)
        group.saved.append(Saved(owner, attr, original, bound))
        for other in also:
            other_namespace = _namespace(other)
            if other_namespace is not None and other_namespace.get(attr) is original:
                setattr(other, attr, bound)
                group.saved.append(Saved(other, attr, original, bound))
        return True
    except Exception as exc:
        group.fail(part, exc)
        return False


def _make(original: Callable[..., Any], part: str, group: Group, before: Before | None,
          after: After | None, quiet: bool, skip_driver: bool = False) -> Callable[..., Any]:
    inside = group.inside
    off = group.off
    getframe = _stack._getframe  # captured: a test may delete sys._getframe
    frame_file = _stack.frame_file
    is_driver = _stack.is_driver

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tracer = group.tracer
        if tracer is None or not tracer.enabled or part in off or \
                (tracer.inside and tracer.busy):
            return original(*args, **kwargs)
        if skip_driver:
            # ~15 calls per test come from pytest itself: a third of the bookkeeping below
            try:
                by_driver = is_driver(frame_file(getframe(1)))
            except Exception:
                by_driver = False
            if by_driver:
                return original(*args, **kwargs)
        ident = get_ident()
        if ident in inside:
            return original(*args, **kwargs)  # called by the group's own outer call
        inside[ident] = 1
        try:
            ticket: object = None
            busy = tracer.inside  # this thread is not in it: checked above
            if before is not None:
                busy[ident] = 1  # our own work (Tracer.hush, inline): nothing it does is recorded
                try:
                    ticket = before(args, kwargs)
                except Exception as exc:
                    ticket = SKIP
                    group.fail(part, exc)
                finally:
                    busy.pop(ident, None)
            if quiet:
                tracer.hush()
                try:
                    result = original(*args, **kwargs)
                finally:
                    tracer.unhush()
            else:
                result = original(*args, **kwargs)
            if after is not None and ticket is not SKIP and part not in off:
                busy[ident] = 1
                try:
                    after(ticket, args, kwargs, result)
                except Exception as exc:
                    group.fail(part, exc)
                finally:
                    busy.pop(ident, None)
            return result
        finally:
            inside.pop(ident, None)

    return wrapper
