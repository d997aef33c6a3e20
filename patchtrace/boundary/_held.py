"""Values remembered across boundaries without keeping them alive."""

from __future__ import annotations

import sys
import weakref
from types import MethodType
from typing import Any, Final, cast, final

from ..ledger import NOTHING
from ..values import LoggerState, is_plain, same_value

__all__ = ["Held"]


@final
class Held:
    """A value remembered across boundaries without keeping it alive: atoms, plain values
    and enum members as they are (they cannot hold user objects, or live as long as their
    class anyway), tuples and lists item by item, anything else by weak reference (and
    never matched when it has none)."""

    __slots__ = ("_items", "_logger", "_method", "_ref", "_value")

    def __init__(self, obj: object) -> None:
        self._value: object = NOTHING
        self._ref: weakref.ref[Any] | None = None
        self._items: tuple[Held, ...] | None = None
        #: a logger's state (made by the snapshot, never a user object): by value, its
        #: handlers item by item, so a test that puts a logger back as it was repairs it
        self._logger: tuple[str, Held] | None = None
        #: a bound method: its function and its object (a new bound method of the same
        #: function on the same object is the same to every caller)
        self._method: Held | None = None
        cls = type(obj)
        if obj is NOTHING or is_plain(obj) or _is_enum_member(obj):
            self._value = obj
        elif cls is MethodType:
            self._method = Held((_METHOD_FUNC(obj), _METHOD_SELF(obj)))
        elif cls is LoggerState:
            state = cast("LoggerState", obj)
            self._logger = (state.name, Held(
                (state.handlers, state.level, state.propagate, state.disabled)))
        elif cls is tuple or cls is list:
            self._items = tuple(Held(item) for item in obj)  # type: ignore[attr-defined]
        elif cls.__weakrefoffset__:
            try:
                self._ref = weakref.ref(obj)
            except TypeError:
                pass

    def matches(self, obj: object) -> bool:
        if self._method is not None:
            return type(obj) is MethodType and self._method.matches(
                (_METHOD_FUNC(obj), _METHOD_SELF(obj)))
        if self._logger is not None:
            if type(obj) is not LoggerState:
                return False
            name, values = self._logger
            return obj.name == name and values.matches(
                (obj.handlers, obj.level, obj.propagate, obj.disabled))
        if self._items is not None:
            cls = type(obj)
            if cls is not tuple and cls is not list:
                return False
            items = cast("tuple[object, ...]", obj)
            return len(items) == len(self._items) and all(
                h.matches(x) for h, x in zip(self._items, items, strict=True))
        if self._ref is not None:
            held = self._ref()
            return held is not None and held is obj
        if self._value is NOTHING:
            return obj is NOTHING
        return same_value(self._value, obj)


#: the method type's own slots: never an attribute lookup on the user's object
_METHOD_FUNC: Final[Any] = vars(MethodType)["__func__"].__get__
_METHOD_SELF: Final[Any] = vars(MethodType)["__self__"].__get__


def _is_enum_member(obj: object) -> bool:
    enum = sys.modules.get("enum")
    base = enum.__dict__.get("Enum") if enum is not None else None
    return isinstance(base, type) and issubclass(type(obj), base)
