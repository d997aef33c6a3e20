"""Safe facts about user objects: is it a mock, what is it called, what does it look like.

Everything here must survive hostile objects: a ``__repr__`` that raises, a spec'd mock
that lies about ``__class__``, a Mock that grows a child on every attribute read.  So we
never call ``isinstance``/``hasattr``/``getattr`` on a user object; we look at ``type(obj)``
and at raw ``__dict__`` entries only.
"""

from __future__ import annotations

import reprlib
import sys
import types
from typing import Any, Final, final

from ._vocab import ATOMS as _ATOMS

__all__ = ["LoggerState", "ValueSummary", "identity_key", "is_mock", "is_plain", "mock_classes",
           "safe_repr", "same_value", "summarize", "type_name"]

_MOCK_MODULES: Final = ("unittest.mock", "mock.mock")  # "mock.mock": the PyPI backport
_REPR_LIMIT: Final = 120


#: A key for an object by identity, like ``id()`` but without its audit event: ``id()``
#: raises ``builtins.id``, which costs ~0.4 µs once any audit hook (ours) is installed.
#: ``object.__hash__`` is the object's address rotated by four bits (``_Py_HashPointer``), a
#: one-to-one map, whatever ``__hash__`` the object's own class defines.
identity_key: Final = object.__hash__

_mock_cache: tuple[object, object, tuple[type, ...]] = (None, None, ())


def mock_classes() -> tuple[type, ...]:
    """The ``NonCallableMock`` base classes of every mock library imported so far."""
    global _mock_cache
    modules = sys.modules
    first, second = modules.get(_MOCK_MODULES[0]), modules.get(_MOCK_MODULES[1])
    cached_first, cached_second, cached = _mock_cache
    if first is cached_first and second is cached_second:
        return cached
    found: list[type] = []
    for name in _MOCK_MODULES:
        module = sys.modules.get(name)
        if module is None:
            continue
        base = module.__dict__.get("NonCallableMock")
        if isinstance(base, type):
            found.append(base)
    _mock_cache = (first, second, tuple(found))
    return _mock_cache[2]


#: (module, name) of the base class of every mock: unittest.mock's, and the PyPI backport's
#: (``mock.mock``, which the ``mock`` package re-exports)
_MOCK_BASES: Final = frozenset({("unittest.mock", "NonCallableMock"),
                                ("mock.mock", "NonCallableMock")})
_class_name: Final = type.__dict__["__name__"].__get__
_class_module: Final = type.__dict__["__module__"].__get__
_class_mro: Final = type.__dict__["__mro__"].__get__


_class_flags: Final = type.__dict__["__flags__"].__get__
_HEAPTYPE: Final = 1 << 9
#: identity keys of static (C) types seen: never a mock, and never freed (a bounded set)
_static_types: set[int] = set()


def _mock_type(cls: type) -> bool:
    """A class deriving from a mock base, known by its MRO's raw names: the backport's
    classes are recognised without importing ``mock``, and so are those of a second copy
    of a mock module (a test that re-imports it)."""
    key = identity_key(cls)
    if key in _static_types:
        return False
    try:
        for klass in _class_mro(cls):
            if _class_name(klass) == "NonCallableMock" and \
                    (_class_module(klass), "NonCallableMock") in _MOCK_BASES:
                return True
        if not _class_flags(cls) & _HEAPTYPE:
            _static_types.add(key)
    except Exception:  # a metaclass can do anything
        return False
    return False


def is_mock(obj: object) -> bool:
    """True for instances of unittest.mock's classes (or subclasses), of the ``mock``
    backport's, and autospecced functions.

    Decided from ``type(obj)`` and raw ``__dict__`` reads only, so a mock with a ``spec``
    (whose ``__class__`` is the spec) is still recognised and no child mock is created.
    """
    cls = type(obj)
    bases = mock_classes()
    if bases and issubclass(cls, bases):
        return True
    if cls is types.FunctionType:
        # create_autospec(func) returns a real function carrying the mock in __dict__['mock'].
        inner = obj.__dict__.get("mock")
        return inner is not None and ((bool(bases) and issubclass(type(inner), bases))
                                      or _mock_type(type(inner)))
    return _mock_type(cls)


def type_name(obj: object) -> str:
    """``type(obj).__qualname__`` without consulting the object (mocks report their spec)."""
    cls = type(obj)
    try:
        name = cls.__qualname__
    except Exception:  # a metaclass can do anything
        name = "?"
    return name if isinstance(name, str) else "?"


class _Repr(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxstring = _REPR_LIMIT
        self.maxother = _REPR_LIMIT
        self.maxlist = self.maxtuple = self.maxset = self.maxdict = 8
        self.maxlevel = 3

    def repr_instance(self, x: Any, level: int) -> str:
        # reprlib swallows exceptions into "<X instance at ...>"; we want to say what happened.
        try:
            text = repr(x)
        except Exception as exc:
            return _failed_repr(x, exc)
        if len(text) > self.maxother:
            text = text[: self.maxother - 3] + "..."
        return text


_REPR: Final = _Repr()


def _failed_repr(obj: object, exc: BaseException) -> str:
    return f"<{type_name(obj)} object at {id(obj):#x} (repr raised {type(exc).__name__})>"


def safe_repr(obj: object, limit: int = _REPR_LIMIT) -> str:
    """A truncated repr that never raises."""
    try:
        text = _REPR.repr(obj)
    except Exception as exc:
        text = _failed_repr(obj, exc)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


@final
class ValueSummary:
    """What a binding held, as plain data (no reference to the object itself)."""

    __slots__ = ("is_mock", "repr", "type")

    def __init__(self, type: str, repr: str, is_mock: bool) -> None:
        self.type = type
        self.repr = repr
        self.is_mock = is_mock

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "repr": self.repr, "is_mock": self.is_mock}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ValueSummary:
        return cls(str(data.get("type", "?")), str(data.get("repr", "")), bool(data.get("is_mock")))

    def __repr__(self) -> str:
        return f"ValueSummary({self.type!r}, {self.repr!r}, is_mock={self.is_mock})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValueSummary):
            return NotImplemented
        return (self.type, self.repr, self.is_mock) == (other.type, other.repr, other.is_mock)

    def __hash__(self) -> int:
        return hash((self.type, self.repr, self.is_mock))


