"""Patched in the wrong place: a failing test's patch that never took effect.

The most common mocking mistake is not a leak: ``patch("os.getcwd")`` while the code under
test did ``from os import getcwd`` and calls its own name. The mock stays at zero calls and
the test fails. When a test fails, :func:`hints_for_failure` looks at the patches applied
since its setup began; for each whose replacement was never used (a mock without a single
call, its own or a child's; or a plain value whose binding the failing code never read, as
far as :mod:`patchtrace.analysis.reads` can tell), it looks for other names still bound to the
*original* object (:func:`find_holders`): module namespaces, the classes of the project's
modules and the default arguments of the project's functions.

Everything here reads raw ``__dict__`` entries and type slots (never ``getattr`` on a user
object: a Mock grows a child on every attribute read), and returns plain strings and ints:
nothing the search touches is kept alive. It runs for failing tests only.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Container, Iterable, Iterator
from typing import Any, Final, cast, final

from .. import stack as _stack
from ..ledger import NOTHING, UNKNOWN, Mutation
from ..values import identity_key, is_mock
from .reads import Reads, reads_of_traceback

__all__ = ["Hint", "Holder", "find_holders", "hints_for_failure", "mock_calls"]

#: Originals whose identity means nothing (small ints and interned strings are shared by
#: every module that mentions them), and modules (imported everywhere, by design).
_NO_IDENTITY: Final = (int, float, str, bytes, bool, complex, type(None), types.ModuleType)
#: A replacement for one of these is used by calling it; a mock standing in for anything
#: else (a class, a module, a settings object) may be used by reading its attributes,
#: which leaves children but no calls.
_CALLED: Final = (
    types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType,
    staticmethod, classmethod,
)
_WRAPPERS: Final = (staticmethod, classmethod)
_CLASS_DICT: Final = type.__dict__["__dict__"]
_CLASS_MODULE: Final = type.__dict__["__module__"]
_CLASS_QUALNAME: Final = type.__dict__["__qualname__"]
_MODULE_DICT: Final[Any] = vars(types.ModuleType)["__dict__"]
#: Our own package: its modules keep references of their own (the debugger's os.getcwd,
#: taken at start) and are never the binding a user should patch.
_OURS: Final = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: Holders named in a message (the rest are in the JSON).
_SHOWN: Final = 3


@final
class Holder:
    """A name bound to an object: ``module:pkg.client getcwd``, ``class:pkg.api.Client
    send``, ``default:pkg.timing.stamp clock``. Plain data."""

    __slots__ = ("attribute", "kind", "name", "owner", "owner_key", "project", "read", "via")

    def __init__(self, kind: str, owner: str, name: str, *, project: bool,
                 owner_key: int, via: str = "", attribute: str = "") -> None:
        self.kind = kind  # module | class | default
        self.owner = owner  # dotted module, class (module.qualname) or function name
        self.name = name  # attribute, or the parameter whose default it is
        self.project = project  # defined in the project's own code (not stdlib/site-packages)
        #: identity key of the namespace a reader goes through (the module or class; for a
        #: default, the module or class holding the function) and the name read there
        self.owner_key = owner_key
        self.via = via or name
        self.read = False  # the failing test's code could have read it (set by the caller)
        #: for a default: the function attribute holding it (__defaults__, __kwdefaults__)
        self.attribute = attribute

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.owner} {self.name}"

    @property
    def dotted(self) -> str:
        """What to patch instead (for a default: the function whose default it is)."""
        return self.owner if self.kind == "default" else f"{self.owner}.{self.name}"

    def __repr__(self) -> str:
        return f"Holder({self.label!r}{', read' if self.read else ''})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Holder):
            return NotImplemented
        return (self.kind, self.owner, self.name) == (other.kind, other.owner, other.name)

    def __hash__(self) -> int:
        return hash((self.kind, self.owner, self.name))


# -- raw reads ------------------------------------------------------------------------------
def _module_namespace(module: object) -> dict[str, Any] | None:
    kind = type(module)
    if kind is types.ModuleType:  # no class of a user's in the way: the plain attribute
        return module.__dict__
    if not issubclass(kind, types.ModuleType):
        return None  # a Mock (or anything else) someone put into sys.modules
    try:
        namespace = _MODULE_DICT.__get__(module)
    except Exception:
        return None
    return namespace if type(namespace) is dict else None


def _class_namespace(cls: type) -> Any:
    try:
        return _CLASS_DICT.__get__(cls)
    except Exception:
        return None


def _class_label(cls: type) -> str | None:
    try:
        module = _CLASS_MODULE.__get__(cls)
        qualname = _CLASS_QUALNAME.__get__(cls)
    except Exception:
        return None
    if type(qualname) is not str or type(module) is not str:
        return None
    return f"{module}.{qualname}"


def _is_class(value: object) -> bool:
    return issubclass(type(value), type) and not is_mock(value)


def _unwrap(value: object) -> object:
    if type(value) in _WRAPPERS:
        return value.__func__  # type: ignore[attr-defined]
    return value


_HIDDEN: Final = 0
_LIBRARY: Final = 1
_PROJECT: Final = 2
#: module file -> _HIDDEN, _LIBRARY or _PROJECT (strings and ints only)
_kinds: dict[str, int] = {}


def _file_kind(path: object) -> int:
    """Whose module this is: the project's own (a ``.py`` file outside the standard library
    and site-packages), a library users could patch (site-packages), or hidden (the
    standard library's, pytest's or ours; a built-in module without a file)."""
    if type(path) is not str:
        return _HIDDEN
    kind = _kinds.get(path)
    if kind is None:
        if _stack.is_hidden(path):
            kind = _HIDDEN
        elif path.endswith(".py") and "site-packages" not in path \
                and "dist-packages" not in path:
            kind = _PROJECT
        else:
            kind = _LIBRARY
        _kinds[path] = kind
    return kind


def _is_project_file(path: object) -> bool:
    return _file_kind(path) == _PROJECT


def _hits(keys: set[int], values: Iterable[object]) -> bool:
    """Does any of ``values`` have one of the identity keys? (One C-level pass.)"""
    try:
        return not keys.isdisjoint(map(identity_key, values))
    except RuntimeError:  # changed size during iteration (another thread): look again
        return not keys.isdisjoint(map(identity_key, list(values)))


# -- the search -------------------------------------------------------------------------------
def find_holders(
    originals: list[object], *, everywhere: bool = False,
    names: list[str] | None = None,
    reached: Callable[[frozenset[str]], Container[int]] | None = None,
) -> list[list[Holder]]:
    """For each object of ``originals``, every name that binds it (same order).

    Module namespaces: every module in ``sys.modules`` that users could patch (with
    ``everywhere``, the standard library's and built-in modules too). Class namespaces and
    default arguments (``__defaults__``, ``__kwdefaults__``): classes and functions defined
    in the project's own modules (with ``everywhere``: in every module). A class attribute
    wrapped in ``staticmethod``/``classmethod`` counts as binding the function.

    With ``reached``, a library module (not the project's) is searched whole only when the
    failing code could reach it: first each is asked only for ``names`` (the patched
    names: ``from os import getcwd`` binds ``getcwd``), then ``reached`` is called with the
    top-level packages of the libraries found so, and returns the identity keys of the
    namespaces the failing code reaches. A big environment's thousands of library modules
    then cost one dictionary lookup each.
    """
    out: list[list[Holder]] = [[] for _ in originals]
    index: dict[int, int] = {}
    for position, original in enumerate(originals):
        index.setdefault(identity_key(original), position)
    if not index:
        return out
    keys = set(index)
    seen_modules: set[int] = set()
    later: list[tuple[int, str, dict[str, Any]]] = []  # library modules, if reached
    for modname, module in list(sys.modules.items()):
        namespace = _module_namespace(module)
        module_key = identity_key(module)
        if namespace is None or module_key in seen_modules:
            continue
        seen_modules.add(module_key)
        path = namespace.get("__file__")
        kind = _file_kind(path)
        ours = type(path) is str and path.startswith(_OURS)
        if kind == _HIDDEN and (not everywhere or ours):
            continue
        name = namespace.get("__name__")
        name = name if type(name) is str else modname
        project = kind == _PROJECT
        if project or everywhere or reached is None:
            if _hits(keys, namespace.values()):
                _search_module(namespace, name, module_key, originals, index, out,
                               project=project)
            if project or everywhere:
                _search_definitions(namespace, name, module, originals, index, out,
                                    project=project)
            continue
        later.append((module_key, name, namespace))
        for position, wanted in enumerate(names or ()):
            if namespace.get(wanted, NOTHING) is originals[position]:
                out[position].append(Holder("module", name, wanted, project=False,
                                            owner_key=module_key))
    if later and reached is not None:
        packages = frozenset(h.owner.partition(".")[0] for group in out for h in group
                             if not h.project)
        wanted_keys = reached(packages)
        for module_key, name, namespace in later:
            if module_key in wanted_keys and _hits(keys, namespace.values()):
                _search_module(namespace, name, module_key, originals, index, out,
                               project=False)
    return out


def _search_module(
    namespace: dict[str, Any], name: str, module_key: int, originals: list[object],
    index: dict[int, int], out: list[list[Holder]], *, project: bool,
) -> None:
    for key, value in list(namespace.items()):
        position = index.get(identity_key(value), -1)
        if position >= 0 and type(key) is str and value is originals[position]:
            holder = Holder("module", name, key, project=project, owner_key=module_key)
            if holder not in out[position]:  # (found by name first)
                out[position].append(holder)


def _search_definitions(
    namespace: dict[str, Any], modname: str, module: object, originals: list[object],
    index: dict[int, int], out: list[list[Holder]], *, project: bool,
) -> None:
    """Classes defined in the module (and their nested classes) and the defaults of the
    functions defined there and in those classes."""
    todo: list[tuple[type, int]] = []
    for key, value in list(namespace.items()):
        value = _unwrap(value)
        if type(value) is types.FunctionType:
            if value.__globals__ is namespace and type(key) is str:
                _search_defaults(value, f"{modname}.{key}", identity_key(module), key,
                                 originals, index, out, project=project)
        elif _defined_in(value, modname):
            todo.append((cast(type, value), 0))
    seen: set[int] = set()
    while todo:
        cls, depth = todo.pop()
        if identity_key(cls) in seen:
            continue
        seen.add(identity_key(cls))
        label = _class_label(cls)
        proxy = _class_namespace(cls)
        if label is None or proxy is None:
            continue
        for key, raw in list(proxy.items()):
            value = _unwrap(raw)
            position = index.get(identity_key(value), -1)
            if position >= 0 and type(key) is str and value is originals[position]:
                out[position].append(Holder("class", label, key, project=project,
                                            owner_key=identity_key(cls)))
            if type(value) is types.FunctionType and value.__globals__ is namespace:
                _search_defaults(value, f"{label}.{key}", identity_key(cls), str(key),
                                 originals, index, out, project=project)
            elif depth < 3 and _defined_in(value, modname):
                todo.append((cast(type, value), depth + 1))


def _defined_in(value: object, modname: str) -> bool:
    """A class (not a mock) whose ``__module__`` is ``modname``."""
    if not _is_class(value):
        return False
    try:
        module = _CLASS_MODULE.__get__(value)
    except Exception:
        return False
    return type(module) is str and module == modname


def _search_defaults(
    function: types.FunctionType, label: str, owner_key: int, via: str,
    originals: list[object], index: dict[int, int], out: list[list[Holder]], *, project: bool,
) -> None:
    defaults = function.__defaults__
    if defaults:
        code = function.__code__
        first = code.co_argcount - len(defaults)
        for offset, value in enumerate(defaults):
            position = index.get(identity_key(value), -1)
            if position >= 0 and value is originals[position] and first + offset >= 0:
                param = code.co_varnames[first + offset]
                out[position].append(Holder("default", label, param, project=project,
                                            owner_key=owner_key, via=via,
                                            attribute="__defaults__"))
    kwdefaults = function.__kwdefaults__
    if kwdefaults:
        for param, value in list(kwdefaults.items()):
            position = index.get(identity_key(value), -1)
            if position >= 0 and value is originals[position]:
                out[position].append(Holder("default", label, str(param), project=project,
                                            owner_key=owner_key, via=via,
                                            attribute="__kwdefaults__"))


# -- was the replacement used? ------------------------------------------------------------------
def mock_calls(obj: object) -> int | None:
    """Calls a mock recorded, its own and its children's (``mock_calls`` propagates them to
    the parent), read from ``__dict__``; None when ``obj`` is not a mock."""
    if obj is NOTHING or obj is UNKNOWN or not is_mock(obj):
        return None
    try:
        state = object.__getattribute__(obj, "__dict__")
        if type(obj) is types.FunctionType:  # an autospecced function: the mock is inside
            state = object.__getattribute__(state["mock"], "__dict__")
        count = state.get("_mock_call_count", 0)
        calls = state.get("_mock_mock_calls")
        return max(count if type(count) is int else 0,
                   len(calls) if issubclass(type(calls), list) else 0)
    except Exception:
        return None


def _has_children(obj: object) -> bool:
    try:
        state = object.__getattribute__(obj, "__dict__")
        if type(obj) is types.FunctionType:
            state = object.__getattribute__(state["mock"], "__dict__")
        children = state.get("_mock_children")
        return bool(children) if type(children) is dict else False
    except Exception:
        return False


def calls_at_failure(records: Iterable[Mutation], test: str) -> dict[int, int]:
    """The calls each candidate patch's mock had recorded when the test failed, by record
    ``seq``. Taken before pytest renders the failure: while a ``mocker`` patch is still
    applied, rendering calls what it patched (``os.getcwd`` for relative paths)."""
    global _last_failure
    out: dict[int, int] = {}
    for mutation in _candidates(records, test):
        calls = mock_calls(mutation.after_value())
        if calls is not None:
            out[mutation.seq] = calls
    _last_failure = out
    return out


#: the last :func:`calls_at_failure` (record seq -> calls; plain ints), for the debugger:
#: ``pytest --pdb`` stops after pytest rendered the failure, which may have called a mock
_last_failure: dict[int, int] = {}


def calls_when_failed(mutation: Mutation) -> int | None:
    """The calls ``mutation``'s mock had when its test last failed, if that was noted."""
    return _last_failure.get(mutation.seq)


def _usage(replacement: object, original: object, calls: int | None) -> str:
    """``called``, ``unused`` (a mock nobody called) or ``unknown`` (a plain value, or a
    mock whose attributes someone may have read)."""
    if calls is None:
        return "unknown"
    if calls:
        return "called"
    if type(original) in _CALLED or not _has_children(replacement):
        return "unused"
    return "unknown"


# -- hints --------------------------------------------------------------------------------------
@final
class Hint:
    """``patch-not-used``: a failing test's patch that never took effect, and who still
    holds the original. Plain data; :meth:`to_json` is the contract's ``hints`` entry."""

    __slots__ = ("file", "holders", "kind", "line", "message", "name", "target", "test")

    def __init__(self, test: str, message: str, *, target: str, name: str | None,
                 file: str | None, line: int | None, holders: list[str],
                 kind: str = "patch-not-used") -> None:
        self.test = test
        self.kind = kind
        self.message = message
        self.target = target
        self.name = name
        self.file = file
        self.line = line
        self.holders = holders

    def to_json(self) -> dict[str, object]:
        return {
            "test": self.test,
            "kind": self.kind,
            "message": self.message,
            "patch": {"file": self.file, "line": self.line, "target": self.target,
                      "name": self.name},
            "holders": list(self.holders),
        }

    def __repr__(self) -> str:
        return f"Hint({self.test!r}, {self.message!r})"


def _binding_key(target: str, name: str | None) -> tuple[str, str, str] | None:
    """The patched binding in the terms of :class:`Holder` (kind, owner, name)."""
    if name is None:
        return None
    if target == "builtins":
        return ("module", "builtins", name)
    kind, colon, owner = target.partition(":")
    if colon and kind in ("module", "class"):
        return (kind, owner, name)
    return None


def _owner_of(target: str) -> object | None:
    """The module or class a ``module:``/``class:`` target names (raw reads)."""
    kind, colon, dotted = target.partition(":")
    if not colon:
        return None
    if kind == "module":
        return sys.modules.get(dotted)
    if kind != "class":
        return None
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        namespace = _module_namespace(sys.modules.get(".".join(parts[:cut])))
        if namespace is None:
            continue
        obj: object = NOTHING
        for part in parts[cut:]:
            obj = namespace.get(part, NOTHING)
            if not _is_class(obj):
                obj = NOTHING
                break
            namespace = dict(_class_namespace(obj) or {})  # type: ignore[arg-type]
        if obj is not NOTHING:
            return obj
    return None


def _patch_text(mutation: Mutation) -> str:
    desc = mutation.desc or mutation.label
    if desc.startswith("patch.object(..., "):  # patch.object has no dotted path: name it
        base = mutation.label.rpartition(".")[0] or mutation.label
        desc = f"patch.object({base}, {desc[len('patch.object(..., '):]}"
    return desc


def _candidates(records: Iterable[Mutation], test: str) -> Iterator[Mutation]:
    for mutation in records:
        if mutation.op == "patch" and mutation.token is not None and mutation.name is not None \
                and mutation.scope.test == test and not mutation.sealed \
                and _binding_key(mutation.target, mutation.name) is not None:
            yield mutation


def hints_for_failure(
    records: Iterable[Mutation],
    test: str,
    tb: Any,
    *,
    rootdir: str | None = None,
    fallback_where: tuple[str, int] | None = None,
    calls: dict[int, int] | None = None,
) -> list[Hint]:
    """Hints for a test that just failed: ``records`` are the ledger's records since its
    setup began (still unsealed: they hold the originals), ``tb`` the failure's traceback,
    ``calls`` what :func:`calls_at_failure` said then (read now when not given).

    A patch qualifies when its replacement was not used (see :func:`_usage`) and another
    name still holds its original: in the project's code, or in a library whose code the
    failing test could have read. A plain replacement value (``monkeypatch.setattr(mod,
    "f", fake)``), or a mock that may have been used as a namespace, qualifies only through
    a holder the failing code could have read. No hint when the failing code could have
    read the patched binding itself: it looks the name up where the patch put the mock,
    and the failure came before the call.
    """
    records = list(records)
    patched = {key for m in records if m.token is not None
               for key in [_binding_key(m.target, m.name)] if key is not None}
    chosen: list[tuple[Mutation, str]] = []
    originals: list[object] = []
    for mutation in _candidates(records, test):
        original = mutation.before_value()
        if original is NOTHING or original is UNKNOWN or issubclass(type(original), _NO_IDENTITY) \
                or is_mock(original):
            continue
        replacement = mutation.after_value()
        count = calls.get(mutation.seq) if calls is not None else mock_calls(replacement)
        usage = _usage(replacement, original, count)
        if usage == "called":
            continue
        chosen.append((mutation, usage))
        originals.append(original)
    if not chosen:
        return []
    reads: list[Reads] = []

    def reached(packages: frozenset[str]) -> Container[int]:
        reads.append(_reads_of(tb, packages))
        return set().union(*reads[0].via.values())

    found = find_holders(originals, names=[m.name or "" for m, _ in chosen], reached=reached)
    del originals
    hints: list[Hint] = []
    for (mutation, usage), holders in zip(chosen, found, strict=True):
        holders = [h for h in holders if (h.kind, h.owner, h.name) not in patched]
        if not holders:
            continue
        if not reads:
            reads.append(_reads_of(tb, frozenset(
                h.owner.partition(".")[0] for group in found for h in group if not h.project)))
        read = reads[0]
        for holder in holders:
            holder.read = holder.owner_key in read.via.get(holder.via, ())
        owner = _owner_of(mutation.target)
        name = mutation.name or ""
        patched_read = owner is not None and identity_key(owner) in read.via.get(name, ())
        if patched_read:
            continue  # looked up where it was patched: the failure came before the call
        qualified = [h for h in holders if h.read or (usage == "unused" and h.project)]
        if not qualified:
            continue
        qualified.sort(key=lambda h: (not h.read, not h.project))
        hints.append(_hint(test, mutation, usage, qualified, rootdir, fallback_where))
    return hints


def _reads_of(tb: Any, packages: frozenset[str]) -> Reads:
    try:
        return reads_of_traceback(tb, packages)
    except Exception:
        return Reads()


def _hint(test: str, mutation: Mutation, usage: str, holders: list[Holder],
          rootdir: str | None, fallback_where: tuple[str, int] | None) -> Hint:
    where = mutation.where
    if where is not None:
        where = where.relative_to(rootdir)
        file: str | None = where.file
        line: int | None = where.line
        place = f" at {file}:{line}"
    elif fallback_where is not None:  # a @patch decorator: no user frame was running
        file, line = fallback_where
        place = f" (a decorator of the test at {file}:{line})"
    else:
        file = line = None
        place = ""
    what = "was never used" if usage == "unused" else "is not what the failing code reads"
    best = holders[0]
    if best.kind == "default":
        held = (f"the default {best.name}= of {best.owner} still holds the original "
                "(bound when the function was defined)")
        advice = f"pass {best.name}= explicitly, or patch.object({best.owner}, " \
                 f"'{best.attribute}', ...)"
    else:
        held = f"{best.dotted} still holds the original"
        advice = f"patch '{best.dotted}' instead"
    more = ""
    if len(holders) > 1:
        others = [h.dotted if h.kind != "default" else f"{h.owner}({h.name}=)"
                  for h in holders[1:_SHOWN]]
        extra = len(holders) - _SHOWN
        more = f" (also held by {', '.join(others)}{f' and {extra} more' if extra > 0 else ''})"
    message = f"{_patch_text(mutation)}{place} {what}; {held}{more} — {advice}"
    return Hint(test, message, target=mutation.target, name=mutation.name, file=file,
                line=line, holders=[h.label for h in holders])
