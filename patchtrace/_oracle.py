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


def _is_namespace(node: ast.AST) -> bool:
    """``x.__dict__`` or ``vars(x)``: a module's or class's namespace as a dict."""
    import ast

    if isinstance(node, ast.Attribute):
        return node.attr == "__dict__"
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == "vars" and len(node.args) == 1)


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
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "pop"
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and _is_namespace(child.func.value)
            ):
                add(child.args[0].value, False, child.lineno, function)  # mod.__dict__.pop("x")
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


#: list methods and statements that edit ``sys.path`` in place
_PATH_METHODS: Final = frozenset({"insert", "append", "extend", "remove", "pop", "clear"})
_path_cache: dict[str, tuple[float, list[tuple[int, str]]]] = {}


def _is_sys_path(node: ast.AST) -> bool:
    import ast

    return (isinstance(node, ast.Attribute) and node.attr == "path"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def _path_edits(path: str) -> list[tuple[int, str]] | None:
    """(line, enclosing function) of every statement of the file that provably edits
    ``sys.path`` in place: ``sys.path.insert(...)`` and the other list methods,
    ``sys.path[i] = ...``, ``sys.path += ...`` (``sys`` the name a module imports it by)."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _path_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import ast

    edits: list[tuple[int, str]] = []
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        tree = None

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            method = (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                      and child.func.attr in _PATH_METHODS and _is_sys_path(child.func.value))
            item = (isinstance(child, ast.Subscript) and isinstance(child.ctx, (ast.Store, ast.Del))
                    and _is_sys_path(child.value))
            augmented = isinstance(child, ast.AugAssign) and _is_sys_path(child.target)
            if method or item or augmented:
                edits.append((getattr(child, "lineno", 0), function))
            visit(child, inner)

    if tree is not None:
        visit(tree, "<module>")
    edits.sort()
    if len(_path_cache) > _MAX_FILES:
        _path_cache.clear()
    _path_cache[path] = (mtime, edits)
    return edits


def find_path_edit(test: str, rootdir: str | None,
                   fixtures: tuple[str, ...] = ()) -> Frame | None:
    """The line that edited ``sys.path`` for ``test``: in the test function, then in a
    fixture it names (``fixtures``) in its file or a ``conftest.py`` above it, then
    anywhere in its file. None when no statement there provably edits ``sys.path``."""
    if "::" not in test:
        return None
    relpath, _, rest = test.partition("::")
    function = rest.split("::")[-1].split("[")[0]
    root = rootdir or ""
    path = os.path.join(root, relpath) if root and not os.path.isabs(relpath) else relpath
    files = [(relpath, path)]
    directory = os.path.dirname(relpath)
    while True:
        conftest = os.path.join(directory, "conftest.py")
        files.append((conftest, os.path.join(root, conftest) if root else conftest))
        if not directory:
            break
        directory = os.path.dirname(directory)
    found = [(rel, _path_edits(full) or []) for rel, full in files]
    for wanted in (function, *fixtures):
        for rel, edits in found:
            for line, where in edits:
                if where == wanted:
                    return Frame(rel, line, where)
    rel, edits = found[0]
    if edits:
        line, where = edits[0]
        return Frame(rel, line, where)
    return None
