"""Find the line of a store we saw only at a boundary (Python 3.10/3.11, class attributes).

When a changed binding is found by comparison rather than as it happened, we still know
the test and the attribute name. The test's own source usually holds the store
(``Money.round = ...``, ``setattr(config, "TIMEOUT", 1)``, ``sys.modules["x"] = ...``):
each test file is parsed once into an index of stores by name (cached by path and mtime),
and we look inside the test function first, then the whole file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from .stack import Frame

if TYPE_CHECKING:
    import ast  # at run time only when a file is parsed: start-up stays light

__all__ = ["find_store"]

#: (attribute or constant key, is a subscript) -> [(line, enclosing function)]
_Index = dict[tuple[str, bool], list[tuple[int, str]]]

_cache: dict[str, tuple[float, _Index]] = {}
_MAX_FILES: Final = 256


def _index(tree: ast.AST) -> _Index:
    import ast

    index: _Index = {}

    def add(name: object, subscript: bool, line: int, function: str) -> None:
        if isinstance(name, str):
            index.setdefault((name, subscript), []).append((line, function))

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            if isinstance(child, ast.Attribute) and isinstance(child.ctx, (ast.Store, ast.Del)):
                add(child.attr, False, child.lineno, function)
            elif (
                isinstance(child, ast.Subscript)
                and isinstance(child.ctx, (ast.Store, ast.Del))
                and isinstance(child.slice, ast.Constant)
            ):
                add(child.slice.value, True, child.lineno, function)
            elif (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("setattr", "delattr")
                and len(child.args) >= 2
                and isinstance(child.args[1], ast.Constant)
            ):
                add(child.args[1].value, False, child.lineno, function)
            visit(child, inner)

    visit(tree, "<module>")
    for entries in index.values():
        entries.sort()
    return index


def _load(path: str) -> _Index | None:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import ast

    try:
        with open(path, encoding="utf-8") as handle:
            index = _index(ast.parse(handle.read(), path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        index = {}
    if len(_cache) > _MAX_FILES:
        _cache.clear()
    _cache[path] = (mtime, index)
    return index


def find_store(
    test: str, rootdir: str | None, name: str, *, last: bool = False, subscript: bool = False
) -> Frame | None:
    """The line in ``test``'s file that stores attribute (or key) ``name``: the first
    such line, or the ``last`` one (the restoring line of a botched restore)."""
    if "::" not in test:
        return None
    relpath, _, rest = test.partition("::")
    path = os.path.join(rootdir, relpath) if rootdir and not os.path.isabs(relpath) else relpath
    index = _load(path)
    if not index:
        return None
    function = rest.split("::")[-1].split("[")[0]
    stores = index.get((name, subscript), [])
    inside = [s for s in stores if s[1] == function] or stores
    if not inside:
        return None
    line, where = inside[-1] if last else inside[0]
    return Frame(relpath, line, where)
