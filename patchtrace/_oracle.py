"""Find the line of a store we saw only at a boundary (Python 3.10/3.11, class attributes).

When a changed binding is found by comparison rather than as it happened, we still know
the test and the attribute name. The test's own source usually holds the store
(``Money.round = ...``, ``setattr(config, "TIMEOUT", 1)``): we parse the test's file once
(cached by path and mtime) and look inside the test function first, then the whole file.
"""

from __future__ import annotations

import ast
import os
from typing import Final

from .stack import Frame

__all__ = ["find_store"]

_cache: dict[str, tuple[float, ast.Module | None]] = {}
_MAX_FILES: Final = 256


def _parse(path: str) -> ast.Module | None:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    try:
        with open(path, encoding="utf-8") as handle:
            tree: ast.Module | None = ast.parse(handle.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        tree = None
    if len(_cache) > _MAX_FILES:
        _cache.clear()
    _cache[path] = (mtime, tree)
    return tree


def _stores(node: ast.AST, name: str, subscript: bool) -> list[tuple[int, str]]:
    """(line, enclosing function) of every store to attribute ``name`` (or to the item
    ``[name]`` when ``subscript``) below ``node``."""
    found: list[tuple[int, str]] = []

    def visit(current: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(current):
            inner = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            if subscript:
                if (
                    isinstance(child, ast.Subscript)
                    and isinstance(child.ctx, (ast.Store, ast.Del))
                    and isinstance(child.slice, ast.Constant)
                    and child.slice.value == name
                ):
                    found.append((child.lineno, function))
            elif isinstance(child, ast.Attribute) and child.attr == name and isinstance(
                child.ctx, (ast.Store, ast.Del)
            ):
                found.append((child.lineno, function))
            elif (
                not subscript
                and isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("setattr", "delattr")
                and len(child.args) >= 2
                and isinstance(child.args[1], ast.Constant)
                and child.args[1].value == name
            ):
                found.append((child.lineno, function))
            visit(child, inner)

    visit(node, "<module>")
    return sorted(found)


def find_store(
    test: str, rootdir: str | None, name: str, *, last: bool = False, subscript: bool = False
) -> Frame | None:
    """The line in ``test``'s file that stores attribute ``name`` (first, or ``last``)."""
    if "::" not in test:
        return None
    relpath, _, rest = test.partition("::")
    path = os.path.join(rootdir, relpath) if rootdir and not os.path.isabs(relpath) else relpath
    tree = _parse(path)
    if tree is None:
        return None
    function = rest.split("::")[-1].split("[")[0]
    stores = _stores(tree, name, subscript)
    inside = [s for s in stores if s[1] == function] or stores
    if not inside:
        return None
    line, where = inside[-1] if last else inside[0]
    return Frame(relpath, line, where)
