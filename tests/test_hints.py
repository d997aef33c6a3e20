"""Patched in the wrong place: the hint in a failing test's report (issue 18).

The holder search is driven on hand-built modules; the plugin on small suites in real
pytest subprocesses, each case with a twin in the same run that must not get a hint.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from patchtrace.analysis import hints as _hints
from patchtrace.ledger import Mutation, Scope
from patchtrace.stack import Stack
from patchtrace.values import identity_key

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


# -- the search, on hand-built modules ------------------------------------------------------------
@pytest.fixture
def handmade(tmp_path: Path) -> Iterator[types.ModuleType]:
    """A project module (its file is under tmp_path) binding one function in every way;
    no other module binds it (``module.alias`` is the function)."""

    def original() -> str:
        return "real"

    module = types.ModuleType("handmade_pkg.client")
    module.__file__ = str(tmp_path / "handmade_pkg" / "client.py")
    module.__dict__["original"] = original
    exec(compile("""
alias = original

class Client:
    send = original
    static = staticmethod(original)

    class Inner:
        deep = original

    def method(self, hook=original):
        return hook()

def stamp(clock=original, *, later=original):
    return clock()

unrelated = len
""", module.__file__, "exec"), module.__dict__)
    del module.__dict__["original"]
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        del sys.modules[module.__name__]


def labels(holders: list[_hints.Holder]) -> set[str]:
    return {holder.label for holder in holders}


def test_find_holders_sees_modules_classes_and_defaults(handmade: types.ModuleType) -> None:
    [found, other] = _hints.find_holders([handmade.alias, len])
    assert labels(found) >= {
        "module:handmade_pkg.client alias",
        "class:handmade_pkg.client.Client send",
        "class:handmade_pkg.client.Client static",  # through the staticmethod
        "class:handmade_pkg.client.Client.Inner deep",
        "default:handmade_pkg.client.Client.method hook",
        "default:handmade_pkg.client.stamp clock",
        "default:handmade_pkg.client.stamp later",
    }
    assert all(holder.project for holder in found if "handmade" in holder.owner)
    # len lives in builtins (no file): hidden unless asked for everywhere
    assert labels(other) == {"module:handmade_pkg.client unrelated"}
    [everywhere] = _hints.find_holders([len], everywhere=True)
    assert "module:builtins len" in labels(everywhere)


def test_find_holders_everywhere_skips_patchtrace_itself() -> None:
    from patchtrace.debugger import _context

    assert _context._getcwd is os.getcwd  # ours holds it (taken at start)...
    [found] = _hints.find_holders([os.getcwd], everywhere=True)
    assert {"module:os getcwd", "module:posix getcwd"} <= labels(found)
    assert not [h for h in found if h.owner.startswith("patchtrace")], found  # ...never listed


def test_library_modules_are_searched_whole_only_when_reached(tmp_path: Path) -> None:
    def original() -> str:
        return "real"

    library = types.ModuleType("handlib.mod")
    library.__file__ = str(tmp_path / "site-packages" / "handlib" / "mod.py")
    library.__dict__.update(original=original, renamed=original)
    sys.modules[library.__name__] = library
    asked: list[frozenset[str]] = []

    def nothing_reached(packages: frozenset[str]) -> set[int]:
        asked.append(packages)
        return set()

    try:
        [by_name] = _hints.find_holders([original], names=["original"],
                                        reached=nothing_reached)
        [whole] = _hints.find_holders([original], names=["original"],
                                      reached=lambda packages: {identity_key(library)})
        [unrestricted] = _hints.find_holders([original])
    finally:
        del sys.modules[library.__name__]
    assert labels(by_name) == {"module:handlib.mod original"}
    assert not by_name[0].project
    assert asked == [frozenset({"handlib"})]
    assert labels(whole) == labels(unrestricted) == {"module:handlib.mod original",
                                                     "module:handlib.mod renamed"}


def test_find_holders_never_touches_a_mock(handmade: types.ModuleType) -> None:
    fake = mock.MagicMock()
    handmade.__dict__["fake"] = fake
    sys.modules["handmade_fake_module"] = fake  # type: ignore[assignment]
    try:
        [found] = _hints.find_holders([fake])
    finally:
        del sys.modules["handmade_fake_module"]
    assert labels(found) == {"module:handmade_pkg.client fake"}
    assert not fake._mock_children, "an attribute read grew a child"
    assert fake.mock_calls == []


def test_find_holders_keeps_nothing_alive(handmade: types.ModuleType) -> None:
    def victim() -> None:
        pass

    handmade.__dict__["victim"] = victim
    ref = weakref.ref(victim)
    found = _hints.find_holders([victim])
    assert labels(found[0]) == {"module:handmade_pkg.client victim"}
    del handmade.__dict__["victim"], victim
    gc.collect()
    assert ref() is None


def test_mock_calls_reads_raw_state() -> None:
    plain = mock.MagicMock()
    assert _hints.mock_calls(plain) == 0
    plain.child.grandchild()
    assert _hints.mock_calls(plain) == 1  # a child's call counts for its parent
    spec = mock.create_autospec(time.time)
    assert _hints.mock_calls(spec) == 0
    spec()
    assert _hints.mock_calls(spec) == 1
    assert _hints.mock_calls(len) is None
    before = dict(plain._mock_children)
    _hints.mock_calls(plain)
    assert dict(plain._mock_children) == before


def _record(target: str, name: str, before: object, after: object, test: str = "t::x",
            desc: str | None = None) -> Mutation:
    return Mutation(1, "patch", "mock", target, name, before, after, Stack(()),
                    Scope(test, "call"), token=1, desc=desc)


def test_hints_for_a_hand_built_record(handmade: types.ModuleType) -> None:
    _original = handmade.alias
    unused = mock.MagicMock()
    record = _record("module:os", "getcwd", _original, unused, desc="patch('os.getcwd')")
    [hint] = _hints.hints_for_failure([record], "t::x", None)
    assert hint.message.startswith("patch('os.getcwd') was never used; ")
    assert "handmade_pkg.client.alias still holds the original" in hint.message
    assert hint.to_json()["patch"] == {"file": None, "line": None, "target": "module:os",
                                       "name": "getcwd"}
    # twins: the same patch, used; another test's record; a patch of the holder itself
    unused()
    assert _hints.hints_for_failure([record], "t::x", None) == []
    assert _hints.hints_for_failure(
        [_record("module:os", "getcwd", _original, mock.MagicMock(), test="t::other")],
        "t::x", None) == []
    fresh = mock.MagicMock()
    both = [_record("module:os", "getcwd", _original, fresh)]
    [hint] = _hints.hints_for_failure(both, "t::x", None)
    assert "module:handmade_pkg.client alias" in hint.holders
    both.append(_record("module:handmade_pkg.client", "alias", _original, mock.MagicMock()))
    [hint] = _hints.hints_for_failure(both, "t::x", None)
    assert "module:handmade_pkg.client alias" not in hint.holders


def test_detector_scope_mark_is_where_the_current_test_began() -> None:
    from patchtrace import _tracer
    from patchtrace.boundary import Detector
    from patchtrace.config import Config

    tracer = _tracer.start(Config())
    detector = Detector(tracer)
    try:
        tracer.scope = Scope("t::before", "call")
        with mock.patch("os.sep", "before"):
            pass
        detector.begin()
        mark = detector.scope_mark()
        assert mark == len(tracer.ledger) > 0  # the earlier test's records are behind it
        tracer.scope = Scope("t::x", "call")
        with mock.patch("os.sep", "mine"):
            pass
        assert {m.scope.test for m in tracer.ledger.since(mark)} == {"t::x"}
        assert detector.scope_mark() == mark  # until the next boundary
        detector.end(tracer.scope)
        assert detector.scope_mark() == len(tracer.ledger) > mark
    finally:
        detector.close()
        tracer.stop()


# -- the plugin, end to end -----------------------------------------------------------------------
PKG = {
    "pkg/__init__.py": "",
    "pkg/client.py": """
