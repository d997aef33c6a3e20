"""One parsed, validated configuration, from environment variables, options and ini keys.

A value that cannot be understood is never ignored silently. A bad ``PATCHTRACE`` (the
mode) makes :func:`from_env` raise :class:`ConfigError`, which names the variable, the bad
value and the accepted ones; a bad companion (``PATCHTRACE_PDB=maybe``) is kept as one line
in ``Config.problems``, said once per process by :func:`say_once`, and otherwise ignored:
tracing stays on.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Final, final

__all__ = ["Config", "ConfigError", "from_env", "parse_mode", "say_once"]

#: The same words as every boolean companion, plus ``report`` and ``strict`` (CONTRACT.md).
ON: Final = ("1", "on", "true", "yes", "report")
STRICT: Final = ("strict",)
OFF: Final = ("0", "off", "false", "no", "")
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


def companion_bool(value: str | None, variable: str, problems: list[str]) -> bool:
    """A boolean companion variable; a bad value is added to ``problems`` and means off."""
    try:
        return parse_bool(value, variable)
    except ConfigError as exc:
        problems.append(ignored_line(exc))
        return False


def ignored_line(exc: ConfigError) -> str:
    """The one line that reports a bad companion value."""
    return f"patchtrace: {exc}; ignored"


#: messages already said in this process: the ``.pth`` start and the pytest plugin both
#: read the environment, and a user hears about each bad value once
_said: set[str] = set()


def say_once(line: str, *, key: str | None = None) -> None:
    """Write ``line`` on stderr unless the same ``key`` (default: the line) was said."""
    key = line if key is None else key
    if key in _said:
        return
    _said.add(key)
    try:
        (sys.__stderr__ or sys.stderr).write(line + "\n")
    except Exception:  # a closed stderr never breaks the program
        pass


def said(key: str) -> bool:
    return key in _said


def mark_said(key: str) -> None:
    """``key`` was reported another way (pytest's usage error): do not say it again."""
    _said.add(key)


def parse_patterns(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Ignore patterns: one per line (ini) or separated by commas/newlines (variable)."""
    if value is None:
        return ()
    lines = value.replace(",", "\n").splitlines() if isinstance(value, str) else list(value)
    return tuple(p.strip() for p in lines if p.strip() and not p.strip().startswith("#"))


@final
class Config:
    """Everything patchtrace was asked to do. Immutable once built."""

    __slots__ = ("baseline", "children", "graphs", "html", "ignore", "json", "mode", "pdb",
                 "problems")

    def __init__(
        self,
        mode: str = "report",
        *,
        json: str | None = None,
        html: str | None = None,
        graphs: str | None = None,
        pdb: bool = False,
        ignore: Sequence[str] = (),
        problems: Sequence[str] = (),
        children: bool = False,
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
        #: one line per bad companion value, which was ignored
        self.problems = tuple(problems)
        #: PATCHTRACE_CHILDREN: trace a test session's child processes into its report
        self.children = children
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


def validate_extras(env: Mapping[str, str], problems: list[str] | None = None) -> None:
    """Variables read where they are used (PATCHTRACE_SHOW_SECRETS by the renderers) are
    still checked up front: a value we do not understand is never ignored silently. A bad
    one goes to ``problems`` (it reads as off where it is used); without a list, it raises."""
    if problems is None:
        parse_bool(env.get("PATCHTRACE_SHOW_SECRETS"), "PATCHTRACE_SHOW_SECRETS")
    else:
        companion_bool(env.get("PATCHTRACE_SHOW_SECRETS"), "PATCHTRACE_SHOW_SECRETS", problems)


def from_env(environ: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``PATCHTRACE*`` variables.

    A bad ``PATCHTRACE`` raises :class:`ConfigError`; a bad companion is one line of
    ``Config.problems`` and reads as off.
    """
    env = os.environ if environ is None else environ
    mode = parse_mode(env.get("PATCHTRACE"))
    problems: list[str] = []
    validate_extras(env, problems)
    return Config(
        mode,
        json=env.get("PATCHTRACE_JSON"),
        html=env.get("PATCHTRACE_HTML"),
        graphs=env.get("PATCHTRACE_GRAPHS"),
        pdb=companion_bool(env.get("PATCHTRACE_PDB"), "PATCHTRACE_PDB", problems),
        ignore=parse_patterns(env.get("PATCHTRACE_IGNORE")),
        problems=problems,
        children=companion_bool(env.get("PATCHTRACE_CHILDREN"), "PATCHTRACE_CHILDREN", problems),
        baseline=env.get("PATCHTRACE_BASELINE"),
    )
