"""``resource-changed`` (and the ``sys.modules``/``builtins``/``os.environ`` entries the
snapshot compares): process-wide state that differs from the scope's start.

The environment, cwd, argv, the import system, streams and hooks, warnings, loggers,
signal handlers, threads, the asyncio policy, ... (see :mod:`patchtrace.boundary.snapshot`,
which takes and compares the snapshots). Changes are judged in the comparison's order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ...analysis import oracle as _oracle
from ...leak import Leak
from ...sources.calls import explains
from ...values import same_value
from .._read import summary

if TYPE_CHECKING:
    from ...ledger import Mutation, Scope
    from ..snapshot import Change
    from . import Context

__all__ = ["OPS", "check", "leak_from_change"]

OPS: Final[frozenset[str]] = frozenset()


def check(records: list[Mutation], ctx: Context) -> list[Leak]:
    changes, handled, scope, collection = ctx.changes, ctx.handled, ctx.scope, \
        ctx.collection
    if not changes:
        return []
    out = []
    active = {(a.mutation.target, a.mutation.name) for a in ctx.build.tracer.ledger.active()}
    active_targets = {t for t, _ in active}
    for change in changes:
        key = (change.target, change.name)
        if key in handled or key in active:
            continue
        if scope.test == "<process>" and change.target == "os.environ":
            continue
        if change.target in active_targets and change.kind != "binding-changed":
            continue  # e.g. a patch.dict(sys.modules) still active covers its entries
        if collection and change.kind == "resource-changed":
            continue  # pytest itself sets sys.path, capture and so on while collecting
        if same_value(change.before, change.after):
            continue  # an equal value put back (sys.platform = "linux" again)
        # Compared with the state just before this scope: a value put back over one an
        # earlier test leaked is a repair (see _accept); a new one over it is a leak.
        leak = leak_from_change(change, records, ctx)
        if change.needs_line and leak.where is None:
            continue  # a library's logger, pytest's extra sys.path copy: not a user's
        if leak.source == "calls" and leak.where is None and not leak.stack:
            # The call that made the state now there was made by pytest or a pytest
            # plugin's own code (pytest-asyncio's event_loop fixture setting a fresh
            # loop as it ends), with no frame of the project or of a library it called
            # on the way: the test runner's state, as for bindings (see _bindings).
            continue
        if (collection or scope.test == "<process>") and leak.where is None:
            continue  # unattributable change by the program or pytest itself, not a test
        if change.kind == "binding-changed" and leak.where is None and \
                change.target in ("module:sys", "module:warnings"):
            # An attribute of sys/warnings the test's source does not store: pytest or a
            # plugin swapping it (sys.unraisablehook). The streams and hooks compared
            # as resources (resource-changed) are always reported.
            continue
        handled.add(key)
        if change.target == "sys.modules" and change.name is not None and \
                change.kind in ("module-dropped", "module-replaced"):
            ctx.pending_copies[id(leak)] = (change.name, change.before)
        if change.target == "module:threading" and change.kind == "resource-changed" and \
                ctx.threads.add(change.after, leak):
            continue
        out.append(leak)
    return out


def leak_from_change(change: Change, records: list[Mutation], ctx: Context,
                     scope: Scope | None = None) -> Leak:
    """The leak a snapshot change is: named by the last record on the same resource that
    explains it, else by the line of the scope's source that made it (when found)."""
    if scope is None:
        scope = ctx.scope
    setter = None
    for mutation in reversed(records):
        if mutation.target == change.target and (
            mutation.name == change.name or change.name is None or mutation.name is None
        ):
            if mutation.op == "call" and not explains(
                    mutation.desc, mutation.after_value(), change.before, change.after):
                # a call on the same resource that did not make this change (a
                # removeHandler after the setLevel that leaked, a filter added inside
                # catch_warnings): its line would be a guess
                continue
            setter = mutation
            break
    if setter is not None:
        leak = ctx.leak_from(setter, change.kind, change.after)
        if leak.name is None:  # logging.config.dictConfig(...): which logger it changed
            leak.name = change.name
    else:
        leak = Leak(change.kind, scope.test, scope.phase if scope.phase != "teardown"
                    else "call", change.target, change.name, fixture=scope.fixture,
                    value=summary(change.after), obj=change.after)
        if change.name is not None and change.target in (
                "sys.modules", "builtins", "module:sys", "module:warnings"):
            found = ctx.find_store(scope.test, change.name,
                                     subscript=change.target == "sys.modules",
                                     target=change.target)
            if found is None and change.kind in ("module-dropped", "module-replaced"):
                # a prefix wipe (del sys.modules[k] in a loop), a snapshot restore
                found = _oracle.find_modules_edit(scope.test, ctx.rootdir, change.name,
                                                  ctx.fixtures_of(scope.test))
            if found is not None:
                leak.where, leak.stack = found, [found]
        elif change.target == "logging":
            # an attribute store (logger.propagate = False): no call to wrap
            for attribute in ("propagate", "disabled", "handlers", "level"):
                found = _oracle.find_store(scope.test, ctx.rootdir, attribute)
                if found is not None:
                    leak.where, leak.stack = found, [found]
                    break
        elif change.target in ("sys.path", "sys.meta_path", "sys.path_hooks"):
            fixtures = (scope.fixture,) if scope.fixture else ctx.fixtures_of(scope.test)
            found = _oracle.find_path_edit(
                scope.test, ctx.rootdir, fixtures, target=change.target,
                added=change.added, entry=change.entry)
            if found is not None:
                leak.where, leak.stack = found, [found]
    leak.before = summary(change.before)
    leak.value = summary(change.after)
    ctx.pending[id(leak)] = (change.before, change.after)
    return leak
