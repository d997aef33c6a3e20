"""Name the hops of a path of live objects in words a user can act on.

A path is ``[root, node, ..., target]``.  :func:`describe` walks it and emits one
:class:`~patchtrace.refs._model.Step` per *meaningful* hop: an object and its ``__dict__`` become
one ``attribute x`` step, a function, its ``__closure__`` tuple and the cell become one
``closure cell 'fn'`` step, and everything inside a mock (its ``__dict__``, ``_mock_children``,
recorded calls, per-instance class) collapses into one ``child 'foo' of mock ...`` step.

Only raw reads are used (see ``_safe``): no ``getattr``/``isinstance``/``hash`` on user objects.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any, Final

from patchtrace.values import is_mock, safe_repr, type_name

from ._graph import Roots
from ._model import Chain, Step
from ._safe import class_dict, class_name, find_index, raw_dict, raw_keys_for, slot_values

__all__ = ["describe"]

_LRU_TYPE: Final[Any] = functools._lru_cache_wrapper
_CALL_KEYS: Final = frozenset(
    {"_mock_call_args", "_mock_call_args_list", "_mock_mock_calls", "method_calls"}
)
_MOCK_KEY_LABELS: Final = {
    "_mock_return_value": ("mock return_value", "return_value of mock {}"),
    "_mock_side_effect": ("mock side_effect", "side_effect of mock {}"),
    "_mock_wraps": ("mock wraps", "object wrapped by mock {}"),
    "_spec_class": ("mock spec", "spec of mock {}"),
    "_mock_delegate": ("mock delegate", "delegate of mock {}"),
}


def _key_text(key: object) -> str:
    if type(key) is str:
        return repr(key) if len(key) <= 80 else repr(key[:77] + "...")
    return safe_repr(key, 80)


def _func_name(func: object) -> str:
    if type(func) is types.FunctionType:
        qualname: object = func.__qualname__
        return qualname if type(qualname) is str else "?"
    if issubclass(type(func), type):
        return class_name(func)  # type: ignore[arg-type]
    namespace = raw_dict(func)
    if namespace is not None:
        name = namespace.get("__qualname__") or namespace.get("__name__")
        if type(name) is str:
            return name
    return type_name(func)


def _frame_where(frame: Any) -> str:
    code = frame.f_code
    return f"{code.co_name}() at {code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"


def _local_name(frame: Any, value: object) -> str | None:
    try:
        items = list(frame.f_locals.items())
    except Exception:
        return None
    contents = value
    if type(value) is types.CellType:
        try:
            contents = value.cell_contents
        except ValueError:
            return None
    for name, local in items:
        if local is contents or local is value:
            return str(name)
    return None


def _mock_repr(mock: object) -> str:
    return safe_repr(mock, 80)


def describe(path: list[object], roots: Roots) -> Chain:
    """Turn ``[root, ..., target]`` into a :class:`Chain`."""
    steps: list[Step] = []
    root_kind, first, consumed = _root_step(path, roots)
    steps.append(first)
    index = consumed
    if consumed == 0 and root_kind in ("module", "builtins") and type(path[0]) is dict:
        keys = raw_keys_for(path[0], path[1])
        steps.append(Step("attribute", f"attribute {keys[0] if keys else '?'}"))
        index = 1
    last = len(path) - 1
    while index < last:
        step, used = _edge(path, index)
        if step is not None:
            steps.append(step)
        index += max(used, 1)
    return Chain(root_kind, tuple(steps))


def _root_step(path: list[object], roots: Roots) -> tuple[str, Step, int]:
    """The first step, naming the root; returns how many hops it already explains."""
    root = path[0]
    nxt = path[1] if len(path) > 1 else None
    label = roots.labels.get(id(root))
    if label is not None:
        kind, text = label
        if kind == "sys.modules":
            keys = raw_keys_for(root, nxt)  # type: ignore[arg-type]
            key = keys[0] if keys else "?"
            return kind, Step(kind, f"sys.modules[{_key_text(key)}]"), 1
        if kind == "gc.garbage":
            return kind, Step(kind, f"gc.garbage[{find_index(root, nxt)}]"), 1  # type: ignore[arg-type]
        if root is roots.sys_dict and nxt is not None:
            keys = raw_keys_for(root, nxt)  # type: ignore[arg-type]
            if keys and all(k.startswith("last_") for k in keys if type(k) is str):
                return "traceback", Step("traceback", f"sys.{keys[0]}"), 1
        return kind, Step(kind, text), 0
    if type(root) is types.FrameType:
        tname = roots.frames.get(id(root), "?")
        where = _frame_where(root)
        name = _local_name(root, nxt) if nxt is not None else None
        used = 1
        if nxt is not None and type(nxt) is types.CellType and len(path) > 2:
            used = 2  # frame -> cell -> value: the cell is an implementation detail
        if name is None:
            return "thread", Step("frame", f"frame value stack of thread {tname} in {where}"), used
        text = f"frame locals {name!r} of thread {tname} in {where}"
        return "thread", Step("frame", text), used
    if issubclass(type(root), type):
        return "class", Step("class", f"class {class_name(root)}"), 0  # type: ignore[arg-type]
    return "object", Step("object", f"{type_name(root)} {safe_repr(root, 60)}"), 0


def _edge(path: list[object], i: int) -> tuple[Step | None, int]:
    src: Any = path[i]
    dst = path[i + 1]
    after = path[i + 2] if i + 2 < len(path) else None
    cls = type(src)

    if is_mock(src) and cls is not types.FunctionType:
        return _mock_edge(path, i)

    # An object and its __dict__ are one hop: "attribute x".
    namespace = None if cls in (dict, list, tuple, set, frozenset) else raw_dict(src)
    if namespace is not None and type(dst) is dict and dst is _same_dict(src, namespace):
        if after is None:
            return Step("attribute", f"__dict__ of {_owner(src)}"), 1
        keys = raw_keys_for(dst, after)
        key = keys[0] if keys else "?"
        if issubclass(cls, type):
            return Step("class attribute", f"class attribute {key} of {class_name(src)}"), 2
        if issubclass(cls, types.ModuleType):
            return Step("attribute", f"attribute {key}"), 2
        return Step("attribute", f"attribute {key} of {_owner(src)}"), 2

    if cls is types.FunctionType:
        return _function_edge(src, dst, after)
    if cls is types.MethodType:
        if dst is src.__self__:
            return Step("bound method", f"bound method __self__ of {_func_name(src.__func__)}"), 1
        return Step("bound method", f"bound method __func__ {_func_name(dst)}"), 1
    if cls is _LRU_TYPE:
        return _lru_edge(src, dst, after)
    if cls is types.CellType:
        return Step("cell", "cell contents"), 1
    if cls is types.FrameType:
        name = _local_name(src, dst)
        where = _frame_where(src)
        used = 2 if type(dst) is types.CellType and after is not None else 1
        if name is not None:
            return Step("frame local", f"frame locals {name!r} in {where}"), used
        if dst is src.f_back:
            return Step("frame", f"caller frame of {where}"), 1
        return Step("frame", f"frame internals of {where}"), 1
    if cls is types.TracebackType:
        if dst is src.tb_frame:
            return Step("traceback", f"traceback frame {_frame_where(src.tb_frame)}"), 1
        return Step("traceback", "traceback tb_next"), 1
    if cls in (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType):
        return _generator_edge(src, dst, after)
    if issubclass(cls, BaseException):
        for name in ("__traceback__", "__context__", "__cause__"):
            try:
                if dst is BaseException.__dict__[name].__get__(src, cls):
                    return Step("exception", f"exception {name} of {type_name(src)}"), 1
            except Exception:
                continue
        if dst is BaseException.__dict__["args"].__get__(src, cls):
            return Step("exception", f"exception args of {type_name(src)}"), 2 if after else 1
    if issubclass(cls, dict):
        keys = raw_keys_for(src, dst)
        if keys:
            return Step("dict key", f"dict key {_key_text(keys[0])}"), 1
        if any(k is dst for k in dict.keys(src)):
            return Step("dict key", f"dict key object {safe_repr(dst, 60)}"), 1
        return Step("dict", f"{type_name(src)} internals"), 1
    if issubclass(cls, list):
        return Step("list index", f"list index {find_index(src, dst)}"), 1
    if issubclass(cls, tuple):
        return Step("tuple index", f"tuple index {find_index(src, dst)}"), 1
    if issubclass(cls, (set, frozenset)):
        return Step("set member", f"{type_name(src)} member"), 1
    if cls is functools.partial:
        if dst is src.func:
            return Step("partial", "partial function"), 1
        if dst is src.args:
            return Step("partial", f"partial argument {find_index(dst, after)}"), 2 if after else 1
        return Step("partial", "partial keywords"), 1
    if namespace is not None:
        keys = raw_keys_for(namespace, dst)
        if keys:
            if issubclass(cls, types.ModuleType):
                return Step("attribute", f"attribute {keys[0]}"), 1
            return Step("attribute", f"attribute {keys[0]} of {_owner(src)}"), 1
    for name, value in slot_values(src):
        if value is dst:
            return Step("attribute", f"attribute {name} of {_owner(src)}"), 1
    if issubclass(cls, type):
        return Step("class", f"class internals of {class_name(src)}"), 1
    return Step("referent", f"referenced by {type_name(src)}"), 1


def _same_dict(src: object, namespace: dict[str, Any]) -> object:
    """The dict object gc sees for ``src``'s attributes (classes: the real tp_dict)."""
    if issubclass(type(src), type):
        # raw_dict copies a class's mappingproxy; the referent is the real dict.
        for ref in _class_referent_dicts(src):
            return ref
        return None
    return namespace


