"""Cheap stack capture, formatted on demand.

Capturing is a walk over ``f_back`` that keeps, per frame, ``(file, line, None)`` or
``(file, f_lasti, code)``: no frame, no locals, no traceback is stored, so nothing the user
created is kept alive by a record (a code object holds constants, never a test's objects).
``f_lineno`` walks the code's line table from the start of the function on every read:
cheap near the start, ~1.3 µs at the end of a test function with five rewritten asserts
(measured), where ``f_code`` and ``f_lasti`` cost ~0.25 µs (reading ``f_code`` raises an
``object.__getattr__`` audit event, which our hook ignores at once). So the bytecode
offset decides (``_LINENO_CHEAP``), and a code's line is computed when the stack is shown.
The walk stops at the first frame of pytest's runner, whose file is read from
``f_globals['__file__']`` without an event.

Frames of patchtrace, pytest, pluggy, unittest.mock, pytest-mock, xdist and the standard
library are *hidden*: they are kept in the raw stack but never shown as ``where``. The
packages of installed pytest plugins (a ``pytest11`` entry point: pytest-asyncio) are
hidden from ``where`` and the shown stack too, though their stores are
still recorded. ``where`` is never a library frame (site-packages): it is the innermost
frame of the project or its tests, and None when only library code made the change.
"""

from __future__ import annotations

import bisect
import linecache
import os
import sys
import sysconfig
from types import CodeType, FrameType
from typing import Final, final

__all__ = ["Frame", "Stack", "capture", "capture_raw", "frame_file", "function_at",
           "is_hidden", "is_library"]

_MAX_DEPTH: Final = 80
#: captured at import: a test that leaves ``sys._getframe = None`` (or mocked) must not cost
#: us our stacks; the sources take their frames through this too
_getframe: Final = sys._getframe
#: Below this bytecode offset ``f_lineno`` is cheaper than ``f_code`` + ``f_lasti``: the
#: line table is walked from the start of the function, ~0.5 ns per byte of offset, where
#: reading ``f_code`` costs ~250 ns (its audit event), measured on 3.11 and 3.12.
_LINENO_CHEAP: Final = 320


_MACHINERY: Final = ("_pytest", "pytest", "pluggy", "pytest_mock", "xdist", "execnet")


