"""Which values are secrets, and masked copies of leaks that carry them.

Two rules, both deliberately generous: masking a harmless value costs a reader one click
into the test, printing a token into a CI artifact costs a rotation.

- An environment variable whose *name* looks secret (``GITHUB_TOKEN``, ``DB_PASSWORD``) is
  masked whole: ``'***'``.
- Any value, whatever holds it, has the credentials *inside* it masked: the password of a
  URL (``postgres://admin:***@db/prod``) and strings shaped like well-known tokens (GitHub,
  GitLab, AWS, Slack, Stripe, Google, OpenAI/Anthropic, npm, PyPI keys, JWTs, ``Bearer``
  and ``Basic`` credentials, PEM private keys).

Every output (terminal, JSON, HTML, graphs, strict errors, source lines shown beside a
leak) goes through :func:`mask_leak` or :func:`mask_values`.
``PATCHTRACE_SHOW_SECRETS=1`` turns masking off (for a local run where you need to see it).
"""

from __future__ import annotations

import copy
import os
import re
from typing import TYPE_CHECKING, Final

from ..values import ValueSummary

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = ["MASK", "is_secret_name", "mask_leak", "mask_source", "mask_text", "mask_values",
           "show_secrets"]

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


#: The userinfo password of a URL: ``scheme://user:PASSWORD@host``.
_URL_PASSWORD: Final = re.compile(
    r"(?P<keep>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+(?=@)")
#: Credentials after a scheme word: ``Bearer abc...``, ``Basic dXNlcjpw...``.
_AUTH_SCHEME: Final = re.compile(
    r"(?P<keep>\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken)\s+)[A-Za-z0-9._~+/=-]{8,}")
#: Strings shaped like the tokens of common services, masked wherever they appear.
_TOKENS: Final = re.compile("|".join((
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",                   # GitHub
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",                 # GitHub fine-grained
    r"\bglpat-[A-Za-z0-9_-]{20,}",                     # GitLab
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)[0-9A-Z]{16}\b",  # AWS access key id
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",                # Slack
    r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,}",         # Stripe
    r"\bAIza[0-9A-Za-z_-]{35}",                        # Google API key
    r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",         # OpenAI, Anthropic
    r"\bnpm_[A-Za-z0-9]{36}",                          # npm
    r"\bpypi-[A-Za-z0-9_-]{50,}",                      # PyPI
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWT
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----|.*)",
)), re.DOTALL)
#: The same credentials cut short by a summary's length limit (``safe_repr`` ends a long repr
#: with ``...``): the ``@`` of a URL, or the tail that makes a token's shape, is gone, so the
#: rules above no longer see them; what is left of the credential is masked up to the cut.
_CUT: Final = re.compile("|".join((
    r"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]*\.\.\.",
    r"(?P<auth>\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC|[Tt]oken)\s+)[A-Za-z0-9._~+/=-]+?\.\.\.",
    r"\b(?:gh[pousr]_|github_pat_|glpat-|xox[abposr]-|[sr]k_(?:live|test)_|AIza|sk-|npm_"
    r"|pypi-|eyJ|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|AIPA)(?=[0-9A-Z]*\.\.\.))"
    r"[A-Za-z0-9_.-]*?\.\.\.",
)))
#: a quoted string literal in a line of source
_LITERAL: Final = re.compile(r"""(?P<q>['"])(?P<text>(?:\\.|(?!(?P=q)).)*)(?P=q)""")


def mask_values(text: str) -> str:
    """``text`` with the credentials inside it masked (URL passwords, token shapes)."""
    if not text or show_secrets():
        return text
    text = _URL_PASSWORD.sub(r"\g<keep>***", text)
    text = _AUTH_SCHEME.sub(r"\g<keep>***", text)
    text = _TOKENS.sub("***", text)
    return _CUT.sub(_cut, text) if "..." in text else text


def _cut(match: re.Match[str]) -> str:
    return f"{match.group('url') or match.group('auth') or ''}***..."


def mask_source(line: str, leak: Leak) -> str:
    """A source line shown beside ``leak``: credentials inside it masked, and when the
    leak's value is masked whole (a secret-looking variable), every string literal but the
    variable's name (``os.environ['API_TOKEN'] = '***'``)."""
    line = mask_values(line)
    if show_secrets() or MASK not in (leak.value.repr, leak.before.repr):
        return line

    def literal(match: re.Match[str]) -> str:
        return match.group(0) if match.group("text") == leak.name else MASK

    return _LITERAL.sub(literal, line)


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


def _values_masked(summary: ValueSummary) -> ValueSummary:
    text = mask_values(summary.repr)
    return summary if text == summary.repr else ValueSummary(summary.type, text, summary.is_mock)


def mask_leak(leak: Leak) -> Leak:
    """A copy of ``leak`` with its secrets masked: the values of an ``os.environ`` leak
    whose name looks secret, and the credentials inside any value, description or chain
    label; ``leak`` itself when there is nothing to mask (or the user opted out).

    The copy drops its reference to the live value, so nothing drawn from it (a graph of the
    live object) can show the secret either.
    """
    if show_secrets():
        return leak
    if leak.target == "os.environ" and is_secret_name(leak.name):
        if _masked_already(leak):
            return leak  # masked once (the report model): masking again changes nothing
        masked = copy.copy(leak)
        masked.before = _masked(leak.before)
        masked.value = _masked(leak.value)
        if masked.desc and (leak.value.repr in masked.desc or leak.before.repr in masked.desc):
            masked.desc = None  # e.g. "patch.dict(os.environ, {'TOKEN': 'abc'})"
    else:
        before, value = _values_masked(leak.before), _values_masked(leak.value)
        desc = mask_values(leak.desc) if leak.desc else leak.desc
        chain = [mask_values(step) for step in leak.alive_via] if leak.alive_via else None
        if (before is leak.before and value is leak.value and desc == leak.desc
                and chain == leak.alive_via):
            return leak
        masked = copy.copy(leak)
        masked.before, masked.value, masked.desc = before, value, desc
        masked.alive_via = chain
    masked.desc = mask_values(masked.desc) if masked.desc else masked.desc
    masked._atom = _nothing()
    masked._ref = None
    return masked


def _masked_already(leak: Leak) -> bool:
    """A copy :func:`mask_leak` made: both values masked, no live value, no secret left."""
    return (all(summary.type == "<missing>" or summary.repr == MASK
                for summary in (leak.before, leak.value))
            and leak._ref is None and leak._atom is _nothing()
            and (not leak.desc or mask_values(leak.desc) == leak.desc))


def _nothing() -> object:
    from ..ledger import NOTHING

    return NOTHING
