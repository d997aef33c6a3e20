"""One module per way a mutation is seen; :func:`default_sources` lists them in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._tracer import Source

__all__ = ["default_sources"]


def default_sources() -> list[Source]:
    from .audit import AuditSource
    from .calls import CallsSource
    from .mock import MockSource
    from .monkeypatch import MonkeyPatchSource
    from .reads import ReadsSource
    from .reload import ReloadSource
    from .watch import WatchSource

    return [AuditSource(), ReadsSource(), MockSource(), MonkeyPatchSource(), ReloadSource(),
            WatchSource(), CallsSource()]
