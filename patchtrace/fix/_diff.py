"""Unified diffs: made from two texts, and applied back only where the file still matches."""

from __future__ import annotations

import difflib
import re
from typing import Final

__all__ = ["DiffError", "apply", "files_of", "make"]

_HUNK: Final = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_NO_NEWLINE: Final = "\\ No newline at end of file"


class DiffError(ValueError):
    """The diff does not apply: the file changed since the report, or it is not a diff."""


def make(old: str, new: str, path: str) -> str:
    """``git diff``-style: ``a/path`` and ``b/path``, three lines of context."""
    lines = []
    for line in difflib.unified_diff(old.splitlines(keepends=True),
                                     new.splitlines(keepends=True),
                                     f"a/{path}", f"b/{path}", n=3):
        if line.endswith("\n"):
            lines.append(line)
        else:
            lines.append(line + "\n" + _NO_NEWLINE + "\n")
    return "".join(lines)


def files_of(diff: str) -> list[str]:
    """The paths (relative to rootdir) a diff changes."""
    out = []
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0]
            out.append(path[2:] if path.startswith("b/") else path)
    return out


def _hunks(diff: str) -> list[tuple[int, list[str], list[str]]]:
    hunks: list[tuple[int, list[str], list[str]]] = []
    old: list[str] = []
    new: list[str] = []
    left = right = 0  # lines of the current hunk still to read, old and new side
    last = ""
    for raw in diff.splitlines(keepends=True):
        if raw.rstrip("\n") == _NO_NEWLINE:
            # the previous line has no newline, on the side(s) it belongs to
            if last in (" ", "-") and old:
                old[-1] = old[-1].rstrip("\n")
            if last in (" ", "+") and new:
                new[-1] = new[-1].rstrip("\n")
            continue
        if left <= 0 and right <= 0:
            match = _HUNK.match(raw)
            if match:
                old, new = [], []
                hunks.append((int(match.group(1)), old, new))
                left = int(match.group(2) or 1)
                right = int(match.group(4) or 1)
            continue  # headers (---, +++, diff --git) between hunks
        sign, text = raw[:1], raw[1:]
        last = sign
        if sign == " ":
            old.append(text)
            new.append(text)
            left, right = left - 1, right - 1
        elif sign == "-":
            old.append(text)
            left -= 1
        elif sign == "+":
            new.append(text)
            right -= 1
        else:
            raise DiffError(f"not a unified diff line: {raw!r}")
    if not hunks:
        raise DiffError("no hunk in the diff")
    return hunks


def apply(diff: str, text: str) -> str:
    """``text`` with ``diff`` applied; raises :class:`DiffError` unless every hunk's old
    lines are found exactly (at their line, or shifted by earlier edits of the file)."""
    lines = text.splitlines(keepends=True)
    offset = 0
    for start, old, new in _hunks(diff):
        at = max(start - 1 + offset, 0) if old else start + offset
        if lines[at:at + len(old)] != old:
            candidates = [i for i in range(len(lines) - len(old) + 1)
                          if lines[i:i + len(old)] == old]
            if not candidates:
                raise DiffError("the file no longer holds the lines the patch changes")
            at = min(candidates, key=lambda i: abs(i - at))
        lines[at:at + len(old)] = new
        offset += len(new) - len(old)
    return "".join(lines)
