"""The shape of the house (STYLE.md): calls go down. A source records what it sees and
never imports the layers above it (the boundary, the analysis, the renderers, the
debugger, the glue); the boundary snapshot, which records nothing, lives in ``boundary/``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import patchtrace

PACKAGE = Path(patchtrace.__file__).resolve().parent

#: what a source may not import, even lazily inside a function
ABOVE = ("patchtrace.boundary", "patchtrace.analysis", "patchtrace.render",
         "patchtrace.refs", "patchtrace.fix", "patchtrace.debugger", "patchtrace.leak",
         "patchtrace.pytest_plugin", "patchtrace._unittest", "patchtrace._autostart",
         "patchtrace.cli")

#: the old path of the boundary snapshot, kept for the benchmarks: it imports the
#: boundary only when an attribute is read (``__getattr__``), never at import
SHIM = PACKAGE / "sources" / "resources.py"


def imports(source: str, package: str, *, top_level_only: bool = False) -> set[str]:
    """The absolute names of the modules ``source`` (a module of ``package``) imports."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            module = (f"{base}.{node.module}" if node.level and node.module
                      else base if node.level else node.module or "")
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
    return out


def _above(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith(ABOVE)}


def test_no_source_imports_a_layer_above_it() -> None:
    checked = 0
    for path in sorted((PACKAGE / "sources").glob("*.py")):
        found = imports(path.read_text(), "patchtrace.sources",
                        top_level_only=path == SHIM)
        assert not _above(found), (path.name, sorted(_above(found)))
        checked += 1
    assert checked >= 8


def test_the_check_sees_an_import_of_the_boundary() -> None:
    """The control: the same reading finds a source's imports of the boundary, relative,
    absolute or inside a function (so the test above cannot pass by reading nothing)."""
    source = ("from ..boundary import snapshot\n"
              "import patchtrace.render.report\n"
              "def f():\n    from ..analysis.victims import freeze\n")
    assert _above(imports(source, "patchtrace.sources")) >= {
        "patchtrace.boundary", "patchtrace.render.report", "patchtrace.analysis.victims"}
    shim = SHIM.read_text()
    assert "patchtrace.boundary" in _above(imports(shim, "patchtrace.sources"))
    assert not _above(imports(shim, "patchtrace.sources", top_level_only=True))


def test_the_snapshot_lives_in_the_boundary() -> None:
    from patchtrace.boundary import snapshot
    from patchtrace.sources import resources

    assert snapshot.take is resources.take  # the old path, for the benchmarks
    assert snapshot.LoggerState is resources.LoggerState
