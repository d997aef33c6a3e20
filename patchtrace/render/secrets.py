"""Which environment values are secrets, and masked copies of leaks that carry them.

The rule is deliberately generous: masking a harmless value costs a reader one click into
the test, printing a token into a CI artifact costs a rotation.  ``PATCHTRACE_SHOW_SECRETS=1``
turns masking off (for a local run where you need to see the value).
"""

from __future__ import annotations

import copy
import os
import re
from typing import TYPE_CHECKING, Final

from ..values import ValueSummary

if TYPE_CHECKING:
    from ..leaks import Leak

__all__ = ["MASK", "is_secret_name", "mask_leak", "mask_text", "show_secrets"]

#: What a masked value looks like; the same for every value, so its length stays hidden.
MASK: Final = "'***'"

#: Substrings that make a name secret wherever they appear (``GITHUB_TOKEN``, ``DBPASSWORD``).
_LONG: Final = (
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "PRIVATE",
    "SESSION", "COOKIE", "APIKEY", "ACCESSKEY", "AUTHORIZATION", "SIGNATURE", "SALT",
)
#: Words that make a name secret only as a whole word of it (``API_KEY`` but not ``KEYBOARD``).
_WORDS: Final = frozenset({"KEY", "AUTH", "OAUTH", "PASS", "PWD", "PIN", "DSN", "JWT", "SAS"})
#: Names that look secret but are well known not to be.
_NOT_SECRET: Final = frozenset({"PWD", "OLDPWD", "KEYMAP", "XAUTHORITY", "SSH_AUTH_SOCK"})

_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT: Final = re.compile(r"[^A-Z0-9]+")


def show_secrets() -> bool:
    """True when the user opted out of masking with ``PATCHTRACE_SHOW_SECRETS=1``."""
    return os.environ.get("PATCHTRACE_SHOW_SECRETS", "").strip().lower() in ("1", "true", "yes",
                                                                            "on")


def is_secret_name(name: str | None) -> bool:
    """Does an environment variable called ``name`` probably hold a secret?"""
    if not name:
        return False
    upper = name.upper()
    if upper in _NOT_SECRET:
        return False
    if any(part in upper for part in _LONG):
        return True
    words = [w for w in _SPLIT.split(_CAMEL.sub("_", name).upper()) if w]
    return any(w in _WORDS or w.endswith("KEY") for w in words)


def mask_text(name: str | None, text: str) -> str:
    """``text`` (a value's repr), or the mask when ``name`` looks secret."""
    if is_secret_name(name) and not show_secrets():
        return MASK
    return text


def _masked(summary: ValueSummary) -> ValueSummary:
    if summary.type == "<missing>":
        return summary
    return ValueSummary(summary.type, MASK, summary.is_mock)


def mask_leak(leak: Leak) -> Leak:
    """A copy of ``leak`` with its values masked, when it is an ``os.environ`` leak whose
    name looks secret (and the user did not opt out); otherwise ``leak`` itself.

    The copy drops its reference to the live value, so nothing drawn from it (a graph of the
    live object) can show the secret either.
    """
    if leak.target != "os.environ" or not is_secret_name(leak.name) or show_secrets():
        return leak
    masked = copy.copy(leak)
    masked.before = _masked(leak.before)
    masked.value = _masked(leak.value)
    masked._atom = _nothing()
    masked._ref = None
    if masked.desc and (leak.value.repr in masked.desc or leak.before.repr in masked.desc):
        masked.desc = None  # e.g. "patch.dict(os.environ, {'TOKEN': 'abc'})"
    return masked


def _nothing() -> object:
    from ..ledger import NOTHING

    return NOTHING
