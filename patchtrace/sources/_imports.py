"""Run a callback right after a module is imported, without importing it ourselves.

Start-up must stay light: we do not import ``unittest.mock`` (which pulls in asyncio) or
pytest to instrument them. A finder at the front of ``sys.meta_path`` wraps the loader of
the few modules we care about and calls back once they have executed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__all__ = ["cancel", "when_imported"]

Callback = Callable[[ModuleType], None]


class _LoaderProxy:
    """Delegates to the real loader; runs the callbacks after ``exec_module``."""

    def __init__(self, loader: Any, finder: _PostImportFinder, name: str) -> None:
        self._loader = loader
        self._finder = finder
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._loader, attr)

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # Put the real loader back so the module looks untouched.
        spec = module.__spec__
        if spec is not None and spec.loader is self:  # type: ignore[comparison-overlap]
            spec.loader = self._loader  # type: ignore[unreachable]
        if module.__dict__.get("__loader__") is self:
            module.__loader__ = self._loader
        self._finder.fire(self._name, module)


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
                    if self._wanted(fullname, spec) and spec.loader is not None and hasattr(
                        spec.loader, "exec_module"
                    ):
                        spec.loader = _LoaderProxy(spec.loader, self, fullname)  # type: ignore[assignment]
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