def _classify_paths() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(machinery package dirs, standard library dirs, site-packages dirs)."""
    machinery = [os.path.dirname(os.path.abspath(__file__)) + os.sep]
    for modname in _MACHINERY:
        module = sys.modules.get(modname)
        path = getattr(module, "__file__", None) if module is not None else None
        if isinstance(path, str):
            machinery.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    try:
        paths = sysconfig.get_paths()
    except Exception:  # 3.13.0 in a venv can fail on a missing 'abi_thread' variable
        paths = {}
    stdlib = {os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib") if k in paths}
    stdlib.add(os.path.dirname(os.path.abspath(os.__file__)) + os.sep)
    site = {os.path.abspath(paths[k]) + os.sep for k in ("purelib", "platlib") if k in paths}
    site.update(os.path.abspath(p) + os.sep for p in sys.path if p.endswith("site-packages"))
    return tuple(machinery), tuple(stdlib), tuple(site)


_hidden_cache: dict[str, bool] = {}
_driver_cache: dict[str, bool] = {}
_shown_cache: dict[str, int] = {}
#: absolute paths of installed pytest plugins' entry-point modules (files or package dirs)
_plugins: tuple[str, ...] | None = None
#: Frames that *drive* user code (pytest's runner, pluggy, xdist/execnet): a mutation whose
#: innermost visible caller is one of these was made by the machinery, not by a user.
_DRIVERS: Final = ("_pytest", "pluggy", "xdist", "execnet")
#: ...except pytest's own patching library, which is called *by* users.
_LIBRARIES_IN_DRIVERS: Final = ("monkeypatch.py",)
_paths: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None


def reset_hidden_cache() -> None:
    """Forget which files are hidden (call once pytest and pluggy are imported)."""
    global _paths, _plugins
    _paths = None
    _plugins = None
    _hidden_cache.clear()
    _driver_cache.clear()
    _shown_cache.clear()


def _plugin_paths() -> tuple[str, ...]:
    """The top-level packages (or modules) of installed distributions' ``pytest11`` entry
    points, once pytest has loaded them (read from ``sys.modules``: nothing is imported).
    A plugin that is part of the project (an editable install outside site-packages)
    stays visible."""
    if "_pytest" not in sys.modules:
        return ()
    try:
        from importlib.metadata import entry_points

        points = list(entry_points(group="pytest11"))
    except Exception:
        return ()
    out: list[str] = []
    for point in points:
        try:
            module_name = str(point.value).partition(":")[0].strip()
        except Exception:
            continue
        module = sys.modules.get(module_name.partition(".")[0])  # its whole package
        path = module.__dict__.get("__file__") if module is not None else None
        if not isinstance(path, str) or not _installed(path):
            continue
        path = os.path.abspath(path)
        if os.path.basename(path) == "__init__.py":
            out.append(os.path.dirname(path) + os.sep)  # a package: hide it all
        else:
            out.append(path)
    return tuple(out)


def _installed(path: str) -> bool:
    return "site-packages" in path or "dist-packages" in path


def _shown(filename: str) -> int:
    """0: hidden (machinery, the standard library, a pytest plugin's module); 1: library
    code (installed: shown in the stack, never ``where``); 2: the project and its tests."""
    try:
        return _shown_cache[filename]
    except KeyError:
        pass
    global _plugins
    if is_hidden(filename):
        result = 0
    else:
        if _plugins is None:
            _plugins = _plugin_paths()
        path = filename if filename.startswith("<") else os.path.abspath(filename)
        if _plugins and path.startswith(_plugins):
            result = 0
        elif _installed(path):
            result = 1
        else:
            result = 2
    _shown_cache[filename] = result
    return result


def is_library(filename: str) -> bool:
    """Installed code (site-packages) that is not machinery nor a pytest plugin: shown in
    a stack, never ``where``."""
    return _shown(filename) == 1


def is_driver(filename: str) -> bool:
    """True for pytest/pluggy/xdist frames that call user code (not pytest's MonkeyPatch)."""
    try:
        return _driver_cache[filename]
    except KeyError:
        pass
    result = False
    if not filename.endswith(_LIBRARIES_IN_DRIVERS):
        for modname in _DRIVERS:
            module = sys.modules.get(modname)
            path = getattr(module, "__file__", None) if module is not None else None
            if isinstance(path, str) and os.path.abspath(filename).startswith(
                    os.path.dirname(os.path.abspath(path)) + os.sep):
                result = True
                break
    _driver_cache[filename] = result
    return result


def is_hidden(filename: str) -> bool:
    """True for frames users should not see: ours, pytest's, mock's, the standard library's.

    Third-party code in site-packages stays visible (a library can be the polluter), even
    where site-packages lives inside the standard library directory.
    """
    try:
        return _hidden_cache[filename]
    except KeyError:
        pass
    global _paths
    if _paths is None:
        _paths = _classify_paths()
    machinery, stdlib, site = _paths
    if filename.startswith("<"):
        result = filename.startswith("<frozen")  # frozen importlib is machinery; <string> is not
    else:
        path = os.path.abspath(filename)
        if path.startswith(machinery):
            result = True
        elif path.startswith(site):
            result = False
        else:
            result = path.startswith(stdlib)
    _hidden_cache[filename] = result
    return result


@final
class Frame:
    """One formatted frame: plain strings and ints."""

    __slots__ = ("file", "function", "line")

    def __init__(self, file: str, line: int, function: str) -> None:
        self.file = file
        self.line = line
        self.function = function

    def source(self) -> str:
        return linecache.getline(self.file, self.line).strip()

    def relative_to(self, root: str | None) -> Frame:
        if not root:
            return self
        try:
            rel = os.path.relpath(self.file, root)
        except ValueError:  # another drive on Windows
            return self
        if rel.startswith(".." + os.sep):
            return self
        return Frame(rel.replace(os.sep, "/"), self.line, self.function)

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "function": self.function}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Frame:
        line = data.get("line")
        return cls(str(data.get("file")), line if isinstance(line, int) else 0,
                   str(data.get("function")))

    def __repr__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self.file, self.line, self.function) == (other.file, other.line, other.function)

    def __hash__(self) -> int:
        return hash((self.file, self.line, self.function))


_line_tables: dict[CodeType, tuple[list[int], list[int]]] = {}


def line_of(code: CodeType, lasti: int) -> int:
    """The source line of bytecode offset ``lasti`` in ``code`` (what ``f_lineno`` says)."""
    table = _line_tables.get(code)
    if table is None:
        starts: list[int] = []
        lines: list[int] = []
        for start, _end, line in code.co_lines():
            starts.append(start)
            lines.append(line if line is not None else (lines[-1] if lines else 0))
        table = _line_tables[code] = (starts, lines)
        if len(_line_tables) > 20_000:
            _line_tables.clear()
    starts, lines = table
    if lasti < 0 or not starts:
        return code.co_firstlineno
    index = bisect.bisect_right(starts, lasti) - 1
    return lines[index] if index >= 0 else code.co_firstlineno