from os import getcwd

def where():
    return getcwd()
""",
    "pkg/util.py": """
def send(*args):
    return "real"

def lonely():
    return "real"
""",
    "pkg/api.py": """
from pkg import util

class Client:
    def go(self):
        return self.send()

Client.send = util.send
""",
    "pkg/timing.py": """
import time

def stamp(clock=time.time):
    return clock()
""",
    "pkg/files.py": """
_open = open

def read(path):
    with _open(path) as handle:
        return handle.read()
""",
}

TESTS = """
import builtins
from unittest import mock

import pkg.api
import pkg.client
import pkg.files
import pkg.timing
import pkg.util


def test_from_import():
    with mock.patch("os.getcwd", return_value="/fake"):
        assert pkg.client.where() == "/fake"


def test_class_attribute():
    with mock.patch("pkg.util.send", return_value="fake"):
        assert pkg.api.Client().go() == "fake"


@mock.patch("time.time", return_value=5.0)
def test_default_argument(fake_time):
    assert pkg.timing.stamp() == 5.0


def test_own_name_for_open():
    with mock.patch.object(builtins, "open", mock.mock_open(read_data="fake")):
        assert pkg.files.read("no-such-file.txt") == "fake"


def test_monkeypatch_value(monkeypatch):
    monkeypatch.setattr("os.getcwd", lambda: "/fake")
    assert pkg.client.where() == "/fake"


