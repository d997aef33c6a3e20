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

from .. import _captured
from ..stack import Frame

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
#: path -> (mtime, the words of its text): a file whose text never spells a name cannot
#: hold a store of it, and is not parsed for it
_words_cache: dict[str, tuple[float, frozenset[str]]] = {}


def _source(path: str) -> tuple[float, str] | None:
    """(mtime, text) of a source file, read with the references captured at start (a
    suite may leave ``builtins.open`` or ``os.stat`` patched, or a fake filesystem on)."""
    try:
        mtime = _captured.stat(path).st_mtime
        with _captured.open_file(path, encoding="utf-8") as handle:
            return mtime, handle.read()
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _mentions(path: str, name: str) -> bool:
    """Whether the text of ``path`` spells ``name`` as a word, or cannot be told.

    Parsing is what the oracle's time goes into (300 ms for the 21 conftests and test
    modules of pyfakefs at one collection boundary, none of which named the attribute
    looked for), and a file is parsed only when this says yes. A name that is not an ASCII
    identifier (a ``sys.modules`` key such as ``pkg.sub``, an NFKC-normalised identifier)
    always says yes. What the word test cannot see, and so what the oracle misses: a key
    spelled only with escapes or split over adjacent string literals (``"fo" "o"``)."""
    if not (name.isascii() and name.isidentifier()):
        return True
    try:
        mtime = _captured.stat(path).st_mtime
    except OSError:
        return True  # _load says what it is
    cached = _words_cache.get(path)
    if cached is None or cached[0] != mtime:
        import re

        read = _source(path)
        if read is None:
            return True
        if len(_words_cache) > _MAX_FILES:
            _words_cache.clear()
        cached = _words_cache[path] = (read[0], frozenset(re.findall(r"\w+", read[1])))
    return name in cached[1]


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
    if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and \
            owner.func.id == "type" and len(owner.args) == 1:
        inner = _dotted(owner.args[0])  # type(logger).x = ...: the class of that object
        return f"{inner}.__class__" if inner is not None else None
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
        mtime = _captured.stat(path).st_mtime
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1], cached[2]
    import ast

    read = _source(path)
    try:
        if read is None:
            raise ValueError(path)
        tree = ast.parse(read[1], path)
        index, aliases = _index(tree), _aliases(tree)
    except (SyntaxError, ValueError, RecursionError):
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
    if resolved.endswith(".__class__") and ":" in target:
        # logger.__class__.x = ... (or type(logger).x): the class of the object the text
        # names, looked up now through module namespaces (loguru's test_levels.py)
        return _class_of(resolved[:-len(".__class__")]) == wanted
    if target == "builtins" and resolved in ("builtins", "__builtins__"):
        return True
    if resolved == wanted or wanted.endswith("." + resolved):
        return True
    # a name bound in the file to the object (``from shop.money import Money``) ends the
    # same way; a bare ``self``/``cls``/local name never matches a dotted target.
    return "." in resolved and wanted.endswith(resolved.rpartition(".")[2]) and \
        wanted.rpartition(".")[2] == resolved.rpartition(".")[2]


def _class_of(dotted: str) -> str | None:
    """``module.qualname`` of the type of the object ``dotted`` names, found through the
    raw namespaces of loaded modules and of the objects on the way (never an attribute
    lookup that could run user code); None when the text names nothing loaded."""
    import sys

    from ..refs._safe import class_name, raw_dict

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is not None:
            break
    else:
        return None
    obj: object = module
    for part in parts[cut:]:
        try:
            namespace = object.__getattribute__(obj, "__dict__") \
                if issubclass(type(obj), type(sys)) else raw_dict(obj)
        except Exception:
            return None
        if namespace is None or part not in namespace:
            return None
        obj = namespace[part]
    return class_name(type(obj))


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
        if not _mentions(path, name):
            continue
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


#: the import-system lists edited in place: ``sys.<name>``
_LISTS: Final = frozenset({"path", "meta_path", "path_hooks"})
#: list methods -> what they do to the list: add an entry, remove one, or either
_LIST_METHODS: Final = {"insert": "add", "append": "add", "extend": "add", "remove": "remove",
                        "pop": "remove", "clear": "remove"}
#: where a test's own code runs besides its function: its fixtures, and the xunit-style
#: hooks of its class and module (unittest's ``setUp`` included)
_CLASS_HOOKS: Final = ("setUp", "tearDown", "setup_method", "teardown_method", "setUpClass",
                       "tearDownClass", "setup_class", "teardown_class")
_MODULE_HOOKS: Final = ("setup_function", "teardown_function", "setup_module",
                        "teardown_module", "setUpModule", "tearDownModule")


class _Edit:
    """One statement that edits an import-system list in place."""

    __slots__ = ("constants", "direction", "function", "line", "list")

    def __init__(self, line: int, function: str, name: str, direction: str,
                 constants: frozenset[str] | None) -> None:
        self.line = line
        #: the enclosing function, ``Class.method`` inside a class
        self.function = function
        self.list = name
        #: "add", "remove" or "both" (an item or slice store, a rebinding)
        self.direction = direction
        #: the string entries it adds or removes when the source spells them out, else None
        self.constants = constants


#: path -> (mtime, edits, function -> names it calls)
_path_cache: dict[str, tuple[float, list[_Edit], dict[str, set[str]]]] = {}


def _list_name(node: ast.AST) -> str | None:
    """``sys.path`` / ``sys.meta_path`` / ``sys.path_hooks`` -> its name, else None."""
    import ast

    if isinstance(node, ast.Attribute) and node.attr in _LISTS and \
            isinstance(node.value, ast.Name) and node.value.id == "sys":
        return node.attr
    return None


