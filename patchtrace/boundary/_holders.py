"""Who, outside a module, still holds some of its objects: a bounded walk by name."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any, Final, cast

from .. import stack as _stack
from ..values import identity_key

__all__ = ["Holders", "hidden_module"]

_MODULE_DICT: Final[Any] = vars(ModuleType)["__dict__"]
_CLASS_DICT: Final[Any] = vars(type)["__dict__"]


class Holders:
    """Who, outside the reloaded module, still holds old objects: a bounded walk of what
    later code can reach by name from the other modules of the project and its libraries
    (the standard library's, pytest's and our own excepted): a module attribute
    (``from m import C``), an item of a list, tuple, set or dict there (a registry), the
    same one level inside classes defined there (``Base.registry``), an instance of an old
    class, or a subclass of one. No garbage collection and no referrer search: cheap
    enough for a suite whose fixture reloads a module around every test."""

    _MAX_ITEMS: Final = 2_000

    def __init__(self, name: str, old: Iterable[object]) -> None:
        self.name = name
        self.found: dict[int, str] = {}
        wanted = {identity_key(obj): obj for obj in old}
        classes = {identity_key(obj) for obj in wanted.values() if issubclass(type(obj), type)}
        if wanted:
            self._walk(wanted, classes)

    def of(self, obj: object) -> str | None:
        return self.found.get(identity_key(obj))

    def _walk(self, wanted: dict[int, object], classes: set[int]) -> None:
        """Set intersections at C speed over each namespace's values (a suite reloading a
        module around every test pays ~1 ms here, not a Python call per value)."""
        found = self.found
        wanted_keys = set(wanted)
        get_mro = type.__dict__["__mro__"].__get__
        containers = (list, tuple, set, frozenset, dict)

        def scan(values: list[object], where: Callable[[], str]) -> None:
            hits = wanted_keys.intersection(map(identity_key, values))
            for key in hits:
                found.setdefault(key, where())
            for key in classes.intersection(map(identity_key, map(type, values))):
                found.setdefault(key, f"{where()} (an instance of it)")
            for value in values:
                cls = type(value)
                if cls is type:
                    try:
                        for base in get_mro(value)[1:]:
                            if identity_key(base) in classes:
                                found.setdefault(identity_key(base), f"{where()} (a subclass)")
                    except Exception:
                        pass
                elif cls in containers:
                    sized = cast("list[object]", value)
                    if len(sized) > self._MAX_ITEMS:
                        continue
                    items = list(cast("dict[object, object]", value).values()) \
                        if cls is dict else list(sized)
                    if wanted_keys.intersection(map(identity_key, items)) or \
                            classes.intersection(map(identity_key, map(type, items))):
                        scan(items, where)

        for mod_name, module in list(sys.modules.items()):
            if mod_name == self.name or not issubclass(type(module), ModuleType) or \
                    mod_name.partition(".")[0] == "patchtrace" or hidden_module(mod_name):
                continue
            try:
                namespace = cast("dict[str, object]", _MODULE_DICT.__get__(module))
                values = list(namespace.values())
            except Exception:
                continue
            scan(values, functools.partial(_where, mod_name, namespace, wanted_keys, classes))
            for value in values:
                if type(value) is not type:
                    continue
                try:  # the class's mappingproxy, read raw (no gc.get_referents)
                    inner = _CLASS_DICT.__get__(value)
                    if inner.get("__module__") != mod_name:
                        continue
                    inner_values = [v for v in inner.values() if type(v) in containers]
                except Exception:
                    continue
                if inner_values:
                    label = f"class {mod_name}.{type.__dict__['__name__'].__get__(value)}"
                    scan(inner_values, functools.partial(str, label))


def _where(module: str, namespace: dict[str, object], wanted: set[int],
           classes: set[int]) -> str:
    """``module m (attribute x)``: the first attribute holding (or containing) a wanted
    object or an instance of a wanted class; computed only when something was found."""
    for attr, value in list(namespace.items()):
        key = identity_key(value)
        if key in wanted or identity_key(type(value)) in classes:
            return f"module {module} (attribute {attr})"
    for attr, value in list(namespace.items()):
        cls = type(value)
        if cls in (list, tuple, set, frozenset, dict):
            items = list(cast("dict[object, object]", value).values()) if cls is dict \
                else list(cast("list[object]", value))
            if wanted.intersection(map(identity_key, items)) or \
                    classes.intersection(map(identity_key, map(type, items))):
                return f"module {module} (in attribute {attr})"
    return f"module {module}"


def hidden_module(name: str) -> bool:
    """A module of the standard library, pytest or patchtrace (their caches, typing's
    included, are not the suite's registries)."""
    module = sys.modules.get(name)
    path = module.__dict__.get("__file__") if isinstance(module, ModuleType) else None
    return not isinstance(path, str) or _stack.is_hidden(path)
