"""pdb commands and post-mortem helpers: what was patched when this failed?

By the time ``pytest --pdb`` shows a failure, a ``with patch(...)`` block or a ``@patch``
decorator around the failing line has already undone its patch. The ledger remembers: each
undo that ran while an exception propagated carries ``Mutation.unwinding``. This module adds
one debugger command, ``pt``, with subcommands::

    pt patches            patches active now and when the exception was raised, with stacks
    pt history EXPR       every recorded mutation of EXPR (``mod.attr``, ``os.environ['X']``)
    pt why EXPR           the reference chains that keep EXPR's value alive
    pt graph EXPR [FILE]  draw them
    pt holders EXPR       every module, class and default argument bound to EXPR's value
    pt repatch            put back the patches undone while the exception propagated
    pt unpatch            restore exactly what was there before ``pt repatch``
    pt leaks              leaks found so far
    pt help               this list

How the command gets into a debugger: :func:`install` adds ``do_pt``/``complete_pt`` to the
standard library's ``pdb.Pdb`` (found through the MRO, so pytest's wrapper class, pdb++ and
IPython/ipdb, all subclasses of it, inherit it) and wraps its ``interaction`` so that the
exception being debugged is known and re-applied patches are always restored when the prompt
is left (``continue``, ``quit``, ``next``, EOF, an exception). :func:`uninstall` undoes it.
For any other debugger, :func:`pt` is a plain function: ``!import patchtrace.debugger as d;
d.pt("patches")``.

Re-applied patches never outlive the prompt: they are restored when the interaction that
re-applied them ends, and an ``atexit`` hook restores anything left as a last resort.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, ModuleType, TracebackType
from typing import IO, Any, Final, final

from . import _tracer
from .ledger import NOTHING, UNKNOWN, Mutation
from .values import safe_repr

__all__ = [
    "install",
    "installed",
    "post_mortem",
    "pt",
    "restore",
    "stop_at_leak",
]

_MARK: Final = "__patchtrace__"
#: Paths are shown relative to the directory the run started in, taken with our own
#: reference to os.getcwd: by the time a command runs, the test may have mocked it.
_getcwd: Final = os.getcwd
_root: str | None = None
_SUBCOMMANDS: Final = ("patches", "history", "why", "graph", "repatch", "unpatch", "leaks",
                       "holders", "help")
_HELP: Final = """\
pt patches            patches active now, and those active when the exception was raised
                      (even if a `with patch(...)` or decorator undid them since), with stacks
pt history EXPR       every recorded mutation of a target, in order, with scope and line:
                      `pt history mod.func`, `pt history os.environ['HOME']`,
                      `pt history mod` (the whole module), `pt history module:pkg.mod name`
pt why EXPR           the reference chains that keep the value of EXPR alive
pt graph EXPR [FILE]  draw those references to FILE (default patchtrace-graph.svg)
pt holders EXPR       every module, class and default argument bound to the value of EXPR;
                      for a patch's mock, also who still holds the original it replaced
pt repatch            re-apply the patches that were undone while the exception propagated,
                      so that expressions see what the failing code saw
pt unpatch            put back exactly what was there before `pt repatch` (also done
                      automatically when you leave the prompt: continue, next, quit, EOF)
pt leaks              leaks found so far in this run
pt help               this help
Outside pdb (any debugger): !import patchtrace.debugger as d; d.pt("patches")"""


# ---------------------------------------------------------------------------------------------
# the context a command runs in


@final
class _Context:
    """Where ``pt`` evaluates expressions, which exceptions it debugs, where it writes."""

    __slots__ = ("debugger", "exceptions", "globals", "locals", "out")

    def __init__(
        self,
        globals_: dict[str, Any],
        locals_: Any,
        exceptions: list[BaseException],
        out: IO[str],
        debugger: Any = None,
    ) -> None:
        self.debugger = debugger
        self.globals = globals_
        self.locals = locals_
        self.exceptions = exceptions  # the debugged one first, then its chain
        self.out = out

    def eval(self, expr: str) -> Any:
        try:
            return eval(expr, self.globals, self.locals)
        except NameError as exc:
            # `pt history os.environ['X']` in a frame that never imported os: use the module.
            name = getattr(exc, "name", None)
            if not isinstance(name, str) or sys.modules.get(name) is None:
                raise
            return eval(expr, {**self.globals, name: sys.modules[name]}, self.locals)

    def write(self, text: str = "") -> None:
        self.out.write(text + "\n")


class CommandError(Exception):
    """A ``pt`` command could not do what was asked; the message says why."""


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during, outermost last."""
    out: list[BaseException] = []
    seen: set[int] = set()
    todo = [exc]
    while todo:
        item = todo.pop(0)
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        out.append(item)
        todo.extend((item.__cause__, item.__context__))
    return out


def _exception_of(tb: TracebackType | None) -> BaseException | None:
    """The exception whose traceback is ``tb`` (pdb before 3.13 is given the traceback only)."""
    if tb is None:
        return None
    candidates: list[object] = [
        sys.exc_info()[1],
        sys.__dict__.get("last_exc"),
        sys.__dict__.get("last_value"),
    ]
    for candidate in candidates:
        if isinstance(candidate, BaseException) and _has_tb(candidate, tb):
            return candidate
    # Last resort: the exception object that refers to this traceback.
    for referrer in gc.get_referrers(tb):
        if isinstance(referrer, BaseException) and referrer.__traceback__ is tb:
            return referrer
    return None


def _has_tb(exc: BaseException, tb: TracebackType) -> bool:
    """``tb`` is ``exc``'s traceback or one of its tails (pytest cuts its own frames off)."""
    item = exc.__traceback__
    while item is not None:
        if item is tb:
            return True
        item = item.tb_next
    last_of = _last_frame(tb)
    return last_of is not None and last_of is _last_frame(exc.__traceback__)


