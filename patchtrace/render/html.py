"""The HTML report: one self-contained file (inline CSS, JS and SVG; no network needed).

Counts at the top, then the leaks grouped by polluter: kind, before -> after, the stack with
its source lines (read at render time), the chain that keeps the object alive and its
reference graph, the victims and the fix.  A filter box hides the leaks that do not match
the typed text (``#filter=text`` in the address does the same on load).

Everything that comes from user objects is escaped (a mock's name, a dict key or an
environment value may contain ``<script>``) and secret environment values are masked.
"""

from __future__ import annotations

import base64
import hashlib
import linecache
import os
import platform
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any, Final

from .secrets import mask_leak, mask_source

if TYPE_CHECKING:
    from ..leak import Leak
    from ..stack import Frame

__all__ = ["render", "write"]

_MAX_GRAPHS: Final = 100
_UNSAFE_SVG: Final = re.compile(r"<\s*(script|foreignObject|iframe)|<[^>]*\son\w+\s*=|javascript:",
                                re.IGNORECASE)

_CSS: Final = """
:root { --fg:#111827; --dim:#6b7280; --line:#e5e7eb; --bg:#f9fafb; --red:#b91c1c;
  --blue:#1d4ed8; --green:#15803d; --amber:#b45309; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:var(--bg); }
header { background:#111827; color:#f9fafb; padding:18px 28px; }
header h1 { margin:0 0 6px; font-size:20px; }
header .meta { color:#9ca3af; font-size:12px; }
main { padding:18px 28px 40px; max-width:1400px; }
.counts { display:flex; gap:12px; flex-wrap:wrap; margin:0 0 16px; }
.count { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 16px;
  min-width:120px; }
.count b { display:block; font-size:24px; }
.count.bad b { color:var(--red); }
.count span { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.kinds { color:var(--dim); margin:0 0 12px; }
.kinds code { margin-right:10px; }
#pt-filter { width:100%; max-width:520px; padding:8px 12px; font-size:14px;
  border:1px solid #d1d5db; border-radius:6px; }
#pt-shown { color:var(--dim); margin-left:10px; }
.pt-group { margin:22px 0; }
.pt-group > h2 { font-size:15px; font-family:ui-monospace,Menlo,Consolas,monospace;
  margin:0 0 8px; padding:6px 10px; background:#e5e7eb; border-radius:6px; word-break:break-all; }
.pt-leak { background:#fff; border:1px solid var(--line); border-left:4px solid var(--red);
  border-radius:8px; padding:12px 16px; margin:0 0 12px; }
.pt-leak h3 { margin:0 0 6px; font-size:14px; font-weight:600; word-break:break-all; }
.pt-id { color:var(--dim); font-weight:400; margin-right:6px; }
.pt-kind { display:inline-block; background:#fee2e2; color:var(--red); border-radius:4px;
  padding:0 6px; margin-right:6px; font-size:12px; font-family:ui-monospace,monospace; }
.pt-mock { display:inline-block; background:#fef3c7; color:var(--amber); border-radius:4px;
  padding:0 6px; font-size:11px; margin-left:4px; }
.pt-msg { margin:0 0 8px; }
dl { display:grid; grid-template-columns:max-content 1fr; gap:4px 14px; margin:6px 0; }
dt { color:var(--dim); }
dd { margin:0; min-width:0; }
code, pre { font-family:ui-monospace,Menlo,Consolas,monospace; font-size:12.5px; }
code { word-break:break-all; }
.pt-change code { background:#f3f4f6; padding:1px 4px; border-radius:3px; }
.pt-arrow { color:var(--dim); margin:0 6px; }
ol.pt-stack { margin:0; padding-left:18px; }
ol.pt-stack li { margin:0 0 4px; }
a.pt-where { color:var(--blue); }
.pt-file { color:inherit; }
pre.pt-src { margin:2px 0 0; padding:3px 8px; background:#f3f4f6; border-radius:4px;
  white-space:pre-wrap; word-break:break-all; }
ol.pt-chain { margin:0; padding:0; list-style:none; display:flex; flex-wrap:wrap; gap:4px; }
ol.pt-chain li code { background:#eff6ff; padding:1px 5px; border-radius:3px; }
ol.pt-chain li + li::before { content:"\\2192"; color:var(--dim); margin-right:4px; }
.pt-victims code { color:var(--amber); }
.pt-fix { color:var(--green); margin:8px 0 0; }
details.pt-graph { margin:8px 0 0; }
details.pt-graph summary { cursor:pointer; color:var(--dim); }
.pt-svg { overflow:auto; border:1px solid var(--line); border-radius:6px; background:#fff;
  margin-top:6px; max-height:720px; }
.pt-svg svg { display:block; max-width:none; height:auto; }
.pt-none { background:#ecfdf5; border:1px solid #a7f3d0; border-radius:8px; padding:16px;
  color:var(--green); }
.pt-hints { background:#fffbeb; border:1px solid #fde68a; border-radius:8px; padding:10px 16px;
  margin:0 0 16px; }
.pt-hints h2 { font-size:15px; margin:0 0 6px; color:var(--amber); }
.pt-hints ul { margin:0; padding-left:18px; }
.pt-hints li { margin:0 0 6px; }
[hidden] { display:none !important; }
"""

