"""Reference graphs: why is this leaked object still alive, as a picture.

A graph is plain data (:class:`Graph`: nodes and labelled edges, strings only) built from
the reference analyzer's chains (:func:`patchtrace.refs.explain`) for a live object, or from
a report's ``alive_via`` labels when the object is gone, plus a bounded neighbourhood (a
mock's children and return value).  It is written as DOT always, and as SVG through
graphviz ``dot`` when it is installed, else through the built-in layered layout
(:mod:`._layout`), so there is always a picture.

Everything that comes from user objects is escaped for DOT and for XML, and secret
environment values are masked (:mod:`.secrets`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from html import escape as _xml_escape
from typing import TYPE_CHECKING, Final, final

from .._vocab import ATOMS as _ATOMS
from .secrets import mask_leak

if TYPE_CHECKING:
    from ..leak import Leak

__all__ = [
    "Edge",
    "Graph",
    "Node",
    "graph",
    "graph_of_leak",
    "graph_of_object",
    "to_dot",
    "to_svg",
    "write_leak_graphs",
]

_NODE_CHARS: Final = 48  # longest line of a node's label
_EDGE_CHARS: Final = 44  # longest edge label
_CHAR_W: Final = 7.3  # 12px monospace
_TITLE_CHAR_W: Final = 8.2  # 13px bold monospace
_TITLE_CHARS: Final = 90  # a longer title is wrapped
_LABEL_CHAR_W: Final = 6.7  # 11px monospace
_LINE_H: Final = 15.0
_FONT: Final = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_DOT_TIMEOUT: Final = 30
_NEIGHBOURS: Final = 12  # at most this many extra nodes around the object

#: role -> (fill, stroke) shared by the DOT and the built-in SVG output.
_STYLE: Final = {
    "root": ("#dbeafe", "#1d4ed8"),
    "target": ("#fee2e2", "#b91c1c"),
    "mock": ("#fef3c7", "#b45309"),
    "node": ("#f3f4f6", "#6b7280"),
    "hop": ("#9ca3af", "#6b7280"),
    "note": ("#fffbeb", "#a16207"),
}
_EDGE_COLOR: Final = "#4b5563"
_INVALID_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@final
class Node:
    """A box in the picture. ``role``: root, target, mock, node, hop (an unnamed object on a
    chain) or note."""

    __slots__ = ("is_mock", "key", "lines", "role", "tooltip")

    def __init__(self, key: str, lines: Sequence[str], role: str = "node", *,
                 is_mock: bool = False, tooltip: str | None = None) -> None:
        self.key = key
        self.lines = list(lines)
        self.role = role
        self.is_mock = is_mock
        self.tooltip = tooltip if tooltip is not None else "\n".join(self.lines)

    def __repr__(self) -> str:
        return f"Node({self.key!r}, {self.lines!r}, {self.role!r})"


@final
class Edge:
    """A reference from ``source`` to ``target``, named the way the analyzer names it."""

    __slots__ = ("label", "source", "target")

    def __init__(self, source: str, target: str, label: str) -> None:
        self.source = source
        self.target = target
        self.label = label

    def __repr__(self) -> str:
        return f"Edge({self.source!r}, {self.target!r}, {self.label!r})"


@final
class Graph:
    """Nodes and labelled edges, strings only (no reference to any user object)."""

    __slots__ = ("edges", "nodes", "title")

    def __init__(self, title: str = "") -> None:
        self.title = title
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []

    def add(self, node: Node) -> Node:
        return self.nodes.setdefault(node.key, node)

    def link(self, source: str, target: str, label: str) -> None:
        """One edge per reference: ``class attribute scale`` (a report's binding) and
        ``class attribute scale of Calc`` (the analyzer's words) are the same one, drawn
        with the shorter label."""
        for edge in self.edges:
            if edge.source == source and edge.target == target and _same_reference(
                    edge.label, label):
                if len(label) < len(edge.label):
                    edge.label = label
                return
        self.edges.append(Edge(source, target, label))

    def add_chain(self, labels: Sequence[str], target: str) -> None:
        """A chain of analyzer labels: the first names the root, each next one the hop out of
        the previous object; the last hop ends at ``target``. Shared prefixes share nodes."""
        if not labels:
            return
        labels = _plain_labels(labels)
        root = self.add(Node(f"root:{labels[0]}", [labels[0]], "root"))
        previous = root.key
        for depth, label in enumerate(labels[1:], start=1):
            last = depth == len(labels) - 1
            if last:
                key = target
            else:
                key = "hop:" + "\x1f".join(labels[: depth + 1])
                self.add(Node(key, [], "hop", tooltip=f"reached by {label}"))
            self.link(previous, key, label)
            previous = key
        if len(labels) == 1:
            self.link(previous, target, "")

    def __repr__(self) -> str:
        return f"<Graph {self.title!r}: {len(self.nodes)} nodes, {len(self.edges)} edges>"


def _same_reference(a: str, b: str) -> bool:
    """Two labels of one edge, one naming its owner (``... of shop.calc.Calc``)."""
    return a == b or a.startswith(b + " of ") or b.startswith(a + " of ")


def _plain_labels(labels: Sequence[str]) -> list[str]:
    """A chain's labels without an owner the step before already names: from the root
    ``class shop.calc.Calc``, ``class attribute scale of shop.calc.Calc`` is
    ``class attribute scale`` (so a report's chain and the analyzer's share their edges)."""
    out = list(labels)
    for i in range(1, len(out)):
        head, sep, owner = out[i].rpartition(" of ")
        if sep and owner and out[i - 1] in (f"class {owner}", f"module {owner}"):
            out[i] = head
    return out


# ---------------------------------------------------------------------------------------------
# building graphs


def _clip(text: str, limit: int) -> str:
    text = _INVALID_XML.sub("?", text.replace("\r", "\\r").replace("\n", "\\n"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value_lines(type_text: str, repr_text: str, is_mock: bool) -> list[str]:
    head = f"{type_text} (mock)" if is_mock else type_text
    return [head, repr_text] if repr_text and repr_text != type_text else [head]


def graph_of_object(obj: object, *, title: str | None = None, max_chains: int = 3,
                    neighbours: int = _NEIGHBOURS) -> Graph:
    """The reference graph of a live object: its chains to roots, plus its children when it
    is a mock. Holds no reference to ``obj``."""
    from ..values import is_mock, safe_repr, type_name

    mock = is_mock(obj)
    g = Graph(title if title is not None else f"why is {safe_repr(obj, 60)} alive?")
    g.add(Node("target", _value_lines(type_name(obj), safe_repr(obj), mock), "target",
               is_mock=mock))
    _add_explained(g, obj, max_chains)
    if mock and neighbours > 0:
        _add_mock_children(g, obj, "target", neighbours)
    return g


def _add_explained(g: Graph, obj: object, max_chains: int) -> None:
    try:
        from .. import refs

        explanation = refs.explain(obj, max_chains=max_chains, skip_tracebacks=True)
    except Exception as exc:  # the picture must not depend on the analyzer succeeding
        g.add(Node("note", [f"reference search failed: {type(exc).__name__}"], "note"))
        return
    for chain in explanation.chains:
        g.add_chain(chain.labels(), "target")
    if not explanation.chains and explanation.note:
        g.add(Node("note", _wrap(explanation.note, _NODE_CHARS)[:4], "note",
                   tooltip=explanation.note))


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def _raw_state(obj: object) -> dict[str, object]:
    """A mock's own ``__dict__``, read without running its ``__getattr__``."""
    try:
        state = object.__getattribute__(obj, "__dict__")
    except Exception:
        return {}
    return state if type(state) is dict else {}


def _add_mock_children(g: Graph, obj: object, key: str, budget: int) -> None:
    """Breadth-first over children and return values, at most ``budget`` nodes."""
    from ..values import is_mock, safe_repr, type_name

    queue: list[tuple[object, str, int]] = [(obj, key, 0)]
    seen = {id(obj)}
    added = 0
    while queue and added < budget:
        parent, parent_key, depth = queue.pop(0)
        state = _raw_state(parent)
        inner = state.get("mock")
        if inner is not None and is_mock(inner) and type(parent) is not type(inner):
            state = _raw_state(inner)  # an autospecced function carries its mock here
        items: list[tuple[str, object]] = []
        children = state.get("_mock_children")
        if type(children) is dict:
            items.extend((f"child {name!r}", child) for name, child in children.items())
        returned = state.get("_mock_return_value")
        if returned is not None and is_mock(returned):
            items.append(("return_value", returned))
        for label, child in items:
            if added >= budget:
                g.add(Node(f"{parent_key}/more", ["..."], "node",
                           tooltip="more children not drawn"))
                g.link(parent_key, f"{parent_key}/more", "")
                break
            if not is_mock(child) or id(child) in seen:
                continue  # e.g. the _deleted sentinel of `del mock.attr`
            seen.add(id(child))
            child_key = f"{parent_key}/{len(g.nodes)}"
            g.add(Node(child_key, _value_lines(type_name(child), safe_repr(child), True),
                       "mock", is_mock=True))
            g.link(parent_key, child_key, label)
            added += 1
            if depth + 1 < 2:
                queue.append((child, child_key, depth + 1))


def _binding_chain(leak: Leak) -> list[str]:
    """Where a binding lives, in the analyzer's words, when there is no chain to draw."""
    target, name = leak.target or "", leak.name
    if target.startswith("module:"):
        return [f"module {target[7:]}", f"attribute {name}"] if name else [f"module {target[7:]}"]
    if target.startswith("class:"):
        return [f"class {target[6:]}", f"class attribute {name}"] if name \
            else [f"class {target[6:]}"]
    if target.startswith("object:"):
        return [f"object {target[7:]}", f"attribute {name}"] if name else [f"object {target[7:]}"]
    if target == "builtins":
        return ["module builtins", f"attribute {name}"] if name else ["module builtins"]
    if target in ("os.environ", "sys.modules"):
        return [f"{target}[{name!r}]"] if name is not None else [target]
    if name is not None:
        return [target, f"entry {name}"]
    return [target] if target else []


def graph_of_leak(leak: Leak, *, max_chains: int = 3, neighbours: int = _NEIGHBOURS) -> Graph:
    """The graph of one leak: from its live object when it is still alive, else from its
    ``alive_via`` labels (a saved report), else from the binding it changed.
    Secret environment values are masked."""
    from ..ledger import NOTHING

    leak = mask_leak(leak)
    value = leak.value
    if value.type == "<missing>" and leak.before.type != "<missing>":
        lines = ["<deleted>", f"was {leak.before.repr}"]
    else:
        lines = _value_lines(value.type, value.repr, value.is_mock)
    g = Graph(f"{leak.id} {leak.kind}: {leak.label}".strip())
    g.add(Node("target", lines, "target", is_mock=value.is_mock))
    if leak.alive_via:
        g.add_chain(leak.alive_via, "target")
    obj = leak.obj()
    if obj is not NOTHING and type(obj) not in _ATOMS:
        _add_explained(g, obj, max_chains)
        from ..values import is_mock

        if neighbours > 0 and is_mock(obj):
            _add_mock_children(g, obj, "target", neighbours)
    del obj
    if not any(e.target == "target" for e in g.edges):
        g.add_chain(_binding_chain(leak), "target")
    return g


# ---------------------------------------------------------------------------------------------
# DOT


def _dot_str(text: str) -> str:
    """A DOT double-quoted string whose label shows ``text`` literally (no escString magic)."""
    text = _INVALID_XML.sub("?", text)
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "\\\\r").replace("\n", "\\\\n") + '"'


def _dot_tooltip(text: str, limit: int = 300) -> str:
    """A DOT tooltip: its lines kept as lines (``\\n`` is graphviz's newline there), never
    shown as a literal backslash-n."""
    text = _INVALID_XML.sub("?", text.replace("\r", ""))
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n") + '"'


def _dot_label(lines: Sequence[str]) -> str:
    inner = "\\n".join(_dot_str(_clip(line, _NODE_CHARS))[1:-1] for line in lines)
    return f'"{inner}"'


def to_dot(g: Graph) -> str:
    """The graph as DOT source; node names are generated, every text is quoted."""
    ids = {key: f"n{i}" for i, key in enumerate(g.nodes)}
    title = "\\n".join(_dot_str(line)[1:-1] for line in _title_lines(g.title))
    out = [
        "digraph patchtrace {",
        f'  graph [label="{title}", labelloc=t, fontsize=13, '
        f'fontname="monospace", rankdir=TB, nodesep=0.3, ranksep=0.45, bgcolor="white"];',
        '  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=11, '
        'margin="0.12,0.06"];',
        f'  edge [fontname="monospace", fontsize=10, color="{_EDGE_COLOR}", '
        f'fontcolor="{_EDGE_COLOR}"];',
    ]
    for key, node in g.nodes.items():
        fill, stroke = _STYLE.get(node.role, _STYLE["node"])
        attrs = [f'fillcolor="{fill}"', f'color="{stroke}"',
                 f"tooltip={_dot_tooltip(node.tooltip)}"]
        if node.role == "hop":
            attrs += ["shape=circle", 'label=""', "width=0.14", "fixedsize=true"]
        else:
            attrs.append(f"label={_dot_label(node.lines)}")
        if node.role in ("root", "target"):
            attrs.append("penwidth=2")
        if node.role == "note":
            attrs.append('style="rounded,filled,dashed"')
        if node.is_mock and node.role != "target":
            attrs.append('style="rounded,filled,dashed"')
        out.append(f"  {ids[key]} [{', '.join(attrs)}];")
    for edge in g.edges:
        if edge.source not in ids or edge.target not in ids:
            continue
        attrs = []
        if edge.label:
            attrs.append(f"label={_dot_str(' ' + _clip(edge.label, _EDGE_CHARS) + ' ')}")
            attrs.append(f"tooltip={_dot_tooltip(edge.label)}")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f"  {ids[edge.source]} -> {ids[edge.target]}{suffix};")
    out.append("}")
    return "\n".join(out) + "\n"


