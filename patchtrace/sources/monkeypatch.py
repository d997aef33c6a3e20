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
from typing import TYPE_CHECKING, Any, Final, cast

from .. import stack as _stack
from ..ledger import NOTHING, _label
from ..naming import raw_attribute, target_of
from ..values import identity_key
from ._imports import cancel, when_imported
from ._wrap import Group, around

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["MonkeyPatchSource"]

_MODULE: Final = "_pytest.monkeypatch"
#: the wrappers' part: one failure switches the whole source off (said once)
_PART: Final = "monkeypatch source"
_METHODS: Final = (
    "setattr", "delattr", "setitem", "delitem", "setenv", "delenv", "syspath_prepend", "chdir",
)


class MonkeyPatchSource:
    name = "monkeypatch"

    def __init__(self) -> None:
        #: the wrappers (sources/_wrap.around): per-thread "inside a MonkeyPatch call" (its
        #: own nested calls, setenv calling setitem, are the outer call's), hushed while the
        #: original runs, a failing part switched off, one typed undo list
        self._group = Group(_PART)
        #: identity_key(MonkeyPatch) -> (token, target, name) of its applied patches
        self._tokens: dict[int, list[tuple[int, object, str | None]]] = {}

    def install(self, tracer: Tracer) -> None:
        self._group.tracer = tracer
        when_imported(_MODULE, self._instrument)

    def uninstall(self) -> None:
        cancel(_MODULE, self._instrument)
        self._group.undo()

    def _instrument(self, module: ModuleType) -> None:
        cls = module.__dict__.get("MonkeyPatch")
        if not isinstance(cls, type):
            return
        for method in _METHODS:
            around(cls, method, part=_PART, group=self._group,
                   before=functools.partial(_before, method), after=self._after, quiet=True)
        around(cls, "undo", part=_PART, group=self._group, after=self._after_undo, quiet=True)

    def _after(self, ticket: object, args: tuple[Any, ...], kwargs: dict[str, Any],
               result: object) -> None:
        """A call returned: read the undo entries it appended (see :func:`_before`)."""
        tracer = self._group.tracer
        if tracer is None:
            return
        method, mp, lengths, cwd = cast("tuple[str, Any, tuple[int, int], str | None]", ticket)
        stack = _stack.capture_raw(2)  # the user's frame: past this hook and the wrapper
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
        call_args = args[1:]
        if method == "syspath_prepend" and call_args:
            records.append(("sys.path", repr(str(call_args[0])), NOTHING, str(call_args[0])))
        if method == "chdir" and call_args:
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

    def _after_undo(self, ticket: object, args: tuple[Any, ...], kwargs: dict[str, Any],
                    result: object) -> None:
        """``undo()`` returned: close the tokens of that instance that are still applied."""
        tracer = self._group.tracer
        if tracer is None or not args:
            return
        tokens = self._tokens.pop(identity_key(args[0]), [])
        if not tokens:
            return
        stack = _stack.capture_raw(2)  # the user's frame: past this hook and the wrapper
        is_applied = tracer.ledger.is_applied
        for token, target, name in reversed(tokens):
            if not is_applied(token):
                continue
            tracer.record(
                "unpatch", "monkeypatch", target, name, NOTHING,
                NOTHING, token=token, desc="monkeypatch.undo()", stack=stack,
            )


def _before(method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    """Before a ``MonkeyPatch`` call: how long its undo lists are (the entries the call
    appends are read after it), and the working directory before a ``chdir``."""
    mp = args[0]
    return (method, mp, (len(mp._setattr), len(mp._setitem)),
            _getcwd() if method == "chdir" else None)


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