def _class_referent_dicts(cls: object) -> list[object]:
    import gc

    proxy = class_dict(cls)  # type: ignore[arg-type]
    return [r for r in gc.get_referents(proxy) if type(r) is dict]


def _owner(src: object) -> str:
    if issubclass(type(src), type):
        return class_name(src)  # type: ignore[arg-type]
    return f"{type_name(src)} object"


def _function_edge(src: types.FunctionType, dst: object, after: object) -> tuple[Step, int]:
    name = _func_name(src)
    if dst is src.__closure__ and src.__closure__ is not None:
        index = find_index(src.__closure__, after) if after is not None else -1
        freevars = src.__code__.co_freevars
        var = freevars[index] if 0 <= index < len(freevars) else "?"
        used = 3 if after is not None and _cell_has_next(after) else 2
        return Step("closure cell", f"closure cell {var!r} of function {name}"), used
    if dst is src.__defaults__:
        return Step("default argument", f"default argument of function {name}"), 2
    if dst is src.__kwdefaults__ and after is not None:
        keys = raw_keys_for(dst, after)  # type: ignore[arg-type]
        key = keys[0] if keys else "?"
        return Step("default argument", f"keyword default {key!r} of function {name}"), 2
    if dst is src.__globals__:
        return Step("function globals", f"globals of function {name}"), 1
    return Step("function", f"internals of function {name}"), 1