def _find_dot() -> str | None:
    """The graphviz ``dot`` program, or None (a seam: tests replace it)."""
    return shutil.which("dot")


def _run_dot(program: str, source: str, fmt: str) -> bytes:
    """Run ``dot -T<fmt>`` on ``source`` (a seam: tests replace it)."""
    done = subprocess.run([program, f"-T{fmt}"], input=source.encode("utf-8"),
                          capture_output=True, timeout=_DOT_TIMEOUT, check=False)
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"dot -T{fmt} failed ({done.returncode}): "
                           f"{message[-1] if message else 'no output'}")
    return done.stdout


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _dot_svg(g: Graph) -> str | None:
    program = _find_dot()
    if program is None:
        return None
    try:
        raw = _run_dot(program, to_dot(g), "svg").decode("utf-8", "replace")
    except Exception as exc:
        _warn_once("dot-svg", f"patchtrace: graphviz dot failed ({exc}); "
                              "using the built-in layout")
        return None
    start = raw.find("<svg")
    return raw[start:] if start >= 0 else None


def to_svg(g: Graph, *, id_prefix: str = "pt", use_dot: bool | None = None) -> str:
    """The graph as an SVG document (no XML prolog, so it can also be inlined in HTML):
    graphviz ``dot`` when it is installed (``use_dot=None``), else the built-in layout."""
    if use_dot is not False:
        svg = _dot_svg(g)
        if svg is not None:
            return svg
    return builtin_svg(g, id_prefix=id_prefix)