def test_monkeypatch_mock(monkeypatch):
    monkeypatch.setattr("os.getcwd", mock.Mock(return_value="/fake"))
    assert pkg.client.where() == "/fake"


def test_mocker(mocker):
    mocker.patch("os.getcwd", return_value="/fake")
    assert pkg.client.where() == "/fake"


def test_used_twin():
    with mock.patch("pkg.client.getcwd", return_value="/fake"):
        assert pkg.client.where() == "/elsewhere"


def test_unrelated_twin():
    with mock.patch("pkg.util.lonely", return_value="fake"):
        assert 1 == 2


def test_passing_twin():
    with mock.patch("os.getcwd", return_value="/fake-too"):
        assert pkg.client.where() != "/fake-too"
"""



def _line(snippet: str) -> int:
    """The line of ``snippet`` in test_it.py (pytester strips the leading blank line)."""
    [number] = [n for n, text in enumerate(TESTS.strip().splitlines(), 1) if snippet in text]
    return number


HELD = "{} still holds the original — patch '{}' instead"
FROM_IMPORT = _line('mock.patch("os.getcwd", return_value="/fake")')
OPEN = _line('builtins, "open"')
EXPECTED = {
    "test_from_import": (
        "module:os", "getcwd", "module:pkg.client getcwd",
        f"patch('os.getcwd') at test_it.py:{FROM_IMPORT} was never "
        "used; " + HELD.format("pkg.client.getcwd", "pkg.client.getcwd")),
    "test_class_attribute": (
        "module:pkg.util", "send", "class:pkg.api.Client send",
        f"patch('pkg.util.send') at test_it.py:{_line('util.send')} was never used; "
        + HELD.format("pkg.api.Client.send", "pkg.api.Client.send")),
    "test_default_argument": (
        "module:time", "time", "default:pkg.timing.stamp clock",
        f"patch('time.time') (a decorator of the test at test_it.py:{_line('time.time')}) "
        "was never used; the default clock= of pkg.timing.stamp still holds the original "
        "(bound when the function was defined) — pass clock= explicitly, or "
        "patch.object(pkg.timing.stamp, '__defaults__', ...)"),
    "test_own_name_for_open": (
        "builtins", "open", "module:pkg.files _open",
        f"patch.object(builtins, 'open') at test_it.py:{OPEN} was "
        "never used; " + HELD.format("pkg.files._open", "pkg.files._open")),
    "test_monkeypatch_value": (
        "module:os", "getcwd", "module:pkg.client getcwd",
        f"monkeypatch.setattr(os.getcwd) at test_it.py:{_line('lambda')} is not what the "
        "failing code reads; " + HELD.format("pkg.client.getcwd", "pkg.client.getcwd")),
    "test_monkeypatch_mock": (
        "module:os", "getcwd", "module:pkg.client getcwd",
        f"monkeypatch.setattr(os.getcwd) at test_it.py:{_line('mock.Mock(')} was never used; "
        + HELD.format("pkg.client.getcwd", "pkg.client.getcwd")),
    "test_mocker": (
        "module:os", "getcwd", "module:pkg.client getcwd",
        f"patch('os.getcwd') at test_it.py:{_line('mocker.patch')} was never used; "
        + HELD.format("pkg.client.getcwd", "pkg.client.getcwd")),
}
TWINS = ("test_used_twin", "test_unrelated_twin", "test_passing_twin")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    return package_suite(pytester, PKG)


def _hints_by_test(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for hint in report["hints"]:
        out.setdefault(hint["test"].split("::")[-1], []).append(hint)
    return out


def _failure_reports(out: str) -> dict[str, str]:
    """Each failing test's report in pytest's FAILURES block, by test name."""
    block = out.partition("= FAILURES =")[2].partition("short test summary info")[0]
    parts = re.split(r"_{3,} (test_\w+) _{3,}", block)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _check(result: pytest.RunResult, report: dict[str, Any]) -> None:
    result.assert_outcomes(passed=1, failed=9)
    found = _hints_by_test(report)
    assert set(found) == set(EXPECTED), found  # no twin among them
    for test, (target, name, holder, message) in EXPECTED.items():
        [hint] = found[test]
        assert hint["kind"] == "patch-not-used"
        assert hint["patch"]["file"] == "test_it.py"
        assert (hint["patch"]["target"], hint["patch"]["name"]) == (target, name)
        assert hint["holders"][0] == holder, hint
        assert hint["message"] == message


def _summary_hints(out: str) -> list[str]:
    """The hint lines of the final terminal summary (after the short test summary)."""
    tail = out.rpartition("patchtrace: no leaks in")[2]
    lines = tail.splitlines()
    starts = [n for n, line in enumerate(lines) if line.startswith("patchtrace: ")
              and " hint" in line]
    if not starts:
        return []
    [start] = starts
    head = lines[start]
    if head.startswith("patchtrace: 1 hint: "):
        return [head[len("patchtrace: 1 hint: "):]]
    count = int(head.split()[1])
    assert head == f"patchtrace: {count} hints:", head
    return [line.strip() for line in lines[start + 1:start + 1 + count]]


def _html_hints(path: Path) -> list[str]:
    """The items of the HTML report's Hints section (tags dropped, entities decoded)."""
    import html

    text = path.read_text()
    if 'class="pt-hints"' not in text:
        return []
    section = text.partition('<section class="pt-hints">')[2].partition("</section>")[0]
    items = re.findall(r"<li[^>]*>(.*?)</li>", section, re.DOTALL)
    return [html.unescape(re.sub(r"<[^>]+>", " ", item)) for item in items]


