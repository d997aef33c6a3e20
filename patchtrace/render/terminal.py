"""The terminal report, rendered with rich into plain lines for pytest's reporter.

Plain data in (:class:`~patchtrace.leaks.Leak`), text out: rich renders into a string
buffer at the reporter's width, with colour only when pytest has markup, and the plugin
writes the lines through ``terminalreporter.write_line`` (never ``print``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..leaks import Leak

__all__ = ["render"]

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
) -> list[str]:
    """Lines of the summary, grouped by polluter."""
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
    if header:
        console.print(Text(header))
    known = [leak for leak in leaks if leak.known]  # in the baseline: one line, at the end
    groups: dict[str, list[Leak]] = {}
    for leak in leaks:
        if not leak.known:
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
                continue
            node.add(Text.assemble(
                ("before ", "dim"), leak.before.repr, ("  ->  now ", "dim"), leak.value.repr
            ))
            if leak.where is not None:
                frames = leak.stack if verbosity > 0 else [leak.where]
                for frame in frames or [leak.where]:
                    source = _source(frame.file, frame.line, rootdir)
                    line = Text.assemble(
                        (f"{frame.file}:{frame.line}", "where"), f" in {frame.function}"
                    )
                    if source:
                        line.append(f"\n    {source}", style="dim")
                    node.add(line)
            else:
                node.add(Text(
                    "where: not seen as it happened (found at the boundary)", style="dim"))
            if leak.alive_via:
                node.add(Text.assemble(("alive via ", "dim"), " -> ".join(leak.alive_via)))
            if leak.victims:
                node.add(Text.assemble(("victims: ", "victim"), ", ".join(leak.victims)))
            node.add(Text(f"fix: {leak.fix}", style="fix"))
        console.print(tree)
    if known:
        console.print(Text(f"{len(known)} known leak{'s' * (len(known) != 1)}, see the baseline",
                           style="dim"))
    return buffer.getvalue().rstrip("\n").splitlines()


def _source(file: str, line: int, rootdir: str | None) -> str:
    import linecache

    path = file if os.path.isabs(file) or not rootdir else os.path.join(rootdir, file)
    return linecache.getline(path, line).strip()
