"""Run a callback right after a module is imported, without importing it ourselves.

Start-up must stay light: we do not import ``unittest.mock`` (which pulls in asyncio) or
pytest to instrument them, and project modules must be tracked as soon as they exist (the
watch source swaps their class on 3.10/3.11, watches their classes' dicts on 3.12+).

**No frame of ours runs between an import and the module's code.** Code that walks
``sys._getframe()`` out of the import machinery to find its importer (python-dotenv's
``find_dotenv()``: the first frame whose file exists) must find the user's frame, exactly as
untraced. So we do not wrap the loader (a proxy's ``exec_module`` was such a frame, and the
module saw the proxy as ``__spec__.loader`` while it ran). Instead, a finder at the front of
``sys.meta_path`` asks the other finders for the spec and, for the modules we care about,
gives that spec a subclass of ``ModuleSpec`` whose ``_initializing`` is a set-only
descriptor: ``importlib._bootstrap._load_unlocked`` sets ``spec._initializing = True``
before it executes the module and ``False`` in its ``finally`` after (3.10 to 3.13), so the
callbacks run at that second store, when the module is complete and back in
``sys.modules``; the spec gets its own class back first. Reads of ``_initializing`` go to
the instance dict (a descriptor without ``__get__``): no frame of ours there either.

What is left of ours on an import's stack is the finder, and only while finders run, never
while the module executes. Considered and not taken:

* the ``import`` audit event plus lazy tracking at the next event or boundary: the event
  comes before the module exists and nothing marks its end, so a test that imports a
  module and stores into it straight away (``import mod; mod.X = 1``) would be missed on
  3.10/3.11, and ``mock.patch`` could run before ``unittest.mock`` is instrumented;
* the 3.12+ dict watcher on ``sys.modules`` (``_load_unlocked`` pops and re-inserts the
  module after executing it): version-specific, and the named callbacks would depend on
  the watch source being installed. The spec hook serves all versions and both uses.

Only imports run by the import system (``_find_and_load_unlocked``) get the spec hook;
``importlib.util.find_spec`` callers that execute the module themselves never set
``_initializing``, so their spec is left alone and the module is tracked at the next
boundary.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Final

__all__ = ["cancel", "when_imported"]

#: captured: a test may delete or replace sys._getframe (attrs' tests do)
_getframe: Final = sys._getframe

Callback = Callable[[ModuleType], None]


class _FireWhenDone:
    """``spec._initializing = False`` (the end of ``_load_unlocked``) fires the callbacks.

    No ``__get__``: reading ``spec._initializing`` finds the value in the instance dict.
    """

    def __set__(self, spec: ModuleSpec, value: object) -> None:
        spec.__dict__["_initializing"] = value
        if value:
            return
        try:
            spec.__class__ = ModuleSpec
            name = spec.name
            module = sys.modules.get(name)
            finder = _finder
            # A failed import removed the module: its callbacks wait for the next attempt.
            # (type(), not isinstance: no user code runs for what sits in sys.modules)
            if finder is not None and issubclass(type(module), ModuleType):
                assert isinstance(module, ModuleType)
                finder.fire(name, module)
        except Exception as exc:  # never break an import
            try:
                sys.stderr.write(f"patchtrace: could not follow an import: {exc!r}\n")
            except Exception:
                pass


class _WatchedSpec(ModuleSpec):
    _initializing = _FireWhenDone()


_IMPORTING: Final = "_find_and_load_unlocked"


class _PostImportFinder:
    def __init__(self) -> None:
        self.callbacks: dict[str, list[Callback]] = {}
        #: (predicate on the spec's origin, callback) for every module that passes
        self.general: list[tuple[Callable[[str], bool], Callback]] = []
        self._searching: set[str] = set()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname in self._searching or not (self.general or fullname in self.callbacks):
            return None
        if target is not None:
            return None  # a reload: importlib.reload never sets _initializing
        try:
            # _find_and_load_unlocked -> _find_spec -> us: the import system will load
            # the spec with _load_unlocked (see the module docstring).
            if _getframe(2).f_code.co_name != _IMPORTING:
                return None
        except ValueError:
            return None
        self._searching.add(fullname)
        try:
            for finder in sys.meta_path:
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec: ModuleSpec | None = find(fullname, path, target)
                if spec is not None:
                    if type(spec) is ModuleSpec and self._wanted(fullname, spec):
                        spec.__class__ = _WatchedSpec
                    return spec
            return None
        finally:
            self._searching.discard(fullname)

    def _wanted(self, fullname: str, spec: ModuleSpec) -> bool:
        if fullname in self.callbacks:
            return True
        origin = spec.origin
        return isinstance(origin, str) and any(pred(origin) for pred, _ in self.general)

    def fire(self, name: str, module: ModuleType) -> None:
        callbacks = list(self.callbacks.pop(name, ()))
        origin = getattr(module, "__file__", None)
        if isinstance(origin, str):
            callbacks.extend(cb for pred, cb in self.general if pred(origin))
        for callback in callbacks:
            try:
                callback(module)
            except Exception as exc:  # instrumentation must never break an import
                sys.stderr.write(f"patchtrace: could not instrument {name}: {exc!r}\n")
        if not self.callbacks and not self.general:
            _remove()

    def invalidate_caches(self) -> None:
        pass


_finder: _PostImportFinder | None = None


def _remove() -> None:
    global _finder
    if _finder is not None:
        try:
            sys.meta_path.remove(_finder)
        except ValueError:
            pass
        _finder = None


def _ensure() -> _PostImportFinder:
    global _finder
    if _finder is None:
        _finder = _PostImportFinder()
        sys.meta_path.insert(0, _finder)
    return _finder


def on_import(predicate: Callable[[str], bool], callback: Callback) -> None:
    """Call ``callback(module)`` after every import whose file passes ``predicate``."""
    _ensure().general.append((predicate, callback))


def cancel_on_import(callback: Callback) -> None:
    if _finder is None:
        return
    # == not is: a bound method is a new object at every attribute access
    _finder.general[:] = [(p, cb) for p, cb in _finder.general if cb != callback]
    if not _finder.callbacks and not _finder.general:
        _remove()


def when_imported(name: str, callback: Callback) -> None:
    """Call ``callback(module)`` now if ``name`` is imported, else right after its import."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    _ensure().callbacks.setdefault(name, []).append(callback)


def cancel(name: str, callback: Callback) -> None:
    if _finder is None:
        return
    callbacks = _finder.callbacks.get(name)
    if callbacks and callback in callbacks:
        callbacks.remove(callback)
        if not callbacks:
            del _finder.callbacks[name]
    if not _finder.callbacks and not _finder.general:
        _remove()


def is_ours(obj: object) -> bool:
    """True for our finder (resource snapshots of sys.meta_path ignore it)."""
    return isinstance(obj, _PostImportFinder)
