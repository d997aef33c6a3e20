"""Two copies of one module: what is left when a module leaves ``sys.modules`` while
objects made from it are still in use.

``patch.dict(sys.modules, ...)`` puts back the dict it saw on entry, and a pytester-style
snapshot restore (``sys.modules.clear(); sys.modules.update(saved)``) does the same: a
module imported inside the block is dropped on the way out. A class or function captured
inside the block (an instance in a registry, a handler list, another module's
``from m import C``) still belongs to that copy; the next ``import`` executes the module
again and makes a second one, and ``isinstance`` or ``except`` against the new class no
longer matches the old objects. A prefix wipe (``del sys.modules[k]`` for every ``pkg.*``)
followed by a re-import is the same story for modules that were there before the test.

The pieces, each cheap when nothing happened:

* :class:`FreshImports` notes the project modules imported since the last boundary (one
  dict store per import, through the post-import hook of ``sources/_imports.py``), weakly;
* :func:`defined_in` lists what a module defines itself (classes and functions whose
  ``__module__`` is its name), read from raw ``__dict__`` entries;
* :class:`CopyLeak` says, in words, whether a failing test met an old copy: an exception
  or an object of an old copy's class in its traceback while ``sys.modules`` holds another
  copy, or a read of a binding that holds such objects (a registry).

Only weak references are kept: nothing here keeps a dropped module or its classes alive.
"""

from __future__ import annotations

import re
import sys
import weakref
from types import FunctionType, ModuleType
from typing import Any, Final

from ..sources._imports import cancel_on_import, on_import
from .reads import Reads

__all__ = ["Copies", "CopyLeak", "FreshImports", "defined_in", "weak_copies"]

#: (qualname, weak reference) of the classes and functions of the old copies of a module
#: (several: a module re-imported by test after test leaves one old copy each)
Copies = list[tuple[str, "weakref.ref[Any]"]]

_MODULE_DICT: Final[Any] = vars(ModuleType)["__dict__"]
_TYPE_MODULE: Final[Any] = vars(type)["__module__"]
_TYPE_QUALNAME: Final[Any] = vars(type)["__qualname__"]
_MAX_LOCALS: Final = 200


def _is_project_file(path: str) -> bool:
    from ..sources.watch import _is_project_file as project

    return project(path)


class FreshImports:
    """Project modules imported since the last :meth:`take`, by name, held weakly."""

    def __init__(self) -> None:
        self._seen: dict[str, weakref.ref[ModuleType]] = {}

    def install(self) -> None:
        on_import(_is_project_file, self._imported)

    def uninstall(self) -> None:
        cancel_on_import(self._imported)
        self._seen = {}

    def _imported(self, module: ModuleType) -> None:
        name = _MODULE_DICT.__get__(module).get("__name__")
        if type(name) is str:
            try:
                self._seen[name] = weakref.ref(module)
            except TypeError:
                pass

    def take(self) -> dict[str, weakref.ref[ModuleType]]:
        seen, self._seen = self._seen, {}
        return seen


def defined_in(module: object, name: str) -> dict[str, object]:
    """The classes and functions ``module`` defines itself (``__module__`` is ``name``),
    by qualified name. Raw ``__dict__`` reads only: no property, no ``__getattr__``."""
    if not issubclass(type(module), ModuleType):
        return {}
    try:
        namespace = _MODULE_DICT.__get__(module)
        values = list(namespace.values())
    except Exception:
        return {}
    out: dict[str, object] = {}
    for value in values:
        kind = type(value)
        try:
            if issubclass(kind, type):
                if _TYPE_MODULE.__get__(value) == name:
                    out[str(_TYPE_QUALNAME.__get__(value))] = value
            elif kind is FunctionType and vars(FunctionType)["__module__"].__get__(
                    value) == name:
                out[str(vars(FunctionType)["__qualname__"].__get__(value))] = value
        except Exception:
            continue
    return out


