"""Reading bindings back from target strings (raw: descriptors not invoked, no user code).

Every check asks "what does this binding hold now?" through these; so do the debugger and
the victims analysis.
"""

from __future__ import annotations

import builtins
import os
import sys
from types import FunctionType, ModuleType
from typing import Any

from ..ledger import NOTHING
from ..values import MISSING, ValueSummary, summarize

__all__ = ["current_value", "inherited", "namespace_of", "owner_of", "resolve_class",
           "summary", "swapped_value", "unwrap"]


def namespace_of(target: str) -> dict[str, Any] | None:
    """The live dict a target string names (module/class dicts, builtins, sys.modules)."""
    if target == "builtins":
        return builtins.__dict__
    if target == "sys.modules":
        return sys.modules
    if target.startswith("module:"):
        module = sys.modules.get(target[7:])
        return module.__dict__ if isinstance(module, ModuleType) else None
    if target.startswith("class:"):
        cls = resolve_class(target[6:])
        if cls is None:
            return None
        from ..sources.watch import _class_dict

        return _class_dict(cls)
    return None


def resolve_class(dotted: str) -> type | None:
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if not isinstance(module, ModuleType):
            continue
        obj: object = module
        for part in parts[cut:]:
            namespace = obj.__dict__ if isinstance(obj, (ModuleType, type)) else None
            if namespace is None or part not in namespace:
                obj = NOTHING
                break
            obj = namespace[part]
        if issubclass(type(obj), type):
            return obj  # type: ignore[return-value]
    return None


def current_value(target: str, name: str | None) -> object:
    """What ``target``/``name`` holds now (raw, descriptors not invoked), or NOTHING."""
    if name is None:
        return NOTHING
    if target == "os.environ":
        return os.environ.get(name, NOTHING)
    if name == "__class__" or name.endswith((".__code__", ".__defaults__", ".__kwdefaults__")):
        return swapped_value(target, name)
    namespace = namespace_of(target)
    if namespace is None:
        return NOTHING
    return namespace.get(name, NOTHING)


def unwrap(value: object) -> object:
    if type(value) in (staticmethod, classmethod):
        return value.__func__  # type: ignore[attr-defined]
    return value


def inherited(target: str, name: str) -> object:
    """What ``name`` resolves to on a base of the class ``target`` names (raw, from the
    bases' dicts), or NOTHING."""
    cls = resolve_class(target[6:])
    if cls is None:
        return NOTHING
    from ..sources.watch import _class_dict

    try:
        mro = type.__dict__["__mro__"].__get__(cls)
    except Exception:
        return NOTHING
    for base in mro[1:]:
        namespace = _class_dict(base)
        if namespace is not None and name in namespace:
            return namespace[name]
    return NOTHING


def owner_of(target: str) -> object | None:
    """The module or class a ``module:``/``class:`` target names, if it is loaded."""
    if target.startswith("module:"):
        return sys.modules.get(target[7:])
    if target.startswith("class:"):
        return resolve_class(target[6:])
    return None


def swapped_value(target: str, name: str) -> object:
    """The class (``__class__``) or code/defaults (``func.__code__``) there now."""
    owner = owner_of(target)
    if owner is None:
        return NOTHING
    if name == "__class__":
        return type(owner)
    path, _, attr = name.rpartition(".")
    if "<locals>" in path or attr not in ("__code__", "__defaults__", "__kwdefaults__"):
        return NOTHING  # a local function: nobody else can call it after its test
    obj: object = owner
    for part in path.split("."):
        namespace = obj.__dict__ if isinstance(obj, (ModuleType, type)) else None
        value = namespace.get(part) if namespace is not None else None
        if type(value) in (staticmethod, classmethod):
            value = value.__func__  # type: ignore[union-attr]
        if value is None:
            return NOTHING
        obj = value
    if type(obj) is not FunctionType:
        return NOTHING
    return getattr(obj, attr, NOTHING)


def summary(obj: object) -> ValueSummary:
    return MISSING if obj is NOTHING else summarize(obj)
