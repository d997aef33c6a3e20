"""Raw reads on user objects that never run user code (no getattr, no isinstance, no hash)."""

from __future__ import annotations

import sys
import types
from typing import Any, Final

__all__ = [
    "class_dict",
    "class_name",
    "find_index",
    "mro",
    "raw_dict",
    "raw_keys_for",
    "slot_values",
    "thread_name",
]

_TYPE_DICT: Final[Any] = type.__dict__["__dict__"]
_TYPE_MRO: Final[Any] = type.__dict__["__mro__"]
_TYPE_QUALNAME: Final[Any] = type.__dict__["__qualname__"]
_TYPE_MODULE: Final[Any] = type.__dict__["__module__"]


def class_dict(cls: type) -> Any:
    """The mappingproxy of ``cls`` read through ``type``'s own descriptor (no metaclass code)."""
    return _TYPE_DICT.__get__(cls, type)


def mro(cls: type) -> tuple[type, ...]:
    try:
        result = _TYPE_MRO.__get__(cls, type)
    except Exception:
        return (cls,)
    return result if type(result) is tuple else (cls,)


def class_name(cls: type) -> str:
    """``module.qualname`` of a class, read through ``type``'s descriptors."""
    try:
        qualname = _TYPE_QUALNAME.__get__(cls, type)
        module = _TYPE_MODULE.__get__(cls, type)
    except Exception:
        return "?"
    if type(qualname) is not str:
        return "?"
    if type(module) is str and module not in ("builtins", "__main__"):
        return f"{module}.{qualname}"
    return qualname


def raw_dict(obj: object) -> dict[str, Any] | None:
    """``obj.__dict__`` found via the ``__dict__`` getset descriptor on its type, or None.

    ``type(obj).__getattribute__``/``__getattr__`` are never consulted, so a Mock does not grow
    a child.  (On 3.11+ this may materialize an instance's inline-values dict; harmless.)
    """
    cls = type(obj)
    if issubclass(cls, type):
        try:
            proxy = class_dict(obj)  # type: ignore[arg-type]
        except Exception:
            return None
        return None if proxy is None else dict(proxy)
    for klass in mro(cls):
        try:
            descr = class_dict(klass).get("__dict__")
        except Exception:
            continue
        if descr is None:
            continue
        if type(descr) is not types.GetSetDescriptorType:
            return None  # a user-defined __dict__ property: do not run it
        try:
            value = descr.__get__(obj, cls)
        except Exception:
            return None
        return value if type(value) is dict else None
    return None


def slot_values(obj: object) -> list[tuple[str, Any]]:
    """``(name, value)`` of every set ``__slots__`` member of ``obj``."""
    found: list[tuple[str, Any]] = []
    cls = type(obj)
    for klass in mro(cls):
        try:
            items = list(class_dict(klass).items())
        except Exception:
            continue
        for name, descr in items:
            if type(descr) is types.MemberDescriptorType:
                try:
                    found.append((name, descr.__get__(obj, cls)))
                except Exception:
                    continue
    return found


def raw_keys_for(mapping: dict[Any, Any], value: object) -> list[Any]:
    """Keys of a real dict whose value *is* ``value`` (identity; no ``==``, no ``hash``)."""
    return [k for k, v in dict.items(mapping) if v is value]


def find_index(seq: list[Any] | tuple[Any, ...], value: object) -> int:
    """Index of ``value`` in a list/tuple by identity, or -1."""
    iterator = list.__iter__(seq) if issubclass(type(seq), list) else tuple.__iter__(seq)  # type: ignore[arg-type]
    for index, item in enumerate(iterator):
        if item is value:
            return index
    return -1


def thread_name(ident: int) -> str:
    threading = sys.modules.get("threading")
    if threading is None:
        return f"thread {ident}"
    active = threading.__dict__.get("_active")
    thread = active.get(ident) if type(active) is dict else None
    if thread is None:
        return f"thread {ident}" if ident != threading.main_thread().ident else "MainThread"
    try:
        name = thread.name
    except Exception:
        return f"thread {ident}"
    return name if type(name) is str else f"thread {ident}"
