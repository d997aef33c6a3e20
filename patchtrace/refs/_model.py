"""Plain-data results of a reference search: strings and ints only, never user objects."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.tree import Tree

__all__ = ["Chain", "Explanation", "Step"]


def _str(data: Mapping[str, Any], key: str, default: str = "?") -> str:
    value = data.get(key, default)
    return value if isinstance(value, str) else default


@final
class Step:
    """One hop of a chain: ``kind`` is a short slug, ``label`` reads like English."""

    __slots__ = ("kind", "label")

    def __init__(self, kind: str, label: str) -> None:
        self.kind = kind
        self.label = label

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "label": self.label}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(_str(data, "kind"), _str(data, "label", ""))

    def __repr__(self) -> str:
        return f"Step({self.kind!r}, {self.label!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Step):
            return NotImplemented
        return (self.kind, self.label) == (other.kind, other.label)

    def __hash__(self) -> int:
        return hash((self.kind, self.label))


@final
class Chain:
    """Steps from a root (first step) down to the object (last step)."""

    __slots__ = ("root_kind", "steps")

    def __init__(self, root_kind: str, steps: tuple[Step, ...]) -> None:
        self.root_kind = root_kind
        self.steps = steps

    def labels(self) -> list[str]:
        """The labels in order; the JSON report's ``alive_via``."""
        return [step.label for step in self.steps]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def to_json(self) -> dict[str, object]:
        return {"root_kind": self.root_kind, "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Chain:
        raw = data.get("steps", ())
        steps = tuple(Step.from_json(s) for s in raw if isinstance(s, Mapping))
        return cls(_str(data, "root_kind"), steps)

    def __repr__(self) -> str:
        return f"Chain({self.root_kind!r}, {' -> '.join(self.labels())!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Chain):
            return NotImplemented
        return (self.root_kind, self.steps) == (other.root_kind, other.steps)

    def __hash__(self) -> int:
        return hash((self.root_kind, self.steps))


@final
class Explanation:
    """Why an object is alive: the shortest chains from roots, or a note saying what is known."""

    __slots__ = ("chains", "note", "target_repr", "target_type")

    def __init__(
        self,
        target_type: str,
        target_repr: str,
        chains: tuple[Chain, ...],
        note: str | None,
    ) -> None:
        self.target_type = target_type
        self.target_repr = target_repr
        self.chains = chains
        self.note = note

    def alive_via(self) -> list[list[str]]:
        return [chain.labels() for chain in self.chains]

    def to_json(self) -> dict[str, object]:
        return {
            "target_type": self.target_type,
            "target_repr": self.target_repr,
            "chains": [c.to_json() for c in self.chains],
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Explanation:
        raw = data.get("chains", ())
        chains = tuple(Chain.from_json(c) for c in raw if isinstance(c, Mapping))
        note = data.get("note")
        return cls(
            _str(data, "target_type"),
            _str(data, "target_repr", ""),
            chains,
            note if isinstance(note, str) else None,
        )

    def __repr__(self) -> str:
        return (
            f"Explanation({self.target_type!r}, {self.target_repr!r}, "
            f"chains={list(self.chains)!r}, note={self.note!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.target_type, self.target_repr, self.chains, self.note))

    def render_tree(self) -> Tree:
        """A rich ``Tree``: one branch per chain, steps nested from the root down."""
        from rich.markup import escape
        from rich.tree import Tree

        tree = Tree(
            f"[bold]{escape(self.target_repr)}[/] [dim]({escape(self.target_type)})[/] "
            "is alive via",
            guide_style="dim",
        )
        if not self.chains:
            tree.add(f"[yellow]{escape(self.note or 'no chain found')}[/]")
            return tree
        for chain in self.chains:
            steps = chain.steps
            if not steps:
                continue
            # One branch per chain, steps listed root first (nesting them would march off
            # the right edge of the terminal after a few hops).
            node = tree.add(f"[bold cyan]{escape(steps[0].label)}[/]")
            for step in steps[1:]:
                node.add(f"[green]-> {escape(step.label)}[/]")
        if self.note:
            tree.add(f"[yellow]{escape(self.note)}[/]")
        return tree

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render_tree()

    def text(self) -> str:
        """A plain, arrow-separated rendering (one line per chain) for logs and asserts."""
        lines = [f"{self.target_repr} ({self.target_type}) is alive via:"]
        lines.extend("  " + " -> ".join(chain.labels()) for chain in self.chains)
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)