#: file -> sorted ``(first line, last line, name)`` of every function and class in it
_scopes: dict[str, list[tuple[int, int, str]]] = {}


def function_at(file: str, line: int) -> str:
    """The name of the innermost function (or class body) around ``line``: ``<module>``
    outside any, ``?`` when the source cannot be read. Only called to show a stack."""
    scopes = _scopes.get(file)
    if scopes is None:
        import ast  # only when a stack is shown: start-up stays light

        scopes = []
        try:
            tree = ast.parse("".join(linecache.getlines(file)) or "\n")
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            tree = None
        if tree is None or not linecache.getlines(file):
            _scopes[file] = []
            return "?"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                scopes.append((first, node.end_lineno or node.lineno, node.name))
        scopes.sort()
        _scopes[file] = scopes
        if len(_scopes) > 2_000:
            _scopes.clear()
    best = "<module>" if scopes or linecache.getlines(file) else "?"
    for first, last, name in scopes:  # sorted by first line: later matches are inner
        if first > line:
            break
        if line <= last:
            best = name
    return best


@final
class Stack:
    """A captured stack, innermost frame first.

    Each item is ``(file, f_lasti, code)`` (a frame far into its code, or ``exec``'d code)
    or ``(file, line, None)`` (a frame near its start: ``f_lineno`` was cheap there). A
    driver frame, and a hidden frame captured without ``hidden``, is ``(file, 0, None)``.
    """

    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[str, int, CodeType | str | None], ...]) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def frames(self, *, hidden: bool = False) -> list[Frame]:
        """Frames outermost first; machinery frames dropped unless ``hidden``."""
        out: list[Frame] = []
        for filename, position, where in reversed(self._items):
            if not hidden and not _shown(filename):
                continue
            out.append(_frame(filename, position, where))
        return out

    def where(self) -> Frame | None:
        """The innermost frame of the project or its tests: the line that made the
        mutation, or the test's call that led into the library code that made it.

        None when pytest's machinery is reached first: the mutation was made by pytest or
        a plugin (through mock or MonkeyPatch), whoever started the process; or by library
        code that pytest called directly (a decorator around the test function).
        """
        for filename, position, where in self._items:
            if is_driver(filename):
                return None
            if _shown(filename) == 2:
                return _frame(filename, position, where)
        return None

    def library_only(self) -> bool:
        """Library code (site-packages) made the mutation, and no frame of the project
        or its tests is on the way to it."""
        library = False
        for filename, _position, _where in self._items:
            if is_driver(filename):
                break
            shown = _shown(filename)
            if shown == 2:
                return False
            library = library or shown == 1
        return library

    def written_by_library(self) -> bool:
        """The innermost shown frame, the one that stored, is library code."""
        for filename, _position, _where in self._items:
            if is_driver(filename):
                return False
            shown = _shown(filename)
            if shown:
                return shown == 1
        return False

    def storer(self) -> tuple[str, int, CodeType | None] | None:
        """``(file, line, code or None)`` of the innermost shown frame (the one that made
        the mutation: library or project code), or None when pytest's machinery, or
        nothing shown, comes first. ``code`` is there when the capture kept it."""
        for filename, position, where in self._items:
            if is_driver(filename):
                return None
            if _shown(filename):
                if isinstance(where, CodeType):
                    return filename, line_of(where, position), where
                return filename, position, None
        return None

    def __repr__(self) -> str:
        where = self.where()
        return f"<Stack {len(self._items)} frames, where={where!r}>"


#: code without a name of its own: a frame of it is named after the function around it
_ANONYMOUS: Final = frozenset({"<lambda>", "<genexpr>", "<listcomp>", "<dictcomp>",
                               "<setcomp>"})


def _frame(filename: str, position: int, where: CodeType | str | None) -> Frame:
    if isinstance(where, CodeType):
        line = line_of(where, position)
        name = where.co_name
        if name in _ANONYMOUS:  # a store made by a lambda names the test it is in
            name = _enclosing(where, filename, line)
        return Frame(filename, line, name)
    if not position and where is None:
        return Frame(filename, 0, "?")  # kept by file only: no need to parse its source
    return Frame(filename, position, where or function_at(filename, position))


