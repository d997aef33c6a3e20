"""unittest.mock: every patch applied and undone, and every top-level mock created.

We wrap four methods on mock's private classes (read ``unittest/mock.py``):

* ``_patch.__enter__`` / ``_patch.__exit__`` — ``patch``, ``patch.object`` and each part of
  ``patch.multiple`` go through them as context manager, as decorator (``decoration_helper``
  enters them on an ExitStack) and through ``start()``/``stop()``/``patch.stopall()``;
* ``_patch_dict._patch_dict`` / ``_patch_dict._unpatch_dict`` — ``patch.dict`` in all forms
  (its decorator calls these directly, not ``__enter__``).

``_patch.__exit__`` deletes ``target``/``temp_original`` from the patcher, so we read them
before calling it. Mock creation is seen in ``NonCallableMock.__init__``; children (created
with ``parent``/``_new_parent``) are skipped: only the mocks a user made have a "where".
"""

from __future__ import annotations

import functools
import sys
import weakref
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from .. import stack as _stack
from ..ledger import NOTHING, Scope
from ..naming import raw_attribute, target_of
from ..values import identity_key
from ._imports import cancel, when_imported

if TYPE_CHECKING:
    from .._tracer import Tracer

__all__ = ["MockSource"]

#: the backport's classes live in ``mock.mock`` (the ``mock`` package re-exports only the
#: public names: its ``_patch`` and ``_patch_dict`` are not there)
_MODULES: Final = ("unittest.mock", "mock.mock")
#: set by NonCallableMock.__init__ for children (CallableMixin passes them positionally)
_CHILD_ATTRS: Final = ("_mock_parent", "_mock_new_parent")


def _path_hint(patcher: Any) -> str | None:
    """The dotted path of ``patch('pkg.mod.attr')``: 3.11+ keep it in a partial, 3.10 in a
    lambda's closure; ``patch.object`` has none."""
    return path_hint_of_getter(patcher.__dict__.get("getter"))


def path_hint_of_getter(getter: Any) -> str | None:
    """:func:`_path_hint` from the patcher's ``getter``."""
    if isinstance(getter, functools.partial) and getter.args and isinstance(getter.args[0], str):
        return str(getter.args[0])
    closure = getattr(getter, "__closure__", None) if callable(getter) else None
    for cell in closure or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if type(value) is str:  # never isinstance() on what may be a user's mock
            return value
    return None


def _describe(hint: str | None, attribute: str) -> str:
    if hint is not None:
        return f"patch('{hint}.{attribute}')"
    return f"patch.object(..., {attribute!r})"


def _described(_target: str, attribute: str | None, hint: str | None) -> str:
    """A lazy record's ``desc`` (see ``ledger.materialise``)."""
    return _describe(hint, attribute or "")


#: hint -> the lazy ``desc`` of its records, one tuple for all of them
_descs: dict[str | None, tuple[Any, str | None]] = {}


def _desc_of(hint: str | None) -> tuple[Any, str | None]:
    desc = _descs.get(hint)
    if desc is None:
        if len(_descs) > 5_000:
            _descs.clear()
        desc = _descs[hint] = (_described, hint)
    return desc


class MockCreation:
    """Where a top-level mock was made, and in which scope (for ``mock-survived``)."""

    __slots__ = ("ref", "scope", "serial", "stack", "type_name")

    def __init__(self, ref: weakref.ref[Any], scope: Scope, stack: _stack.Stack, type_name: str,
                 serial: int = 0):
        self.ref = ref
        self.scope = scope
        self.stack = stack
        self.type_name = type_name
        #: the order of creation (the read log watches the mocks made before a test began)
        self.serial = serial


