"""patchtrace.render.html: the self-contained HTML report."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from patchtrace.leak import Leak
from patchtrace.render import graph, html
from patchtrace.render import json as json_report
from patchtrace.stack import Frame
from patchtrace.values import MISSING, ValueSummary

PLANTED = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def parse(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    return parser


def leak(
    id: str, *, polluter: str = "tests/test_a.py::test_x", target: str | None = "module:pkg.mod",
    name: str | None = "func", value: ValueSummary | None = None, kind: str = "patch-not-stopped",
    alive_via: list[str] | None = None, victims: tuple[str, ...] = (), obj: object = None,
    frame: Frame | None = None,
) -> Leak:
    frame = frame or Frame("tests/test_a.py", 2, "test_x")
    value = value or ValueSummary("MagicMock", "<MagicMock id='1'>", True)
    made = Leak(kind, polluter, "call", target, name, where=frame, stack=[frame],
                before=MISSING, value=value,
                **({"obj": obj} if obj is not None else {}))
    made.id = id
    made.alive_via = alive_via
    made.victims = list(victims)
    return made


@pytest.fixture(autouse=True)
def _no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph, "_find_dot", lambda: None)
    monkeypatch.delenv("PATCHTRACE_SHOW_SECRETS", raising=False)


@pytest.fixture
def module() -> Iterator[types.ModuleType]:
    mod = types.ModuleType("pt_html_fixture")
    sys.modules[mod.__name__] = mod
    try:
        yield mod
    finally:
        sys.modules.pop(mod.__name__, None)
        mod.__dict__.clear()


def test_report_structure(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("import x\npatcher.start()  # the line\n")
    leaks = [
        leak("L1", alive_via=["module pkg.mod", "attribute func"], victims=("tests/t.py::v",)),
        leak("L2", polluter="tests/test_b.py::test_y", kind="binding-changed",
             target="os.environ", name="SHOP_MODE", value=ValueSummary("str", "'sandbox'", False)),
    ]
    path = tmp_path / "out" / "report.html"
    html.write(str(path), leaks, tests=12, mutations=34, extra={"randomly_seed": 42},
               rootdir=str(tmp_path))
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    tags = parse(text)
    assert len([t for t, _ in tags.tags if t == "svg"]) == 2  # one graph per leak
    assert len([t for t, _ in tags.tags if t == "section"]) == 2  # grouped by polluter
    assert len([t for t, a in tags.tags if t == "article"]) == 2
    assert any(t == "input" and a.get("id") == "pt-filter" for t, a in tags.tags)
    assert "patcher.start()  # the line" in text  # source read at render time
    assert ">12</b><span>tests" in text and ">34</b><span>mutations" in text
    assert "randomly_seed" in text
    assert "tests/t.py::v" in text
    assert "stop it, or use it as a context manager" in text
    assert "attribute func" in text


def test_self_contained() -> None:
    text = html.render([leak("L1", alive_via=["module pkg.mod", "attribute func"])],
                       tests=1, mutations=1)
    tags = parse(text)
    for tag, attrs in tags.tags:
        assert tag not in ("link", "iframe", "img"), tag
        for key in ("src", "href"):
            assert not (attrs.get(key) or "").startswith(("http", "//")), (tag, attrs)
    assert "@import" not in text
    assert not re.search(r"url\((?!#)", text)  # only in-document SVG references


def test_hostile_values_are_escaped(module: types.ModuleType) -> None:
    module.evil = object()
    leaks = [
        leak("L1", value=ValueSummary("MagicMock", f"<MagicMock name='{PLANTED}'>", True),
             alive_via=[f"module {PLANTED}", f"dict key '{PLANTED}'"],
             polluter=f"tests/test_a.py::test[{PLANTED}]", victims=(PLANTED,)),
        leak("L2", kind="binding-changed", target="os.environ", name="GREETING",
             value=ValueSummary("str", repr(PLANTED), False)),
        leak("L3", kind="binding-changed", target="module:pt_html_fixture", name=PLANTED,
             value=ValueSummary("object", PLANTED, False), obj=module.evil),
    ]
    text = html.render(leaks, tests=3, mutations=3)
    tags = parse(text)
    assert [t for t, _ in tags.tags].count("script") == 1  # ours, at the end
    assert not [t for t, _ in tags.tags if t == "img"]
    assert not any(k.startswith("on") for _, attrs in tags.tags for k in attrs)
    assert "document.title='pwned'" not in "".join(tags.script_text)
    assert "&lt;script&gt;document.title=" in text


def test_hints_section_only_when_there_are_hints() -> None:
    hint = {"test": f"test_it.py::test_x[{PLANTED}]", "kind": "patch-not-used",
            "message": f"patch('os.getcwd') at test_it.py:7 was never used; {PLANTED}",
            "patch": {"file": "test_it.py", "line": 7, "target": "module:os", "name": "getcwd"},
            "holders": ["module:pkg.client getcwd", f"module:{PLANTED} getcwd"]}
    text = html.render([], tests=1, mutations=1, hints=[hint])
    body = text.partition("</style>")[2]
    assert body.count('<section class="pt-hints">') == 1
    assert "Hints (1)" in body
    assert "<code>module:pkg.client getcwd</code>" in body
    tags = parse(text)  # escaped like everything else
    assert [t for t, _ in tags.tags].count("script") == 1
    assert not [t for t, _ in tags.tags if t == "img"]
    # the twin: no hints, no section (the same with the argument left out)
    for text in (html.render([], tests=1, mutations=1, hints=[]),
                 html.render([], tests=1, mutations=1)):
        assert "pt-hints" not in text.partition("</style>")[2]


def test_content_security_policy_allows_only_our_script() -> None:
    text = html.render([], tests=0, mutations=0)
    assert "script-src 'sha256-" in text
    assert "No leaks found in 0 tests" in text


def test_secrets_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = leak("L1", kind="binding-changed", target="os.environ", name="API_TOKEN",
                  value=ValueSummary("str", "'hunter2-secret'", False), obj="hunter2-secret")
    text = html.render([secret], tests=1, mutations=1)
    assert "hunter2" not in text
    assert "***" in text and "API_TOKEN" in text
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")
    assert "hunter2" in html.render([secret], tests=1, mutations=1)


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("nope")


def test_leak_whose_repr_raises(module: types.ModuleType) -> None:
    from patchtrace.values import summarize

    module.bad = BadRepr()
    made = leak("L1", kind="binding-changed", target="module:pt_html_fixture", name="bad",
                value=summarize(module.bad), obj=module.bad)
    text = html.render([made], tests=1, mutations=1)
    assert "repr raised ValueError" in text
    assert "<svg" in text


def test_from_saved_report(tmp_path: Path) -> None:
    leaks = [leak("L1", alive_via=["module shop.clients", "attribute client_for",
                                   "lru_cache storage of client_for"])]
    path = tmp_path / "r.json"
    json_report.write(str(path), json_report.build(leaks, tests=1, mutations=1))
    _, loaded = json_report.load(str(path))
    text = html.render(loaded, tests=1, mutations=1)
    assert "lru_cache storage of client_for" in text
    assert "<svg" in text


def test_graphs_capped() -> None:
    text = html.render([leak(f"L{i}") for i in range(3)], tests=1, mutations=1, max_graphs=2)
    assert text.count("<svg") == 2
    assert "Graphs drawn for the first 2 leaks only" in text


def test_html_from_a_real_run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        pt_target2="def func():\n    return 1\n",
        test_polluter="""
            import os
            from unittest import mock
            import pt_target2

            def test_leaks():
                mock.patch("pt_target2.func", name="<script>bad()</script>").start()

            def test_env():
                os.environ["PT_DEMO_PASSWORD"] = "hun" + "ter2-real"

            def test_victim():
                assert pt_target2.func() == 1
        """,
    )
    out = pytester.path / "report.html"
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_HTML", str(out))
    monkeypatch.setenv("PT_DEMO_PASSWORD", "ci-secret-before")  # what CI really had
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    text = out.read_text()
    assert "hunter2" not in text  # source lines are the user's code: shown as written
    assert "ci-secret-before" not in text
    assert "PT_DEMO_PASSWORD" in text
    assert "test_polluter.py::test_leaks" in text
    assert "<script>bad()" not in text
    assert 'mock.patch(&quot;pt_target2.func&quot;' in text  # source line of the stack
    assert [t for t, _ in parse(text).tags].count("script") == 1
