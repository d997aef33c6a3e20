"""The typed vocabulary (``patchtrace._vocab``) against the contract and the code using it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

from patchtrace import _vocab, leak, values
from patchtrace.sources import default_sources

ROOT = Path(__file__).resolve().parent.parent


def _contract_kinds() -> set[str]:
    """The slugs of the contract's ``kind`` bullet (docs/contract.md is the shipped copy)."""
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    match = re.search(r"^- `kind`:(.*?)(?=^- `)", text, re.S | re.M)
    assert match is not None, "the contract's `kind` bullet moved"
    return set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", match.group(1)))


def _quickstart_kinds() -> set[str]:
    """The kinds the user documentation's table explains."""
    text = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z]+(?:-[a-z]+)+)` \|", text, re.M))


def test_every_contract_kind_is_a_kind() -> None:
    contract = _contract_kinds()
    assert len(contract) >= 8  # the parse found the list, not a stray word
    assert contract <= set(_vocab.KINDS), contract - set(_vocab.KINDS)


def test_every_kind_is_in_the_contract_or_documented_for_users() -> None:
    # The contract lists the kinds a consumer can count on ("at least"); a kind beyond it
    # (patch-dormant) must still be explained where users read what a kind means.
    beyond = set(_vocab.KINDS) - _contract_kinds()
    assert beyond <= _quickstart_kinds(), beyond - _quickstart_kinds()
    assert set(_vocab.KINDS) <= _contract_kinds() | _quickstart_kinds()


def test_every_kind_has_a_fix() -> None:
    fixed = {key.partition(":")[0] for key in leak.FIXES}
    assert set(_vocab.KINDS) <= fixed, set(_vocab.KINDS) - fixed


def test_tuples_follow_the_literals() -> None:
    assert get_args(_vocab.Kind) == _vocab.KINDS
    assert get_args(_vocab.Op) == _vocab.OPS
    assert get_args(_vocab.SourceName) == _vocab.SOURCE_NAMES
    for names in (_vocab.KINDS, _vocab.OPS, _vocab.SOURCE_NAMES):
        assert len(set(names)) == len(names)


def test_every_source_is_named_in_the_vocabulary() -> None:
    names = {source.name for source in default_sources()}
    assert names <= set(_vocab.SOURCE_NAMES), names - set(_vocab.SOURCE_NAMES)
    assert "scan" in _vocab.SOURCE_NAMES  # the watch source's boundary comparison


def test_one_definition_site() -> None:
    # The old names stay importable, and are the very same objects.
    from patchtrace.ledger import NOTHING, UNKNOWN

    ledger = sys.modules["patchtrace.ledger"]
    assert NOTHING is _vocab.NOTHING
    assert UNKNOWN is _vocab.UNKNOWN
    assert leak.KINDS is _vocab.KINDS
    assert values._ATOMS is _vocab.ATOMS
    assert ledger._ATOMS is _vocab.ATOMS  # type: ignore[attr-defined]
    assert leak._ATOMS is _vocab.ATOMS


def test_atoms_are_exact_types() -> None:
    class MyInt(int):
        def __eq__(self, other: object) -> bool:  # user code: never trusted
            return True

        __hash__ = int.__hash__

    assert type(None) in _vocab.ATOMS  # sys.modules[name] = None is kept
    assert type(MyInt(1)) not in _vocab.ATOMS
    assert not values.same_value(MyInt(1), MyInt(2))
    assert values.same_value(1, 1)


def test_sentinels_say_what_they_are() -> None:
    assert repr(_vocab.NOTHING) == "<nothing>"
    assert repr(_vocab.UNKNOWN) == "<unknown>"
    assert _vocab.NOTHING is not _vocab.UNKNOWN


def test_importing_the_vocabulary_is_light() -> None:
    # Loaded on its own (not through the package): it adds no module but itself.
    path = str(ROOT / "patchtrace" / "_vocab.py")
    code = (
        "import __future__, importlib.util, sys, typing\n"
        f"spec = importlib.util.spec_from_file_location('vocab', {path!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "before = set(sys.modules)\n"
        "spec.loader.exec_module(module)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PATCHTRACE": ""}).stdout
    assert out.strip() == "[]"