# Plain JS, no framework: hide leaks (and emptied groups) whose text does not match.
_JS: Final = """
(function () {
  var box = document.getElementById('pt-filter');
  var shown = document.getElementById('pt-shown');
  var leaks = Array.prototype.slice.call(document.querySelectorAll('.pt-leak'));
  var groups = Array.prototype.slice.call(document.querySelectorAll('.pt-group'));
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var count = 0;
    leaks.forEach(function (leak) {
      var text = (leak.getAttribute('data-search') || '') + ' ' + leak.textContent.toLowerCase();
      var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
      leak.hidden = !ok;
      if (ok) { count += 1; }
    });
    groups.forEach(function (group) {
      group.hidden = !group.querySelector('.pt-leak:not([hidden])');
    });
    shown.textContent = words.length ? count + ' of ' + leaks.length + ' shown' : '';
    document.body.setAttribute('data-shown', String(count));
  }
  function fromHash() {
    var match = /^#filter=(.*)$/.exec(location.hash);
    if (match) {
      try { box.value = decodeURIComponent(match[1]); } catch (e) { box.value = match[1]; }
    }
    apply();
  }
  box.addEventListener('input', apply);
  window.addEventListener('hashchange', fromHash);
  fromHash();
})();
"""


def _script_hash() -> str:
    """CSP source for our one script: anything else (say, an injected one) will not run."""
    digest = hashlib.sha256(_JS.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _source(frame: Frame, rootdir: str) -> str:
    """The frame's source line. Frames hold paths relative to pytest's rootdir, which is
    ``rootdir`` when the caller knows it, else usually the working directory or a parent."""
    if os.path.isabs(frame.file):
        candidates = [frame.file]
    else:
        candidates = [os.path.join(rootdir, frame.file)]
        here = os.getcwd()
        for _ in range(4):
            candidates.append(os.path.join(here, frame.file))
            here = os.path.dirname(here)
    for path in dict.fromkeys(candidates):
        try:
            if os.path.isfile(path):
                return linecache.getline(path, frame.line).rstrip()
        except Exception:
            continue
    return ""


def _graph_svg(leak: Leak, index: int) -> tuple[str, bool]:
    """The leak's graph as inline SVG, and whether it says more than a line of text: a
    binding and its value (two boxes, one arrow) is what the "alive via" row says."""
    from . import graph

    g = graph.graph_of_leak(leak)
    prefix = f"pt{index}"
    svg = graph.to_svg(g, id_prefix=prefix)
    if _UNSAFE_SVG.search(svg):  # defence in depth: only ever inline plain drawing markup
        svg = graph.builtin_svg(g, id_prefix=prefix)
    boxes = [node for node in g.nodes.values() if node.role != "hop"]
    return svg, len(boxes) > 2 or len(g.edges) > 1


def _sentence(leak: Leak) -> str:
    """The leak in one sentence, without what the rows under it show (the change, the fix)."""
    text = leak.message()
    if leak.fix and text.endswith(f"; {leak.fix}"):
        text = text[: -len(leak.fix) - 2]
    change = f": {leak.before.repr} -> {leak.value.repr}"
    if text.endswith(change):
        text = text[: -len(change)]
    if leak.kind == "restore-mismatch":
        at = f" at {leak.where.file}:{leak.where.line}" if leak.where else ""
        text = f"{leak.label} was put back{at}, but not as the original"
    return text


def _location(frame: Frame, rootdir: str) -> str:
    """``file:line``: a ``file://`` link to the absolute path (with the line) when the file
    is there, else plain text (not styled as a link)."""
    from pathlib import Path

    text = f"{_e(frame.file)}:{_e(frame.line)}"
    path = frame.file if os.path.isabs(frame.file) else os.path.join(rootdir, frame.file)
    try:
        if os.path.isfile(path):
            href = f"{Path(os.path.abspath(path)).as_uri()}#L{int(frame.line)}"
            return (f'<a class="pt-where" href="{_e(href)}" '
                    f'title="{_e(os.path.abspath(path))}, line {_e(frame.line)}">{text}</a>')
    except (OSError, ValueError):
        pass
    return f'<span class="pt-file">{text}</span>'


def _leak_html(leak: Leak, index: int, rootdir: str, draw: bool) -> str:
    parts: list[str] = []
    search = " ".join(
        str(x) for x in (leak.id, leak.kind, leak.polluter, leak.label, leak.fixture or "",
                         leak.value.type, leak.value.repr, *(leak.victims or ()),
                         *(leak.alive_via or ()))
    ).lower()
    parts.append(f'<article class="pt-leak" id="leak-{_e(leak.id or index)}" '
                 f'data-kind="{_e(leak.kind)}" data-search="{_e(search)}">')
    mock = '<span class="pt-mock">mock</span>' if leak.value.is_mock else ""
    scope = ""
    if leak.fixture:
        scope = f" <small>(fixture {_e(leak.fixture)}, {_e(leak.phase)})</small>"
    elif leak.phase != "call":
        scope = f" <small>({_e(leak.phase)})</small>"
    parts.append(f'<h3><span class="pt-id">{_e(leak.id)}</span>'
                 f'<span class="pt-kind">{_e(leak.kind)}</span><code>{_e(leak.label)}</code>'
                 f"{mock}{scope}</h3>")
    parts.append(f'<p class="pt-msg">{_e(_sentence(leak))}</p>')
    parts.append("<dl>")
    parts.append(f'<dt>change</dt><dd class="pt-change"><code>{_e(leak.before.repr)}</code>'
                 f'<span class="pt-arrow">&rarr;</span><code>{_e(leak.value.repr)}</code>'
                 f" <small>({_e(leak.value.type)})</small></dd>")
    frames = leak.stack or ([leak.where] if leak.where else [])
    if frames:
        items = []
        for frame in frames:
            src = mask_source(_source(frame, rootdir), leak)
            code = f'<pre class="pt-src">{_e(src)}</pre>' if src.strip() else ""
            items.append(f"<li>{_location(frame, rootdir)}"
                         f" in <code>{_e(frame.function)}</code>{code}</li>")
        parts.append(f'<dt>stack</dt><dd><ol class="pt-stack">{"".join(items)}</ol></dd>')
    else:
        parts.append("<dt>where</dt><dd>not seen as it happened (found at the boundary)</dd>")
    if leak.alive_via:
        chain = "".join(f"<li><code>{_e(step)}</code></li>" for step in leak.alive_via)
        parts.append(f'<dt>alive via</dt><dd><ol class="pt-chain">{chain}</ol></dd>')
    if leak.victims:
        victims = ", ".join(f"<code>{_e(v)}</code>" for v in leak.victims)
        parts.append(f'<dt>victims</dt><dd class="pt-victims">{victims}</dd>')
    parts.append("</dl>")
    if draw:
        try:
            svg, telling = _graph_svg(leak, index)
        except Exception as exc:  # the report is worth more than one picture
            svg, telling = f"<p>graph not drawn: {_e(repr(exc))}</p>", True
        opened = " open" if telling else ""
        parts.append(f'<details class="pt-graph"{opened}><summary>reference graph</summary>'
                     f'<div class="pt-svg">{svg}</div></details>')
    if leak.fix:
        parts.append(f'<p class="pt-fix">fix: {_e(leak.fix)}</p>')
    parts.append("</article>")
    return "\n".join(parts)


def _hints_html(hints: Sequence[Mapping[str, Any]]) -> str:
    """What failing tests got that is not a leak (the JSON report's ``hints``)."""
    items = []
    for hint in hints:
        holders = hint.get("holders") or ()
        held = ""
        if holders:
            held = "<br><small>held by " + ", ".join(
                f"<code>{_e(h)}</code>" for h in holders) + "</small>"
        items.append(f'<li data-kind="{_e(hint.get("kind", ""))}"><code>{_e(hint.get("test", ""))}'
                     f"</code>: {_e(hint.get('message', ''))}{held}</li>")
    count = len(items)
    return (f'<section class="pt-hints"><h2>Hints ({count})</h2>'
            f"<p>Failing tests whose patch never took effect "
            f"(patched in the wrong place?):</p><ul>{''.join(items)}</ul></section>")


def render(
    leaks: Sequence[Leak],
    *,
    tests: int,
    mutations: int,
    extra: Mapping[str, Any] | None = None,
    rootdir: str | None = None,
    max_graphs: int = _MAX_GRAPHS,
    hints: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The whole report as one HTML string."""
    from .._version import __version__

    root = rootdir or os.getcwd()
    leaks = [mask_leak(leak) for leak in leaks]
    groups: dict[str, list[Leak]] = {}
    for leak in leaks:
        groups.setdefault(leak.polluter, []).append(leak)
    kinds: dict[str, int] = {}
    for leak in leaks:
        kinds[leak.kind] = kinds.get(leak.kind, 0) + 1
    victims = {v for leak in leaks for v in leak.victims}

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network, no inline event handlers: everything the page runs is below.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        f"style-src 'unsafe-inline'; script-src '{_script_hash()}'; img-src data:\">",
        f"<title>patchtrace: {len(leaks)} leak{'s' * (len(leaks) != 1)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>patchtrace report</h1>",
        f'<div class="meta">patchtrace {_e(__version__)} &middot; Python '
        f"{_e(platform.python_version())} &middot; {_e(root)}</div></header>",
        "<main>",
        '<div class="counts">',
        f'<div class="count{" bad" if leaks else ""}"><b>{len(leaks)}</b><span>leaks</span></div>',
        f'<div class="count"><b>{len(groups)}</b><span>polluters</span></div>',
        f'<div class="count"><b>{len(victims)}</b><span>victims</span></div>',
        f'<div class="count"><b>{_e(tests)}</b><span>tests</span></div>',
        f'<div class="count"><b>{_e(mutations)}</b><span>mutations</span></div>',
        "</div>",
    ]
    if kinds:
        out.append('<p class="kinds">' + "".join(
            f"<code>{_e(kind)} &times; {count}</code>" for kind, count in sorted(kinds.items())
        ) + "</p>")
    for key, value in (extra or {}).items():
        out.append(f'<p class="kinds">{_e(key)}: <code>{_e(value)}</code></p>')
    if not leaks:
        count = f"{_e(tests)} test{'s' * (tests != 1)}"
        out.append(f'<p class="pt-none">No leaks found in {count}.</p>')
    if hints:
        out.append(_hints_html(hints))
    out.append('<p><input id="pt-filter" type="search" placeholder="filter: test, kind, '
               'target, mock name..." aria-label="filter leaks" autocomplete="off">'
               '<span id="pt-shown"></span></p>')
    index = 0
    for polluter, items in groups.items():
        out.append(f'<section class="pt-group"><h2>{_e(polluter)}</h2>')
        for leak in items:
            out.append(_leak_html(leak, index, root, index < max_graphs))
            index += 1
        out.append("</section>")
    if len(leaks) > max_graphs:
        out.append(f"<p>Graphs drawn for the first {max_graphs} leaks only; "
                   "PATCHTRACE_GRAPHS=DIR writes all of them.</p>")
    out.append(f"</main><script>{_JS}</script></body></html>")
    return "\n".join(out) + "\n"


def write(
    path: str,
    leaks: Sequence[Leak],
    *,
    tests: int,
    mutations: int,
    extra: Mapping[str, Any] | None = None,
    rootdir: str | None = None,
    hints: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Write the report to ``path`` atomically (a reader never sees half a file)."""
    from .. import _captured  # references captured at start: a suite may have patched open

    text = render(leaks, tests=tests, mutations=mutations, extra=extra, rootdir=rootdir,
                  hints=hints)
    _captured.write_atomic(path, text)
