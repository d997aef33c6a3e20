"""One parsed, validated configuration, from environment variables, options and ini keys.

A value that cannot be understood is never ignored: :func:`from_env` raises
:class:`ConfigError`, which names the variable, the bad value and the accepted ones.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping, Sequence
from typing import Final, final

__all__ = ["Config", "ConfigError", "from_env", "parse_mode"]

ON: Final = ("1", "on", "report")
STRICT: Final = ("strict",)
OFF: Final = ("0", "off", "")
_BOOL_TRUE: Final = ("1", "on", "true", "yes")
_BOOL_FALSE: Final = ("0", "off", "false", "no", "")

class ConfigError(ValueError):
    """A configuration value patchtrace cannot understand."""

    def __init__(self, variable: str, value: str, accepted: Sequence[str]) -> None:
        self.variable = variable
        self.value = value
        self.accepted = tuple(accepted)
        super().__init__(
            f"{variable}={value!r} is not understood; accepted values: "
            + ", ".join(a if a else "(empty)" for a in self.accepted)
        )


def parse_mode(value: str | None, variable: str = "PATCHTRACE") -> str:
    """``off``, ``report`` or ``strict``."""
    text = (value or "").strip().lower()
    if text in OFF:
        return "off"
    if text in ON:
        return "report"
    if text in STRICT:
        return "strict"
    raise ConfigError(variable, value or "", (*ON, *STRICT, *OFF))


def parse_bool(value: str | None, variable: str) -> bool:
    text = (value or "").strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text in _BOOL_FALSE:
        return False
    raise ConfigError(variable, value or "", (*_BOOL_TRUE, *_BOOL_FALSE))


def parse_patterns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Ignore patterns: one per line (ini) or separated by commas/newlines (variable)."""
    if value is None:
        return ()
    lines = value.replace(",", "\n").splitlines() if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in lines if p.strip() and not p.strip().startswith("#"))


@final
class Config:
    """Everything patchtrace was asked to do. Immutable once built."""

    __slots__ = ("baseline", "graphs", "html", "ignore", "json", "mode", "pdb")

    def __init__(
        self,
        mode: str = "report",
        *,
        json: str | None = None,
        html: str | None = None,
        graphs: str | None = None,
        pdb: bool = False,
        ignore: Sequence[str] = (),
        baseline: str | None = None,
    ) -> None:
        if mode not in ("off", "report", "strict"):
            raise ConfigError("PATCHTRACE", mode, ("report", "strict", "off"))
        self.mode = mode
        self.json = json or None
        self.html = html or None
        self.graphs = graphs or None
        self.pdb = pdb
        self.ignore = tuple(ignore)
        #: PATCHTRACE_BASELINE: leaks matching its entries are known, never fail strict mode
        self.baseline = baseline or None

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def strict(self) -> bool:
        return self.mode == "strict"

    def ignored(self, target: str | None, name: str | None, label: str) -> bool:
        """True when a leak on ``target``/``name`` matches a ``patchtrace_ignore`` pattern."""
        if not self.ignore:
            return False
        candidates = [label]
        if target:
            candidates.append(target)
            if name is not None:
                candidates.append(f"{target}.{name}")
                candidates.append(f"{target}:{name}")
        return any(fnmatch.fnmatchcase(c, p) for p in self.ignore for c in candidates)

    def __repr__(self) -> str:
        return (
            f"Config(mode={self.mode!r}, json={self.json!r}, html={self.html!r}, "
            f"graphs={self.graphs!r}, pdb={self.pdb}, ignore={self.ignore!r})"
        )


def validate_extras(env: Mapping[str, str]) -> None:
    """Variables read where they are used (PATCHTRACE_SHOW_SECRETS by the renderers) are
    still checked up front: a value we do not understand is never ignored silently."""
    parse_bool(env.get("PATCHTRACE_SHOW_SECRETS"), "PATCHTRACE_SHOW_SECRETS")


def from_env(environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``PATCHTRACE*`` variables; raises :class:`ConfigError`."""
    env = os.environ if environ is None else environ
    validate_extras(env)
    return Config(
        parse_mode(env.get("PATCHTRACE")),
        json=env.get("PATCHTRACE_JSON"),
        html=env.get("PATCHTRACE_HTML"),
        graphs=env.get("PATCHTRACE_GRAPHS"),
        pdb=parse_bool(env.get("PATCHTRACE_PDB"), "PATCHTRACE_PDB"),
        ignore=parse_patterns(env.get("PATCHTRACE_IGNORE")),
        baseline=env.get("PATCHTRACE_BASELINE"),
    )