# ---------------------------------------------------------------------------------------------
# the built-in SVG


def _x(text: str) -> str:
    """Escape for XML text and attribute values."""
    return _xml_escape(_INVALID_XML.sub("?", text), quote=True)


def _title_lines(title: str) -> list[str]:
    """A graph's title, wrapped at word boundaries (never clipped: it names the leak)."""
    title = _INVALID_XML.sub("?", title.replace("\r", " ").replace("\n", " "))
    return _wrap(title, _TITLE_CHARS) or [""]


def _node_size(node: Node) -> tuple[float, float]:
    if node.role == "hop":
        return 12.0, 12.0
    lines = [_clip(line, _NODE_CHARS) for line in node.lines] or [""]
    width = max(len(line) for line in lines) * _CHAR_W + 20
    return max(width, 40.0), len(lines) * _LINE_H + 12


def builtin_svg(g: Graph, *, id_prefix: str = "pt") -> str:
    """The graph as SVG through the pure-Python layered layout: no system dependency."""
    from ._layout import layout

    prefix = re.sub(r"[^A-Za-z0-9_-]", "_", id_prefix) or "pt"
    sizes = {key: _node_size(node) for key, node in g.nodes.items()}
    edges = [e for e in g.edges if e.source in g.nodes and e.target in g.nodes]
    labels = [_clip(e.label, _EDGE_CHARS) for e in edges]
    placed = layout(
        [(key, w, h) for key, (w, h) in sizes.items()],
        [(e.source, e.target, len(t) * _LABEL_CHAR_W + 10 if t else 4.0, 17.0 if t else 4.0)
         for e, t in zip(edges, labels, strict=True)],
    )
    title_lines = _title_lines(g.title)
    title = " ".join(title_lines)
    top = 26.0 + 17.0 * (len(title_lines) - 1) if title else 0.0
    width = max([placed.width, *(len(line) * _TITLE_CHAR_W + 32 for line in title_lines)])
    height = placed.height + top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pt-graph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{_x(title)}" font-family="{_FONT}" font-size="12">',
        f"<title>{_x(g.title)}</title>",
        f'<defs><marker id="{prefix}-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        f'markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{_EDGE_COLOR}"/></marker></defs>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    for i, line in enumerate(title_lines if title else []):
        out.append(f'<text x="{width / 2:.1f}" y="{18 + 17 * i}" text-anchor="middle" '
                   f'font-size="13" font-weight="bold" fill="#111827">{_x(line)}</text>')
    out.append(f'<g transform="translate(0,{top:.0f})">')
    for edge, points in zip(edges, placed.edges, strict=True):
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(
            f'<g class="pt-edge"><title>{_x(edge.label)}</title><polyline points="{coords}" '
            f'fill="none" stroke="{_EDGE_COLOR}" stroke-width="1.3" '
            f'marker-end="url(#{prefix}-arrow)"/></g>'
        )
    for edge, text, (x, y) in zip(edges, labels, placed.labels, strict=True):
        if not text:
            continue
        w = len(text) * _LABEL_CHAR_W + 8
        out.append(
            f'<g class="pt-edge-label"><title>{_x(edge.label)}</title>'
            f'<rect x="{x - w / 2:.1f}" y="{y - 8.5:.1f}" width="{w:.1f}" height="17" rx="3" '
            f'fill="#ffffff" fill-opacity="0.92" stroke="#e5e7eb"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" text-anchor="middle" font-size="11" '
            f'fill="{_EDGE_COLOR}">{_x(text)}</text></g>'
        )
    for key, node in g.nodes.items():
        x, y = placed.nodes[key]
        w, h = sizes[key]
        fill, stroke = _STYLE.get(node.role, _STYLE["node"])
        out.append(f'<g class="pt-node pt-{_x(node.role)}"><title>{_x(node.tooltip)}</title>')
        if node.role == "hop":
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" '
                       f'stroke="{stroke}"/></g>')
            continue
        dash = ' stroke-dasharray="4 3"' if node.role == "note" or (
            node.is_mock and node.role != "target") else ""
        stroke_w = 2 if node.role in ("root", "target") else 1
        out.append(f'<rect x="{x - w / 2:.1f}" y="{y - h / 2:.1f}" width="{w:.1f}" '
                   f'height="{h:.1f}" rx="6" fill="{fill}" stroke="{stroke}" '
                   f'stroke-width="{stroke_w}"{dash}/>')
        lines = [_clip(line, _NODE_CHARS) for line in node.lines]
        first_y = y - (len(lines) - 1) * _LINE_H / 2 + 4
        for i, line in enumerate(lines):
            weight = ' font-weight="bold"' if i == 0 and len(lines) > 1 else ""
            out.append(f'<text x="{x:.1f}" y="{first_y + i * _LINE_H:.1f}" '
                       f'text-anchor="middle" fill="#111827"{weight}>{_x(line)}</text>')
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# files


