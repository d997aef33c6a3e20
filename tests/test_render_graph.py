"""patchtrace.render.graph: reference graphs with and without graphviz, escaping, secrets."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from patchtrace.leak import Leak
from patchtrace.render import _layout, graph
from patchtrace.render import json as json_report
from patchtrace.render.secrets import MASK, is_secret_name, mask_leak
from patchtrace.stack import Frame
from patchtrace.values import MISSING, ValueSummary

HOSTILE = '<script>alert("x")</script>\n{a} "q" \\N & \'s\''
NEEDS_DOT = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")


def make_leak(
    *,
    id: str = "L1",
    kind: str = "patch-not-stopped",
    target: str | None = "module:pkg.mod",
    name: str | None = "func",
    value: ValueSummary | None = None,
    before: ValueSummary = MISSING,
    alive_via: list[str] | None = None,
    obj: object = None,
    polluter: str = "tests/test_a.py::test_x",
) -> Leak:
    kwargs: dict[str, Any] = {}
    if obj is not None:
        kwargs["obj"] = obj
    leak = Leak(
        kind, polluter, "call", target, name,
        where=Frame("tests/test_a.py", 3, "test_x"), stack=[Frame("tests/test_a.py", 3, "test_x")],
        before=before,
        value=value or ValueSummary("MagicMock", "<MagicMock name='func' id='1'>", True),
        **kwargs,
    )
    leak.id = id
    leak.alive_via = alive_via
    return leak


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> bytes:
        raise AssertionError("dot must not run when it is not installed")

    monkeypatch.setattr(graph, "_find_dot", lambda: None)
    monkeypatch.setattr(graph, "_run_dot", boom)


@pytest.fixture
def module() -> Iterator[types.ModuleType]:
    mod = types.ModuleType("pt_graph_fixture")
    sys.modules[mod.__name__] = mod
    try:
        yield mod
    finally:
        sys.modules.pop(mod.__name__, None)
        mod.__dict__.clear()


def parse_svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def svg_texts(root: ET.Element) -> str:
    return "\n".join("".join(el.itertext()) for el in root.iter()
                     if el.tag.endswith(("text", "title")))


def check_dot_syntax(source: str) -> None:
    """Every line has balanced, properly escaped double quotes."""
    for line in source.splitlines():
        stripped = re.sub(r'\\.', "", line)  # drop escaped characters
        assert stripped.count('"') % 2 == 0, line


# -- without graphviz ----------------------------------------------------------------------------


def test_builtin_svg_and_dot_when_dot_is_missing(no_dot: None, tmp_path: Path) -> None:
    leak = make_leak(alive_via=["module pkg.mod", "attribute registry", "dict key 'a'",
                                "list index 0"])
    written = graph.write_leak_graphs([leak], str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == ["L1.dot", "L1.svg"]
    svg = (tmp_path / "L1.svg").read_text()
    root = parse_svg(svg)
    text = svg_texts(root)
    for label in ("module pkg.mod", "attribute registry", "dict key 'a'", "list index 0",
                  "MagicMock (mock)"):
        assert label in text
    assert "pt-root" in svg and "pt-target" in svg
    check_dot_syntax((tmp_path / "L1.dot").read_text())


def test_png_without_dot_warns_and_writes_svg(no_dot: None, tmp_path: Path) -> None:
    graph._warned.discard("png")
    with pytest.warns(RuntimeWarning, match="PNG"):
        written = graph.write_leak_graphs([make_leak()], str(tmp_path), formats=("svg", "png"))
    assert sorted(os.path.basename(p) for p in written) == ["L1.dot", "L1.svg"]


def test_dot_failure_falls_back_to_builtin(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(program: str, source: str, fmt: str) -> bytes:
        raise RuntimeError("dot crashed")

    monkeypatch.setattr(graph, "_find_dot", lambda: "/nonexistent/dot")
    monkeypatch.setattr(graph, "_run_dot", failing)
    graph._warned.discard("dot-svg")
    with pytest.warns(RuntimeWarning, match="dot crashed"):
        svg = graph.to_svg(graph.graph_of_leak(make_leak()))
    assert 'class="pt-graph"' in svg


def test_stubbed_dot_output_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str]] = []

    def fake(program: str, source: str, fmt: str) -> bytes:
        seen.append((program, fmt))
        assert source.startswith("digraph patchtrace {")
        return b'<?xml version="1.0"?>\n<!DOCTYPE svg>\n<svg id="from-dot"></svg>\n'

    monkeypatch.setattr(graph, "_find_dot", lambda: "/fake/dot")
    monkeypatch.setattr(graph, "_run_dot", fake)
    svg = graph.to_svg(graph.graph_of_leak(make_leak()))
    assert svg.startswith('<svg id="from-dot">')
    assert seen == [("/fake/dot", "svg")]


# -- with graphviz -------------------------------------------------------------------------------


@NEEDS_DOT
def test_real_dot_svg_and_png(tmp_path: Path) -> None:
    leak = make_leak(alive_via=["module pkg.mod", "attribute func"])
    written = graph.write_leak_graphs([leak], str(tmp_path), formats=("svg", "png"))
    assert sorted(os.path.basename(p) for p in written) == ["L1.dot", "L1.png", "L1.svg"]
    assert (tmp_path / "L1.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = (tmp_path / "L1.svg").read_text()
    assert "pt-graph" not in svg  # drawn by graphviz, not the built-in layout
    assert "attribute func" in svg_texts(parse_svg(svg))


@NEEDS_DOT
def test_hostile_labels_are_valid_dot(tmp_path: Path) -> None:
    leak = make_leak(value=ValueSummary("MagicMock", HOSTILE, True),
                     alive_via=[f"module {HOSTILE}", f"dict key {HOSTILE!r}", "a}b{c"])
    source = graph.to_dot(graph.graph_of_leak(leak))
    done = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    svg = done.stdout.decode()
    assert "<script" not in svg
    text = svg_texts(parse_svg(svg[svg.index("<svg"):]))
    assert '<script>alert("x")</script>' in text
    assert "a}b{c" in text


# -- escaping ------------------------------------------------------------------------------------


def test_hostile_labels_builtin_svg_is_well_formed(no_dot: None) -> None:
    leak = make_leak(value=ValueSummary("MagicMock", HOSTILE, True),
                     alive_via=[f"module {HOSTILE}", f"dict key {HOSTILE}", "\x00ctl\x1b"])
    svg = graph.to_svg(graph.graph_of_leak(leak))
    assert "<script" not in svg
    root = parse_svg(svg)  # well-formed XML even with quotes, ampersands and control chars
    assert not [el for el in root.iter() if el.tag.endswith("script")]
    text = svg_texts(root)
    assert '<script>alert("x")</script>' in text
    assert "\\n" in text  # a newline is shown, not obeyed


def test_dot_quoting() -> None:
    leak = make_leak(value=ValueSummary("MagicMock", HOSTILE, True),
                     alive_via=[HOSTILE, "x\\ny"])
    source = graph.to_dot(graph.graph_of_leak(leak))
    check_dot_syntax(source)
    assert "\\\\N" in source  # a user's backslash is literal, never a DOT escape
    assert 'label="' in source
    assert "\n{a}" not in source  # the raw newline never reaches DOT


# -- secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("GITHUB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True), ("DB_PASSWORD", True),
        ("PGPASSWD", True), ("API_KEY", True), ("apiKey", True), ("STRIPE_APIKEY", True),
        ("HTTP_AUTH", True), ("GOOGLE_APPLICATION_CREDENTIALS", True), ("PRIVATE_PEM", True),
        ("SESSION_ID", True), ("COOKIE_JAR", True), ("DB_PWD", True),
        ("HOME", False), ("PATH", False), ("SHOP_MODE", False), ("PWD", False),
        ("KEYBOARD_LAYOUT", False), ("AUTHOR", False), ("", False), (None, False),
    ],
)
def test_is_secret_name(name: str | None, secret: bool) -> None:
    assert is_secret_name(name) is secret


def env_leak(name: str = "API_TOKEN", value: str = "hunter2-very-secret") -> Leak:
    return make_leak(kind="binding-changed", target="os.environ", name=name,
                     value=ValueSummary("str", repr(value), False), obj=value)


def test_mask_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHTRACE_SHOW_SECRETS", raising=False)
    leak = env_leak()
    masked = mask_leak(leak)
    assert masked is not leak
    assert masked.value.repr == MASK and masked.before is MISSING
    assert "hunter2" not in masked.message()
    assert leak.value.repr == "'hunter2-very-secret'"  # the original is untouched
    assert mask_leak(env_leak(name="HOME")) is not None
    plain = env_leak(name="SHOP_MODE", value="sandbox")
    assert mask_leak(plain) is plain


def test_secrets_masked_in_graphs(no_dot: None, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHTRACE_SHOW_SECRETS", raising=False)
    graph.write_leak_graphs([env_leak()], str(tmp_path))
    for name in ("L1.svg", "L1.dot"):
        text = (tmp_path / name).read_text()
        assert "hunter2" not in text
        assert "***" in text
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")
    graph.write_leak_graphs([env_leak()], str(tmp_path))
    assert "hunter2" in (tmp_path / "L1.svg").read_text()


# -- live objects --------------------------------------------------------------------------------


def test_graph_of_live_mock(no_dot: None, module: types.ModuleType, tmp_path: Path) -> None:
    module.cache = {"client": mock.MagicMock(name="client")}
    module.cache["client"].fetch.return_value = 1
    path = graph.graph(module.cache["client"], str(tmp_path / "g.svg"))
    assert path == str(tmp_path / "g.svg")
    text = svg_texts(parse_svg(Path(path).read_text()))
    assert "module pt_graph_fixture" in text
    assert "dict key 'client'" in text
    assert "child 'fetch'" in text


def test_graph_png_without_dot_becomes_svg(no_dot: None, module: types.ModuleType,
                                           tmp_path: Path) -> None:
    module.thing = mock.Mock()
    with pytest.warns(RuntimeWarning):
        path = graph.graph(module.thing, str(tmp_path / "g.png"))
    assert path.endswith("g.svg") and os.path.exists(path)
    assert graph.graph(module.thing, str(tmp_path / "g.dot")).endswith("g.dot")


@pytest.mark.parametrize(
    ("name", "written"),
    [("why", "why.svg"), ("why.SVG", "why.SVG"), ("why.dot", "why.dot"),
     ("why.txt", "why.txt.svg"), ("v1.2/why", "v1.2/why.svg")],
)
def test_graph_file_name_follows_the_suffix(no_dot: None, module: types.ModuleType,
                                            tmp_path: Path, name: str, written: str) -> None:
    """As the docstring says: .svg/.png/.dot by suffix, any other name gets .svg."""
    import patchtrace

    module.thing = mock.Mock()
    path = patchtrace.graph(module.thing, str(tmp_path / name))
    assert path == str(tmp_path / written)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()] \
        == [written]
    text = Path(path).read_text()
    if written.endswith(".dot"):
        assert text.startswith("digraph")
    else:
        assert parse_svg(text).tag.endswith("svg")


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_object_whose_repr_raises(no_dot: None, module: types.ModuleType,
                                  tmp_path: Path) -> None:
    module.bad = BadRepr()
    g = graph.graph_of_object(module.bad)
    assert "repr raised RuntimeError" in "\n".join(g.nodes["target"].lines)
    leak = make_leak(kind="binding-changed", target="module:pt_graph_fixture", name="bad",
                     value=ValueSummary("BadRepr", "<BadRepr (repr raised)>", False),
                     obj=module.bad)
    written = graph.write_leak_graphs([leak], str(tmp_path))
    assert "attribute bad" in svg_texts(parse_svg((tmp_path / "L1.svg").read_text()))
    assert written


# -- saved reports -------------------------------------------------------------------------------


def test_redraw_from_saved_report(no_dot: None, tmp_path: Path) -> None:
    leaks = [
        make_leak(alive_via=["module shop.clients", "attribute client_for",
                             "lru_cache storage of client_for", "child 'get' of mock"]),
        make_leak(id="L2", kind="binding-changed", target="os.environ", name="SHOP_MODE",
                  value=ValueSummary("str", "'sandbox'", False)),
        make_leak(id="L3", kind="mock-survived", target=None, name=None),
    ]
    report = tmp_path / "report.json"
    json_report.write(str(report), json_report.build(leaks, tests=3, mutations=9))
    _, loaded = json_report.load(str(report))
    assert all(leak.obj() is not None for leak in loaded)  # NOTHING: no live objects
    out = tmp_path / "graphs"
    written = graph.write_leak_graphs(loaded, str(out))
    assert sorted(os.path.basename(p) for p in written) == [
        "L1.dot", "L1.svg", "L2.dot", "L2.svg", "L3.dot", "L3.svg"]
    text = svg_texts(parse_svg((out / "L1.svg").read_text()))
    assert "lru_cache storage of client_for" in text
    assert "os.environ['SHOP_MODE']" in svg_texts(parse_svg((out / "L2.svg").read_text()))


def test_cli_graph_command(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    leak = make_leak(alive_via=["module pkg.mod", "attribute func"])
    report.write_text(json.dumps(json_report.build([leak], tests=1, mutations=1)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    done = subprocess.run([sys.executable, "-m", "patchtrace", "graph", str(report), "-o",
                           str(tmp_path / "out")], capture_output=True, text=True, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "L1.svg").exists()
    assert (tmp_path / "out" / "L1.dot").exists()


# -- the layout ----------------------------------------------------------------------------------


def test_layout_no_overlap_and_cycles() -> None:
    nodes = [(k, 60.0, 20.0) for k in "abcdefg"]
    edges = [("a", "b", 30.0, 10.0), ("a", "c", 30.0, 10.0), ("b", "d", 30.0, 10.0),
             ("c", "d", 30.0, 10.0), ("a", "d", 30.0, 10.0), ("d", "a", 30.0, 10.0),
             ("e", "f", 0.0, 0.0), ("g", "g", 0.0, 0.0)]
    placed = _layout.layout(nodes, edges)
    assert set(placed.nodes) == set("abcdefg")
    assert len(placed.edges) == len(placed.labels) == 7  # the self-loop is dropped
    by_row: dict[float, list[float]] = {}
    for x, y in placed.nodes.values():
        by_row.setdefault(y, []).append(x)
    for xs in by_row.values():
        xs.sort()
        assert all(b - a >= 60 for a, b in itertools.pairwise(xs))
    assert placed.nodes["a"][1] < placed.nodes["b"][1] < placed.nodes["d"][1]
    for points in placed.edges:
        assert len(points) >= 2
    assert placed.width > 0 and placed.height > 0


def test_layout_empty() -> None:
    placed = _layout.layout([], [])
    assert placed.nodes == {} and placed.edges == []


# -- through pytest ------------------------------------------------------------------------------


def test_graphs_from_a_real_run(pytester: pytest.Pytester,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(
        pt_target="def func():\n    return 1\n",
        test_polluter="""
            from unittest import mock
            import pt_target

            def test_leaks():
                mock.patch("pt_target.func", name="<b>evil</b>").start()

            def test_victim():
                assert pt_target.func() == 1
        """,
    )
    out = pytester.path / "graphs"
    monkeypatch.setenv("PATCHTRACE", "1")
    monkeypatch.setenv("PATCHTRACE_GRAPHS", str(out))
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    svg = (out / "L1.svg").read_text()
    assert (out / "L1.dot").exists()
    assert "<b>" not in svg
    assert "attribute func" in svg_texts(parse_svg(svg[svg.index("<svg"):]))