def _last_frame(tb: TracebackType | None) -> FrameType | None:
    frame = None
    while tb is not None:
        frame, tb = tb.tb_frame, tb.tb_next
    return frame


def _debugged(debugger: Any) -> BaseException | None:
    """The exception a debugger instance is looking at, if any."""
    held = debugger.__dict__.get("_patchtrace_exc")
    if isinstance(held, BaseException):
        return held
    chained = debugger.__dict__.get("_chained_exceptions")  # pdb 3.13+
    if chained:
        index = debugger.__dict__.get("_chained_exception_index", -1)
        try:
            item = chained[index]
        except (IndexError, TypeError):
            item = chained[-1]
        if isinstance(item, BaseException):
            return item
    return None


def _context_for(debugger: Any) -> _Context:
    frame = debugger.__dict__.get("curframe")
    if isinstance(frame, FrameType):
        globals_ = frame.f_globals
        locals_ = debugger.__dict__.get("curframe_locals", frame.f_locals)
    else:
        main = sys.modules.get("__main__")
        globals_ = main.__dict__ if isinstance(main, ModuleType) else {}
        locals_ = globals_
    out = debugger.__dict__.get("stdout") or sys.stdout
    return _Context(globals_, locals_, _chain(_debugged(debugger)), out, debugger)


# ---------------------------------------------------------------------------------------------
# formatting


def _rootdir() -> str:
    """The start directory (see :data:`_root`); the working directory if never installed."""
    if _root is not None:
        return _root
    try:
        return _getcwd()
    except OSError:  # the directory was removed
        return ""


def _where(mutation: Mutation) -> str:
    frame = mutation.where
    if frame is None:
        return "(no user frame: a decorator or plugin)"
    frame = frame.relative_to(_rootdir())
    return f"{frame.file}:{frame.line} in {frame.function}"


def _scope(mutation: Mutation) -> str:
    scope = mutation.scope
    text = f"{scope.test} ({scope.phase}"
    if scope.fixture:
        text += f", fixture {scope.fixture}"
    return text + ")"


def _what(mutation: Mutation) -> str:
    label = _label_of(mutation)
    if mutation.desc:
        return mutation.desc.replace(mutation.label, label)
    return label


def _label_of(mutation: Mutation) -> str:
    """``mutation.label``, with an instance nothing names (``?._tmp_path_factory``: pytest
    patching its Config) named by a path to it or by its class."""
    from .naming import UNRESOLVED, class_name, find_path

    if mutation.target != UNRESOLVED:
        return mutation.label
    holder = mutation.holder() if mutation.holder is not None else None
    if holder is None:
        return mutation.label.replace("?", "<an object no longer alive>", 1)
    try:
        path = find_path(holder)
    except Exception:
        path = None
    if path and any(part.startswith("_") for part in path.split(".")):
        path = None  # _pytest.assertion.util._config: true, but no name a reader knows
    owner = path or f"<{class_name(type(holder))} object>"
    return f"{owner}.{mutation.name}" if mutation.name is not None else owner


def _stack_lines(mutation: Mutation, indent: str) -> list[str]:
    root = _rootdir()
    lines = []
    for frame in mutation.stack.frames():
        rel = frame.relative_to(root)
        source = frame.source()
        lines.append(f"{indent}{rel.file}:{rel.line} in {rel.function}"
                     + (f": {source}" if source else ""))
    if lines:
        return lines
    inner = mutation.stack.frames(hidden=True)
    if any(f.function in ("decoration_helper", "patched") for f in inner):
        return [f"{indent}(applied by a @patch decorator: its function was not running yet)"]
    return [f"{indent}(no user frame: applied by pytest, a plugin or the standard library)"]


def _exc_name(exc: BaseException) -> str:
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# which patches were active when the exception was raised


@final
class _Entry:
    """A patch to show: its patch record, and its undo if it ran while unwinding."""

    __slots__ = ("patch", "undo", "unwound_by")

    def __init__(self, patch: Mutation, undo: Mutation | None,
                 unwound_by: BaseException | None) -> None:
        self.patch = patch
        self.undo = undo
        self.unwound_by = unwound_by


def _ledger() -> Any:
    tracer = _tracer.current()
    if tracer is None:
        raise CommandError(
            "patchtrace is not tracing this process (run with PATCHTRACE=1 or "
            "pytest --patchtrace)")
    return tracer.ledger


def _patch_records(ledger: Any) -> dict[int, Mutation]:
    return {m.token: m for m in ledger if m.op == "patch" and m.token is not None}


def _undone_while_raising(ledger: Any, exceptions: list[BaseException]) -> list[_Entry]:
    """Patches whose undo ran while one of ``exceptions`` propagated, oldest patch first."""
    if not exceptions:
        return []
    by_id = {id(exc): exc for exc in exceptions}
    patches = _patch_records(ledger)
    out: list[_Entry] = []
    for mutation in ledger:
        if mutation.op != "unpatch" or mutation.unwinding is None or mutation.token is None:
            continue
        type_name, exc_id = mutation.unwinding
        exc = by_id.get(exc_id)
        if exc is None or _exc_name(exc) != type_name:
            continue
        patch = patches.get(mutation.token)
        if patch is not None:
            out.append(_Entry(patch, mutation, exc))
    out.sort(key=lambda entry: entry.patch.seq)
    return out


def _shown(mutation: Mutation, test: str | None) -> bool:
    """Made by user code or in the current test (not by pytest or a plugin at start-up)."""
    return mutation.where is not None or (test is not None and mutation.scope.test == test)


