"""Direct stores to module and class attributes: ``settings.TIMEOUT = 0``.

CPython raises no audit event for these. Two mechanisms, chosen by version:

* **3.12+: dict watchers** (``PyDict_AddWatcher``/``PyDict_Watch``, public C API reached
  through ctypes). The callback runs *before* the store, on the storing thread, so the
  old value and the storing line are both at hand. Module dicts, top-level class dicts and
  ``sys.modules`` are watched as they appear (checked at every boundary). The watcher is
  cleared at exit: without ``PyDict_ClearWatcher`` the interpreter can crash at shutdown.

* **3.10/3.11: a module subclass for project modules, version tags for the rest.**
  Modules of the project (not the standard library, not site-packages) get their
  ``__class__`` set to a ``ModuleType`` subclass whose ``__setattr__``/``__delattr__``
  record the store with its line. Only ``mod.attr`` reads from *other* modules pay for it
  (the specializer skips non-exact module types; a module's own globals are read with
  LOAD_GLOBAL, untouched), and library modules are never swapped. Everything else (library
  and stdlib module dicts, class dicts) is compared at boundaries: PEP 509's
  ``ma_version_tag`` is read for every tracked dict by one ``struct.unpack_from`` whose
  format skips the bytes between them (about 20 ns per dict, measured: 5 µs for 251
  module dicts) and only dicts whose tag moved are
  compared with their snapshot. There the store is caught without its line, and a module's
  own lazy cache cannot be told from a test's store, so only *suspicious* changes are
  reported: a mock bound or unbound, a function/class/module/descriptor replaced, anything
  in ``builtins``.

Either way, the policy for what counts is the same: a store made by the namespace's own
module (``global x; x = ...`` or a classmethod setting ``cls.x``) is the module managing
its state, not pollution; a store from another module's code is a *foreign* store.
"""

from __future__ import annotations

import atexit
import builtins
import ctypes
import gc
import os
import struct
import sys
import types
from collections.abc import Callable, Iterable
from itertools import compress
from operator import ne
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from .._vocab import Op
from ..ledger import NOTHING, UNKNOWN
from ..naming import class_name
from ..values import identity_key, is_mock
from ._imports import cancel_on_import, on_import

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["WatchSource", "has_dict_watchers", "importing"]

_ADDED, _MODIFIED, _DELETED = 0, 1, 2
#: sys.modules is compared by the resource snapshot; sys's own attributes are resources too
#: (streams, hooks) or pytest bookkeeping (sys.last_type after a failure).
_NOT_SCANNED: Final = frozenset({"sys.modules", "module:sys"})
_MODULE_METADATA: Final = frozenset({
    "__loader__", "__spec__", "__file__", "__cached__", "__builtins__", "__package__",
    "__path__", "__name__", "__doc__", "__annotations__",
})
#: Entries the interpreter creates lazily in any namespace: reading ``cls.__annotations__``
#: stores an empty dict (3.10-3.13), ``warnings.warn`` keeps ``__warningregistry__`` in the
#: caller's globals. Nobody's pollution.
_LAZY_ENTRIES: Final = frozenset({"__annotations__", "__warningregistry__"})
_VERSION_OFFSET: Final = 3 * ctypes.sizeof(ctypes.c_ssize_t)  # refcnt, type, ma_used
#: Modules whose attributes pytest itself rebinds around every test (capture swaps
#: sys.stdout/stderr, warnings.catch_warnings its filters): watching them costs a dict
#: watcher callback per swap (~16 per test). Their attributes are compared at boundaries
#: by the resource snapshot instead (``resources``: sys and warnings namespaces).
_COMPARED_MODULES: Final = frozenset({"sys", "warnings"})
#: Test-running machinery: tests do not patch these, and pytest rebinds its own globals
#: around every test. Not watching them saves ~135 module dicts (and their classes) per
#: boundary scan on 3.10/3.11, and the dict watcher's callbacks on 3.12+.
_UNTRACKED_PACKAGES: Final = frozenset({
    "_pytest", "pytest", "pluggy", "patchtrace", "xdist", "execnet", "iniconfig", "py",
    "_distutils_hack",
})


def has_dict_watchers() -> bool:
    return sys.version_info >= (3, 12) and hasattr(ctypes.pythonapi, "PyDict_AddWatcher")


