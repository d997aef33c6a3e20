"""What a failing test could have read: the names used by its code and the code it calls.

A victim often fails far from the leaked binding: ``assert pricing.retry_delays() == [...]``
fails in the test, but ``settings.MAX_RETRIES`` was read inside ``retry_delays``, which has
returned. Starting from the user frames of the failure's traceback, this follows, by
static reading only, the project functions those frames can call: globals that are
functions, and attributes (named in the calling code) of project modules and classes.

It reads ``__dict__`` entries and code objects only (no ``getattr`` on user objects, so no
mock grows a child and no property runs) and stays inside the project: library code reads
every name there is. Only run for failing tests while a leak is live.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any, Final, cast

from .. import stack as _stack
from ..values import is_mock

__all__ = ["Reads", "reads_of_traceback"]

#: Code objects examined at most per failure (a failing test rarely reaches more).
_BUDGET: Final = 400
_FUNCTION_KINDS: Final = (staticmethod, classmethod)
#: globals whose identity says nothing of what they are (see ``Reads.values``)
_PLAIN_KINDS: Final = frozenset({int, float, str, bytes, bool, complex, tuple, frozenset,
                                 types.FunctionType, types.BuiltinFunctionType})


def _is_project_file(path: object) -> bool:
    if not isinstance(path, str) or not path.endswith(".py"):
        return False
    return not (_stack.is_hidden(path) or "site-packages" in path or "dist-packages" in path)


class _Follow:
    """Which code to follow: the project's, and the packages that hold live leaks."""

    __slots__ = ("packages",)

    def __init__(self, packages: frozenset[str]) -> None:
        self.packages = packages

    def code(self, function: types.FunctionType) -> bool:
        if _is_project_file(function.__code__.co_filename):
            return True
        module = function.__globals__.get("__name__")
        return isinstance(module, str) and module.partition(".")[0] in self.packages

    def module(self, module: types.ModuleType) -> bool:
        name = module.__dict__.get("__name__")
        return _is_project_file(module.__dict__.get("__file__")) or (
            isinstance(name, str) and name.partition(".")[0] in self.packages)

    def cls(self, cls: type) -> bool:
        name = str(cls.__dict__.get("__module__"))
        module = sys.modules.get(name)
        return _is_project_file(getattr(module, "__file__", None)) or \
            name.partition(".")[0] in self.packages


class Reads:
    """Names read by the reached code, and which namespaces each was read through."""

    __slots__ = ("consts", "names", "values", "via")

    def __init__(self) -> None:
        #: every name in ``co_names`` of reached code (globals, attributes, builtins)
        self.names: set[str] = set()
        #: short string constants (``os.environ["KEY"]``, ``getenv("KEY")``)
        self.consts: set[str] = set()
        #: name -> identity keys of the module/class namespaces the reading code could
        #: reach it through (its own globals' module, modules and classes it names)
        self.via: dict[str, set[int]] = {}
        #: identity key -> ``module.name`` of the objects (not modules, classes, functions
        #: or atoms) that the reached code names among its globals: a logger in a module's
        #: ``log = logging.getLogger(__name__)``, a mock a module holds
        self.values: dict[int, str] = {}

    def read(self, name: str, owner: object | None = None) -> bool:
        """Could the reached code have read ``name`` (of ``owner``, when given)?"""
        if name not in self.names:
            return False
        if owner is None:
            return True
        return object.__hash__(owner) in self.via.get(name, ())


def _functions_named(namespace: dict[str, Any], names: tuple[str, ...]) -> Iterator[Any]:
    for name in names:
        value = namespace.get(name)
        if value is None:
            continue
        if type(value) in _FUNCTION_KINDS:
            value = value.__func__
        elif type(value) is property:
            value = value.fget
        if type(value) is types.FunctionType:
            yield value