def _cmd_patches(ctx: _Context, arg: str) -> None:
    if arg not in ("", "all"):
        raise CommandError("usage: pt patches [all]")
    tracer = _tracer.current()
    ledger = _ledger()
    test = tracer.scope.test if tracer is not None else None
    active = [a.mutation for a in ledger.active()]
    undone = _undone_while_raising(ledger, ctx.exceptions)
    entries = [_Entry(m, None, None) for m in active] + undone
    entries.sort(key=lambda entry: entry.patch.seq)
    hidden = 0
    if arg != "all":
        kept = [e for e in entries if e.undo is not None or _shown(e.patch, test)]
        hidden = len(entries) - len(kept)
        entries = kept
    count = len(entries)
    plural = "es" * (count != 1)
    if ctx.exceptions:
        exc = ctx.exceptions[0]
        still = count - len(undone)
        ctx.write(f"{count} patch{plural} active when {_exc_name(exc)} was raised "
                  f"({len(undone)} undone since, {still} still active):")
    else:
        ctx.write(f"{count} patch{plural} active now (no exception is being debugged):")
    for entry in entries:
        patch = entry.patch
        ctx.write(f"  #{patch.seq} {_what(patch)}")
        ctx.write(f"      {_label_of(patch)}: {patch.before.repr} -> {patch.after.repr}")
        for line in _never_called(patch):
            ctx.write(line)
        if entry.undo is not None and entry.unwound_by is not None:
            ctx.write(f"      state: active when raised; undone while "
                      f"{_exc_name(entry.unwound_by)} propagated, at {_where(entry.undo)}")
        else:
            ctx.write("      state: active now")
        ctx.write(f"      scope: {_scope(patch)}")
        ctx.write("      made at:")
        for line in _stack_lines(patch, "        "):
            ctx.write(line)
    if hidden:
        ctx.write(f"({hidden} more made by pytest or plugins outside any test; "
                  "`pt patches all` lists them)")
    if undone and not _REAPPLIED:
        ctx.write("(`pt repatch` re-applies the undone ones while you inspect)")
    elif _REAPPLIED:
        ctx.write(f"({len(_REAPPLIED)} re-applied by pt repatch now; `pt unpatch` restores)")


# ---------------------------------------------------------------------------------------------
# history of a target


def _split_expr(expr: str) -> tuple[str, str | None, str | None]:
    """``owner.attr`` -> (owner, attr, None); ``owner[key]`` -> (owner, None, key expr)."""
    expr = expr.strip()
    if expr.endswith("]"):
        depth = 0
        for index in range(len(expr) - 1, -1, -1):
            char = expr[index]
            if char == "]":
                depth += 1
            elif char == "[":
                depth -= 1
                if depth == 0:
                    if index == 0:
                        break
                    return expr[:index], None, expr[index + 1:-1]
    head, dot, tail = expr.rpartition(".")
    if dot and head and tail.isidentifier():
        return head, tail, None
    return expr, None, None


def _targets_of(obj: object, expr: str) -> list[str]:
    from .naming import find_path, target_of

    keys = [target_of(obj)]
    if keys[0].startswith("object:"):
        keys = [f"object:{expr}"]
        path = find_path(obj)
        if path is not None and f"object:{path}" not in keys:
            keys.append(f"object:{path}")
    return keys


_TARGET_PREFIXES: Final = ("module:", "class:", "object:")


def _history_records(ctx: _Context, arg: str) -> tuple[str, list[Mutation]]:
    ledger = _ledger()
    text = arg.strip()
    if not text:
        raise CommandError("usage: pt history EXPR  (e.g. pt history mod.func)")
    if text.startswith(_TARGET_PREFIXES):  # a target string: module:pkg.mod [name]
        target, _, rest = text.partition(" ")
        key = rest.strip() or None
        return text, ledger.history(target, key)
    owner_expr, attr, key_expr = _split_expr(text)
    found: dict[int, Mutation] = {}
    owner: object = NOTHING
    error: Exception | None = None
    if attr is not None or key_expr is not None:
        try:
            owner = ctx.eval(owner_expr)
        except Exception as exc:
            error = exc
        if owner is not NOTHING:
            if key_expr is not None:
                key = ctx.eval(key_expr)
                name: str | None = key if isinstance(key, str) else repr(key)
            else:
                name = attr
            for target in _targets_of(owner, owner_expr):
                for mutation in ledger.history(target, name):
                    found[mutation.seq] = mutation
        elif error is not None and attr is None:
            raise error
    try:
        whole = ctx.eval(text)
    except Exception:
        if attr is None and key_expr is None:
            raise
        if not found and owner is NOTHING and error is not None:
            raise error from None
        whole = NOTHING
    if whole is not NOTHING and (issubclass(type(whole), (ModuleType, type)) or
                                 whole is os.environ or type(whole) is dict):
        from .naming import target_of

        target = target_of(whole)
        if not target.startswith("object:"):
            for mutation in ledger.history(target):
                found[mutation.seq] = mutation
    return text, [found[seq] for seq in sorted(found)]


def _cmd_history(ctx: _Context, arg: str) -> None:
    label, records = _history_records(ctx, arg)
    if not records:
        ctx.write(f"no recorded mutation of {label}")
        return
    ctx.write(f"{len(records)} mutation{'s' * (len(records) != 1)} of {label}, oldest first:")
    for mutation in records:
        extra = ""
        if mutation.unwinding is not None:
            extra = f"  [undone while {mutation.unwinding[0]} propagated]"
        ctx.write(f"  #{mutation.seq} {mutation.op:<7} {_what(mutation)}  "
                  f"({mutation.source}){extra}")
        ctx.write(f"      {_label_of(mutation)}: {mutation.before.repr} -> "
                  f"{mutation.after.repr}")
        ctx.write(f"      {_scope(mutation)} at {_where(mutation)}")


# ---------------------------------------------------------------------------------------------
# references


def _cmd_why(ctx: _Context, arg: str) -> None:
    if not arg.strip():
        raise CommandError("usage: pt why EXPR")
    obj = ctx.eval(arg)
    try:
        from . import refs
    except ImportError as exc:
        raise CommandError(f"the reference analyzer is not available ({exc})") from None
    from .render.terminal import print_why

    print_why(refs.explain(obj, ignore=_machinery(ctx)), ctx.out)


