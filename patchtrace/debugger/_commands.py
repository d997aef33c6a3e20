"""The ``pt`` command: its table of subcommands (:data:`_COMMANDS`, listed for the user in
:data:`_HELP`), each subcommand, and the dispatch shared by pdb's ``do_pt`` and the plain
function :func:`pt` (for any other debugger). A failing subcommand says why in one line
(``*** pt history: ...``) and the session goes on."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any, Final

from .. import _tracer
from ..ledger import NOTHING, UNKNOWN, Mutation
from ..values import safe_repr
from ._context import (
    CommandError,
    _chain,
    _Context,
    _context_for,
    _Entry,
    _exc_name,
    _find_debugger,
    _label_of,
    _ledger,
    _scope,
    _stack_lines,
    _undone_while_raising,
    _what,
    _where,
)
from ._repatch import _cmd_repatch, _cmd_unpatch
from ._state import MARK, STATE

__all__ = ["pt"]

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
    if undone and not STATE.reapplied:
        ctx.write("(`pt repatch` re-applies the undone ones while you inspect)")
    elif STATE.reapplied:
        ctx.write(f"({len(STATE.reapplied)} re-applied by pt repatch now; `pt unpatch` restores)")


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
    from ..naming import find_path, target_of

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
        from ..naming import target_of

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
        from .. import refs
    except ImportError as exc:
        raise CommandError(f"the reference analyzer is not available ({exc})") from None
    from ..render.terminal import print_why

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
        from ..render.graph import graph
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
    from ..analysis.hints import find_holders

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
    from ..analysis import hints as _hints

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
    from ..render._view import masked

    ctx.write(f"{len(leaks)} leak{'s' * (len(leaks) != 1)} found so far:")
    # masked as the reports mask them (a secret-looking variable's value, credentials)
    for number, leak in enumerate(masked(leaks), 1):
        ctx.write(f"  {leak.id or f'#{number}'} {leak.kind} in {leak.polluter}: "
                  f"{leak.message()}")


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


setattr(_do_pt, MARK, True)
setattr(_complete_pt, MARK, True)


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