#: The summary of "there was nothing there" (an attribute or key that did not exist).
MISSING: Final = ValueSummary("<missing>", "<missing>", False)


def summarize(obj: object) -> ValueSummary:
    """Summarize ``obj`` safely; the result holds no reference to it."""
    return ValueSummary(type_name(obj), safe_repr(obj), is_mock(obj))


#: Immutable values compared by ``==`` (see :data:`patchtrace._vocab.ATOMS`).
#: Standard-library value classes, by module and name. Looked up in ``sys.modules`` (a value
#: of one of them exists only once its module is imported), so importing patchtrace imports
#: none of them.
_VALUE_CLASSES: Final = {
    "pathlib": frozenset({"PurePath", "PurePosixPath", "PureWindowsPath", "Path", "PosixPath",
                          "WindowsPath"}),
    "datetime": frozenset({"date", "timedelta", "timezone", "datetime", "time"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
}
#: Compared by ``==`` only without a tzinfo, or with the standard library's fixed offset: a
#: user's tzinfo subclass would run its ``utcoffset()``.
_TZ_AWARE: Final = frozenset({"datetime", "time"})


def _value_class(cls: type) -> str | None:
    """The name of ``cls`` if it is exactly one of the standard library's value classes."""
    try:
        module_name = type.__dict__["__module__"].__get__(cls)
        name = type.__dict__["__name__"].__get__(cls)
    except Exception:
        return None
    if module_name == "_decimal" or module_name == "_pydecimal":
        module_name = "decimal"
    if module_name == "_datetime":
        module_name = "datetime"
    # 3.13 moved the path classes into pathlib._local (and their bases into pathlib._abc)
    family = "pathlib" if str(module_name).startswith("pathlib.") else str(module_name)
    names = _VALUE_CLASSES.get(family)
    if names is None or name not in names:
        return None
    module = sys.modules.get(module_name)
    if module is None or module.__dict__.get(name) is not cls:
        return None
    return str(name)


def is_plain(obj: object) -> bool:
    """A value whose ``==`` runs no user code (see :func:`same_value`)."""
    return _plain(obj)


def _plain(obj: object) -> bool:
    """A value whose ``==`` runs no user code."""
    cls = type(obj)
    if cls in _ATOMS:
        return True
    if cls is tuple or cls is frozenset:
        return all(map(_plain, obj))  # type: ignore[call-overload]
    name = _value_class(cls)
    if name is None:
        return False
    if name in _TZ_AWARE:
        tz = obj.tzinfo  # type: ignore[attr-defined]
        return tz is None or _value_class(type(tz)) == "timezone"
    return True


def _is_enum_member(cls: type) -> bool:
    enum = sys.modules.get("enum")
    base = enum.__dict__.get("Enum") if enum is not None else None
    return isinstance(base, type) and issubclass(cls, base)


def same_value(a: object, b: object, _depth: int = 0) -> bool:
    """``b`` is what ``a`` was, for any later reader: the same object; or two values of
    exactly the same well-known immutable type that are equal (numbers, strings, ``None``,
    paths, dates and times, decimals, fractions; tuples and frozensets of such values); or
    tuples (``func.__defaults__``) whose items are pairwise the same by this rule. Enum
    members are singletons: the same member is the same object. No user-defined ``__eq__``
    is ever called."""
    if a is b:
        return True
    cls = type(a)
    if cls is not type(b) or _depth > 20:
        return False
    if cls in _ATOMS:
        if a == b:
            return True
        return cls is float and a != a and b != b  # NaN put back as NaN
    if cls is tuple:
        return len(a) == len(b) and all(  # type: ignore[arg-type]
            same_value(x, y, _depth + 1) for x, y in zip(a, b, strict=True))  # type: ignore[call-overload]
    if _is_enum_member(cls):
        return False  # members are singletons: not the same object, not the same member
    if _plain(a) and _plain(b):
        try:
            return bool(a == b)
        except Exception:
            return False
    return False


@final
class LoggerState:
    """What one logger looked like at a boundary: plain references, a readable repr.

    Taken by the boundary snapshot (:mod:`patchtrace.boundary.snapshot`), read by the calls
    source (which call explains a change) and the detector; here, below both, so that a
    source never imports the boundary. No weak reference support on purpose: a leak built
    from it keeps only its summary.
    """

    __slots__ = ("disabled", "handlers", "level", "name", "propagate")

    def __init__(self, name: str, state: tuple[Any, ...]) -> None:
        self.name = name
        self.handlers: tuple[object, ...] = state[0]
        self.level = state[1]
        self.propagate = state[2]
        self.disabled = state[3]

    def __repr__(self) -> str:
        level = self.level
        logging = sys.modules.get("logging")
        names = logging.__dict__.get("_levelToName") if logging is not None else None
        if type(level) is int and type(names) is dict and level in names:
            level = names[level]
        handlers = ", ".join(safe_repr(h, 60) for h in self.handlers)
        return (f"<logger {self.name!r} level={level} propagate={self.propagate} "
                f"disabled={self.disabled} handlers=[{handlers}]>")
