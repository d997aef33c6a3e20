"""The fix machinery on source strings and hand-built leaks: refusals, formatting, the
reproduce command, diffs, GitHub workflow commands, baselines."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from patchtrace.fix import _baseline, _diff, reproduce, suggest
from patchtrace.leak import Leak
from patchtrace.render import github
from patchtrace.stack import Frame

pytest.importorskip("libcst")


def _leak(kind: str, target: str | None, name: str | None, line: int | None,
          **extra: Any) -> dict[str, Any]:
    where = {"file": "test_x.py", "line": line, "function": "f"} if line else None
    return {"id": "L1", "kind": kind, "polluter": "test_x.py::test_a", "target": target,
            "name": name, "where": where, "victims": [], **extra}


def _suggest(tmp_path: Path, source: str, leak: dict[str, Any]) -> tuple[str | None, str]:
    (tmp_path / "test_x.py").write_text(textwrap.dedent(source))
    return suggest(leak, str(tmp_path))


# -- refusals: no safe rewrite, and the reason says what to do -----------------------------------
REFUSALS = [
    ("module-level", """\
        import os
        os.environ["APP"] = "1"
        """, _leak("binding-changed", "os.environ", "APP", 2), "module level"),
    ("mock-survived", """\
        def test_a():
            pass
        """, _leak("mock-survived", None, None, 2), "surviving mock"),
    ("helper-function", """\
        import os
        def configure():
            os.environ["APP"] = "1"
        def test_a():
            configure()
        """, _leak("binding-changed", "os.environ", "APP", 3), "neither a test nor a fixture"),
    ("patch-in-nested-block", """\
        from unittest import mock
        def test_a():
            if True:
                mock.patch("pkg.mod.send").start()
        """, _leak("patch-not-stopped", "module:pkg.mod", "send", 4), "nested block"),
    ("env-in-wide-fixture", """\
        import os
        import pytest
        @pytest.fixture(scope="session")
        def env():
            os.environ["APP"] = "1"
            yield
        """, _leak("binding-changed", "os.environ", "APP", 5), "session-scoped fixture"),
    ("params-with-defaults", """\
        import os
        def test_a(x=1):
            os.environ["APP"] = "1"
        """, _leak("binding-changed", "os.environ", "APP", 3), "parameters with defaults"),
    ("two-statements-on-a-line", """\
        import os
        def test_a():
            os.environ["APP"] = "1"; x = 2
        """, _leak("binding-changed", "os.environ", "APP", 3), "several statements"),
    ("class-of-unknown-bases", """\
        import os
        from base import Base
        class TestA(Base):
            def test_a(self):
                os.environ["APP"] = "1"
        """, _leak("binding-changed", "os.environ", "APP", 5), "cannot tell whether TestA"),
    ("sys-path-append-in-pytest", """\
        import sys
        def test_a():
            sys.path.append("/x")
        """, _leak("resource-changed", "sys.path", "'/x'", 3), "only sys.path.insert(0, p)"),
    ("not-a-plain-write", """\
        import os
        def test_a():
            os.environ.setdefault("APP", "1")
        """, _leak("binding-changed", "os.environ", "APP", 3), "not a plain write"),
    ("patch-started-after-yield", """\
        import pytest
        from unittest import mock
        @pytest.fixture
        def fake():
            yield
            mock.patch("pkg.mod.send").start()
        """, _leak("patch-not-stopped", "module:pkg.mod", "send", 6), "after the fixture's yield"),
    ("unknown-kind", """\
        import signal
        def test_a():
            signal.signal(signal.SIGUSR1, print)
        """, _leak("resource-changed", "signal", "SIGUSR1", 3), "no mechanical rewrite"),
    ("secret-value", """\
        import os
        def test_a():
            os.environ["API_TOKEN"] = "hunter2"
        """, _leak("binding-changed", "os.environ", "API_TOKEN", 3), "looks secret"),
    ("no-line", "def test_a():\n    pass\n", _leak("binding-changed", "os.environ", "APP", None),
     "not known"),
]


@pytest.mark.parametrize(("source", "leak", "reason"), [r[1:] for r in REFUSALS],
                         ids=[r[0] for r in REFUSALS])
def test_no_safe_rewrite_is_none_with_a_reason(tmp_path: Path, source: str,
                                               leak: dict[str, Any], reason: str) -> None:
    patch, why = _suggest(tmp_path, source, leak)
    assert patch is None
    assert reason in why


def test_a_refusal_has_a_twin_that_is_rewritten(tmp_path: Path) -> None:
    """The control for the refusals: the same write inside a test is rewritten."""
    patch, why = _suggest(tmp_path, """\
        import os
        def test_a():
            os.environ["APP"] = "1"
        """, _leak("binding-changed", "os.environ", "APP", 3))
    assert patch is not None and why == ""
    assert '+    monkeypatch.setenv("APP", "1")' in patch.splitlines()


def test_without_libcst_there_is_no_patch_and_nothing_breaks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libcst", None)  # import libcst -> ImportError
    patch, why = _suggest(tmp_path, "import os\ndef test_a():\n    os.environ['A'] = '1'\n",
                          _leak("binding-changed", "os.environ", "A", 3))
    assert patch is None and "patchtrace[fix]" in why


def test_a_secret_line_is_suggested_only_when_secrets_are_shown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")  # the control of the refusal above
    patch, _ = _suggest(tmp_path, 'import os\ndef test_a():\n    os.environ["API_TOKEN"] = "x"\n',
                        _leak("binding-changed", "os.environ", "API_TOKEN", 3))
    assert patch is not None and '+    monkeypatch.setenv("API_TOKEN", "x")' in patch


def test_a_missing_file_is_no_patch(tmp_path: Path) -> None:
    patch, why = suggest(_leak("binding-changed", "os.environ", "APP", 3), str(tmp_path))
    assert patch is None and why == "cannot read test_x.py"


# -- what a rewrite keeps ------------------------------------------------------------------------
def test_a_rewrite_keeps_comments_and_formatting_around_it(tmp_path: Path) -> None:
    source = """\
        import os   # odd   spacing kept


        def test_a( tmp_path ):
            # set the mode
            os.environ["APP"] = str(tmp_path)  # trailing comment
            assert  os.environ["APP"]   # more spacing
        """
    patch, _ = _suggest(tmp_path, source, _leak("binding-changed", "os.environ", "APP", 6))
    assert patch is not None
    new = _diff.apply(patch, textwrap.dedent(source))
    assert new == textwrap.dedent("""\
        import os   # odd   spacing kept


        def test_a( tmp_path, monkeypatch ):
            # set the mode
            monkeypatch.setenv("APP", str(tmp_path))  # trailing comment
            assert  os.environ["APP"]   # more spacing
        """)


def test_a_unittest_rewrite_adds_the_mock_import_it_needs(tmp_path: Path) -> None:
    source = """\
        import os
        import unittest


        class TestA(unittest.TestCase):
            def test_a(self):
                del os.environ["HOME"]
        """
    patch, _ = _suggest(tmp_path, source, _leak("binding-changed", "os.environ", "HOME", 7))
    assert patch is not None
    assert _diff.apply(patch, textwrap.dedent(source)) == textwrap.dedent("""\
        import os
        import unittest
        from unittest import mock


        class TestA(unittest.TestCase):
            def test_a(self):
                patcher = mock.patch.dict(os.environ)
                patcher.start()
                self.addCleanup(patcher.stop)
                del os.environ["HOME"]
        """)


def test_a_fixture_without_yield_yields_then_stops(tmp_path: Path) -> None:
    source = """\
        import pytest
        from unittest import mock


        @pytest.fixture
        def fake():
            p = mock.patch("pkg.mod.send")
            p.start()
            return p
        """
    patch, _ = _suggest(tmp_path, source, _leak("patch-not-stopped", "module:pkg.mod", "send", 8))
    assert patch is not None
    assert _diff.apply(patch, textwrap.dedent(source)).endswith(
        "    p.start()\n    yield p\n    p.stop()\n")


def test_a_missing_attribute_is_set_without_raising(tmp_path: Path) -> None:
    patch, _ = _suggest(tmp_path, "from pkg import mod\ndef test_a():\n    mod.NEW = 1\n",
                        _leak("binding-changed", "module:pkg.mod", "NEW", 3,
                              before={"type": "<missing>", "repr": "<missing>"}))
    assert patch is not None
    assert '+    monkeypatch.setattr(mod, "NEW", 1, raising=False)' in patch.splitlines()


# -- reproduce -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("polluter", "victims", "expected"), [
    ("t/test_a.py::TestX::test_y", ["t/test_b.py::test_z", "t/test_c.py::test_w"],
     "python -m pytest -p no:randomly -p no:cacheprovider 't/test_a.py::TestX::test_y' "
     "'t/test_b.py::test_z'"),
    ("<collection>", ["t/test_b.py::test_z"],
     "python -m pytest -p no:randomly -p no:cacheprovider 't/test_b.py::test_z'"),
    ("t/test_a.py::test_y[it's]", ["t/test_b.py::test_z"],
     "python -m pytest -p no:randomly -p no:cacheprovider 't/test_a.py::test_y[it'\"'\"'s]' "
     "'t/test_b.py::test_z'"),
    ("t/test_a.py::test_y", [], None),
])
def test_reproduce_runs_the_polluter_then_the_first_victim(
        polluter: str, victims: list[str], expected: str | None) -> None:
    assert reproduce({"polluter": polluter, "victims": victims}) == expected
    if expected is not None:
        import shlex

        assert shlex.split(expected)[7:] == ([] if polluter.startswith("<") else [polluter]) \
            + victims[:1]


# -- diffs ---------------------------------------------------------------------------------------
def test_a_diff_applies_where_earlier_edits_moved_its_lines() -> None:
    old = "".join(f"line {i}\n" for i in range(20))
    new = old.replace("line 10\n", "line ten\n")
    patch = _diff.make(old, new, "f.py")
    moved = "extra\nextra\n" + old
    assert _diff.apply(patch, moved) == "extra\nextra\n" + new
    with pytest.raises(_diff.DiffError):
        _diff.apply(patch, old.replace("line 9\n", "changed\n"))  # its context changed
    assert _diff.files_of(patch) == ["f.py"]


def test_a_diff_of_a_file_without_a_final_newline_round_trips() -> None:
    old, new = "a\nb", "a\nc"
    patch = _diff.make(old, new, "f.py")
    assert "\\ No newline at end of file" in patch
    assert _diff.apply(patch, old) == new


# -- GitHub workflow commands --------------------------------------------------------------------
def test_github_annotation_is_escaped_byte_for_byte() -> None:
    leak = Leak("patch-not-stopped", "t.py::test_a", "call", "module:pkg.mod", "send",
                where=Frame("tests/a,b:c.py", 12, "test_a"),
                desc="patch('pkg.mod.send', new='100%\r\noff')")
    leak.id = "L3"
    assert github.annotation(leak, strict=False) == (
        "::warning file=tests/a%2Cb%3Ac.py,line=12,title=patchtrace L3 patch-not-stopped::"
        "patch('pkg.mod.send', new='100%25%0D%0Aoff') started at tests/a,b:c.py:12 was never "
        "stopped; stop it, or use it as a context manager / the mocker fixture")
    assert github.annotation(leak, strict=True).startswith("::error file=tests/a%2Cb%3Ac.py,")
    leak.known = True  # a known leak never fails strict mode: a warning, saying so
    assert github.annotation(leak, strict=True).startswith("::warning ")
    assert github.annotation(leak, strict=True).endswith(" (known: in the baseline)")
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.enabled({"GITHUB_ACTIONS": "true"})
    assert not github.enabled({"GITHUB_ACTIONS": "false"}) and not github.enabled({})


def test_github_annotation_without_a_line_has_no_file() -> None:
    leak = Leak("resource-changed", "t.py::test_a", "call", "sys.path", "'/x'")
    leak.id = "L1"
    assert github.annotation(leak, strict=False).startswith(
        "::warning title=patchtrace L1 resource-changed::")


# -- baselines -----------------------------------------------------------------------------------
def test_baseline_entries_ignore_ids_lines_and_reprs(tmp_path: Path) -> None:
    first = _leak("binding-changed", "os.environ", "APP", 3, value={"repr": "'0x1'"})
    moved = dict(_leak("binding-changed", "os.environ", "APP", 30, value={"repr": "'0x2'"}),
                 id="L9")
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(_baseline.build([first, first])))
    data = json.loads(path.read_text())
    assert data == {"schema": "patchtrace-baseline/1", "entries": [
        {"polluter": "test_x.py::test_a", "kind": "binding-changed", "target": "os.environ",
         "name": "APP"}]}
    entries = _baseline.load(str(path))
    leaks = [Leak.from_json(moved), Leak.from_json(dict(moved, name="OTHER"))]
    _baseline.mark(leaks, entries)
    assert [leak.known for leak in leaks] == [True, False]


@pytest.mark.parametrize(("content", "reason"), [
    (None, "cannot read the baseline"), ("{", "is not JSON"),
    ('{"schema": "patchtrace-report/1"}', "is not a patchtrace baseline")])
def test_an_unreadable_baseline_says_why(tmp_path: Path, content: str | None,
                                         reason: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(_baseline.BaselineError, match=reason):
        _baseline.load(str(path))


def test_leak_json_round_trips_the_new_fields() -> None:
    leak = Leak("binding-changed", "t.py::test_a", "call", "os.environ", "APP")
    data = leak.to_json()
    assert (data["known"], data["reproduce"], data["suggested_patch"], data["verified"]) == \
        (False, None, None, None)
    leak.known, leak.reproduce, leak.suggested_patch, leak.verified = True, "cmd", "diff", False
    back = Leak.from_json(leak.to_json())
    assert (back.known, back.reproduce, back.suggested_patch, back.verified) == \
        (True, "cmd", "diff", False)


# -- outside pytest: the .pth path writes the same fields and commands ----------------------------
def test_a_traced_script_gets_workflow_commands_and_its_baseline(tmp_path: Path) -> None:
    from .conftest import load_report, run_python

    (tmp_path / "helper_mod.py").write_text("def func():\n    return 1\n")
    code = "from unittest import mock\nmock.patch('helper_mod.func').start()\n"
    report = tmp_path / "out.json"
    env = {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report), "GITHUB_ACTIONS": "true"}
    first = run_python(code, tmp_path, env)
    commands = [line for line in first.stderr.splitlines() if line.startswith("::")]
    assert commands == [
        "::warning file=script.py,line=2,title=patchtrace L1 patch-not-stopped::"
        "patch('helper_mod.func') started at script.py:2 was never stopped; stop it, or use it "
        "as a context manager / the mocker fixture"], first.stderr
    [leak] = load_report(report)["leaks"]
    assert leak["known"] is False and leak["reproduce"] is None
    assert leak["suggested_patch"] is None  # module level: no safe rewrite
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(_baseline.build([leak])))
    again = run_python(code, tmp_path, {**env, "PATCHTRACE_BASELINE": str(baseline)})
    assert load_report(report)["leaks"][0]["known"] is True, again.stderr
    assert "(known: in the baseline)" in again.stderr
    missing = run_python(code, tmp_path, {**env, "PATCHTRACE_BASELINE": "nope.json"})
    assert "patchtrace: cannot read the baseline nope.json (No such file or directory); " \
        "every leak counts as new" in missing.stderr.splitlines()
    assert load_report(report)["leaks"][0]["known"] is False