def _machinery(ctx: _Context) -> list[object]:
    """What a reference search must not go through: the debugger and the frames running it
    (everything above the frame being inspected, which stays a root)."""
    ignore: list[object] = []
    debugger = ctx.debugger
    inspected = debugger.__dict__.get("curframe") if debugger is not None else None
    if debugger is not None:
        ignore.extend((debugger, debugger.__dict__))
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame is not inspected:
        ignore.append(frame)
        frame = frame.f_back
    return ignore


def _cmd_graph(ctx: _Context, arg: str) -> None:
    expr = arg.strip()
    if not expr:
        raise CommandError("usage: pt graph EXPR [FILE]")
    path = "patchtrace-graph.svg"
    head, _, last = expr.rpartition(" ")
    if head.strip() and _looks_like_path(last):
        expr, path = head.strip(), last
    obj = ctx.eval(expr)
    try:
        from .render.graph import graph
    except ImportError as exc:
        ctx.write(f"graphs are not available here ({exc}); `pt why {expr}` prints the chains")
        return
    result = graph(obj, path)
    ctx.write(f"graph of {expr} written to {result if isinstance(result, str) else path}")


def _looks_like_path(word: str) -> bool:
    return word.endswith((".svg", ".png", ".dot", ".pdf", ".gv")) or os.sep in word


# ---------------------------------------------------------------------------------------------
# holders: who else is bound to an object (patched in the wrong place?)

#: bindings listed by `pt holders` (the count says how many more)
_HOLDERS_SHOWN: Final = 40


def _cmd_holders(ctx: _Context, arg: str) -> None:
    expr = arg.strip()
    if not expr:
        raise CommandError("usage: pt holders EXPR  (e.g. pt holders os.getcwd)")
    from .analysis.hints import find_holders

    obj = ctx.eval(expr)
    [found] = find_holders([obj], everywhere=True)
    _write_holders(ctx, f"{expr} ({safe_repr(obj, 80)})", found)
    tracer = _tracer.current()
    if tracer is None:
        return
    for mutation in tracer.ledger:  # a patch's replacement: who still has the original?
        if mutation.op != "patch" or mutation.after_value() is not obj:
            continue
        original = mutation.before_value()
        if original is NOTHING or original is UNKNOWN:
            continue
        [held] = find_holders([original], everywhere=True)
        ctx.write(f"it replaced {mutation.label} ({_what(mutation)} at {_where(mutation)}); "
                  f"the original {safe_repr(original, 80)}:")
        _write_holders(ctx, None, held)
        del original


def _write_holders(ctx: _Context, title: str | None, holders: list[Any]) -> None:
    if title is not None:
        count = len(holders)
        ctx.write(f"{count} binding{'s' * (count != 1)} of {title}"
                  + (":" if holders else " in modules, classes or default arguments"))
    elif not holders:
        ctx.write("  bound nowhere else in modules, classes or default arguments")
    for holder in holders[:_HOLDERS_SHOWN]:
        ctx.write(f"  {holder.label}" + ("  (project)" if holder.project else ""))
    if len(holders) > _HOLDERS_SHOWN:
        ctx.write(f"  ... and {len(holders) - _HOLDERS_SHOWN} more")


def _never_called(patch: Mutation) -> list[str]:
    """For `pt patches`: a patch whose mock was never called, and where the original is
    still bound in the project (patched in the wrong place?)."""
    from .analysis import hints as _hints

    calls = _hints.calls_when_failed(patch)
    if calls is None:
        calls = _hints.mock_calls(patch.after_value())
    if calls != 0:
        return []
    original = patch.before_value()
    if original is NOTHING or original is UNKNOWN:
        return ["      mock: never called"]
    [held] = _hints.find_holders([original])
    del original
    own = (patch.target.partition(":")[2] or patch.target, patch.name)
    held = [h for h in held if (h.owner, h.name) != own]
    if not held:
        return ["      mock: never called"]
    names = ", ".join(h.dotted if h.kind != "default" else f"{h.owner}({h.name}=)"
                      for h in held[:3])
    return [f"      mock: never called; the original is still bound to {names}"
            f"{' ...' if len(held) > 3 else ''} (pt holders)"]


# ---------------------------------------------------------------------------------------------
# leaks


def _cmd_leaks(ctx: _Context, arg: str) -> None:
    tracer = _tracer.current()
    detector = tracer.detector if tracer is not None else None
    if detector is None:
        raise CommandError("no leak detector is running in this process")
    leaks = list(detector.leaks)
    if not leaks:
        ctx.write("no leaks found so far")
        return
    ctx.write(f"{len(leaks)} leak{'s' * (len(leaks) != 1)} found so far:")
    for number, leak in enumerate(leaks, 1):
        ctx.write(f"  {leak.id or f'#{number}'} {leak.kind} in {leak.polluter}: "
                  f"{leak.message()}")


# ---------------------------------------------------------------------------------------------
# repatch / unpatch


@final
class _Reapplied:
    """One binding we changed: what it held before we touched it, and what we put there."""

    __slots__ = ("applied", "label", "name", "previous", "where")

    def __init__(self, where: _Binding, name: str, previous: object, applied: object,
                 label: str) -> None:
        self.where = where
        self.name = name
        self.previous = previous
        self.applied = applied
        self.label = label


