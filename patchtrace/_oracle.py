"""Find the line of a store we saw only at a boundary (Python 3.10/3.11, class attributes).

When a changed binding is found by comparison rather than as it happened, we still know
the test and the attribute name. The test's own source usually holds the store
(``Money.round = ...``, ``setattr(config, "TIMEOUT", 1)``, ``sys.modules["x"] = ...``):
each test file is parsed once into an index of stores by name (cached by path and mtime),
and we look inside the test function first, then the whole file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from .stack import Frame

if TYPE_CHECKING:
    import ast  # at run time only when a file is parsed: start-up stays light

__all__ = ["find_module_store", "find_modules_edit", "find_path_edit", "find_store"]

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
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "pop"
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and _is_namespace(child.func.value)
            ):
                namespace = child.func.value  # mod.__dict__.pop("x") / vars(mod).pop("x")
                owner = namespace.value if isinstance(namespace, ast.Attribute) \
                    else namespace.args[0]  # type: ignore[attr-defined]
                add(child.args[0].value, False, child.lineno, function, owner, klass)
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


def find_module_store(
    files: Sequence[str], rootdir: str | None, name: str, *, subscript: bool = False,
    target: str | None = None,
) -> Frame | None:
    """The first top-level store of attribute (or key) ``name`` in ``files``: the
    conftests and test modules pytest imported while collecting, in that order. Only a
    statement at module scope runs at import time; with ``target``, only a store to that
    object counts. None when no line is certain."""
    for path in files:
        loaded = _load(path)
        if not loaded or not loaded[0]:
            continue
        index, aliases = loaded
        stores = [s for s in index.get((name, subscript), []) if s[1] == "<module>"]
        if target is not None:
            stores = [s for s in stores if _stores_to(s[2], target, aliases)]
        if stores:
            relpath = os.path.relpath(path, rootdir) if rootdir else path
            return Frame(relpath, stores[0][0], "<module>")
    return None


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


#: dict methods that edit ``sys.modules`` wholesale or by a computed key
_MODULES_METHODS: Final = frozenset({"clear", "update", "pop", "popitem", "setdefault"})
_modules_cache: dict[str, tuple[float, list[tuple[int, str, str | None]]]] = {}


def _is_sys_modules(node: ast.AST) -> bool:
    import ast

    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def _modules_edits(path: str) -> list[tuple[int, str, str | None]]:
    """(line, enclosing function, constant key or None) of every statement of the file
    that edits ``sys.modules``: an item stored or deleted (``del sys.modules[k]`` in a
    prefix-wiping loop), a method (``sys.modules.clear()``, ``.update(saved)``,
    ``.pop(name)``), or ``patch.dict(sys.modules, ...)`` / ``patch.dict("sys.modules", ...)``."""
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return []
    cached = _modules_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import ast

    edits: list[tuple[int, str, str | None]] = []
    try:
        with open(path, encoding="utf-8") as handle:
            tree: ast.AST | None = ast.parse(handle.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError, RecursionError):
        tree = None

    def is_modules(node: ast.AST) -> bool:
        return _is_sys_modules(node) or (
            isinstance(node, ast.Constant) and node.value == "sys.modules")

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            key: object = None  # the constant key of a pop() or item, if there is one
            method = patch = item = False
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
                method = child.func.attr in _MODULES_METHODS and \
                    _is_sys_modules(child.func.value)
                if method and child.func.attr in ("pop", "setdefault") and child.args and \
                        isinstance(child.args[0], ast.Constant):
                    key = child.args[0].value
                patch = child.func.attr == "dict" and bool(child.args) and \
                    is_modules(child.args[0])
            elif isinstance(child, ast.Subscript) and \
                    isinstance(child.ctx, (ast.Store, ast.Del)):
                item = _is_sys_modules(child.value)
                if item and isinstance(child.slice, ast.Constant):
                    key = child.slice.value
            if method or item or patch:
                edits.append((getattr(child, "lineno", 0), function,
                              key if type(key) is str else None))
            visit(child, inner)

    if tree is not None:
        visit(tree, "<module>")
    edits.sort()
    if len(_modules_cache) > _MAX_FILES:
        _modules_cache.clear()
    _modules_cache[path] = (mtime, edits)
    return edits


def find_modules_edit(test: str, rootdir: str | None, name: str | None = None,
                      fixtures: tuple[str, ...] = ()) -> Frame | None:
    """The line in ``test``'s function (then a fixture it names, in its file) that took
    module ``name`` out of ``sys.modules``: an edit by that constant key
    (``sys.modules.pop("pkg.core")``), else one by a computed key or wholesale (a
    prefix-wiping loop's ``del sys.modules[k]``, a snapshot's ``clear()``/``update()``,
    ``patch.dict(sys.modules)``). An edit by another constant key is never it; None when
    the test's source holds no such statement."""
    if "::" not in test:
        return None
    relpath, _, rest = test.partition("::")
    function = rest.split("::")[-1].split("[")[0]
    path = os.path.join(rootdir, relpath) if rootdir and not os.path.isabs(relpath) else relpath
    edits = _modules_edits(path)
    for wanted in (function, *fixtures):
        mine = [(line, where, key) for line, where, key in edits if where == wanted]
        for exact in (True, False):
            for line, where, key in mine:
                if (key == name) if exact else key is None:
                    return Frame(relpath, line, where)
    return None