def _file_stem(leak: Leak, index: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", leak.id or "").strip(".")
    return stem or f"leak{index + 1}"


def _write(path: str, data: str | bytes) -> None:
    from .. import _captured  # references captured at start: a suite may have patched open

    _captured.write_atomic(path, data)


def _makedirs(directory: str) -> None:
    from .. import _captured

    _captured.makedirs(directory)


def _write_formats(g: Graph, stem: str, formats: Iterable[str]) -> list[str]:
    """``stem.dot`` always, then each asked format; PNG needs graphviz."""
    written: list[str] = []
    source = to_dot(g)
    _write(f"{stem}.dot", source)
    written.append(f"{stem}.dot")
    for fmt in dict.fromkeys(f.lower().lstrip(".") for f in formats):
        if fmt == "dot":
            continue
        if fmt == "svg":
            _write(f"{stem}.svg", '<?xml version="1.0" encoding="UTF-8"?>\n'
                   + to_svg(g, id_prefix=os.path.basename(stem)))
            written.append(f"{stem}.svg")
        elif fmt == "png":
            program = _find_dot()
            if program is None:
                _warn_once("png", "patchtrace: PNG graphs need graphviz `dot` (not found); "
                                  "wrote SVG and DOT only")
                continue
            try:
                _write(f"{stem}.png", _run_dot(program, source, "png"))
            except Exception as exc:
                _warn_once("dot-png", f"patchtrace: graphviz dot failed ({exc}); no PNG")
                continue
            written.append(f"{stem}.png")
        else:
            raise ValueError(f"unknown graph format {fmt!r}; use svg, png or dot")
    return written


def write_leak_graphs(leaks: Sequence[Leak], directory: str, *,
                      formats: Sequence[str] = ("svg",)) -> list[str]:
    """One reference graph per leak in ``directory``, named by leak id (``L3.dot`` and
    ``L3.svg``, plus ``L3.png`` when asked and graphviz is installed); returns the paths."""
    _makedirs(directory)
    written: list[str] = []
    for index, leak in enumerate(leaks):
        stem = os.path.join(directory, _file_stem(leak, index))
        try:
            written.extend(_write_formats(graph_of_leak(leak), stem, formats))
        except ValueError:
            raise
        except Exception as exc:  # one unlucky leak must not cost the others their picture
            _warn_once(f"leak:{leak.id}", f"patchtrace: no graph for {leak.id}: {exc!r}")
    return written


def graph(obj: object, path: str, *, title: str | None = None, max_chains: int = 3) -> str:
    """Draw why ``obj`` is alive into ``path`` (``.svg``, ``.png`` or ``.dot``; other names
    get ``.svg`` appended). Returns the path written: a ``.png`` asked for without graphviz
    becomes an ``.svg`` next to it (with a warning)."""
    g = graph_of_object(obj, title=title, max_chains=max_chains)
    stem, ext = os.path.splitext(path)
    ext = ext.lower().lstrip(".")
    if ext not in ("svg", "png", "dot"):
        stem, ext, path = path, "svg", f"{path}.svg"
    directory = os.path.dirname(os.path.abspath(path))
    _makedirs(directory)
    if ext == "dot":
        _write(path, to_dot(g))
        return path
    if ext == "png":
        program = _find_dot()
        if program is not None:
            try:
                _write(path, _run_dot(program, to_dot(g), "png"))
                return path
            except Exception as exc:
                _warn_once("dot-png", f"patchtrace: graphviz dot failed ({exc}); wrote SVG")
        else:
            warnings.warn("patchtrace: PNG needs graphviz `dot` (not found); wrote SVG",
                          RuntimeWarning, stacklevel=2)
        path = f"{stem}.svg"
    _write(path, '<?xml version="1.0" encoding="UTF-8"?>\n'
           + to_svg(g, id_prefix=os.path.basename(stem)))
    return path