@final
class _Binding:
    """A place a name is bound: a mapping (module dict, os.environ, ...) or a class."""

    __slots__ = ("cls", "mapping")

    def __init__(self, mapping: Any = None, cls: type | None = None) -> None:
        self.mapping = mapping
        self.cls = cls

    def get(self, name: str) -> object:
        if self.cls is not None:
            return self.cls.__dict__.get(name, NOTHING)
        try:
            return self.mapping.get(name, NOTHING)
        except Exception:
            return NOTHING

    def put(self, name: str, value: object) -> None:
        if self.cls is not None:
            # type.__setattr__ stores the raw value and invalidates the type's method cache
            # (writing into the class's dict behind its back would not).
            if value is NOTHING:
                if name in self.cls.__dict__:
                    type.__delattr__(self.cls, name)
            else:
                type.__setattr__(self.cls, name, value)
            return
        if value is NOTHING:
            if name in self.mapping:
                del self.mapping[name]
        else:
            self.mapping[name] = value


def _resolve_path(dotted: str) -> object:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if not isinstance(module, ModuleType):
            continue
        obj: object = module
        for part in parts[cut:]:
            try:
                namespace = object.__getattribute__(obj, "__dict__")
            except Exception:
                return NOTHING
            if part not in namespace:
                return NOTHING
            obj = namespace[part]
        return obj
    return NOTHING


def _binding_of(target: str) -> _Binding | None:
    from .boundary._read import namespace_of
    from .boundary._read import resolve_class as _resolve_class

    if target == "os.environ":
        return _Binding(mapping=os.environ)
    if target.startswith("class:"):
        cls = _resolve_class(target[6:])
        return _Binding(cls=cls) if cls is not None else None
    namespace = namespace_of(target)
    if namespace is not None:
        return _Binding(mapping=namespace)
    if target.startswith("object:") and target != "object:?":
        obj = _resolve_path(target[7:])
        if obj is NOTHING:
            return None
        if issubclass(type(obj), dict):
            return _Binding(mapping=obj)
        if issubclass(type(obj), type):
            return _Binding(cls=obj)  # type: ignore[arg-type]
        try:
            namespace = object.__getattribute__(obj, "__dict__")
        except Exception:
            return None
        return _Binding(mapping=namespace) if isinstance(namespace, dict) else None
    return None


#: Bindings re-applied by ``pt repatch`` and not yet restored (process-wide: there is one
#: set of globals, whichever debugger instance changed them).
_REAPPLIED: list[_Reapplied] = []
_atexit_registered = False


@contextmanager
def _suppressed() -> Iterator[None]:
    """Keep our sources quiet while we write raw values (one change, not a mutation)."""
    tracer = _tracer.current()
    if tracer is not None:
        tracer.busy += 1
    try:
        yield
    finally:
        if tracer is not None:
            tracer.busy -= 1


def _cmd_repatch(ctx: _Context, arg: str) -> None:
    global _atexit_registered
    if _REAPPLIED:
        ctx.write(f"already re-applied ({len(_REAPPLIED)} binding"
                  f"{'s' * (len(_REAPPLIED) != 1)}); pt unpatch restores")
        return
    if not ctx.exceptions:
        raise CommandError("no exception is being debugged: nothing was undone by unwinding")
    ledger = _ledger()
    entries = _undone_while_raising(ledger, ctx.exceptions)
    if not entries:
        ctx.write(f"no patch was undone while {_exc_name(ctx.exceptions[0])} propagated; "
                  "the patches active now are the ones it saw")
        return
    plan: list[tuple[_Binding, str, object, Mutation]] = []
    for entry in entries:
        undo = entry.undo
        assert undo is not None
        if undo.name is None:
            ctx.write(f"  skipped #{entry.patch.seq} {_what(entry.patch)}: a patch of a whole "
                      "mapping cannot be re-applied")
            continue
        value = undo.before_value()  # what the binding held just before the undo
        if value is UNKNOWN:
            value = entry.patch.after_value()
        if value is UNKNOWN:
            ctx.write(f"  skipped #{entry.patch.seq} {_what(entry.patch)}: the patched value "
                      "is gone")
            continue
        binding = _binding_of(undo.target)
        if binding is None:
            ctx.write(f"  skipped #{entry.patch.seq} {_what(entry.patch)}: cannot find "
                      f"{undo.target} now")
            continue
        plan.append((binding, undo.name, value, entry.patch))
    if not _atexit_registered:
        atexit.register(restore)
        _atexit_registered = True
    with _suppressed():
        for binding, name, value, patch in plan:
            previous = binding.get(name)
            binding.put(name, value)
            _REAPPLIED.append(_Reapplied(binding, name, previous, value, patch.label))
            ctx.write(f"  re-applied #{patch.seq} {_what(patch)}: {patch.label} = "
                      f"{safe_repr(value)}")
    if plan:
        ctx.write(f"{len(plan)} patch{'es' * (len(plan) != 1)} re-applied as when "
                  f"{_exc_name(ctx.exceptions[0])} was raised; pt unpatch (or leaving the "
                  "prompt) restores")


def restore(out: IO[str] | None = None) -> int:
    """Undo ``pt repatch``: put back exactly what each binding held before. Idempotent.

    Returns how many bindings were restored. Called on leaving the debugger prompt and at exit.
    """
    count = 0
    with _suppressed():
        while _REAPPLIED:
            item = _REAPPLIED.pop()
            try:
                now = item.where.get(item.name)
                item.where.put(item.name, item.previous)
                count += 1
                if out is not None and now is not item.applied:
                    out.write(f"patchtrace: {item.label} was changed while re-applied; "
                              "restored it to what it was before pt repatch anyway\n")
            except Exception as exc:
                stream = out if out is not None else sys.__stderr__
                if stream is not None:
                    stream.write(f"patchtrace: could not restore {item.label}: {exc!r}\n")
    return count


def _cmd_unpatch(ctx: _Context, arg: str) -> None:
    if not _REAPPLIED:
        ctx.write("nothing is re-applied (pt repatch first)")
        return
    count = restore(ctx.out)
    ctx.write(f"restored {count} binding{'s' * (count != 1)} as they were before pt repatch")