def test_hint_in_the_failing_report_and_json(suite: pytest.Pytester, traced_env: Enable) -> None:
    html_path = suite.path / "report.html"
    report_path = traced_env(PATCHTRACE_HTML=str(html_path))
    suite.makepyfile(test_it=TESTS)
    result = suite.runpytest_subprocess(timeout=120)
    report = load_report(report_path)
    _check(result, report)
    out = result.stdout.str()
    # the final summary: one line per hint, as in the JSON
    assert _summary_hints(out) == [f"{h['test']}: {h['message']}" for h in report["hints"]]
    # the HTML report: the same hints, each with its holders
    items = _html_hints(html_path)
    assert len(items) == len(EXPECTED)
    for item, hint in zip(items, report["hints"], strict=True):
        assert hint["test"] in item and hint["message"] in item, item
        assert all(holder in item for holder in hint["holders"]), item
    reports = _failure_reports(out)
    assert set(reports) == {*EXPECTED, "test_used_twin", "test_unrelated_twin"}
    for test, (*_, message) in EXPECTED.items():
        section = reports[test].partition("patchtrace: patch not used")[2]
        assert section.split("\n")[1].strip() == message, reports[test]
    for twin in TWINS:
        assert "patch not used" not in reports.get(twin, ""), reports.get(twin)
    assert out.count("patchtrace: patch not used") == len(EXPECTED)


def test_no_hint_line_or_section_when_no_failing_test_got_one(suite: pytest.Pytester,
                                                               traced_env: Enable) -> None:
    html_path = suite.path / "report.html"
    report_path = traced_env(PATCHTRACE_HTML=str(html_path))
    suite.makepyfile(test_it=TESTS)
    result = suite.runpytest_subprocess("-k", "twin or test_from_import", timeout=120)
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    # the control (one hint) in the same run...
    [hint] = load_report(report_path)["hints"]
    assert _summary_hints(out) == [f"{hint['test']}: {hint['message']}"]
    assert len(_html_hints(html_path)) == 1
    # ...and its twin, the same run without it: no line, no section
    result = suite.runpytest_subprocess("-k", "twin", timeout=120)
    result.assert_outcomes(passed=1, failed=2)
    assert load_report(report_path)["hints"] == []
    assert " hint" not in result.stdout.str()
    assert "pt-hints\"" not in html_path.read_text().partition("</style>")[2]
    assert "patchtrace report" in html_path.read_text()