def _enclosing(code: CodeType, filename: str, line: int) -> str:
    """The function a lambda or comprehension is written in (``<module>`` at top level)."""
    qualname = getattr(code, "co_qualname", None)  # 3.11+; 3.10 reads the source
    if type(qualname) is not str:
        return function_at(filename, line)
    parts = [p for p in qualname.split(".") if p != "<locals>" and p not in _ANONYMOUS]
    return parts[-1] if parts else "<module>"


EMPTY: Final = Stack(())


def frame_file(frame: FrameType) -> str:
    """The file a frame runs, without reading ``f_code`` when its globals say (see above)."""
    filename = frame.f_globals.get("__file__")
    if type(filename) is str:
        return filename
    return frame.f_code.co_filename


#: file -> position -> the one item tuple for it (see capture_raw): a suite's records are made
#: from the same few lines over and over, and each item is kept by every record
_interned: dict[str, dict[int, tuple[str, int, CodeType | str | None]]] = {}
_INTERNED_MAX: Final = 50_000
_interned_count = 0


def _item(filename: str, key: int, position: int,
          code: CodeType | None) -> tuple[str, int, CodeType | str | None]:
    """The shared ``(file, position, code)`` item (made once per file and position)."""
    global _interned_count
    items = _interned.get(filename)
    if items is None:
        if _interned_count > _INTERNED_MAX:
            _interned.clear()
            _interned_count = 0
        items = _interned[filename] = {}
    item = items.get(key)
    if item is None or item[2] is not code:
        item = items[key] = (filename, position, code)
        _interned_count += 1
    return item


def capture(skip: int = 0, limit: int = _MAX_DEPTH, *, hidden: bool = False) -> Stack:
    """Capture the caller's stack cheaply (see :func:`capture_raw`)."""
    return Stack(capture_raw(skip + 1, limit, hidden=hidden))


def capture_raw(skip: int = 0, limit: int = _MAX_DEPTH, *,
                hidden: bool = False) -> tuple[tuple[str, int, CodeType | str | None], ...]:
    """Capture the caller's stack cheaply, as the items of a :class:`Stack` (what a lazy
    record keeps). ``skip`` drops that many extra inner frames.

    Hidden frames (mock's internals, the standard library) are kept by file only, unless
    ``hidden``: then their code too, for the few readers of their function names (the
    debugger tells a ``@patch`` decorator's frames apart). Each item is shared by every
    stack with the same frame position (``_item``): a record costs a tuple of pointers.

    ~0.3 µs per frame: most of it is CPython materializing frame objects for ``f_back``
    (3.11+) and computing ``f_lineno``; the walk stops at pytest's runner.
    """
    try:
        frame: FrameType | None = _getframe(skip + 1)
    except ValueError:
        return ()
    items: list[tuple[str, int, CodeType | str | None]] = []
    append = items.append
    drivers = _driver_cache
    hidden_files = _hidden_cache
    interned = _interned
    while frame is not None and limit:
        filename = frame.f_globals.get("__file__")
        code = None
        if type(filename) is not str:  # exec'd code, a frozen module: globals do not say
            code = frame.f_code
            filename = code.co_filename
        # Beyond pytest's runner there is only pytest, pluggy and the process start: stop,
        # keeping the driver frame so where() can tell machinery from user code (without
        # its position: nobody shows a driver's line).
        driver = drivers.get(filename)
        known = interned.get(filename)
        if driver or (driver is None and is_driver(filename)):
            item = known.get(0) if known is not None else None
            append(item if item is not None and item[2] is None
                   else _item(filename, 0, 0, None))
            break
        if code is None:
            if not hidden and (hidden_files[filename] if filename in hidden_files
                               else is_hidden(filename)):
                # never shown: no line, no f_code for it
                item = known.get(0) if known is not None else None
                append(item if item is not None and item[2] is None
                       else _item(filename, 0, 0, None))
            else:
                lasti = frame.f_lasti
                if lasti < _LINENO_CHEAP:
                    line = frame.f_lineno or 0
                    item = known.get(line) if known is not None else None
                    append(item if item is not None and item[2] is None
                           else _item(filename, line, line, None))
                else:
                    code = frame.f_code
                    item = known.get(~lasti) if known is not None else None
                    append(item if item is not None and item[2] is code
                           else _item(filename, ~lasti, lasti, code))
        else:
            lasti = frame.f_lasti
            item = known.get(~lasti) if known is not None else None
            append(item if item is not None and item[2] is code
                   else _item(filename, ~lasti, lasti, code))
        frame = frame.f_back
        limit -= 1
    return tuple(items)
