"""R11: a lazy-import placeholder that resolves itself on first use is lazy initialization.

The rule (issue 13 §1, "lazy initialization is not pollution"): a binding whose value
before the scope was a *forwarding placeholder*, replaced by the placeholder's own code
with the object it stands for, is no difference later code can observe. Later code that
reads the binding got that object's attributes, repr and calls through the placeholder
before, and gets the object itself now; the first use in any test would have done the
same. ``importlib_metadata`` 10.2.0 keeps ``csv``, ``json``, ``Message``, ... as
``lazy_importer`` proxies, and ``_Proxy._resolve`` puts the real module in their place
(``namespace[name] = value``) when a project first calls ``importlib_metadata.metadata()``
(twine's ``twine/__init__.py``).

Each part is read without running user code (type slots and raw ``__dict__`` entries):

* **a forwarding placeholder**: not a mock; a class of its MRO written in Python (a heap
  type) defines ``__getattr__`` or ``__getattribute__`` in its raw ``__dict__``, and that
  class is defined in installed code (site-packages), not in the project or its tests;
* **replaced by its own code**: every record of the binding in the scope is a store whose
  innermost shown frame is installed code *and* runs a function of the placeholder's
  class (its raw MRO ``__dict__``; staticmethods and classmethods unwrapped), and whose
  ``before`` is the placeholder, the records chained from the value before the scope to
  the value now. A test or project frame making the store (``lazylib.csv = csv``) or a
  library function that is not the placeholder's (a helper swapping the binding) is not;
* **with what it stands for**: a module, a class, or an object the placeholder itself
  holds (one of its raw ``__dict__`` values or slots, or an item of a tuple or list held
  there: ``lazy_importer`` keeps ``_resolved = (value,)``). A placeholder that drops
  itself for ``None`` or an unrelated value still leaks.

A library leaving ``time.clock = None`` (no placeholder before: the name did not exist)
and a library swapping an existing binding for an unrelated object stay reported.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from .._vocab import NOTHING, UNKNOWN
from ..refs._safe import class_dict, mro, raw_dict, slot_values
from ..values import is_mock

if TYPE_CHECKING:
    from ..ledger import Mutation

__all__ = ["resolved_placeholder"]

_FORWARDING: Final = ("__getattr__", "__getattribute__")
_TYPE_FLAGS: Final[Any] = type.__dict__["__flags__"]
_TYPE_MODULE: Final[Any] = type.__dict__["__module__"]
_HEAPTYPE: Final = 1 << 9
_FUNCTION_CODE: Final[Any] = types.FunctionType.__dict__["__code__"]
_MODULE_DICT: Final[Any] = vars(types.ModuleType)["__dict__"]
#: how many held values (and items of a held tuple or list) are looked at, at most
_HELD_MAX: Final = 64


def resolved_placeholder(original: object, now: object, group: Sequence[Mutation]) -> bool:
    """``group`` (the scope's records of one binding, in order) took the binding from
    ``original`` to ``now`` only by forwarding placeholders resolving themselves (R11)."""
    if original is NOTHING or original is UNKNOWN or now is NOTHING or not group:
        return False
    if is_mock(now):
        return False
    current = original
    for mutation in group:
        if mutation.op != "set" or mutation.before_value() is not current:
            return False
        after = mutation.after_value()
        if after is NOTHING or after is UNKNOWN or is_mock(after):
            return False
        cls = _forwarding_class(current)
        if cls is None or not _stands_for(current, after):
            return False
        if not mutation.stack.written_by_library() or \
                not _own_code(mutation.stack.storer(), type(current)):
            return False
        current = after
    return current is now


def _heap(cls: type) -> bool:
    try:
        return bool(_TYPE_FLAGS.__get__(cls, type) & _HEAPTYPE)
    except Exception:
        return False


def _forwarding_class(obj: object) -> type | None:
    """The installed class of ``obj``'s MRO that forwards attribute reads, or None."""
    if is_mock(obj):
        return None
    cls = type(obj)
    if issubclass(cls, type):
        return None  # a class as a placeholder: its metaclass is not what forwards here
    for klass in mro(cls):
        if not _heap(klass):
            continue  # object, ModuleType: C types define __getattribute__ slots of their own
        try:
            names = class_dict(klass)
            forwards = any(name in names for name in _FORWARDING)
        except Exception:
            return None
        if forwards:
            return klass if _installed_class(klass) else None
    return None


def _installed_class(cls: type) -> bool:
    try:
        module_name = _TYPE_MODULE.__get__(cls, type)
    except Exception:
        return False
    module = sys.modules.get(module_name) if type(module_name) is str else None
    if module is None or not issubclass(type(module), types.ModuleType):
        return False
    try:
        namespace = _MODULE_DICT.__get__(module, types.ModuleType)
    except Exception:
        return False
    path = dict.get(namespace, "__file__") if type(namespace) is dict else None
    return type(path) is str and _stack.is_library(path)


def _stands_for(placeholder: object, value: object) -> bool:
    """``value`` is what ``placeholder`` names: a module or a class, or an object the
    placeholder holds itself (directly, or in a tuple or list it holds)."""
    kind = type(value)
    if issubclass(kind, types.ModuleType) or issubclass(kind, type):
        return True
    return any(item is value for item in _held(placeholder))


def _held(placeholder: object) -> Iterator[object]:
    namespace = raw_dict(placeholder)
    values: list[object] = list(dict.values(namespace)) if namespace is not None else []
    values.extend(value for _, value in slot_values(placeholder))
    for held in values[:_HELD_MAX]:
        yield held
        if type(held) is tuple or type(held) is list:
            yield from held[:_HELD_MAX]


def _own_code(storer: tuple[str, int, types.CodeType | None] | None, cls: type) -> bool:
    """The storing frame runs a function defined in ``cls`` or a class of its MRO (written
    in Python): the placeholder's own code."""
    if storer is None:
        return False
    filename, line, code = storer
    path = os.path.abspath(filename)
    for function_code in _class_code(cls):
        if code is not None:
            if function_code is code:
                return True
            continue
        if os.path.abspath(function_code.co_filename) != path:
            continue
        if any(start is not None and start == line for _, _, start in function_code.co_lines()):
            return True
    return False


def _class_code(cls: type) -> Iterator[types.CodeType]:
    for klass in mro(cls):
        if not _heap(klass):
            continue
        try:
            members = list(class_dict(klass).values())
        except Exception:
            continue
        for member in members:
            kind = type(member)
            if kind is staticmethod or kind is classmethod:
                member = member.__func__
                kind = type(member)
            if kind is types.FunctionType:
                try:
                    yield _FUNCTION_CODE.__get__(member, types.FunctionType)
                except Exception:
                    continue
