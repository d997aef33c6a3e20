"""The shortest command that reproduces a victim's failure: the polluter, then the victim."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["PYTEST", "quote", "reproduce"]

#: pytest-randomly would reorder the two tests; the cache plugin (--lf, --ff) too.
PYTEST: Final = ("python", "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider")


def quote(word: str) -> str:
    """Single quotes always (node ids read better quoted), the way ``shlex.quote`` does."""
    return "'" + word.replace("'", "'\"'\"'") + "'"


def command(node_ids: Sequence[str]) -> str:
    return " ".join([*PYTEST, *(quote(n) for n in node_ids)])


def reproduce(leak: Mapping[str, Any]) -> str | None:
    """For a leak with victims: run its polluter, then its first victim; ``None`` without.

    A wide fixture's polluter is already the first test that ran it (the fixture runs in
    that test's setup). Changes made at collection happen whenever pytest collects the
    victim's module, so the victim alone reproduces them.
    """
    victims = [v for v in leak.get("victims") or () if isinstance(v, str)]
    if not victims:
        return None
    polluter = str(leak.get("polluter") or "")
    if not polluter or polluter.startswith("<"):
        return command([victims[0]])
    if polluter == victims[0]:
        return command([polluter])
    return command([polluter, victims[0]])


def polluter_only(leak: Mapping[str, Any]) -> str | None:
    """The polluter alone: what --verify runs for a leak without victims."""
    polluter = str(leak.get("polluter") or "")
    if not polluter or polluter.startswith("<"):
        return None
    return command([polluter])