def _strings(node: ast.AST | None) -> frozenset[str] | None:
    """The strings a literal spells out (``"x"``, ``["a", "b"]``), None when not all are."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return frozenset({node.value})
    if isinstance(node, (ast.List, ast.Tuple)):
        out: set[str] = set()
        for element in node.elts:
            if not (isinstance(element, ast.Constant) and isinstance(element.value, str)):
                return None
            out.add(element.value)
        return frozenset(out)
    return None


def _path_edits(path: str) -> tuple[list[_Edit], dict[str, set[str]]] | None:
    """Every statement of the file that provably edits ``sys.path``, ``sys.meta_path`` or
    ``sys.path_hooks`` in place: ``sys.path.insert(...)`` and the other list methods,
    ``sys.path[i] = ...``, ``del sys.path[i]``, ``sys.path += ...``, ``sys.path = ...``
    (``sys`` the name a module imports it by); and the plain names each function calls."""
    try:
        mtime = _captured.stat(path).st_mtime
    except OSError:
        return None
    cached = _path_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1], cached[2]
    import ast

    edits: list[_Edit] = []
    calls: dict[str, set[str]] = {}
    read = _source(path)
    try:
        tree = ast.parse(read[1], path) if read is not None else None
    except (SyntaxError, ValueError, RecursionError):
        tree = None

    def edit(child: ast.AST, function: str) -> tuple[str, str, frozenset[str] | None] | None:
        if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute):
            name = _list_name(child.func.value)
            direction = _LIST_METHODS.get(child.func.attr)
            if name is None or direction is None:
                return None
            index = 1 if child.func.attr == "insert" else 0
            argument = child.args[index] if len(child.args) > index else None
            known = None if child.func.attr in ("pop", "clear") else _strings(argument)
            return name, direction, known
        if isinstance(child, ast.Subscript) and isinstance(child.ctx, (ast.Store, ast.Del)):
            name = _list_name(child.value)
            if name is not None:
                return name, "remove" if isinstance(child.ctx, ast.Del) else "both", None
        if isinstance(child, ast.AugAssign):
            name = _list_name(child.target)
            if name is not None:
                return name, "add", _strings(child.value)
        if isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Store):
            name = _list_name(child)
            if name is not None:
                return name, "both", None
        return None

    def visit(node: ast.AST, function: str, klass: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner, inner_class = function, klass
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = f"{klass}.{child.name}" if klass and function == "<module>" \
                    else child.name
            elif isinstance(child, ast.ClassDef):
                inner_class = child.name
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Name):
                calls.setdefault(function, set()).add(child.func.id)
            found = edit(child, function)
            if found is not None:
                edits.append(_Edit(getattr(child, "lineno", 0), function, *found))
            visit(child, inner, inner_class)

    if tree is not None:
        visit(tree, "<module>", None)
    edits.sort(key=lambda e: e.line)
    if len(_path_cache) > _MAX_FILES:
        _path_cache.clear()
    _path_cache[path] = (mtime, edits, calls)
    return edits, calls


def _fits(edit: _Edit, name: str, added: bool | None, entry: object) -> bool:
    if edit.list != name:
        return False
    if added is not None and edit.direction not in ("both", "add" if added else "remove"):
        return False
    # spelled-out strings that are not the entry: another edit of the same list
    return edit.constants is None or (type(entry) is str and entry in edit.constants)


def find_path_edit(test: str, rootdir: str | None, fixtures: tuple[str, ...] = (), *,
                   target: str = "sys.path", added: bool | None = None,
                   entry: object = None) -> Frame | None:
    """The line that made a change of ``target`` (``sys.path``, ``sys.meta_path`` or
    ``sys.path_hooks``) for ``test``: in the test function, then in a fixture it names
    (``fixtures``) or an xunit hook of its class or module, in its file or a
    ``conftest.py`` above it, then in a function of those files that one of them calls by
    name. Only an edit of that list, in the right direction (``added``), and, where its
    source spells out the entry, of that ``entry``, counts; None when no statement
    provably made it, or when two different ones could have (never a guess)."""
    if "::" not in test:
        return None
    name = target.partition(".")[2]
    if name not in _LISTS:
        return None
    relpath, _, rest = test.partition("::")
    parts = rest.split("::")
    function = parts[-1].split("[")[0]
    klass = parts[-2] if len(parts) > 1 else None
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
    found = [(rel, _path_edits(full) or ([], {})) for rel, full in files]

    def qualified(names: tuple[str, ...]) -> list[str]:
        out = []
        for bare in names:
            if klass is not None:
                out.append(f"{klass}.{bare}")
            out.append(bare)
        return out

    own = qualified((function, *fixtures, *_CLASS_HOOKS)) + list(_MODULE_HOOKS)
    helpers: list[str] = []
    for _, (_, calls) in found:
        for caller in own:
            helpers.extend(sorted(calls.get(caller, ())))
    for group in (own, helpers):
        for wanted in group:
            hits = {(rel, e.line, e.function) for rel, (edits, _) in found for e in edits
                    if e.function == wanted and _fits(e, name, added, entry)}
            if len(hits) == 1:
                rel, line, where = hits.pop()
                return Frame(rel, line, where.rpartition(".")[2])
            if hits:
                return None  # two statements could have made it: not provable
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
        mtime = _captured.stat(path).st_mtime
    except OSError:
        return []
    cached = _modules_cache.get(path)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    import ast

    edits: list[tuple[int, str, str | None]] = []
    read = _source(path)
    try:
        tree: ast.AST | None = ast.parse(read[1], path) if read is not None else None
    except (SyntaxError, ValueError, RecursionError):
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
