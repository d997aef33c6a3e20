"""The terminal report, rendered with rich into plain lines for pytest's reporter.

Plain data in (:class:`~patchtrace.leak.Leak`), text out: rich renders into a string
buffer at the reporter's width, with colour only when pytest has markup, and the plugin
writes the lines through ``terminalreporter.write_line`` (never ``print``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import IO

    from rich.tree import Tree

    from ..leak import Leak
    from ..refs import Explanation

__all__ = ["headline", "print_why", "render", "why_tree"]


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def headline(leaks: Sequence[Leak], tests: int) -> str:
    """The one summary line, the same for pytest, unittest, scripts and ``report``:
    ``patchtrace: 2 leaks from 1 polluter in 5 tests``, ``patchtrace: no leaks in 1 test``.
    A script is no test: it says neither ``in 0 tests`` nor a count."""
    where = f" in {plural(tests, 'test')}" if tests > 0 else ""
    if not leaks:
        return f"patchtrace: no leaks{where}"
    polluters = len({leak.polluter for leak in leaks})
    return (f"patchtrace: {plural(len(leaks), 'leak')} from "
            f"{plural(polluters, 'polluter')}{where}")

_STYLES = {
    "kind": "bold red",
    "label": "bold",
    "where": "cyan",
    "dim": "dim",
    "fix": "green",
    "victim": "yellow",
}


def render(
    leaks: Sequence[Leak],
    *,
    verbosity: int = 0,
    color: bool = False,
    width: int = 100,
    rootdir: str | None = None,
    header: str | None = None,
    same_change: Mapping[str, Sequence[Leak]] | None = None,
) -> list[str]:
    """Lines of the summary, grouped by polluter. ``same_change`` (the model's): the leaks
    of the same change on other xdist workers, each one line under the first leak's
    explanation instead of a block of its own."""
    from rich.console import Console
    from rich.text import Text
    from rich.theme import Theme
    from rich.tree import Tree

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=max(width, 40),
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        highlight=False,
        theme=Theme(_STYLES),
        legacy_windows=False,
        safe_box=True,
        emoji=False,
    )
    from .secrets import mask_leak, mask_source

    if header:
        console.print(Text(header))
    leaks = [mask_leak(leak) for leak in leaks]  # a saved report may come from anywhere
    known = [leak for leak in leaks if leak.known]  # in the baseline: one line, at the end
    elsewhere = same_change or {}
    folded = {other.id for others in elsewhere.values() for other in others}
    groups: dict[str, list[Leak]] = {}
    for leak in leaks:
        if not leak.known and leak.id not in folded:
            groups.setdefault(leak.polluter, []).append(leak)
    for polluter, items in groups.items():
        tree = Tree(Text(f"{polluter}", style="label"), guide_style="dim")
        for leak in items:
            title = Text.assemble(
                (f"{leak.id} ", "dim"), (leak.kind, "kind"), " ", (leak.label, "label")
            )
            if leak.fixture:
                title.append(f" (fixture {leak.fixture}, {leak.phase})", style="dim")
            elif leak.phase != "call":
                title.append(f" ({leak.phase})", style="dim")
            node = tree.add(title)
            if verbosity < 0:
                _add_same_change(node, elsewhere.get(leak.id, ()))
                continue
            if leak.kind == "module-reloaded" and leak.desc:
                # the module object is the same on both sides: say what differs in it
                node.add(Text.assemble(("changed: ", "dim"), leak.desc))
            else:
                node.add(Text.assemble(("before ", "dim"), leak.before.repr,
                                       ("  ->  now ", "dim"), leak.value.repr))
            if leak.derived:
                node.add(Text(leak.derived_text(), style="dim"))
            if leak.where is not None:
                frames = leak.stack if verbosity > 0 else [leak.where]
                for frame in frames or [leak.where]:
                    source = mask_source(_source(frame.file, frame.line, rootdir), leak)
                    line = Text.assemble(
                        (f"{frame.file}:{frame.line}", "where"), f" in {frame.function}"
                    )
                    if source:
                        line.append(f"\n    {source}", style="dim")
                    node.add(line)
            elif leak.stack:
                node.add(Text("where: in library code, no line of the project or its tests "
                              f"on the way ({leak.stack[-1].file}:{leak.stack[-1].line})",
                              style="dim"))
            else:
                node.add(Text(
                    "where: not seen as it happened (found at the boundary)", style="dim"))
            if leak.alive_via:
                node.add(Text.assemble(("alive via ", "dim"), " -> ".join(leak.alive_via)))
            if leak.victims:
                node.add(Text.assemble(("victims: ", "victim"), ", ".join(
                    f"{v} ({leak.victim_evidence[v]})" if leak.victim_evidence.get(v) else v
                    for v in leak.victims)))
            if leak.repeats:
                node.add(Text(f"also left by {leak.repeats} later test"
                              f"{'s' if leak.repeats != 1 else ''}", style="dim"))
            node.add(Text(f"fix: {leak.fix}", style="fix"))
            _add_same_change(node, elsewhere.get(leak.id, ()))
        console.print(tree)
    if known:
        console.print(Text(f"{len(known)} known leak{'s' * (len(known) != 1)}, see the baseline",
                           style="dim"))
    return buffer.getvalue().rstrip("\n").splitlines()


def _add_same_change(node: Tree, others: Sequence[Leak]) -> None:
    """Another worker, another process: its own leak, the same explanation (one line)."""
    from rich.text import Text

    for other in others:
        node.add(Text.assemble(
            ("same change on another worker: ", "dim"), (f"{other.id} ", "dim"),
            (other.kind, "kind"), " ", (other.label, "label"),
            (f" from {other.polluter}" + _also(other.repeats), "dim"),
            ("; victims: " + ", ".join(other.victims), "victim") if other.victims else ""))


def _also(repeats: int) -> str:
    return f", also left by {repeats} later test{'s' * (repeats != 1)}" if repeats else ""


def _source(file: str, line: int, rootdir: str | None) -> str:
    import linecache

    path = file if os.path.isabs(file) or not rootdir else os.path.join(rootdir, file)
    return linecache.getline(path, line).strip()


def why_tree(explanation: Explanation) -> Tree:
    """Why an object is alive, as a rich ``Tree``: one branch per chain, and each chain one
    path, root first, its steps under it (a fork would say the root holds each step)."""
    from rich.text import Text
    from rich.tree import Tree

    tree = Tree(Text.assemble((explanation.target_repr, "bold"),
                              (f" ({explanation.target_type})", "dim"), " is alive via"),
                guide_style="dim")
    if not explanation.chains:
        tree.add(Text(explanation.note or "no chain found", style="yellow"))
        return tree
    for chain in explanation.chains:
        labels = chain.labels()
        if not labels:
            continue
        path = Text(labels[0], style="bold cyan")
        for label in labels[1:]:
            path.append("\n-> ")
            path.append(label, style="green")
        tree.add(path)
    if explanation.note:
        tree.add(Text(explanation.note, style="yellow"))
    return tree


def print_why(explanation: Explanation, file: IO[str] | None = None) -> None:
    """Print :func:`why_tree` to ``file`` (stdout by default), in colour on a terminal."""
    import sys

    from rich.console import Console

    Console(file=file if file is not None else sys.stdout, soft_wrap=False,
            highlight=False).print(why_tree(explanation))