def test_hints_cross_the_xdist_hand_off(suite: pytest.Pytester, traced_env: Enable) -> None:
    pytest.importorskip("xdist")
    report_path = traced_env()
    suite.makepyfile(test_it=TESTS)
    result = suite.runpytest_subprocess("-p", "xdist", "-n", "2", timeout=180)
    _check(result, load_report(report_path))


def test_no_hint_without_tracing(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_it=TESTS)
    result = suite.runpytest_subprocess(timeout=120)
    result.assert_outcomes(passed=1, failed=9)
    assert "patch not used" not in result.stdout.str()


# -- the debugger ---------------------------------------------------------------------------------
DEBUGGED = """
from os import getcwd


def helper():
    return 1


def where():
    helper()
    return getcwd()
"""


def test_pt_patches_marks_the_mock_never_called_and_pt_holders(tmp_path: Path) -> None:
    (tmp_path / "client.py").write_text(DEBUGGED)
    (tmp_path / "test_it.py").write_text("""
import client


def test_fails(mocker):
    used = mocker.patch("client.helper", return_value=2)
    fake = mocker.patch("os.getcwd", return_value="/fake")
    assert client.where() == "/fake"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PATCHTRACE", "PYTEST_"))}
    env.update(PATCHTRACE="1", PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--pdb"],
        cwd=tmp_path, input="pt patches\npt holders fake\npt holders client.helper\ncontinue\n",
        env=env, capture_output=True, text=True, timeout=120)
    out = result.stdout
    patches = out.split("(Pdb) ")[1]
    # the unused mock is marked, with where the original still is; the used one is not
    assert patches.count("mock: never called") == 1, patches
    assert "mock: never called; the original is still bound to client.getcwd (pt holders)" \
        in patches
    assert patches.index("patch('client.helper')") < patches.index("patch('os.getcwd')") \
        < patches.index("mock: never called")
    holders_of_mock = out.split("(Pdb) ")[2]
    assert "1 binding of fake (<MagicMock name='getcwd'" in holders_of_mock
    assert "  module:os getcwd" in holders_of_mock
    # (relative to where the run started, although os.getcwd is the mock here)
    assert "it replaced os.getcwd (patch('os.getcwd') at test_it.py:7 in test_fails); " \
        "the original <built-in function getcwd>:" in holders_of_mock
    assert "  module:client getcwd  (project)" in holders_of_mock
    assert "  module:posix getcwd" in holders_of_mock
    # the twin: what is bound once, by the mock of a patch that was used
    holders_of_used = out.split("(Pdb) ")[3]
    assert "1 binding of client.helper (<MagicMock name='helper'" in holders_of_used
    assert "  module:client helper  (project)" in holders_of_used
    assert "bound nowhere else in modules, classes or default arguments" in holders_of_used
    assert "1 failed" in out


def test_help_names_holders() -> None:
    from patchtrace.debugger import _commands

    assert "pt holders EXPR" in _commands._HELP
    assert "holders" in _commands._SUBCOMMANDS


# -- the docs -------------------------------------------------------------------------------------
DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_debugger_doc_has_a_row_for_every_subcommand() -> None:
    from patchtrace.debugger import _commands

    rows = [line for line in (DOCS / "debugger.md").read_text().splitlines()
            if line.startswith("| `pt ")]
    for sub in _commands._SUBCOMMANDS:
        assert [row for row in rows if row.startswith(f"| `pt {sub}")], sub
    [patches] = [row for row in rows if row.startswith("| `pt patches")]
    assert "mock: never called" in patches


def test_contract_copy_lists_every_top_level_field_of_the_json_report() -> None:
    from patchtrace.render import json as json_report

    text = (DOCS / "contract.md").read_text()
    example = json.loads(text.partition("```json\n")[2].partition("```")[0])
    built = json_report.build([], tests=0, mutations=0, hints=[])
    assert set(built) <= set(example), set(built) - set(example)
    for field in built:
        if field not in ("schema", "patchtrace", "python", "tests", "mutations", "leaks"):
            assert f"\n- `{field}`:" in text, field


# -- plain unittest -------------------------------------------------------------------------------
UNITTESTS = """\
import unittest
from unittest import mock

import pkg.client
import pkg.timing


class Hinted(unittest.TestCase):
    def test_from_import(self):
        with mock.patch("os.getcwd", return_value="/fake"):
            self.assertEqual(pkg.client.where(), "/fake")

    @mock.patch("time.time", return_value=5.0)
    def test_default_argument(self, fake_time):
        self.assertEqual(pkg.timing.stamp(), 5.0)


class Twins(unittest.TestCase):
    def test_used_twin(self):
        with mock.patch("pkg.client.getcwd", return_value="/fake"):
            self.assertEqual(pkg.client.where(), "/elsewhere")

    def test_passing_twin(self):
        with mock.patch("os.getcwd", return_value="/fake-too"):
            self.assertNotEqual(pkg.client.where(), "/fake-too")
"""


def _unittest_run(tmp_path: Path, *names: str) -> tuple[subprocess.CompletedProcess[str],
                                                         dict[str, Any]]:
    from .conftest import run_python

    for path in ("pkg/__init__.py", "pkg/client.py", "pkg/timing.py"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_text(PKG[path])
    (tmp_path / "test_ut.py").write_text(UNITTESTS)
    report = tmp_path / "out.json"
    report.unlink(missing_ok=True)
    result = run_python("", tmp_path, {"PATCHTRACE": "1", "PATCHTRACE_JSON": str(report),
                                       "PATCHTRACE_HTML": str(tmp_path / "out.html")},
                        args=["-m", "unittest", *names])
    return result, load_report(report)


def test_plain_unittest_gets_the_hint_on_stderr_and_in_the_json(tmp_path: Path) -> None:
    result, report = _unittest_run(tmp_path, "test_ut")
    assert "FAILED (failures=3)" in result.stderr, result.stderr
    line = UNITTESTS.splitlines().index(
        '        with mock.patch("os.getcwd", return_value="/fake"):') + 1
    decorator = UNITTESTS.splitlines().index('    @mock.patch("time.time", return_value=5.0)') + 1
    expected = {
        "test_ut.Hinted.test_from_import": (
            f"patch('os.getcwd') at test_ut.py:{line} was never used; "
            + HELD.format("pkg.client.getcwd", "pkg.client.getcwd"), "module:pkg.client getcwd"),
        "test_ut.Hinted.test_default_argument": (
            f"patch('time.time') (a decorator of the test at test_ut.py:{decorator}) was never "
            "used; the default clock= of pkg.timing.stamp still holds the original (bound when "
            "the function was defined) — pass clock= explicitly, or "
            "patch.object(pkg.timing.stamp, '__defaults__', ...)",
            "default:pkg.timing.stamp clock"),
    }
    hints = {hint["test"]: hint for hint in report["hints"]}
    assert set(hints) == set(expected), hints  # neither twin
    for test, (message, holder) in expected.items():
        assert hints[test]["message"] == message
        assert hints[test]["holders"][0] == holder
        assert hints[test]["kind"] == "patch-not-used"
        assert hints[test]["patch"]["file"] == "test_ut.py"
    lines = result.stderr.splitlines()
    at = lines.index("patchtrace: 2 hints:")
    assert sorted(lines[at + 1:at + 3]) == sorted(f"  {t}: {m}" for t, (m, _) in expected.items())
    assert report["leaks"] == []
    items = _html_hints(tmp_path / "out.html")
    assert len(items) == 2
    assert all(any(m in item for item in items) for m, _ in expected.values()), items


def test_plain_unittest_twin_whose_patch_was_used_gets_no_hint(tmp_path: Path) -> None:
    result, report = _unittest_run(tmp_path, "test_ut.Twins", "test_ut.Hinted.test_from_import")
    assert "FAILED (failures=2)" in result.stderr, result.stderr
    [hint] = report["hints"]  # the control, in the same run
    assert hint["test"] == "test_ut.Hinted.test_from_import"
    assert f"patchtrace: 1 hint: {hint['test']}: {hint['message']}" in result.stderr.splitlines()
    result, report = _unittest_run(tmp_path, "test_ut.Twins")
    assert "FAILED (failures=1)" in result.stderr, result.stderr
    assert report["hints"] == [] and report["tests"] == 2
    assert "hint" not in result.stderr
    assert _html_hints(tmp_path / "out.html") == []