def _cell_has_next(cell: object) -> bool:
    return type(cell) is types.CellType


def _lru_edge(src: Any, dst: object, after: object) -> tuple[Step, int]:
    name = _func_name(src)
    if dst is raw_dict(src) and after is not None:
        keys = raw_keys_for(dst, after)  # type: ignore[arg-type]
        key = keys[0] if keys else "?"
        return Step("attribute", f"attribute {key} of lru_cache {name}"), 2
    wrapped = (raw_dict(src) or {}).get("__wrapped__")
    if dst is wrapped:
        return Step("lru_cache", f"function wrapped by lru_cache {name}"), 1
    if type(dst) is dict and after is not None:
        keys = raw_keys_for(dst, after)
        if keys:
            text = f"lru_cache storage of {name}, key {_lru_key_text(keys[0])}"
            return Step("lru_cache storage", text), 2
    return Step("lru_cache storage", f"lru_cache storage of {name}"), 1


def _lru_key_text(key: object) -> str:
    """An lru_cache key as the call that made it: ``('k', value=<MagicMock ...>)``.

    functools builds ``args + (kwd_mark, name, value, ...) [+ argument types if typed]``,
    where ``kwd_mark`` is a bare ``object()`` (``<object object at 0x...>`` in a repr, which
    means nothing to a reader): the keyword part is shown as ``name=value`` instead."""
    cls = type(key)
    if not (cls is tuple or issubclass(cls, list)):
        return _key_text(key)
    items: list[object] = (
        list(tuple.__iter__(key)) if cls is tuple else list(list.__iter__(key))  # type: ignore[arg-type]
    )
    mark = next((i for i, item in enumerate(items) if type(item) is object), -1)
    if mark < 0:
        return _key_text(tuple(items))
    parts = [safe_repr(item, 40) for item in items[:mark]]
    rest = items[mark + 1:]
    j = 0
    while j + 1 < len(rest) and type(rest[j]) is str:
        parts.append(f"{rest[j]}={safe_repr(rest[j + 1], 40)}")
        j += 2
    text = "(" + ", ".join(parts) + ")"
    return text if len(text) <= 80 else text[:77] + "..."