def reads_of_traceback(tb: Any, packages: frozenset[str] = frozenset()) -> Reads:
    """The :class:`Reads` of the user frames in ``tb`` and what they call (project code,
    and code of ``packages``)."""
    follow = _Follow(packages)
    reads = Reads()
    work: list[tuple[types.CodeType, dict[str, Any], tuple[object, ...]]] = []
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        if _is_project_file(code.co_filename):
            work.append((code, frame.f_globals, ()))
        elif not _stack.is_hidden(code.co_filename):  # a library frame: its own names only
            reads.names.update(code.co_names)
            reads.consts.update(c for c in code.co_consts if type(c) is str and len(c) < 200)
        tb = tb.tb_next
    # code -> the owners it was read through so far: a method already in the traceback is
    # read again when reached through its class (self.rate in Money.round reads Money.rate)
    seen: dict[types.CodeType, set[int]] = {}
    modules = sys.modules
    visits = 0
    while work and visits < _BUDGET:
        code, namespace, owners = work.pop()
        owner_keys = {object.__hash__(owner) for owner in owners}
        known = seen.get(code)
        if known is not None and owner_keys <= known:
            continue
        seen.setdefault(code, set()).update(owner_keys)
        visits += 1
        module = modules.get(str(namespace.get("__name__")))
        reached: list[object] = [*owners]
        if isinstance(module, types.ModuleType) and module.__dict__ is namespace:
            reached.append(module)
        names: tuple[str, ...] = code.co_names
        module_name = namespace.get("__name__")
        for name in names:
            value = namespace.get(name)
            kind = type(value)
            if value is not None and kind not in _PLAIN_KINDS and \
                    not issubclass(kind, (types.ModuleType, type)):
                reads.values.setdefault(object.__hash__(value), f"{module_name}.{name}")
            if issubclass(kind, types.ModuleType) or (
                    issubclass(kind, type) and not is_mock(value)
                    and follow.cls(cast(type, value))):
                reached.append(value)
        # ...and through them: pkg.mod.func reaches pkg, then pkg.mod.
        index = 0
        while index < len(reached) < 64:
            owner = reached[index]
            index += 1
            if not issubclass(type(owner), types.ModuleType):
                continue
            inner_ns: dict[str, Any] = owner.__dict__
            for name in names:
                value = inner_ns.get(name)
                if (issubclass(type(value), types.ModuleType) or (
                        issubclass(type(value), type) and not is_mock(value))) and all(
                        value is not r for r in reached):
                    reached.append(value)
        keys = {object.__hash__(owner) for owner in reached}
        for name in names:
            reads.names.add(name)
            reads.via.setdefault(name, set()).update(keys)
        for const in code.co_consts:
            if type(const) is str and len(const) < 200:
                reads.consts.add(const)
            elif type(const) is types.CodeType:
                work.append((const, namespace, owners))
        # What this code can call: its globals that are project functions, and the
        # attributes it names of the project modules and classes it reaches.
        for function in _functions_named(namespace, names):
            if follow.code(function):
                work.append((function.__code__, function.__globals__, ()))
        for owner in reached:
            if issubclass(type(owner), types.ModuleType):
                if not follow.module(owner):  # type: ignore[arg-type]
                    continue
                inner: dict[str, Any] = owner.__dict__
                cls_owner: tuple[object, ...] = ()
            elif issubclass(type(owner), type):
                inner = dict(owner.__dict__)
                cls_owner = (owner,)
            else:
                continue
            called = names if cls_owner == () else (*names, "__init__", "__post_init__")
            for function in _functions_named(inner, called):
                if follow.code(function):
                    work.append((function.__code__, function.__globals__, cls_owner))
            for name in names:  # a class named through a module: pricing.Calculator()
                value = inner.get(name)
                if issubclass(type(value), type) and not is_mock(value) and all(
                        value is not r for r in reached):
                    init = value.__dict__.get("__init__")
                    if type(init) is types.FunctionType and follow.code(init):
                        work.append((init.__code__, init.__globals__, (value,)))
    return reads