# ---------------------------------------------------------------------------------------------
# dispatch


def _cmd_help(ctx: _Context, arg: str) -> None:
    ctx.write(_HELP)


_COMMANDS: Final[dict[str, Callable[[_Context, str], None]]] = {
    "patches": _cmd_patches,
    "history": _cmd_history,
    "why": _cmd_why,
    "graph": _cmd_graph,
    "repatch": _cmd_repatch,
    "unpatch": _cmd_unpatch,
    "leaks": _cmd_leaks,
    "holders": _cmd_holders,
    "help": _cmd_help,
}


def _run(ctx: _Context, line: str, error: Callable[[str], None]) -> None:
    sub, _, rest = line.strip().partition(" ")
    if not sub:
        sub = "help"
    command = _COMMANDS.get(sub)
    if command is None:
        error(f"pt: unknown subcommand {sub!r}; one of: {', '.join(_SUBCOMMANDS)} "
              "(pt help)")
        return
    try:
        command(ctx, rest.strip())
    except CommandError as exc:
        error(f"pt {sub}: {exc}")
    except Exception as exc:
        error(f"pt {sub}: {type(exc).__name__}: {exc}")


def _do_pt(self: Any, arg: str) -> None:
    try:
        ctx = _context_for(self)
    except Exception as exc:
        self.error(f"pt: {type(exc).__name__}: {exc}")
        return
    _run(ctx, arg, self.error)


_do_pt.__doc__ = "pt <subcommand>\n        patchtrace: what was patched, and when.\n\n" + "\n".join(
    "        " + line for line in _HELP.splitlines())


def _complete_pt(self: Any, text: str, line: str, begidx: int, endidx: int) -> list[str]:
    words = line[:begidx].split()
    if len(words) <= 1:
        return [s + " " for s in _SUBCOMMANDS if s.startswith(text)]
    if words[1] in ("history", "why", "graph", "holders"):
        complete = getattr(self, "_complete_expression", None)
        if complete is not None:
            try:
                return list(complete(text, line, begidx, endidx))
            except Exception:
                return []
    return []


setattr(_do_pt, _MARK, True)
setattr(_complete_pt, _MARK, True)


def pt(line: str = "help") -> None:
    """Run a ``pt`` subcommand from any debugger (or none): ``d.pt("patches")``.

    Inside a pdb-family session it acts as the ``pt`` command of that session; elsewhere it
    evaluates expressions in the caller's frame and debugs ``sys.last_exc``/``last_value``
    or the exception being handled.
    """
    caller = sys._getframe(1)
    debugger = _find_debugger(caller)
    if debugger is not None:
        _do_pt(debugger, line)
        return
    exc = sys.exc_info()[1] or sys.__dict__.get("last_exc") or sys.__dict__.get("last_value")
    ctx = _Context(caller.f_globals, caller.f_locals,
                   _chain(exc if isinstance(exc, BaseException) else None), sys.stdout)

    def error(message: str) -> None:
        sys.stdout.write(f"*** {message}\n")

    _run(ctx, line, error)


def _find_debugger(frame: FrameType | None) -> Any:
    import bdb

    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, bdb.Bdb) and hasattr(candidate, "curframe"):
            return candidate
        frame = frame.f_back
    return None


# ---------------------------------------------------------------------------------------------
# installation into pdb's class


@final
class _Installed:
    __slots__ = ("cls", "originals")

    def __init__(self, cls: type, originals: dict[str, object]) -> None:
        self.cls = cls
        self.originals = originals  # attribute -> previous raw value (NOTHING: absent)


_INSTALLED: list[_Installed] = []
_depth = 0
_pending = False


def _stdlib_pdb_class(module: ModuleType) -> type | None:
    """The standard library's ``Pdb`` behind ``module.Pdb`` (pdb++ replaces the module)."""
    cls = module.__dict__.get("Pdb")
    return _stdlib_base(cls) if isinstance(cls, type) else None


def _announce_restore(debugger: Any) -> None:
    out = debugger.__dict__.get("stdout") or sys.stdout
    count = restore(out)
    try:
        out.write(f"patchtrace: restored {count} binding{'s' * (count != 1)} "
                  "re-applied by pt repatch\n")
    except Exception:
        pass


def _make_interaction(original: Callable[..., Any]) -> Callable[..., Any]:
    def interaction(self: Any, frame: Any, tb_or_exc: Any, *args: Any, **kwargs: Any) -> Any:
        global _depth
        state = self.__dict__
        saved = state.get("_patchtrace_exc")
        try:
            if isinstance(tb_or_exc, BaseException):
                exc: BaseException | None = tb_or_exc
            elif isinstance(tb_or_exc, TracebackType):
                exc = _exception_of(tb_or_exc)
            else:
                exc = sys.exc_info()[1]  # a breakpoint inside an except block
            if exc is not None or "_patchtrace_exc" not in state:
                state["_patchtrace_exc"] = exc
        except Exception:
            pass
        handler = _sigint_handler()
        _depth += 1
        try:
            return original(self, frame, tb_or_exc, *args, **kwargs)
        finally:
            _depth -= 1
            if saved is None:
                state.pop("_patchtrace_exc", None)
            else:
                state["_patchtrace_exc"] = saved
            if _depth == 0 and _REAPPLIED:
                _announce_restore(self)
            if tb_or_exc is not None or state.get("_patchtrace_leak"):
                _put_back_sigint(self, handler)

    interaction.__doc__ = getattr(original, "__doc__", None)
    setattr(interaction, _MARK, True)
    return interaction


def _sigint_handler() -> object:
    import signal

    try:
        return signal.getsignal(signal.SIGINT)
    except Exception:
        return None