def _generator_edge(src: Any, dst: object, after: object) -> tuple[Step, int]:
    frame: Any
    try:
        frame = src.gi_frame if type(src) is not types.CoroutineType else src.cr_frame
    except AttributeError:
        frame = None
    if frame is None:
        return Step("generator", f"{type_name(src)} internals"), 1
    kind = type_name(src)
    if dst is frame:
        name = _local_name(frame, after) if after is not None else None
        if name is not None:
            text = f"{kind} locals {name!r} in {_frame_where(frame)}"
            return Step("generator local", text), 2
        return Step("generator", f"{kind} frame"), 1
    name = _local_name(frame, dst)
    if name is not None:
        return Step("generator local", f"{kind} locals {name!r} in {_frame_where(frame)}"), 1
    return Step("generator", f"{type_name(src)} internals"), 1


def _mock_edge(path: list[object], i: int) -> tuple[Step, int]:
    """Collapse everything between a mock and the next object it explains into one step."""
    mock = path[i]
    text = _mock_repr(mock)
    namespace = raw_dict(mock) or {}
    last = len(path) - 1
    j = i + 1
    node = path[j]
    if node is namespace:
        if j == last:
            return Step("mock internals", f"__dict__ of mock {text}"), 1
        j += 1
        node = path[j]
    keys = [k for k in raw_keys_for(namespace, node) if type(k) is str]
    if not keys and node is type(mock) and j + 1 <= last:
        # magic methods live on the per-instance class: mock -> class -> class dict -> child
        while j < last and type(path[j]) is not types.FunctionType and not is_mock(path[j]):
            j += 1
        child = path[j]
        names = [k for k, v in dict.items(dict(class_dict(type(mock)))) if v is child]
        name = names[0] if names else "?"
        return Step("mock child", f"child {name!r} of mock {text}"), j - i
    if not keys:
        return Step("mock internals", f"internals of mock {text}"), j - i
    key = keys[0]
    if key == "_mock_children" and j < last:
        child = path[j + 1]
        names = raw_keys_for(node, child)  # type: ignore[arg-type]
        name = names[0] if names else "?"
        return Step("mock child", f"child {name!r} of mock {text}"), j + 1 - i
    if key in _CALL_KEYS:
        # mock -> call list -> _Call -> args tuple -> ... -> next real object
        while j < last and _is_call_record(path[j]):
            j += 1
        return Step("mock call", f"argument of a call recorded by mock {text}"), j - i
    if key in _MOCK_KEY_LABELS:
        kind, template = _MOCK_KEY_LABELS[key]
        return Step(kind, template.format(text)), j - i
    return Step("mock attribute", f"attribute {key} of mock {text}"), j - i


def _is_call_record(obj: object) -> bool:
    cls = type(obj)
    mock_mod = sys.modules.get("unittest.mock")
    call_types: tuple[object, ...] = ()
    if mock_mod is not None:
        call_types = (mock_mod.__dict__.get("_Call"), mock_mod.__dict__.get("_CallList"))
    return cls in call_types or cls is tuple or cls is dict or cls is list