class _Namespace:
    """What a tracked dict is: its target string and the globals of its "own" module."""

    __slots__ = ("dict", "own", "target")

    def __init__(self, namespace: dict[str, Any], target: str, own: dict[str, Any] | None):
        self.dict = namespace
        self.target = target
        self.own = own


def _class_dict(cls: type) -> dict[str, Any] | None:
    """The real dict behind ``cls.__dict__`` (a mappingproxy)."""
    try:
        proxy = type.__dict__["__dict__"].__get__(cls)
        for referent in gc.get_referents(proxy):
            if type(referent) is dict:
                return referent
    except Exception:
        pass
    return None


def _namespaces_of(
    name: str, module: types.ModuleType, classes: bool = True
) -> Iterable[_Namespace]:
    namespace = module.__dict__
    target = "builtins" if module is builtins else f"module:{name}"
    yield _Namespace(namespace, target, namespace)
    if not classes:
        return
    for value in list(namespace.values()):
        # type(value), never isinstance(value, type): isinstance reads ``value.__class__``
        # when the type says no, and a lazy-import placeholder (lazy_importer's proxies in
        # importlib_metadata) resolves itself on that read: tracking a module imported the
        # modules it defers and put them in the placeholders' place (twine on 3.12).
        kind = type(value)
        if kind is type or (issubclass(kind, type) and type(kind) is type):
            cls: type = value
            if cls.__dict__.get("__module__") != name or is_mock(cls):
                continue
            if _is_test_class(cls, module):
                continue  # cls.patcher = patch(...) in setUpClass: the test's bookkeeping
            inner = _class_dict(cls)
            if inner is not None:
                yield _Namespace(inner, f"class:{class_name(cls)}", namespace)


def _is_test_file(path: object) -> bool:
    """pytest's and unittest's default test file names: ``test*.py``, ``*_test.py``."""
    if type(path) is not str:
        return False
    base = os.path.basename(path)
    return base.endswith(".py") and (base.startswith("test") or base.endswith("_test.py"))


def _is_test_class(cls: type, module: types.ModuleType) -> bool:
    """A class whose attributes are a test's own bookkeeping (``cls.client = ...`` in
    ``setUpClass``, a class fixture storing on ``request.cls``): a ``unittest.TestCase``
    subclass, or a ``Test*`` class of a test module. Decided from type slots and raw
    dicts only."""
    case = sys.modules.get("unittest.case")
    base = case.__dict__.get("TestCase") if case is not None else None
    try:
        mro = type.__dict__["__mro__"].__get__(cls)
    except Exception:
        return False
    if base is not None and cls is not base and any(b is base for b in mro):  # no ==
        return True
    name = type.__dict__["__name__"].__get__(cls)
    return str(name).startswith("Test") and _is_test_file(module.__dict__.get("__file__"))


def _is_project_file(path: str) -> bool:
    """Not the standard library, not an installed package: the code under test."""
    if not path.endswith(".py"):
        return False
    return not (_stack.is_hidden(path) or "site-packages" in path or "dist-packages" in path)


def _any_file(path: str) -> bool:
    return True


def _is_project_module(module: types.ModuleType) -> bool:
    path = module.__dict__.get("__file__")
    if not isinstance(path, str) or type(module) is not types.ModuleType:
        return False
    return _is_project_file(path) and module.__dict__.get("__name__") not in (
        "__main__", "__mp_main__")


class _TracedModule(types.ModuleType):
    """A project module whose attribute stores from other modules are recorded (3.10/3.11)."""

    def __setattr__(self, name: str, value: Any) -> None:
        source = _module_listener
        if source is not None and name != "__class__":  # the audit hook sees class swaps
            source._on_module_store(self, name, value, deleted=False)
        types.ModuleType.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        source = _module_listener
        if source is not None:
            source._on_module_store(self, name, NOTHING, deleted=True)
        types.ModuleType.__delattr__(self, name)


_module_listener: WatchSource | None = None
_MODULE_TYPES: Final = (types.ModuleType, _TracedModule)


_API_KINDS: Final = (types.FunctionType, types.BuiltinFunctionType, types.ModuleType, type,
                     staticmethod, classmethod, property, types.MethodType)