def _put_back_sigint(debugger: Any, handler: object) -> None:
    """``continue`` makes pdb take SIGINT (Ctrl-C breaks in again). After a post-mortem
    nothing is traced any more: give the program its handler back, or the test that failed
    would be blamed for a ``resource-changed`` leak of ``signal.SIGINT`` made by pdb."""
    import signal

    try:
        now = signal.getsignal(signal.SIGINT)
        if now is handler or getattr(now, "__self__", None) is not debugger:
            return
        if handler is None or not _in_main_thread():
            return
        signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]
        cls = _stdlib_base(type(debugger))
        if cls is not None and "_previous_sigint_handler" in cls.__dict__:
            type.__setattr__(cls, "_previous_sigint_handler", None)
    except Exception:
        pass


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _stdlib_base(cls: type) -> type | None:
    import bdb

    for base in cls.__mro__:
        if bdb.Bdb in base.__bases__:
            return base
    return None


#: modules defining a ``Pdb`` subclass that may override ``interaction`` without calling ours
_OTHERS: Final = ("pdbpp", "IPython.core.debugger", "IPython.terminal.debugger", "ipdb")

_LEAVING: Final = ("do_continue", "do_c", "do_cont", "do_quit", "do_q", "do_exit", "do_EOF")


def _make_leaving(original: Callable[..., Any]) -> Callable[..., Any]:
    def leaving(self: Any, arg: Any) -> Any:
        # Restore before pytest's wrapper resumes output capturing, so the user sees it.
        if _depth <= 1 and _REAPPLIED:
            _announce_restore(self)
        return original(self, arg)

    leaving.__doc__ = getattr(original, "__doc__", None)
    leaving.__name__ = getattr(original, "__name__", "leaving")
    setattr(leaving, _MARK, True)
    return leaving


def _make_setup(original: Callable[..., Any]) -> Callable[..., Any]:
    def setup(self: Any, frame: Any, tb: Any, *args: Any, **kwargs: Any) -> Any:
        # Every pdb variant calls setup(frame, tb), even those whose interaction() does not
        # reach ours (pdb++): learn the exception here too.
        try:
            if self.__dict__.get("_patchtrace_exc") is None:
                exc = _exception_of(tb) if isinstance(tb, TracebackType) else sys.exc_info()[1]
                if exc is not None:
                    self.__dict__["_patchtrace_exc"] = exc
        except Exception:
            pass
        return original(self, frame, tb, *args, **kwargs)

    setup.__doc__ = getattr(original, "__doc__", None)
    setattr(setup, _MARK, True)
    return setup


def _patch_class(cls: type, new: dict[str, object]) -> None:
    originals: dict[str, object] = {}
    for attr, value in new.items():
        originals[attr] = cls.__dict__.get(attr, NOTHING)
        setattr(cls, attr, value)
    _INSTALLED.append(_Installed(cls, originals))


def _install_into(module: ModuleType) -> None:
    top = module.__dict__.get("Pdb")
    cls = _stdlib_pdb_class(module)
    if cls is None or not isinstance(top, type):
        return
    if not any(item.cls is cls for item in _INSTALLED):
        existing = cls.__dict__.get("do_pt")
        if existing is not None and not getattr(existing, _MARK, False):
            return  # someone else's `pt` command: leave it alone (d.pt() still works)
        new: dict[str, object] = {"do_pt": _do_pt, "complete_pt": _complete_pt}
        for attr, factory in (("interaction", _make_interaction), ("setup", _make_setup)):
            original = cls.__dict__.get(attr)
            if callable(original) and not getattr(original, _MARK, False):
                new[attr] = factory(original)
        for attr in _LEAVING:
            original = cls.__dict__.get(attr)
            if callable(original) and not getattr(original, _MARK, False):
                new[attr] = _make_leaving(original)
        _patch_class(cls, new)
    # Subclasses whose interaction() does not call ours (pdb++): wrap theirs as well, so that
    # leaving their prompt restores re-applied patches too.
    for sub in top.__mro__:
        if sub is cls:
            break
        original = sub.__dict__.get("interaction")
        if (callable(original) and not getattr(original, _MARK, False)
                and not any(item.cls is sub for item in _INSTALLED)):
            _patch_class(sub, {"interaction": _make_interaction(original)})


def install() -> None:
    """Add the ``pt`` command to pdb (and pdb++/ipdb, which derive from it). Idempotent.

    Does not import pdb: if it is not imported yet, the command is added right after its
    import. Undo with :func:`uninstall`.
    """
    global _pending, _root
    if _root is None:
        try:
            _root = _getcwd()
        except OSError:
            pass
    found = False
    # `python -m pdb` runs pdb as __main__; pdb++ may leave sys.modules["pdb"] unset then.
    for name in ("pdb", "__main__", *_OTHERS):
        module = sys.modules.get(name)
        if isinstance(module, ModuleType) and _stdlib_pdb_class(module) is not None:
            _install_into(module)
            found = found or name == "pdb"
    # A debugger can only be running if bdb was imported (and importing it costs ~5 ms).
    running = _find_debugger(sys._getframe(1)) if "bdb" in sys.modules else None
    if running is not None:  # install() typed at a prompt of a class we have not seen
        holder = ModuleType("_running")
        holder.Pdb = type(running)  # type: ignore[attr-defined]
        _install_into(holder)
    if not found and not _pending:
        from .sources._imports import when_imported

        _pending = True
        when_imported("pdb", _on_pdb_imported)


def _on_pdb_imported(module: ModuleType) -> None:
    global _pending
    _pending = False
    _install_into(module)


def uninstall() -> None:
    """Remove the ``pt`` command and restore pdb's class exactly. Idempotent."""
    global _pending
    if _pending:
        from .sources._imports import cancel

        cancel("pdb", _on_pdb_imported)
        _pending = False
    restore()
    while _INSTALLED:
        item = _INSTALLED.pop()
        for attr, value in item.originals.items():
            if value is NOTHING:
                if attr in item.cls.__dict__:
                    delattr(item.cls, attr)
            else:
                setattr(item.cls, attr, value)


