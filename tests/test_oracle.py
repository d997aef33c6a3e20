"""The source oracle (3.10/3.11): which files it parses, and what it reads them with."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from unittest import mock

import pytest

from patchtrace.analysis import oracle


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    oracle._cache.clear()
    oracle._words_cache.clear()


def _files(tmp_path: Path) -> list[str]:
    (tmp_path / "conftest.py").write_text("import shop\nshop.other = 1\n")
    (tmp_path / "test_a.py").write_text(
        "import shop\n\nshop.TIMEOUT = 5\n\ndef test_a():\n    pass\n")
    return [str(tmp_path / "conftest.py"), str(tmp_path / "test_a.py")]


def test_a_file_that_never_spells_the_name_is_not_parsed(tmp_path: Path) -> None:
    files = _files(tmp_path)
    found = oracle.find_module_store(files, str(tmp_path), "TIMEOUT", target="module:shop")
    # the control: the store is found, in the file that spells it
    assert found is not None and (found.file, found.line) == ("test_a.py", 3)
    # the conftest, which does not name TIMEOUT, was read for its words but never parsed
    assert files[0] not in oracle._cache and files[1] in oracle._cache


def test_a_name_that_is_not_an_identifier_is_looked_for_by_parsing(tmp_path: Path) -> None:
    path = tmp_path / "conftest.py"
    path.write_text('import sys\nsys.modules["pkg.sub"] = None\n')
    assert oracle._mentions(str(path), "pkg.sub")  # no word test for a dotted key
    found = oracle.find_module_store([str(path)], str(tmp_path), "pkg.sub", subscript=True,
                                     target="sys.modules")
    assert found is not None and found.line == 2
    assert not oracle._mentions(str(path), "absent")  # the control: a word it does not spell


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    files = _files(tmp_path)
    assert oracle.find_module_store(files[:1], str(tmp_path), "TIMEOUT") is None
    Path(files[0]).write_text("import shop\n\n\nshop.TIMEOUT = 7\n")
    os.utime(files[0], (1, 1))  # another mtime, whatever the clock's resolution
    found = oracle.find_module_store(files[:1], str(tmp_path), "TIMEOUT")
    assert found is not None and found.line == 4


def test_the_oracle_reads_with_references_captured_at_start(tmp_path: Path) -> None:
    files = _files(tmp_path)
    left = mock.MagicMock(side_effect=AssertionError("the suite's open"))
    with mock.patch.object(builtins, "open", left), mock.patch("os.stat", left):
        found = oracle.find_module_store(files, str(tmp_path), "TIMEOUT")
    assert found is not None and found.line == 3
    assert not left.called
