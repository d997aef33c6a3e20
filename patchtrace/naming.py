"""Name patch targets in the contract's vocabulary.

``module:pkg.mod``, ``class:pkg.mod.Cls``, ``sys.modules``, ``builtins``, ``os.environ``,
``object:conf.settings``. Fast for modules, classes and the well-known dicts; instances and
anonymous dicts are resolved by a scan of module globals, only when a report needs it.
"""

from __future__ import annotations

import builtins
import os
import sys
from types import ModuleType
from typing import Final

from .ledger import NOTHING
from .values import is_mock

__all__ = ["UNRESOLVED", "find_path", "target_of"]

UNRESOLVED: Final = "object:?"


def _module_name(module: ModuleType) -> str:
    name = module.__dict__.get("__name__")
    return name if isinstance(name, str) else "?"


def class_name(cls: type) -> str:
    try:
        module = type.__dict__["__module__"].__get__(cls)
        qualname = type.__dict__["__qualname__"].__get__(cls)
    except Exception:
        return "?"
    return f"{module}.{qualname}" if module not in (None, "builtins") else str(qualname)


def target_of(obj: object, hint: str | None = None) -> str:
    """The contract's target string for the object a mutation was made on.

    ``hint`` is a dotted path the user wrote (``patch('conf.settings.debug')`` gives
    ``conf.settings``); it names instances without a scan.
    """
    if obj is builtins or obj is builtins.__dict__:
        return "builtins"
    if obj is sys.modules:
        return "sys.modules"
    if obj is os.environ or obj is getattr(os.environ, "_data", None):
        return "os.environ"
    if obj is sys.path:
        return "sys.path"
    cls = type(obj)
    if issubclass(cls, ModuleType):
        return f"module:{_module_name(obj)}"  # type: ignore[arg-type]
    if issubclass(cls, type) and not is_mock(obj):
        return f"class:{class_name(obj)}"  # type: ignore[arg-type]
    if cls is dict:
        for module in list(sys.modules.values()):
            if getattr(module, "__dict__", None) is obj:
                return f"module:{_module_name(module)}"
    if hint:
        return f"object:{hint}"
    return UNRESOLVED


def find_path(obj: object, *, depth: int = 2) -> str | None:
    """A dotted path by which ``obj`` is reachable from a module (``conf.settings``).

    Scans module globals and, one level down, class attributes and instance ``__dict__``s.
    Costs milliseconds: call it when rendering a report, never on a hot path.
    """
    for modname, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None) if isinstance(module, ModuleType) else None
        if not isinstance(namespace, dict):
            continue
        for key, value in list(namespace.items()):
            if value is obj:
                return f"{modname}.{key}"
    if depth < 2:
        return None
    for modname, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None) if isinstance(module, ModuleType) else None
        if not isinstance(namespace, dict) or modname.startswith("_"):
            continue
        for key, value in list(namespace.items()):
            if isinstance(value, ModuleType) or is_mock(value):
                continue
            inner = _raw_dict(value)
            if inner is None:
                continue
            for attr, item in list(inner.items()):
                if item is obj:
                    return f"{modname}.{key}.{attr}"
    return None


def raw_attribute(target: object, name: str) -> object:
    """The raw ``__dict__`` entry ``name`` of ``target`` (descriptors not invoked, no user
    ``__getattr__`` run), or :data:`~patchtrace.ledger.NOTHING`."""
    try:
        namespace = object.__getattribute__(target, "__dict__")
        return namespace.get(name, NOTHING)
    except Exception:
        return NOTHING


def _raw_dict(obj: object) -> dict[str, object] | None:
    """The instance or class ``__dict__``, read without calling user ``__getattr__``."""
    try:
        if issubclass(type(obj), type):
            return dict(type.__dict__["__dict__"].__get__(obj))
        d = object.__getattribute__(obj, "__dict__")
    except Exception:
        return None
    return d if isinstance(d, dict) else None