def installed() -> bool:
    """True when pdb's class has the ``pt`` command."""
    return bool(_INSTALLED)


# ---------------------------------------------------------------------------------------------
# entry points: post-mortem and stopping at a leak


def post_mortem(tb: TracebackType | BaseException | None = None) -> None:
    """Like :func:`pdb.post_mortem`, with the ``pt`` commands (and the exception known)."""
    import pdb

    install()
    exc: BaseException | None
    if isinstance(tb, BaseException):
        exc = tb
        tb = tb.__traceback__
    else:
        if tb is None:
            handled = sys.exc_info()[1]
            if handled is None:
                last = sys.__dict__.get("last_exc") or sys.__dict__.get("last_value")
                handled = last if isinstance(last, BaseException) else None
            if handled is None:
                raise ValueError("A valid traceback must be passed if no exception is being "
                                 "handled")
            tb = handled.__traceback__
            exc = handled
        else:
            exc = _exception_of(tb)
    debugger = pdb.Pdb()
    debugger.reset()
    debugger.__dict__["_patchtrace_exc"] = exc
    arg: Any = exc if sys.version_info >= (3, 13) and exc is not None else tb
    try:
        debugger.interaction(None, arg)
    finally:
        debugger.__dict__.pop("_patchtrace_exc", None)
        if _depth == 0:
            restore()


_quit_leaks = False


def _forced() -> bool:
    """Stopping was asked for explicitly for this run (not only by an ini file)."""
    from .config import ConfigError, parse_bool

    try:
        if parse_bool(os.environ.get("PATCHTRACE_PDB"), "PATCHTRACE_PDB"):
            return True
    except ConfigError:
        pass
    config = _pytest_config()
    try:
        return config is not None and bool(config.getoption("patchtrace_pdb"))
    except Exception:
        return False


def _pytest_config() -> Any:
    debugging = sys.modules.get("_pytest.debugging")
    if debugging is None:
        return None
    return getattr(debugging.pytestPDB, "_config", None)


def _stdin_is_terminal() -> bool:
    stream = sys.__stdin__
    try:
        return stream is not None and stream.isatty()
    except Exception:
        return False


_said_not_stopping = False


def stop_at_leak(leak: Any, detector: Any = None) -> None:
    """Stop in the debugger now, with ``leak``, ``obj`` (the leaked object) and ``detector``
    in scope. Called for each leak when ``PATCHTRACE_PDB=1``.

    Stops when stdin is a terminal, or when stopping was asked for explicitly
    (``PATCHTRACE_PDB=1`` in the environment, ``--patchtrace-pdb``): then pdb reads commands
    from whatever stdin is, a pipe included, and EOF ends the session. An ini setting alone
    never stops a run without a terminal (CI would hang). ``quit`` stops at no further leak.
    """
    global _said_not_stopping
    if _quit_leaks:
        return
    if getattr(_pytest_config(), "workerinput", None) is not None:
        return  # an xdist worker has no terminal
    if not _stdin_is_terminal() and not _forced():
        if not _said_not_stopping:
            _said_not_stopping = True
            _say("patchtrace: not stopping at leaks: stdin is not a terminal "
                 "(set PATCHTRACE_PDB=1 in the environment to force it)")
        return
    try:
        obj = leak.obj()
    except Exception:
        obj = NOTHING
    install()
    _stop(leak, None if obj is NOTHING else obj, detector)


def _say(line: str) -> None:
    """One line for the user: through pytest's terminal reporter (our stderr is captured
    during a test's teardown), else on stderr."""
    config = _pytest_config()
    reporter = None
    if config is not None:
        try:
            reporter = config.pluginmanager.getplugin("terminalreporter")
        except Exception:
            reporter = None
    if reporter is not None:
        capman = config.pluginmanager.getplugin("capturemanager")
        if capman is not None:
            with capman.global_and_fixture_disabled():  # we may run inside a test's teardown
                reporter.write_line(line, yellow=True)
        else:
            reporter.write_line(line, yellow=True)
        return
    stream = sys.__stderr__
    if stream is not None:
        stream.write(line + "\n")


def _make_debugger(header: str) -> Any:
    """pytest's debugger (capture suspended, --pdbcls honoured), else a plain pdb.Pdb."""
    debugging = sys.modules.get("_pytest.debugging")
    if debugging is not None and getattr(debugging.pytestPDB, "_config", None) is not None:
        try:
            return debugging.pytestPDB._init_pdb("leak", header=header)
        except Exception:
            pass
    import pdb

    sys.stdout.write(f"\n>>> {header}\n")
    return pdb.Pdb()


def _stop(leak: Any, obj: object, detector: Any) -> None:
    global _quit_leaks
    message = leak.message() if hasattr(leak, "message") else repr(leak)
    header = f"patchtrace: leak {getattr(leak, 'kind', '?')} in {getattr(leak, 'polluter', '?')}"
    debugger = _make_debugger(header)
    out = debugger.__dict__.get("stdout") or sys.stdout
    out.write(f"{message}\n"
              "in scope: leak, obj (the leaked object, or None), detector; "
              "`pt help` for patchtrace commands; `continue` to go on\n")
    debugger.__dict__["_patchtrace_leak"] = True
    debugger.reset()
    _leak_scope(debugger, leak, obj, detector)
    if debugger.__dict__.get("quitting"):
        _quit_leaks = True
        exit_ = getattr(sys.modules.get("_pytest.outcomes"), "exit", None)
        if exit_ is not None and _pytest_config() is not None:
            exit_("Quitting debugger")


def _leak_scope(debugger: Any, leak: Any, obj: object, detector: Any) -> None:
    """The frame the prompt stops in: ``leak``, ``obj`` and ``detector`` are its locals."""
    debugger.interaction(sys._getframe(), None)