def _suspicious(old: object, new: object) -> bool:
    """A change a module's own code would rarely make (3.10/3.11, where we lack the line):
    a mock bound or unbound, an API (function, class, descriptor) removed, or replaced by
    something
    that was not written in the standard library or pytest (pytest's protocol rebinds
    ``_reprcompare`` and ``warnings._showwarnmsg_impl`` around every test)."""
    if is_mock(new) or is_mock(old):
        return True
    if new is NOTHING:  # an API removed: mod.__dict__.pop("func"), del mod.Class
        return type(old) in _API_KINDS or issubclass(type(old), type)
    if type(old) not in _API_KINDS and not issubclass(type(old), type):
        return False
    return _user_defined(new)


def _user_defined(obj: object) -> bool:
    """A function, method or class written outside the standard library and pytest."""
    kind = type(obj)
    if kind is types.MethodType:
        obj = obj.__func__  # type: ignore[attr-defined]
        kind = type(obj)
    if kind is types.FunctionType:
        return not _stack.is_hidden(obj.__code__.co_filename)  # type: ignore[attr-defined]
    if kind in (staticmethod, classmethod):
        return _user_defined(obj.__func__)  # type: ignore[attr-defined]
    if issubclass(kind, type):
        module = sys.modules.get(str(type.__dict__["__module__"].__get__(obj)))
        path = getattr(module, "__file__", None) if module is not None else None
        return isinstance(path, str) and not _stack.is_hidden(path)
    return False


def _by_pytest(obj: object) -> bool:
    """A function or bound method written in pytest or pluggy (``_stack.is_driver``): what
    pytest's protocol binds around every phase, not a test's value."""
    if type(obj) is types.MethodType:
        obj = obj.__func__
    if type(obj) is not types.FunctionType:
        return False
    return _stack.is_driver(obj.__code__.co_filename)


def importing(frame: types.FrameType, depth: int = 8) -> bool:
    """The frame, or one of the few that called it, runs module-level code of a module
    still being imported (a library building itself, possibly through a helper function
    its module body calls: cryptography's ``utils.deprecated()``)."""
    caller: types.FrameType | None = frame
    while caller is not None and depth:
        spec = caller.f_globals.get("__spec__")
        if getattr(spec, "_initializing", False) is True and \
                caller.f_code.co_name == "<module>":
            # A conftest or test module that pytest itself imports while collecting is
            # the user's code at import time, not a library building itself: what it
            # stores (sys.modules["dep"] = MagicMock() at module scope) is recorded.
            return not (_collected(caller) and _is_project_file(_stack.frame_file(frame)))
        caller = caller.f_back
        depth -= 1
    return False


def _collected(module_frame: types.FrameType, depth: int = 16) -> bool:
    """``module_frame`` runs the top level of a project file that pytest imports (a
    conftest, a test module, a ``pytest_plugins`` module): through the import system's
    frames (and pytest's assertion rewriter), the first frame that imported it is
    pytest's own. A module imported by another module (the project's package, imported by
    a conftest) is not: its top level is how that package builds itself."""
    if not _is_project_file(_stack.frame_file(module_frame)):
        return False
    caller = module_frame.f_back
    while caller is not None and depth:
        filename = _stack.frame_file(caller)
        if _stack.is_driver(filename):
            return True
        if not _stack.is_hidden(filename):
            return False  # imported by the project's (or a library's) own code
        caller = caller.f_back
        depth -= 1
    return False


def _same_library(frame: types.FrameType, target: str) -> bool:
    """An installed package storing into its own modules (hypothesis's pytest plugin
    setting ``hypothesis.core.running_under_pytest``): not the project's doing. Project
    code storing into another project module still counts."""
    if not target.startswith(("module:", "class:")):
        return False
    filename = _stack.frame_file(frame)
    if not _installed(filename):
        return False
    storer = str(frame.f_globals.get("__name__", "")).partition(".")[0]
    if storer and target.partition(":")[2].partition(".")[0] == storer:
        return True
    # A pytest plugin's hook (installed code called by pluggy), not the test: hypothesis's
    # plugin sets hypothesis.core.running_under_pytest, pytest-socket restores sockets.
    # pluggy calling it directly makes it a hook; pytest calling it as the test function
    # (a library decorator wrapping the test, like freezegun's @freeze_time) does not.
    caller: types.FrameType | None = frame.f_back
    while caller is not None:
        filename = _stack.frame_file(caller)
        if _stack.is_driver(filename):
            return f"{os.sep}pluggy{os.sep}" in filename
        if not _installed(filename):
            return False
        caller = caller.f_back
    return False


