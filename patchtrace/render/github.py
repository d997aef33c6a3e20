"""GitHub Actions workflow commands: one annotation per leak, at its file and line.

``::warning file=F,line=L,title=patchtrace L3 patch-not-stopped::message`` (``::error`` for a
leak that fails strict mode). Escaped as the runner expects: in the message ``%``, CR and LF;
in a property also ``:`` and ``,``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = ["commands", "enabled", "escape_data", "escape_property"]


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("GITHUB_ACTIONS", "").strip().lower() == "true"


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(leak: Leak, *, strict: bool) -> str:
    level = "error" if strict and not leak.known else "warning"
    props = []
    if leak.where is not None:
        props.append(f"file={escape_property(leak.where.file)}")
        props.append(f"line={int(leak.where.line)}")
    props.append(f"title={escape_property(f'patchtrace {leak.id} {leak.kind}')}")
    known = " (known: in the baseline)" if leak.known else ""
    return f"::{level} {','.join(props)}::{escape_data(leak.message() + known)}"


def commands(leaks: Iterable[Leak], *, strict: bool) -> list[str]:
    return [annotation(leak, strict=strict) for leak in leaks]
