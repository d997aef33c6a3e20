"""pytest's ``MonkeyPatch``: every set/del/env/path/chdir call, and ``undo``.

``MonkeyPatch`` keeps typed undo lists (``_setattr``, ``_setitem``, ``_savesyspath``,
``_cwd``; read ``src/_pytest/monkeypatch.py``). After each call we read the entry it just
appended, so ``before`` is exactly what ``undo()`` will restore (for classes the raw
``__dict__`` value, so descriptors round-trip). Each call becomes one ``patch`` record
with its own token; ``undo()`` closes all tokens of that instance.
"""

from __future__ import annotations

import functools
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from ..ledger import NOTHING, _label
from ..naming import raw_attribute, target_of
from ..values import identity_key
from ._imports import cancel, when_imported

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["MonkeyPatchSource"]

_MODULE: Final = "_pytest.monkeypatch"
_METHODS: Final = (
    "setattr", "delattr", "setitem", "delitem", "setenv", "delenv", "syspath_prepend", "chdir",
)


class MonkeyPatchSource:
    name = "monkeypatch"

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._originals: list[tuple[type, str, Any]] = []
        self._depth = 0
        #: identity_key(MonkeyPatch) -> (token, target, name) of its applied patches
        self._tokens: dict[int, list[tuple[int, object, str | None]]] = {}

    def install(self, tracer: Tracer) -> None:
        self._tracer = tracer
        when_imported(_MODULE, self._instrument)

    def uninstall(self) -> None:
        cancel(_MODULE, self._instrument)
        for cls, attr, original in reversed(self._originals):
            setattr(cls, attr, original)
        self._originals.clear()
        self._tracer = None

    def _instrument(self, module: ModuleType) -> None:
        cls = module.__dict__.get("MonkeyPatch")
        if not isinstance(cls, type):
            return
        for method in _METHODS:
            original = cls.__dict__.get(method)
            if original is None or getattr(original, "__patchtrace__", False):
                continue
            self._install_one(cls, method, original)
        original_undo = cls.__dict__.get("undo")
        if original_undo is not None and not getattr(original_undo, "__patchtrace__", False):
            self._install_undo(cls, original_undo)

    def _install_one(self, cls: type, method: str, original: Any) -> None:
        source = self

        @functools.wraps(original)
        def wrapper(mp: Any, *args: Any, **kwargs: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled or source._depth:
                return original(mp, *args, **kwargs)
            lengths = (len(mp._setattr), len(mp._setitem))
            saved = (mp._savesyspath, mp._cwd)
            cwd = _getcwd() if method == "chdir" else None
            source._depth += 1
            tracer.hush()
            try:
                result = original(mp, *args, **kwargs)
            finally:
                tracer.unhush()
                source._depth -= 1
            try:
                source._after_call(tracer, mp, method, args, lengths, saved, cwd)
            except Exception as exc:
                tracer.internal_error("monkeypatch source", exc)
            return result

        wrapper.__patchtrace__ = True  # type: ignore[attr-defined]
        self._originals.append((cls, method, original))
        setattr(cls, method, wrapper)

    def _after_call(
        self,
        tracer: Tracer,
        mp: Any,
        method: str,
        args: tuple[Any, ...],
        lengths: tuple[int, int],
        saved: tuple[Any, Any],
        cwd: str | None,
    ) -> None:
        stack = _stack.capture_raw(2)
        # Lazy records: targets are kept as objects (named when read, see ledger).
        records: list[tuple[object, str | None, object, object]] = []
        for target, name, oldval in mp._setattr[lengths[0]:]:
            after = raw_attribute(target, name)
            before = NOTHING if _is_notset(oldval) else oldval
            records.append((_as_target(target), name, before, after))
        for dictionary, key, oldval in mp._setitem[lengths[1]:]:
            before = NOTHING if _is_notset(oldval) else oldval
            after = dictionary.get(key, NOTHING) if hasattr(dictionary, "get") else NOTHING
            records.append((_as_target(dictionary), _key(key), before, after))
        if method == "syspath_prepend" and args:
            records.append(("sys.path", repr(str(args[0])), NOTHING, str(args[0])))
        if method == "chdir" and args:
            records.append(("cwd", None, cwd, _getcwd()))
        tokens = self._tokens.setdefault(identity_key(mp), [])
        desc = _DESCS.get(method) or (_described, method)
        for target, name, before, after in records:
            token = tracer.ledger.next_seq()
            tracer.record(
                "patch", "monkeypatch", target, name, before, after, token=token,
                desc=desc, patcher=mp, stack=stack,
            )
            tokens.append((token, target, name))

    def _install_undo(self, cls: type, original: Any) -> None:
        source = self

        @functools.wraps(original)
        def undo(mp: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return original(mp)
            tracer.hush()
            try:
                result = original(mp)
            finally:
                tracer.unhush()
            try:
                tokens = source._tokens.pop(identity_key(mp), [])
                if tokens:
                    stack = _stack.capture_raw(1)
                    is_applied = tracer.ledger.is_applied
                    for token, target, name in reversed(tokens):
                        if not is_applied(token):
                            continue
                        tracer.record(
                            "unpatch", "monkeypatch", target, name, NOTHING,
                            NOTHING, token=token, desc="monkeypatch.undo()", stack=stack,
                        )
            except Exception as exc:
                tracer.internal_error("monkeypatch source", exc)
            return result

        undo.__patchtrace__ = True  # type: ignore[attr-defined]
        self._originals.append((cls, "undo", original))
        setattr(cls, "undo", undo)


def _as_target(target: object) -> object:
    """A lazy record's target: the object, named when read (a string is named now)."""
    return target_of(target) if type(target) is str else target


def _described(target: str, name: str | None, method: str) -> str:
    """A lazy record's ``desc`` (see ``ledger.materialise``)."""
    shown = _label(target, name) if method not in ("chdir", "syspath_prepend") else (name or "")
    return f"monkeypatch.{method}({shown})"


#: the lazy ``desc`` of each method's records, one tuple for all of them
_DESCS: Final = {method: (_described, method) for method in _METHODS}


def _getcwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def _is_notset(value: object) -> bool:
    compat = sys.modules.get("_pytest.compat")
    return compat is not None and value is compat.__dict__.get("NOTSET")


def _key(key: object) -> str:
    if isinstance(key, bytes):
        return key.decode(sys.getfilesystemencoding(), "surrogateescape")
    return key if isinstance(key, str) else repr(key)