class MockSource:
    name = "mock"

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._originals: list[tuple[type, str, Any]] = []
        self._tokens: dict[int, int] = {}
        #: identity_key(mock) -> creation record; entries vanish with the mock (weakref callback).
        self.created: dict[int, MockCreation] = {}
        #: the next creation record's serial
        self.serial = 0

    # -- install ----------------------------------------------------------------------------
    def install(self, tracer: Tracer) -> None:
        self._tracer = tracer
        for name in _MODULES:
            when_imported(name, self._instrument)

    def uninstall(self) -> None:
        for name in _MODULES:
            cancel(name, self._instrument)
        for cls, attr, original in reversed(self._originals):
            setattr(cls, attr, original)
        self._originals.clear()
        self._tracer = None

    def _instrument(self, module: ModuleType) -> None:
        namespace = module.__dict__
        patch_cls = namespace.get("_patch")
        dict_cls = namespace.get("_patch_dict")
        mock_cls = namespace.get("NonCallableMock")
        if not (isinstance(patch_cls, type) and isinstance(dict_cls, type)):
            return
        self._wrap(patch_cls, "__enter__", self._make_enter)
        self._wrap(patch_cls, "__exit__", self._make_exit)
        self._wrap(dict_cls, "_patch_dict", self._make_dict_patch)
        self._wrap(dict_cls, "_unpatch_dict", self._make_dict_unpatch)
        if isinstance(mock_cls, type):
            self._wrap(mock_cls, "__init__", self._make_init)

    def _wrap(self, cls: type, attr: str, factory: Any) -> None:
        original = cls.__dict__[attr]
        if getattr(original, "__patchtrace__", False):
            return
        wrapper = factory(original)
        functools.update_wrapper(wrapper, original)
        wrapper.__patchtrace__ = True
        self._originals.append((cls, attr, original))
        setattr(cls, attr, wrapper)

    # -- patch / patch.object / patch.multiple ----------------------------------------------
    def _make_enter(self, original: Any) -> Any:
        source = self

        def __enter__(patcher: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return original(patcher)
            tracer.hush()
            try:
                result = original(patcher)
            finally:
                tracer.unhush()
            try:
                source._on_enter(tracer, patcher)
            except Exception as exc:
                tracer.internal_error("mock source", exc)
            return result

        return __enter__

    def _on_enter(self, tracer: Tracer, patcher: Any) -> None:
        state = patcher.__dict__
        target = state.get("target")
        attribute = state.get("attribute")
        if target is None or not isinstance(attribute, str):
            return
        before = state.get("temp_original", NOTHING)
        if not state.get("is_local", False):
            before = NOTHING  # the attribute was inherited or absent: undo deletes it
        after = raw_attribute(target, attribute)
        if after is NOTHING:
            after = getattr(target, attribute, NOTHING)
        hint = path_hint_of_getter(state.get("getter"))
        # A lazy record: the target is named, and the description made, when it is read.
        self._tokens[identity_key(patcher)] = tracer.record(
            "patch", "mock", _as_target(target, hint), attribute, before, after,
            token=tracer.ledger.next_seq(), desc=_desc_of(hint), patcher=patcher,
            stack=_stack.capture_raw(2, hidden=True), hint=hint,
        )

    def _make_exit(self, original: Any) -> Any:
        source = self

        def __exit__(patcher: Any, *exc_info: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return original(patcher, *exc_info)
            state = patcher.__dict__
            target = state.get("target")
            attribute = state.get("attribute")
            current = raw_attribute(target, attribute) if isinstance(attribute, str) else NOTHING
            tracer.hush()
            try:
                result = original(patcher, *exc_info)
            finally:
                tracer.unhush()
            try:
                source._on_exit(tracer, patcher, target, attribute, current,
                                exc_info[1] if len(exc_info) > 1 else None)
            except Exception as exc:
                tracer.internal_error("mock source", exc)
            return result

        return __exit__

    def _on_exit(
        self, tracer: Tracer, patcher: Any, target: object, attribute: object, current: object,
        error: BaseException | None = None,
    ) -> None:
        token = self._tokens.pop(identity_key(patcher), None)
        if token is None or not isinstance(attribute, str):
            return
        restored = raw_attribute(target, attribute)
        # Named as the patch record is (the same object and hint: the same target, the
        # same words), when it is read.
        hint = path_hint_of_getter(patcher.__dict__.get("getter"))
        tracer.record(
            "unpatch", "mock", _as_target(target, hint), attribute, current, restored,
            token=token, desc=_desc_of(hint), stack=_stack.capture_raw(2), hint=hint,
            unwinding=None if error is None else (type(error).__name__, id(error)),
        )

    # -- patch.dict ---------------------------------------------------------------------------
    def _make_dict_patch(self, original: Any) -> Any:
        source = self

        def _patch_dict(patcher: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return original(patcher)
            hint = patcher.in_dict if isinstance(patcher.in_dict, str) else None
            tracer.hush()
            try:
                result = original(patcher)
            finally:
                tracer.unhush()
            try:
                source._on_dict_patch(tracer, patcher, hint)
            except Exception as exc:
                tracer.internal_error("mock source", exc)
            return result

        return _patch_dict

    def _on_dict_patch(self, tracer: Tracer, patcher: Any, hint: str | None) -> None:
        in_dict = patcher.in_dict
        original = patcher._original or {}
        keys = list(patcher.values)
        name: str | None = None
        before: object = NOTHING
        after: object = NOTHING
        if len(keys) == 1:
            name = _key_name(keys[0])
            before = original.get(keys[0], NOTHING) if isinstance(original, dict) else NOTHING
            after = patcher.values[keys[0]]
        shown = ", ".join(_key_name(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
        where = hint or target_of(in_dict)
        desc = f"patch.dict({where!s}, {{{shown}}}{', clear=True' if patcher.clear else ''})"
        self._tokens[identity_key(patcher)] = tracer.record(
            "patch", "mock", _dict_target(in_dict, hint), name, before, after,
            token=tracer.ledger.next_seq(), desc=desc, patcher=patcher,
            stack=_stack.capture_raw(2, hidden=True),
        )

    def _make_dict_unpatch(self, original: Any) -> Any:
        source = self

        def _unpatch_dict(patcher: Any) -> Any:
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return original(patcher)
            tracer.hush()
            try:
                result = original(patcher)
            finally:
                tracer.unhush()
            try:
                token = source._tokens.pop(identity_key(patcher), None)
                if token is not None:
                    error = sys.exc_info()[1]  # set while an exception propagates through
                    tracer.record(              # the with block or the decorator
                        "unpatch", "mock", _dict_target(patcher.in_dict, None), None, NOTHING,
                        NOTHING, token=token, stack=_stack.capture_raw(1),
                        unwinding=None if error is None else (type(error).__name__, id(error)),
                    )
            except Exception as exc:
                tracer.internal_error("mock source", exc)
            return result

        return _unpatch_dict

    # -- mock creation ------------------------------------------------------------------------
    def _make_init(self, original: Any) -> Any:
        source = self

        def __init__(mock: Any, *args: Any, **kwargs: Any) -> None:
            original(mock, *args, **kwargs)
            tracer = source._tracer
            if tracer is None or not tracer.enabled:
                return
            try:
                state = object.__getattribute__(mock, "__dict__")
                if any(state.get(k) is not None for k in _CHILD_ATTRS):
                    return  # a child or return_value mock: its parent has the "where"
                source._on_created(tracer, mock)
            except Exception as exc:
                tracer.internal_error("mock source", exc)

        return __init__

    def _on_created(self, tracer: Tracer, mock: object) -> None:
        key = identity_key(mock)
        created = self.created
        if key in created:
            return  # __init__ of a subclass calling super().__init__
        ref = weakref.ref(mock, partial(_forget, created, key))
        serial = self.serial
        self.serial = serial + 1
        created[key] = MockCreation(ref, tracer.scope, _stack.capture(2), "", serial)

    def forget(self, mock: object) -> None:
        self.created.pop(identity_key(mock), None)

    def alive_created_in(self, predicate: Any) -> list[tuple[object, MockCreation]]:
        """Live mocks whose creation scope satisfies ``predicate`` (strong refs: drop soon)."""
        out: list[tuple[object, MockCreation]] = []
        for record in list(self.created.values()):
            if not predicate(record.scope):
                continue
            obj = record.ref()
            if obj is not None:
                out.append((obj, record))
        return out


def _as_target(target: object, hint: str | None) -> object:
    """What a lazy record keeps as its target: the object (named when read), or the name
    now for a string (a record's string target is its name)."""
    return target_of(target, hint) if type(target) is str else target


def _forget(created: dict[int, MockCreation], key: int, _ref: object) -> None:
    created.pop(key, None)


def _key_name(key: object) -> str:
    return key if isinstance(key, str) else repr(key)


def _dict_target(in_dict: object, hint: str | None) -> str:
    return target_of(in_dict, hint)
