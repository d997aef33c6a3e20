"""Sphinx configuration for patchtrace's documentation (built by ``python -m nox -s docs``)."""

from __future__ import annotations

from typing import Any

from patchtrace._version import __version__

project = "patchtrace"
author = "patchtrace developers"
copyright = "patchtrace developers"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# -- MyST ---------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links like contract.md#the-json-report-patchtrace_json

# -- autodoc ------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# The package imports the classes in its annotations only under TYPE_CHECKING (so that
# ``import patchtrace`` stays light), and every module uses ``from __future__ import
# annotations``: autodoc sees those names as bare strings. Point them at the documented
# classes.
_SHORT_NAMES = {
    "Config": "patchtrace.config.Config",
    "Ledger": "patchtrace.ledger.Ledger",
    "Mutation": "patchtrace.ledger.Mutation",
    "ActivePatch": "patchtrace.ledger.ActivePatch",
    "Scope": "patchtrace.ledger.Scope",
    "Explanation": "patchtrace.refs.Explanation",
    "Chain": "patchtrace.refs.Chain",
    "Step": "patchtrace.refs.Step",
    "ValueSummary": "patchtrace.values.ValueSummary",
    "Frame": "patchtrace.stack.Frame",
    "Stack": "patchtrace.stack.Stack",
}

# The build runs without network access, so there is no intersphinx inventory for the
# standard library and rich: their types are named in signatures but not linked.
nitpick_ignore = [
    ("py:class", name)
    for name in (
        "collections.abc.Iterable",
        "collections.abc.Iterator",
        "collections.abc.Mapping",
        "collections.abc.Sequence",
        "types.CodeType",
        "types.TracebackType",
        "typing.IO",
        "IO",
        "TracebackType",
        "Tree",
        "rich.tree.Tree",
    )
] + [("py:func", "pdb.post_mortem")]

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"patchtrace {release}"


def _resolve_short_name(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve the bare class names described above to their documented targets."""
    if node.get("refdomain") != "py" or node.get("reftype") not in ("class", "obj"):
        return None
    target = _SHORT_NAMES.get(node.get("reftarget", ""))
    if target is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, "class", target, node, contnode)


def setup(app: Any) -> None:
    app.connect("missing-reference", _resolve_short_name)
