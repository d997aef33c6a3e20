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

#: (attribute or constant key, is a subscript) -> [(line, enclosing function, the stored-to
#: object as dotted source text, or None when it is not a plain name or attribute chain)]
_Index = dict[tuple[str, bool], list[tuple[int, str, str | None]]]
#: local name -> the dotted module or object it was imported as, per file
_Aliases = dict[str, str]

_cache: dict[str, tuple[float, _Index, _Aliases]] = {}
_MAX_FILES: Final = 256


def _dotted(node: ast.AST) -> str | None:
    import ast

    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _aliases(tree: ast.AST) -> _Aliases:
    import ast

    out: _Aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    out[alias.asname] = alias.name
                else:
                    first = alias.name.partition(".")[0]
                    out.setdefault(first, first)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                out[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return out


def _owner_text(owner: ast.AST, klass: str | None) -> str | None:
    """The stored-to object as dotted text; inside a method of class ``klass``,
    ``cls``, ``self.__class__`` and ``type(self)`` name that class."""
    import ast

    if klass is not None:
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and \
                owner.func.id == "type" and len(owner.args) == 1 and \
                isinstance(owner.args[0], ast.Name):
            return klass
        text = _dotted(owner)
        if text == "cls" or (text is not None and text.endswith(".__class__")
                             and text.count(".") == 1):
            return klass
        return text
    return _dotted(owner)


def _index(tree: ast.AST) -> _Index:
    import ast

    index: _Index = {}

    def add(name: object, subscript: bool, line: int, function: str,
            owner: ast.AST | None = None, klass: str | None = None) -> None:
        if isinstance(name, str):
            text = _owner_text(owner, klass) if owner is not None else None
            index.setdefault((name, subscript), []).append((line, function, text))

    def visit(node: ast.AST, function: str, klass: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner, inner_class = function, klass
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            elif isinstance(child, ast.ClassDef):
                inner_class = child.name
            if isinstance(child, ast.Attribute) and isinstance(child.ctx, (ast.Store, ast.Del)):
                add(child.attr, False, child.lineno, function, child.value, klass)
            elif (
                isinstance(child, ast.Subscript)
                and isinstance(child.ctx, (ast.Store, ast.Del))
                and isinstance(child.slice, ast.Constant)
            ):
                add(child.slice.value, True, child.lineno, function, child.value, klass)
            elif (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Name)
                and child.func.id in ("setattr", "delattr")
                and len(child.args) >= 2
                and isinstance(child.args[1], ast.Constant)
            ):
                add(child.args[1].value, False, child.lineno, function, child.args[0], klass)
            visit(child, inner, inner_class)

    visit(tree, "<module>", None)
    for entries in index.values():
        entries.sort()
    return index


def _load(path: str) -> tuple[_Index, _Aliases] | None:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1], cached[2]
    import ast

    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        index, aliases = _index(tree), _aliases(tree)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        index, aliases = {}, {}
    if len(_cache) > _MAX_FILES:
        _cache.clear()
    _cache[path] = (mtime, index, aliases)
    return index, aliases


def _stores_to(owner: str | None, target: str, aliases: _Aliases) -> bool:
    """The object a store names (``Money`` in ``Money.round = ...``) is ``target``
    (``class:shop.money.Money``), as far as the file's source can tell: its dotted name,
    through the file's imports, ends like the target's. ``self.x = ...`` on an instance
    is not a store to a class or module; an expression we cannot name is not certain."""
    if owner is None:
        return False
    if target in ("sys.modules", "builtins", "os.environ"):
        wanted = target
    elif ":" in target:
        wanted = target.partition(":")[2]
    else:
        return False
    first, _, rest = owner.partition(".")
    resolved = aliases.get(first, first) + (f".{rest}" if rest else "")
    if target == "builtins" and resolved in ("builtins", "__builtins__"):
        return True
    if resolved == wanted or wanted.endswith("." + resolved):
        return True
    # a name bound in the file to the object (``from shop.money import Money``) ends the
    # same way; a bare ``self``/``cls``/local name never matches a dotted target.
    return "." in resolved and wanted.endswith(resolved.rpartition(".")[2]) and \
        wanted.rpartition(".")[2] == resolved.rpartition(".")[2]


def find_store(
    test: str, rootdir: str | None, name: str, *, last: bool = False, subscript: bool = False,
    target: str | None = None,
) -> Frame | None:
    """The line in ``test``'s file that stores attribute (or key) ``name``: the first
    such line, or the ``last`` one (the restoring line of a botched restore). With
    ``target``, only a store to that object counts (``self.filesystem = None`` is not a
    store to ``FakeThing.filesystem``): None when no line is certain."""
    if "::" not in test:
        return None
    relpath, _, rest = test.partition("::")
    path = os.path.join(rootdir, relpath) if rootdir and not os.path.isabs(relpath) else relpath
    loaded = _load(path)
    if not loaded or not loaded[0]:
        return None
    index, aliases = loaded
    function = rest.split("::")[-1].split("[")[0]
    stores = index.get((name, subscript), [])
    if target is not None:
        stores = [s for s in stores if _stores_to(s[2], target, aliases)]
    inside = [s for s in stores if s[1] == function] or stores
    if not inside:
        return None
    line, where, _ = inside[-1] if last else inside[0]
    return Frame(relpath, line, where)