def _installed(filename: str) -> bool:
    return "site-packages" in filename or "dist-packages" in filename


def _explained(tracer: Tracer, target: str, name: str, new: object) -> bool:
    """True when another source already recorded the change that produced ``new``."""
    last = tracer.ledger.last(target, name)
    if last is None or last.source == "scan":
        return False
    value = last.after_value()
    return value is new or (new is NOTHING and last.op in ("delete", "unpatch"))


class _TagGroup:
    """Tracked dicts whose version tags are read together (3.10/3.11).

    Project modules change at nearly every boundary (tests patch them), library modules
    almost never: reading them as two groups lets the large, stable one be checked as a
    whole and only the small one be searched for which dict moved.

    The whole-group check is a ``sum``: a dict's new tag is the next value of the
    interpreter's global dict version counter (PEP 509), larger than every tag that
    existed before, so the sum of the tags grows whenever one of them moves and is equal
    otherwise (the dicts are kept alive by the source: no address is reused). ``sum``
    adds the tags in C without a rich comparison each: ~1.5 µs for 280 dicts where the
    tuple ``==`` took ~4.
    """

    __slots__ = ("keys", "last", "read", "total")

    def __init__(self, keys: list[int], read: Callable[[], tuple[int, ...]],
                 last: tuple[int, ...]) -> None:
        self.keys = keys
        self.read = read
        self.last = last
        self.total = sum(last)

    def changed(self) -> list[int]:
        """Keys of the dicts whose tag moved since the last call."""
        tags = self.read()
        total = sum(tags)
        if total == self.total:
            return []
        last, self.last, self.total = self.last, tags, total
        return [self.keys[i] for i in compress(range(len(tags)), map(ne, last, tags))]


def _tag_reader(addresses: list[int]) -> Callable[[], tuple[int, ...]]:
    """One ``struct`` format over the address span of the given (sorted) tag addresses: a
    single C call reads every tag, padding skipping the bytes between them (~20 ns per
    dict; an ``itemgetter`` over a memoryview took ~35)."""
    base = addresses[0]
    try:
        parts = ["<"]
        position = base
        for address in addresses:
            if address > position:
                parts.append(f"{address - position}x")
            parts.append("Q")
            position = address + 8
        unpack = struct.Struct("".join(parts)).unpack_from
        view = memoryview((ctypes.c_char * (position - base)).from_address(base))
        return lambda: unpack(view)
    except Exception:
        offsets = [ctypes.c_uint64.from_address(a) for a in addresses]
        return lambda: tuple(o.value for o in offsets)


