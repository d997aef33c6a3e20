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
        #: identity_key(MonkeyPatch) -> tokens of its applied patches
        self._tokens: dict[int, list[int]] = {}

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
        stack = _stack.capture(2)
        records: list[tuple[str, str | None, object, object, object]] = []
        for target, name, oldval in mp._setattr[lengths[0]:]:
            after = raw_attribute(target, name)
            before = NOTHING if _is_notset(oldval) else oldval
            records.append((target_of(target), name, before, after, target))
        for dictionary, key, oldval in mp._setitem[lengths[1]:]:
            before = NOTHING if _is_notset(oldval) else oldval
            after = dictionary.get(key, NOTHING) if hasattr(dictionary, "get") else NOTHING
            records.append((target_of(dictionary), _key(key), before, after, None))
        if method == "syspath_prepend" and args:
            records.append(("sys.path", repr(str(args[0])), NOTHING, str(args[0]), None))
        if method == "chdir" and args:
            records.append(("cwd", None, cwd, _getcwd(), None))
        tokens = self._tokens.setdefault(identity_key(mp), [])
        for target_name, name, before, after, holder in records:
            token = tracer.ledger.next_seq()
            shown = _label(target_name, name) if method not in ("chdir", "syspath_prepend") \
                else (name or "")
            tracer.record(
                "patch", "monkeypatch", target_name, name, before, after, token=token,
                desc=f"monkeypatch.{method}({shown})", patcher=mp, stack=stack, holder=holder,
            )
            tokens.append(token)

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
                    stack = _stack.capture(1)
                    for token in reversed(tokens):
                        applied = tracer.ledger.applied(token)
                        if applied is None:
                            continue
                        tracer.record(
                            "unpatch", "monkeypatch", applied.target, applied.name, NOTHING,
                            NOTHING, token=token, desc="monkeypatch.undo()", stack=stack,
                        )
            except Exception as exc:
                tracer.internal_error("monkeypatch source", exc)
            return result

        undo.__patchtrace__ = True  # type: ignore[attr-defined]
        self._originals.append((cls, "undo", original))
        setattr(cls, "undo", undo)


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