def weak_copies(objects: dict[str, object]) -> Copies:
    out: Copies = []
    for qualname, obj in objects.items():
        try:
            out.append((qualname, weakref.ref(obj)))
        except TypeError:
            pass
    return out


def _class_of(value: object) -> type:
    kind = type(value)
    return value if issubclass(kind, type) else kind  # type: ignore[return-value]


def _current(name: str, qualname: str) -> object:
    module = sys.modules.get(name)
    if not issubclass(type(module), ModuleType):
        return None
    try:
        return _MODULE_DICT.__get__(module).get(qualname.partition(".")[0]) \
            if "." not in qualname else None
    except Exception:
        return None


#: how ``boundary._holders._where`` names a module binding that holds an object
_HOLDER: Final = re.compile(r"^module (\S+) \((?:in )?attribute (\S+)\)")


class CopyLeak:
    """A leak of a module that left ``sys.modules`` (dropped, or replaced by another copy),
    with what a later failing test could meet of the old copies: their classes, weakly,
    and the bindings of other modules that hold their objects (a registry, a
    ``from m import C``, an instance made at import time)."""

    __slots__ = ("holders", "leak", "name", "old")

    def __init__(self, leak: Any, name: str) -> None:
        self.leak = leak
        self.name = name
        self.old: Copies = []
        #: (module, attribute, qualname of the old object it holds)
        self.holders: list[tuple[str, str, str]] = []

    def add(self, objects: dict[str, object], held: list[tuple[str, str]]) -> None:
        self.old.extend(weak_copies(objects))
        del self.old[:-200]  # bounded: a module re-imported by every test
        for qualname, text in held:
            match = _HOLDER.match(text)
            if match is not None:
                entry = (match[1], match[2], qualname)
                if entry not in self.holders:
                    self.holders.append(entry)
        del self.holders[:-50]

    def _alive(self) -> dict[int, tuple[str, type]]:
        """id -> (qualname, class) of the old copies' classes still alive."""
        out: dict[int, tuple[str, type]] = {}
        for qualname, ref in self.old:
            obj = ref()
            if obj is not None and issubclass(type(obj), type):
                out[id(obj)] = (qualname, obj)
        return out

    def met_in(self, error: BaseException | None) -> str:
        """The failing test met an object of an old copy while ``sys.modules`` holds
        another: the exception that failed it is of an old copy's class (an ``except``
        against the new class let it through), or an old copy's object or class is among
        the locals of its traceback's frames."""
        if error is None:
            return ""
        alive = self._alive()
        if not alive:
            return ""
        name = self.name
        hit = alive.get(id(type(error)))
        if hit is not None and _current(name, hit[0]) is not hit[1]:
            return (f"raised {name}.{hit[0]} of the old copy, which an except against the "
                    f"new copy does not catch")
        tb = error.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            try:
                values = list(frame.f_locals.items())[:_MAX_LOCALS]
            except Exception:
                values = []
            for local, value in values:
                try:
                    hit = alive.get(id(_class_of(value)))
                except Exception:
                    continue
                if hit is not None and _current(name, hit[0]) is not hit[1]:
                    held = "a value of the failing assertion" if str(local).startswith("@") \
                        else f"local {local!s}"  # @py_assert1: pytest's rewritten assert
                    return (f"met the old copy of {name}.{hit[0]} ({held} in "
                            f"{frame.f_code.co_name}) while sys.modules[{name!r}] holds "
                            f"another")
            tb = tb.tb_next
        return ""

    def read_by(self, found: Reads | set[str]) -> str:
        """The failing code read a binding that holds an object of an old copy (through
        that module, as ``_reads`` follows it) while that copy is still alive."""
        alive = {q for q, _ in self._alive().values()}
        for module_name, attribute, qualname in self.holders:
            owner = sys.modules.get(module_name)
            if owner is None:
                continue
            hit = attribute in found if isinstance(found, set) else \
                found.read(attribute, owner)
            if hit and (qualname in alive or not self.old):
                return (f"read {module_name}.{attribute}, which holds the old copy of "
                        f"{self.name}.{qualname}")
        return ""