class WatchSource:
    name = "watch"

    def __init__(self) -> None:
        self.tracer: Tracer | None = None
        self._seen_modules: dict[str, int] = {}  # name -> identity_key(module)
        #: identity_key(dict) -> what it is (not id(): see values.identity_key)
        self._by_id: dict[int, _Namespace] = {}
        # 3.12+
        self._watcher_id: int | None = None
        self._callback: Any = None
        # 3.10/3.11
        self._snapshots: dict[int, dict[str, Any]] = {}
        self._groups: list[_TagGroup] = []
        #: identity keys of the dicts of project modules and their classes (see _TagGroup)
        self._volatile: set[int] = set()
        self._swapped: list[types.ModuleType] = []
        self._modules_len = -1
        self.mode = "watchers" if has_dict_watchers() else "scan"
        #: target -> identity key of its dict, for baseline()
        self._key_of_target: dict[str, int] = {}
        #: 3.12+: (dict key, name) -> the value before the namespace's own first store in
        #: the current scope (own stores are not recorded; see baseline())
        self._own_before: dict[tuple[int, str], object] = {}
        #: how many records the ledger had at that first own store (see own_store_at)
        self._own_at: dict[tuple[int, str], int] = {}
        #: 3.10/3.11: the snapshots the last scan replaced (the values at scope start)
        self._previous: dict[int, dict[str, Any]] = {}
        #: while collecting: every module is tracked as soon as it is imported (see
        #: track_imports), with its dict's version tag then (3.10/3.11)
        self._tracking_all = False
        self._fresh_tags: dict[int, int] = {}
        self._reader_stale = False
        #: set by the detector: does the current test's source store attribute ``name``?
        #: (3.10/3.11: a plain value stored on a library module is kept when it does)
        self.stored_by_test: Callable[[str], bool] | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def install(self, tracer: Tracer) -> None:
        global _module_listener
        self.tracer = tracer
        if self.mode == "watchers":
            self._add_watcher()
        else:
            _module_listener = self
        on_import(_is_project_file, self._imported)
        self.refresh()

    def uninstall(self) -> None:
        global _module_listener
        if _module_listener is self:
            _module_listener = None
        for module in self._swapped:
            try:
                if type(module) is _TracedModule:
                    module.__class__ = types.ModuleType  # type: ignore[assignment]
            except TypeError:
                pass
        self._swapped.clear()
        cancel_on_import(self._imported)
        self.track_imports(False)
        self._clear_watcher()
        self.tracer = None
        self._by_id.clear()
        self._seen_modules.clear()
        self._snapshots.clear()
        self._groups = []

    # -- tracking -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Start tracking modules imported since the last call (cheap when none are new)."""
        modules = sys.modules
        if len(modules) == self._modules_len and self._by_id:
            return
        self._modules_len = len(modules)
        added = 0
        if not self._by_id:
            added += self._add(_Namespace(modules, "sys.modules", None))
        for name, module in list(modules.items()):
            added += self._track(name, module)
        if self.mode == "scan" and added:
            self._build_reader()

    def _imported(self, module: types.ModuleType) -> None:
        """A project module finished importing: track it now, not at the next boundary."""
        name = module.__dict__.get("__name__")
        if isinstance(name, str) and self._track(name, module) and self.mode == "scan":
            self._build_reader()

    def track_imports(self, on: bool) -> None:
        """While on (pytest turns it on while it loads conftests and test modules), every
        module is tracked right after it is imported, not at the next boundary: a conftest
        that imports a library and patches it at once (``import requests;
        requests.get = MagicMock()``) is seen, on 3.12+ as it happens, on 3.10/3.11 by the
        scan, from the version tag its dict had when the import ended."""
        if on == self._tracking_all:
            return
        self._tracking_all = on
        if on:
            on_import(_any_file, self._imported_any)
        else:
            cancel_on_import(self._imported_any)

    def _imported_any(self, module: types.ModuleType) -> None:
        name = module.__dict__.get("__name__")
        if not isinstance(name, str):
            return
        before = set(self._by_id) if self.mode == "scan" else None
        if self._track(name, module) and before is not None:
            for key in self._by_id.keys() - before:
                entry = self._by_id[key]
                if entry.target not in _NOT_SCANNED:
                    self._fresh_tags[key] = ctypes.c_uint64.from_address(
                        id(entry.dict) + _VERSION_OFFSET).value
            self._reader_stale = True  # built once, at the next scan

    def _track(self, name: str, module: object) -> int:
        key = identity_key(module)
        if self._seen_modules.get(name) == key or type(module) not in _MODULE_TYPES:
            return 0
        if name.partition(".")[0] in _UNTRACKED_PACKAGES or name in _COMPARED_MODULES:
            self._seen_modules[name] = key
            return 0
        assert isinstance(module, types.ModuleType)  # exact type checked above: no user code
        self._seen_modules[name] = key
        # 3.10/3.11 compare class dicts at every boundary, so only the project's classes
        # are tracked there (a mock stored on a library class is still caught when it
        # survives its test); 3.12+ watchers cost nothing until a store happens.
        project = _is_project_module(module)
        classes = self.mode == "watchers" or project
        added = 0
        for entry in _namespaces_of(name, module, classes):
            if self._add(entry):
                added += 1
                if project:
                    self._volatile.add(identity_key(entry.dict))
        if self.mode == "scan":
            self._swap(module)
        return added

    def _add(self, entry: _Namespace) -> int:
        key = identity_key(entry.dict)
        if key in self._by_id:
            return 0
        self._by_id[key] = entry
        self._key_of_target.setdefault(entry.target, key)
        if self.mode == "watchers":
            self._watch(entry.dict)
        elif entry.target != "sys.modules":
            self._snapshots[key] = entry.dict.copy()
        return 1

    # -- 3.12+: dict watchers -----------------------------------------------------------------
    def _add_watcher(self) -> None:
        api = ctypes.pythonapi
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p
        )
        self._callback = callback_type(self._on_event)
        api.PyDict_AddWatcher.argtypes = [callback_type]
        api.PyDict_AddWatcher.restype = ctypes.c_int
        api.PyDict_Watch.argtypes = [ctypes.c_int, ctypes.py_object]
        api.PyDict_Watch.restype = ctypes.c_int
        api.PyDict_ClearWatcher.argtypes = [ctypes.c_int]
        api.PyDict_ClearWatcher.restype = ctypes.c_int
        watcher_id = api.PyDict_AddWatcher(self._callback)
        if watcher_id < 0:
            raise RuntimeError("no free dict watcher slot")
        self._watcher_id = watcher_id
        atexit.register(self._clear_watcher)

    def _watch(self, namespace: dict[str, Any]) -> None:
        if self._watcher_id is not None:
            ctypes.pythonapi.PyDict_Watch(self._watcher_id, namespace)

    def _clear_watcher(self) -> None:
        watcher_id, self._watcher_id = self._watcher_id, None
        if watcher_id is not None:
            try:
                ctypes.pythonapi.PyDict_ClearWatcher(watcher_id)
            except Exception:
                pass

    def _on_event(
        self, event: int, namespace: Any, key_ptr: int | None, value_ptr: int | None
    ) -> int:
        # Runs inside the store, before it happens: cheap exits first, never raise.
        if event > _DELETED:
            return 0
        tracer = self.tracer
        if tracer is None or (tracer.inside and tracer.busy) or not tracer.enabled:
            return 0
        try:
            try:
                frame = _stack._getframe(1)
            except ValueError:
                return 0  # no Python frame: the interpreter itself (runpy setting __file__)
            if frame.f_globals is namespace:
                # The module's own code (``global x``): not recorded, but the value it
                # replaces is kept for baseline() the first time in a scope.
                if key_ptr:
                    name = ctypes.cast(key_ptr, ctypes.py_object).value
                    own_key = (identity_key(namespace), name)
                    if own_key not in self._own_before:
                        self._own_before[own_key] = namespace.get(name, NOTHING)
                        if tracer is not None:
                            self._own_at[own_key] = len(tracer.ledger)
                return 0
            entry = self._by_id.get(identity_key(namespace))
            if entry is None or frame.f_globals is entry.own:
                return 0
            if _stack.is_hidden(_stack.frame_file(frame)):
                return 0  # importlib binding a submodule, stdlib housekeeping
            if importing(frame):
                return 0  # a module's import-time code: how the library is built
            if not key_ptr:
                return 0
            key = ctypes.cast(key_ptr, ctypes.py_object).value
            if type(key) is not str or key in _LAZY_ENTRIES:
                return 0
            if _same_library(frame, entry.target):
                return 0  # a library (or its pytest plugin) managing its own modules
            before = namespace.get(key, NOTHING)
            if event == _DELETED or not value_ptr:
                tracer.record("delete", "watch", entry.target, key, before, NOTHING,
                              stack=_stack.capture(0))
            else:
                after = ctypes.cast(value_ptr, ctypes.py_object).value
                tracer.record("set", "watch", entry.target, key, before, after,
                              stack=_stack.capture(0))
        except BaseException as exc:
            try:
                tracer.internal_error("dict watcher", exc)
            except BaseException:
                pass
        return 0

    def _swap(self, module: types.ModuleType) -> None:
        """Give a project module the recording ``__setattr__`` (3.10/3.11)."""
        if type(module) is not types.ModuleType or not _is_project_module(module):
            return
        try:
            module.__class__ = _TracedModule
        except TypeError:
            return
        self._swapped.append(module)

    def _on_module_store(
        self, module: types.ModuleType, name: str, value: object, *, deleted: bool
    ) -> None:
        tracer = self.tracer
        if tracer is None or (tracer.inside and tracer.busy) or not tracer.enabled:
            return
        try:
            namespace = module.__dict__
            frame = _stack._getframe(2)  # _on_module_store <- __setattr__ <- the storing frame
            if frame.f_globals is namespace or _stack.is_hidden(_stack.frame_file(frame)):
                return
            entry = self._by_id.get(identity_key(namespace))
            target = entry.target if entry is not None else f"module:{module.__name__}"
            before = namespace.get(name, NOTHING)
            tracer.record("delete" if deleted else "set", "watch", target, name, before,
                          NOTHING if deleted else value, stack=_stack.capture(2))
        except Exception as exc:
            tracer.internal_error("module store hook", exc)

    # -- 3.10/3.11: version tags --------------------------------------------------------------
    def _build_reader(self) -> None:
        """Readers of the version tags of every tracked dict, in two groups (_TagGroup)."""
        old_tags: dict[int, int] = dict(self._fresh_tags)
        self._fresh_tags.clear()
        self._reader_stale = False
        for group in self._groups:
            old_tags.update(zip(group.keys, group.last, strict=False))
        located = sorted((id(entry.dict) + _VERSION_OFFSET, key)
                         for key, entry in self._by_id.items() if entry.target not in _NOT_SCANNED)
        groups = []
        for volatile in (False, True):
            members = [(a, k) for a, k in located if (k in self._volatile) is volatile]
            if not members:
                continue
            keys = [k for _, k in members]
            read = _tag_reader([a for a, _ in members])
            # Dicts tracked just now start from their current tag (their snapshot is
            # fresh); dicts tracked before keep the tag they had, so no change is lost.
            last = tuple(old_tags.get(k, tag) for k, tag in zip(keys, read(), strict=True))
            groups.append(_TagGroup(keys, read, last))
        self._groups = groups

    def baseline(self, target: str, name: str) -> object:
        """What ``target.name`` held when the current scope began, as far as we know
        (``UNKNOWN`` otherwise): the value before its module's own first store in the
        scope (3.12+), or the last boundary's snapshot (3.10/3.11). A library flipping its
        own global through its API, then a fixture putting it back, is no change."""
        key = self._key_of_target.get(target)
        if key is None:
            return UNKNOWN
        if self.mode == "watchers":
            return self._own_before.get((key, name), UNKNOWN)
        snapshot = self._previous.get(key, self._snapshots.get(key))
        return UNKNOWN if snapshot is None else snapshot.get(name, NOTHING)

    def own_store_at(self, target: str, name: str) -> int | None:
        """The ledger's length when the module's own first store of ``name`` in this
        scope happened (3.12+), or None: a record with a ``seq`` up to it came first."""
        key = self._key_of_target.get(target)
        return None if key is None else self._own_at.get((key, name))

    def new_scope(self) -> None:
        """A boundary: forget the previous scope's own stores and replaced snapshots."""
        self._own_before.clear()
        self._own_at.clear()
        self._previous.clear()

    def scan(self) -> int:
        """Compare the dicts whose version moved; record suspicious changes. Returns count."""
        tracer = self.tracer
        if self.mode == "scan" and self._reader_stale:
            self._build_reader()
        if self.mode != "scan" or tracer is None or not self._groups:
            return 0
        changed = [key for group in self._groups for key in group.changed()]
        if not changed:
            return 0
        found = 0
        for key in changed:
            entry = self._by_id[key]
            snapshot = self._snapshots.get(key, {})
            current = entry.dict
            get = snapshot.get
            names = [k for k, v in current.items() if get(k, NOTHING) is not v]
            names.extend(k for k in snapshot if k not in current)
            for name in names:
                old = snapshot.get(name, NOTHING)
                new = current.get(name, NOTHING)
                if type(name) is not str:
                    continue
                if name in _MODULE_METADATA or name in _LAZY_ENTRIES:
                    continue  # set by the import system, runpy or the interpreter
                # Class dicts are scanned only for the project's classes (see _track):
                # there any change counts, and the detector keeps it only if the test's
                # source stores that name (_oracle), which a class's own cache does not.
                if entry.target != "builtins" and not entry.target.startswith("class:") \
                        and not _suspicious(old, new) and (_by_pytest(new) or not (
                            self.stored_by_test is not None and self.stored_by_test(name))):
                    # pytest's own hook in place now (pytest < 8.4 sets threading.excepthook
                    # around every phase): nothing of the test's is left there, and asking
                    # the test's source would parse every test file (~3 ms each)
                    continue
                if _explained(tracer, entry.target, name, new):
                    continue
                op: Op = "delete" if new is NOTHING else "set"
                tracer.record(op, "scan", entry.target, name, old, new, stack=_stack.EMPTY)
                found += 1
            self._previous[key] = snapshot
            self._snapshots[key] = current.copy()
        return found
