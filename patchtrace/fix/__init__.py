"""From a diagnosis to a fix: ``reproduce``, ``suggested_patch``, ``verified`` and the baseline.

Pure functions from a leak's JSON dict and the rootdir to strings; libcst (the optional
extra ``patchtrace[fix]``) is imported only when a patch is suggested, and without it
``suggested_patch`` is ``None`` and nothing else changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._reproduce import reproduce

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = ["fill", "reproduce", "suggest"]


def suggest(leak: Mapping[str, Any], rootdir: str,
            sources: dict[str, str | None] | None = None) -> tuple[str | None, str]:
    """``(unified diff relative to rootdir, "")`` or ``(None, why not and what to do)``.

    ``sources`` caches file texts across calls (one report, many leaks in one file).
    """
    from ..render.secrets import is_secret_name, show_secrets

    name = leak.get("name")
    if leak.get("target") == "os.environ" and isinstance(name, str) and \
            is_secret_name(name) and not show_secrets():
        # The patch would copy the line, and the secret in it, into the report.
        return None, (f"{name} looks secret, so its line is not copied into the report "
                      "(PATCHTRACE_SHOW_SECRETS=1 shows it): set it with monkeypatch.setenv")
    where = leak.get("where")
    if not isinstance(where, Mapping) and leak.get("target") == "sys.path":
        # sys.path is compared at the boundary: look for the statement in the polluter
        polluter = str(leak.get("polluter") or "")
        if "::" in polluter:
            where = {"file": polluter.split("::")[0], "line": None}
    if not isinstance(where, Mapping) or not isinstance(where.get("file"), str):
        return None, "the leaking line is not known"
    rel = str(where["file"])
    path = rel if os.path.isabs(rel) else os.path.join(rootdir, rel)
    if os.path.isabs(rel):
        try:
            rel = os.path.relpath(rel, rootdir)
        except ValueError:
            return None, f"{rel} is outside the rootdir"
        if rel.startswith(".."):
            return None, f"{where['file']} is outside the rootdir {rootdir}"
    rel = rel.replace(os.sep, "/")
    cache = {} if sources is None else sources
    if path not in cache:
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                cache[path] = handle.read()
        except (OSError, UnicodeDecodeError):
            cache[path] = None
    text = cache[path]
    if text is None:
        return None, f"cannot read {rel}"
    try:
        import libcst  # noqa: F401

        from ._rewrite import NoRewrite, rewrite
    except ImportError:  # libcst is missing: the rest of the report is unchanged
        return None, "install patchtrace[fix] (libcst) for suggested patches"
    if not isinstance(where.get("line"), int):
        from ._rewrite import locate

        line = locate(text, leak)
        if line is None:
            return None, ("the change was found at the end of the test, not as it happened, "
                          "and the test has no single statement that makes it")
        leak = {**leak, "where": {**where, "line": line}}
    try:
        new = rewrite(text, leak)
    except NoRewrite as exc:
        return None, str(exc)
    if new == text:
        return None, "the rewrite changed nothing"
    from ._diff import make

    return make(text, new, rel), ""


def fill(leaks: Iterable[Leak], rootdir: str) -> None:
    """Set ``reproduce`` and ``suggested_patch`` on each leak (where not set already)."""
    sources: dict[str, str | None] = {}
    for leak in leaks:
        data = leak.to_json()
        if leak.reproduce is None:
            leak.reproduce = reproduce(data)
        if leak.suggested_patch is None:
            try:
                leak.suggested_patch = suggest(data, rootdir, sources)[0]
            except Exception:  # a rewrite that fails is a missing suggestion, never a crash
                leak.suggested_patch = None
        patch = leak.suggested_patch
        if patch is not None and _shows_a_secret(patch):
            # A diff with a credential in it goes into every report; masked, it would not
            # apply. No suggestion then: the fix text still says what to do.
            leak.suggested_patch = None


def _shows_a_secret(text: str) -> bool:
    from ..render.secrets import mask_values, show_secrets

    return not show_secrets() and mask_values(text) != text
