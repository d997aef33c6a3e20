"""Rewrite the statement that leaked into its undone form, on source text, with libcst.

Pure functions: ``rewrite(source, leak)`` takes a file's text and a leak as its JSON dict
(``kind``, ``target``, ``name``, ``where``, ``before``) and returns the new text, or raises
:class:`NoRewrite` saying why no mechanical rewrite is safe and what to do by hand.
libcst keeps the file's formatting and comments; only the statement, its function's
parameters (``monkeypatch`` added when missing) and, rarely, one import change.

Which rewrite depends on where the statement is:

- a pytest test (or a function-scoped fixture): ``monkeypatch.setenv/delenv/setitem/
  delitem/setattr/delattr/syspath_prepend/chdir``; a patch started there becomes
  ``mocker.patch(...)`` when the test takes ``mocker``, else a ``with`` block around the
  rest of the test;
- a method of a ``unittest.TestCase``: ``self.addCleanup(...)`` or
  ``unittest.mock.patch.dict`` / ``patch.object`` started with its ``stop`` as a cleanup;
- a fixture that starts a patch (any scope): ``yield`` then ``stop()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import libcst as cst

__all__ = ["NoRewrite", "rewrite"]

_ENVIRON: Final = ("os.environ", "environ")
_MODULES: Final = ("sys.modules",)
_PATH: Final = ("sys.path",)
_CHDIR: Final = ("os.chdir", "chdir")
_PATCH_SUFFIXES: Final = ("patch", "patch.object", "patch.dict", "patch.multiple")


def _str(text: str) -> str:
    """A string literal in the usual style of test code (double quotes)."""
    return f'"{text}"' if text.isprintable() and not any(c in text for c in "\"'\\") \
        else repr(text)


class NoRewrite(Exception):
    """No safe mechanical rewrite; the message says why and what to do instead."""


@functools.lru_cache(maxsize=16)
def _parse(source: str) -> tuple[cst.Module, Mapping[cst.CSTNode, Any]]:
    """The tree of a file and its nodes' positions, once per text (many leaks, one file).
    libcst trees are immutable, and each rewrite builds a new tree from it."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    return module, wrapper.resolve(PositionProvider)


# -- reading the tree --------------------------------------------------------------------------
def _dotted(node: cst.BaseExpression) -> str | None:
    import libcst as cst

    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr.value}" if head is not None else None
    return None


def _patch_call(node: cst.BaseExpression) -> tuple[cst.Call, str] | None:
    """``(call, its suffix)`` when ``node`` is ``patch(...)``/``mock.patch.object(...)``..."""
    import libcst as cst

    if not isinstance(node, cst.Call):
        return None
    name = _dotted(node.func)
    if name is None:
        return None
    for suffix in sorted(_PATCH_SUFFIXES, key=len, reverse=True):
        if name == suffix or name.endswith("." + suffix):
            if name.startswith("mocker.") or name == "monkeypatch" or ".monkeypatch" in name:
                return None
            return node, suffix
    return None


def _start_call(node: cst.BaseExpression) -> cst.BaseExpression | None:
    """The receiver of ``<receiver>.start()``."""
    import libcst as cst

    if (isinstance(node, cst.Call) and not node.args and isinstance(node.func, cst.Attribute)
            and node.func.attr.value == "start"):
        return node.func.value
    return None


class _Site:
    """The statement on the leak's line and what encloses it."""

    def __init__(self, source: str, line: int) -> None:
        import libcst as cst

        module, positions = _parse(source)
        self.module = module
        self.stmt: cst.SimpleStatementLine | None = None
        self.parents: list[cst.CSTNode] = []
        found: list[tuple[cst.SimpleStatementLine, list[cst.CSTNode]]] = []
        stack: list[cst.CSTNode] = []

        class Finder(cst.CSTVisitor):
            def on_visit(self, node: cst.CSTNode) -> bool:
                if isinstance(node, cst.SimpleStatementLine):
                    where = positions[node]
                    if where.start.line <= line <= where.end.line:
                        found.append((node, list(stack)))
                    return False
                stack.append(node)
                return True

            def on_leave(self, original_node: cst.CSTNode) -> None:
                if stack and stack[-1] is original_node:
                    stack.pop()

        module.visit(Finder())
        if found:
            self.stmt, self.parents = found[-1]
        self.positions = positions

    def line_of(self, node: cst.CSTNode) -> int:
        return int(self.positions[node].start.line)

    @property
    def func(self) -> cst.FunctionDef | None:
        import libcst as cst

        for node in reversed(self.parents):
            if isinstance(node, cst.FunctionDef):
                return node
        return None

    @property
    def cls(self) -> cst.ClassDef | None:
        import libcst as cst

        func = self.func
        if func is None:
            return None
        index = self.parents.index(func)
        # FunctionDef <- IndentedBlock <- ClassDef
        if index >= 2 and isinstance(self.parents[index - 2], cst.ClassDef):
            return self.parents[index - 2]  # type: ignore[return-value]
        return None

    @property
    def block(self) -> cst.IndentedBlock | None:
        import libcst as cst

        node = self.parents[-1] if self.parents else None
        return node if isinstance(node, cst.IndentedBlock) else None

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node).strip()


def _params(func: cst.FunctionDef) -> list[str]:
    p = func.params
    return [param.name.value for param in (*p.posonly_params, *p.params, *p.kwonly_params)]


def _decorator_names(func: cst.FunctionDef) -> list[tuple[str, cst.Call | None]]:
    import libcst as cst

    out: list[tuple[str, cst.Call | None]] = []
    for deco in func.decorators:
        expr = deco.decorator
        call = expr if isinstance(expr, cst.Call) else None
        name = _dotted(call.func if call is not None else expr)
        if name is not None:
            out.append((name, call))
    return out


class _Context:
    """What kind of function holds the statement: ``unittest``, ``test`` or ``fixture``."""

    def __init__(self, site: _Site) -> None:
        import libcst as cst

        func = site.func
        if func is None:
            raise NoRewrite(
                "the statement runs at module level (while the module is imported): move it "
                "into a fixture that undoes it (monkeypatch, or yield then undo)")
        self.func = func
        self.params = _params(func)
        self.scope = "function"
        self.kind = ""
        cls = site.cls
        for name, call in _decorator_names(func):
            if name.split(".")[-1] == "fixture":
                self.kind = "fixture"
                for arg in call.args if call is not None else ():
                    if arg.keyword is not None and arg.keyword.value == "scope":
                        if not isinstance(arg.value, cst.SimpleString):
                            raise NoRewrite("the fixture's scope is not a literal: restore "
                                            "the change in its teardown (after yield)")
                        self.scope = str(arg.value.evaluated_value)
            elif name in ("staticmethod", "classmethod"):
                raise NoRewrite(f"the statement is in a {name}: undo the change in a "
                                "matching tearDown/teardown, or move it into the test")
        if self.kind:
            return
        bases = [_dotted(b.value) or "" for b in cls.bases] if cls is not None else []
        if cls is not None and any(b.split(".")[-1].endswith("TestCase") for b in bases):
            if not self.params or self.params[0] != "self":
                raise NoRewrite("the statement is in a TestCase method without self: "
                                "undo it in tearDownClass")
            self.kind = "unittest"
        elif cls is not None and bases:
            raise NoRewrite(
                f"cannot tell whether {cls.name.value} is a unittest.TestCase (its bases are "
                "defined elsewhere): undo the change with self.addCleanup(...) or monkeypatch")
        elif func.name.value.startswith("test"):
            self.kind = "test"
        else:
            raise NoRewrite(
                f"the statement is in {func.name.value}(), which is neither a test nor a "
                "fixture: let the test that calls it take monkeypatch and pass it in, or "
                "undo the change in that test's teardown")

    @property
    def takes_fixtures(self) -> bool:
        return self.kind == "test" or (self.kind == "fixture" and self.scope == "function")


# -- building the new tree ---------------------------------------------------------------------
def _statements(text: str) -> list[cst.BaseStatement]:
    import libcst as cst

    return list(cst.parse_module(text).body)


def _with_leading(stmts: list[cst.BaseStatement],
                  original: cst.SimpleStatementLine) -> list[cst.BaseStatement]:
    """The first new statement keeps the original's comments above it; the one that plays
    the original's part keeps its trailing comment."""
    import libcst as cst

    if not stmts:
        return stmts
    first = stmts[0]
    out = [first.with_changes(leading_lines=original.leading_lines), *stmts[1:]]
    if original.trailing_whitespace.comment is not None:
        for i, stmt in enumerate(out):
            if isinstance(stmt, cst.SimpleStatementLine):
                out[i] = stmt.with_changes(trailing_whitespace=original.trailing_whitespace)
                break
    return out


def _unique(base: str, site: _Site) -> str:
    import libcst as cst

    used: set[str] = set()

    class Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            used.add(node.value)

    site.module.visit(Names())
    name, n = base, 2
    while name in used:
        name, n = f"{base}{n}", n + 1
    return name


class _Edit:
    """Replacements by identity, applied in one pass: each maps the updated node (its
    children already rewritten) to what takes its place."""

    def __init__(self, site: _Site) -> None:
        self.site = site
        self.replace: dict[int, Callable[[Any], Any]] = {}
        self.imports: list[str] = []

    def put(self, node: cst.CSTNode, new: Any) -> None:
        self.replace[id(node)] = lambda updated: new

    def after(self, node: cst.CSTNode, stmts: Sequence[cst.BaseStatement]) -> None:
        """Insert ``stmts`` after ``node`` (composes with a replacement of ``node``)."""
        import libcst as cst

        before = self.replace.get(id(node), lambda updated: updated)

        def insert(updated: Any) -> Any:
            first = before(updated)
            nodes = list(first.nodes) if isinstance(first, cst.FlattenSentinel) else [first]
            return cst.FlattenSentinel([*nodes, *stmts])

        self.replace[id(node)] = insert

    def before(self, stmts: Sequence[cst.BaseStatement]) -> None:
        """Insert ``stmts`` before the statement, which stays as it is (with its comment);
        the comments above it move above the first of them."""
        import libcst as cst

        stmt = self.site.stmt
        assert stmt is not None
        first = [stmts[0].with_changes(leading_lines=stmt.leading_lines), *stmts[1:]]
        self.put(stmt, cst.FlattenSentinel([*first, stmt.with_changes(leading_lines=())]))

    def statement(self, stmts: Sequence[cst.BaseStatement]) -> None:
        import libcst as cst

        assert self.site.stmt is not None
        self.put(self.site.stmt, cst.FlattenSentinel(_with_leading(list(stmts),
                                                                   self.site.stmt)))

    def add_param(self, ctx: _Context, name: str) -> None:
        import libcst as cst

        if name in ctx.params:
            return
        params = ctx.func.params
        if any(p.default is not None for p in params.params) or params.posonly_params:
            raise NoRewrite(f"{ctx.func.name.value}() has parameters with defaults: add the "
                            f"{name} fixture by hand and use it")
        new = list(params.params)
        added = cst.Param(cst.Name(name))
        if new and new[-1].comma is cst.MaybeSentinel.DEFAULT:
            # `def f( a )`: the space before `)` moves after the new parameter
            added = added.with_changes(whitespace_after_param=new[-1].whitespace_after_param)
            new[-1] = new[-1].with_changes(
                comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")),
                whitespace_after_param=cst.SimpleWhitespace(""))
        new.append(added)
        self.put(params, params.with_changes(params=new))

    def result(self) -> str:
        import libcst as cst

        replace = self.replace

        class Apply(cst.CSTTransformer):
            def on_leave(self, original_node: Any, updated_node: Any) -> Any:
                fn = replace.get(id(original_node))
                return updated_node if fn is None else fn(updated_node)

        module = self.site.module.visit(Apply())
        for text in self.imports:
            module = _add_import(module, text)
        return str(module.code)


def _add_import(module: cst.Module, text: str) -> cst.Module:
    import libcst as cst

    body = list(module.body)
    last = -1
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and any(
                isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
            last = i
    body.insert(last + 1, cst.parse_statement(text + "\n"))
    return module.with_changes(body=body)


def _mock_name(site: _Site, edit: _Edit) -> str:
    """How this module spells ``unittest.mock`` (adding ``from unittest import mock``)."""
    import libcst as cst

    for stmt in site.module.body:
        if not isinstance(stmt, cst.SimpleStatementLine):
            continue
        for small in stmt.body:
            if isinstance(small, cst.ImportFrom) and small.module is not None and \
                    not isinstance(small.names, cst.ImportStar):
                source = _dotted(small.module)
                for alias in small.names:
                    bound = (_dotted(alias.asname.name)
                             if alias.asname else _dotted(alias.name))
                    if source == "unittest" and _dotted(alias.name) == "mock":
                        return str(bound)
            elif isinstance(small, cst.Import):
                for alias in small.names:
                    if _dotted(alias.name) == "unittest.mock":
                        return str(_dotted(alias.asname.name)
                                   if alias.asname else "unittest.mock")
                    if _dotted(alias.name) == "mock" and alias.asname is None:
                        return "mock"
    name = "mock"
    if _unique("mock", site) != "mock":
        edit.imports.append("import unittest.mock")
        return "unittest.mock"
    edit.imports.append(f"from unittest import {name}")
    return name


def _guard(site: _Site, edit: _Edit, ctx: _Context, patcher_code: str) -> None:
    """unittest: start ``patcher_code`` before the statement and stop it as a cleanup."""
    assert site.stmt is not None
    name = _unique("patcher", site)
    edit.before(_statements(
        f"{name} = {patcher_code}\n{name}.start()\nself.addCleanup({name}.stop)\n"))


def _only(site: _Site) -> cst.BaseSmallStatement:
    stmt = site.stmt
    if stmt is None:
        raise NoRewrite("no statement at that line (the file changed since the report?)")
    if len(stmt.body) != 1:
        raise NoRewrite("several statements on that line: split them, then run again")
    return stmt.body[0]


# -- the rewrites ------------------------------------------------------------------------------
def _patch_started(site: _Site, ctx: _Context, small: cst.BaseSmallStatement) -> str:
    import libcst as cst

    edit = _Edit(site)
    assert site.stmt is not None
    target: cst.BaseAssignTargetExpression | None = None
    returned = False
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target, value = small.targets[0].target, small.value
    elif isinstance(small, cst.Expr):
        value = small.value
    elif isinstance(small, cst.Return) and small.value is not None and ctx.kind == "fixture":
        value, returned = small.value, True  # return patch(...).start()
    else:
        raise NoRewrite("the patch is not started by a plain `x = patch(...).start()` or "
                        "`patcher.start()`: stop it with patcher.stop() in teardown")
    receiver = _start_call(value)
    if receiver is None:
        raise NoRewrite("the leaking line does not call .start(): stop the patch in "
                        "teardown, or use it as a context manager")
    made = _patch_call(receiver)
    patcher: str | None = None  # an existing name bound to the patcher (p = patch(); p.start())
    if made is None:
        if not isinstance(receiver, cst.Name) or not _bound_to_patch(ctx.func, receiver.value):
            raise NoRewrite(f"cannot tell what {site.code(receiver)} is: stop it with "
                            f"{site.code(receiver)}.stop() in teardown")
        patcher = receiver.value
    as_target = f" as {site.code(target)}" if target is not None else ""
    assign = f"{site.code(target)} = " if target is not None else ""

    if ctx.kind == "unittest" or ctx.kind == "fixture":
        stmts: list[str] = []
        if patcher is None:
            assert made is not None
            base = f"{target.value}_patcher" if isinstance(target, cst.Name) else "patcher"
            patcher = _unique(base, site)
            stmts.append(f"{patcher} = {site.code(made[0])}")
        stmts.append(f"{assign}{patcher}.start()")
        if ctx.kind == "unittest":
            stmts.append(f"self.addCleanup({patcher}.stop)")
            edit.statement(_statements("\n".join(stmts) + "\n"))
            return edit.result()
        if returned:
            _no_yield(ctx, f"{patcher}.stop()")
            stmts[-1] = f"yield {patcher}.start()"
            edit.statement(_statements("\n".join([*stmts, f"{patcher}.stop()"]) + "\n"))
            return edit.result()
        edit.statement(_statements("\n".join(stmts) + "\n"))
        _stop_after_yield(site, ctx, edit, f"{patcher}.stop()")
        return edit.result()

    # a pytest test
    if made is not None and "mocker" in ctx.params:
        call, suffix = made
        edit.put(call.func, cst.parse_expression(f"mocker.{suffix}"))
        edit.replace[id(value)] = lambda updated: updated.func.value  # drop .start()
        return edit.result()
    block = site.block
    if block is None or block is not ctx.func.body:
        raise NoRewrite("the patch is started inside a nested block: use `with patch(...):` "
                        "around the code that needs it, or the mocker fixture")
    manager = site.code(made[0]) if made is not None else str(patcher)
    index = next(i for i, s in enumerate(block.body) if s is site.stmt)
    rest = list(block.body[index + 1:]) or _statements("pass\n")
    header = _statements(f"with {manager}{as_target}:\n    pass\n")[0]
    assert isinstance(header, cst.With)
    assert isinstance(header.body, cst.IndentedBlock)
    new_with = header.with_changes(
        leading_lines=site.stmt.leading_lines,
        body=header.body.with_changes(body=rest, header=site.stmt.trailing_whitespace))
    edit.put(block, block.with_changes(body=[*block.body[:index], new_with]))
    return edit.result()


def _bound_to_patch(func: cst.FunctionDef, name: str) -> bool:
    import libcst as cst

    seen = False

    class Binds(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            nonlocal seen
            for target in node.targets:
                if isinstance(target.target, cst.Name) and target.target.value == name and \
                        _patch_call(node.value) is not None:
                    seen = True

    func.visit(Binds())
    return seen


def _no_yield(ctx: _Context, stop: str) -> None:
    import libcst as cst

    class Yields(cst.CSTVisitor):
        found = False

        def visit_Yield(self, node: cst.Yield) -> None:
            Yields.found = True

    ctx.func.visit(Yields())
    if Yields.found:
        raise NoRewrite(f"the fixture both yields and returns: stop the patch with {stop}")


def _stop_after_yield(site: _Site, ctx: _Context, edit: _Edit, stop: str) -> None:
    """A fixture: ``stop`` after its yield (a fixture without one yields what it returned)."""
    import libcst as cst

    body = ctx.func.body
    if not isinstance(body, cst.IndentedBlock):
        raise NoRewrite("the fixture is written on one line: give it a body, yield, then stop")
    yields: list[cst.Yield] = []

    class Yields(cst.CSTVisitor):
        def visit_Yield(self, node: cst.Yield) -> None:
            yields.append(node)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is ctx.func

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

    ctx.func.visit(Yields())
    stmts = list(body.body)
    assert site.stmt is not None
    if yields:
        top = [s for s in stmts if isinstance(s, cst.SimpleStatementLine)
               and any(isinstance(getattr(small, "value", None), cst.Yield)
                       for small in s.body)]
        if len(yields) != 1 or not top:
            raise NoRewrite("the fixture's yield is inside a block: stop the patch after it "
                            f"with {stop}")
        if site.line_of(top[0]) < site.line_of(site.stmt):
            raise NoRewrite(f"the patch is started after the fixture's yield: stop it with "
                            f"{stop} right after the code that needs it")
        edit.after(top[0], _statements(stop + "\n"))
        return
    last = stmts[-1] if stmts else None
    if isinstance(last, cst.SimpleStatementLine) and isinstance(last.body[0], cst.Return):
        returned = last.body[0].value
        value = f" {site.code(returned)}" if returned is not None else ""
        new = _statements(f"yield{value}\n{stop}\n")
        new[0] = new[0].with_changes(leading_lines=last.leading_lines)
        edit.put(last, cst.FlattenSentinel(new))
        return
    returns: list[cst.Return] = []

    class Returns(cst.CSTVisitor):
        def visit_Return(self, node: cst.Return) -> None:
            returns.append(node)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is ctx.func

    ctx.func.visit(Returns())
    if returns or last is None:
        raise NoRewrite("the fixture returns from inside a block: turn it into "
                        f"yield, then {stop}")
    edit.after(last, _statements(f"yield\n{stop}\n"))


def _dict_write(site: _Site, ctx: _Context, small: cst.BaseSmallStatement, env: bool) -> str:
    """``os.environ[k] = v``, ``.update``, ``del``, ``.pop`` / the same on ``sys.modules``."""
    import libcst as cst

    edit = _Edit(site)
    names = _ENVIRON if env else _MODULES
    what = "os.environ" if env else "sys.modules"
    set_, del_ = ("setenv", "delenv") if env else ("setitem", "delitem")
    container = ""
    calls: list[str] = []

    def key_of(sub: cst.BaseExpression) -> str | None:
        nonlocal container
        if isinstance(sub, cst.Subscript) and _dotted(sub.value) in names and \
                len(sub.slice) == 1 and isinstance(sub.slice[0].slice, cst.Index):
            container = site.code(sub.value)
            return site.code(sub.slice[0].slice.value)
        return None

    prefix = "" if env else "{c}, "
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and \
            (key := key_of(small.targets[0].target)) is not None:
        calls.append(f"monkeypatch.{set_}({prefix}{key}, {site.code(small.value)})")
    elif isinstance(small, cst.Del) and (key := key_of(small.target)) is not None:
        calls.append(f"monkeypatch.{del_}({prefix}{key})")
    elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and \
            isinstance(small.value.func, cst.Attribute) and \
            _dotted(small.value.func.value) in names:
        call = small.value
        container = site.code(call.func.value)  # type: ignore[attr-defined]
        method = call.func.attr.value  # type: ignore[attr-defined]
        args = [a for a in call.args if a.keyword is None and not a.star]
        if method == "pop" and len(call.args) in (1, 2) and len(args) == len(call.args):
            raising = ", raising=False" if len(args) == 2 else ""
            calls.append(f"monkeypatch.{del_}({prefix}{site.code(args[0].value)}{raising})")
        elif method == "update":
            for arg in call.args:
                if arg.keyword is not None:
                    calls.append(f"monkeypatch.{set_}({prefix}{_str(arg.keyword.value)}, "
                                 f"{site.code(arg.value)})")
                elif isinstance(arg.value, cst.Dict) and not arg.star and all(
                        isinstance(e, cst.DictElement) for e in arg.value.elements):
                    for element in arg.value.elements:
                        assert isinstance(element, cst.DictElement)
                        calls.append(f"monkeypatch.{set_}({prefix}{site.code(element.key)}, "
                                     f"{site.code(element.value)})")
                elif not arg.star:
                    key, val = _unique("key", site), _unique("value", site)
                    calls.append(f"for {key}, {val} in dict({site.code(arg.value)}).items():\n"
                                 f"    monkeypatch.{set_}({prefix}{key}, {val})")
                else:
                    raise NoRewrite(f"{what}.update(**...) with unpacking: set each key "
                                    f"with monkeypatch.{set_}")
    if not calls:
        raise NoRewrite(f"the leaking line is not a plain write to {what}: use "
                        f"monkeypatch.{set_}/{del_} (or mock.patch.dict({what}))")
    if ctx.kind == "unittest":
        _guard(site, edit, ctx, f"{_mock_name(site, edit)}.patch.dict({container})")
        return edit.result()
    if not ctx.takes_fixtures:
        raise NoRewrite(f"a {ctx.scope}-scoped fixture cannot take the function-scoped "
                        "monkeypatch fixture: use `with pytest.MonkeyPatch.context() as mp:` "
                        f"around its yield, or mock.patch.dict({what})")
    edit.add_param(ctx, "monkeypatch")
    edit.statement(_statements("\n".join(c.replace("{c}", container) for c in calls) + "\n"))
    return edit.result()


def _attribute_write(site: _Site, ctx: _Context, small: cst.BaseSmallStatement,
                     leak: Mapping[str, Any]) -> str:
    """``module.attr = v`` / ``Cls.attr = v`` / ``setattr(obj, "attr", v)`` / ``del``."""
    import libcst as cst

    edit = _Edit(site)
    name = str(leak.get("name"))
    owner = value = None
    delete = False
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and \
            isinstance(small.targets[0].target, cst.Attribute) and \
            small.targets[0].target.attr.value == name:
        owner, value = small.targets[0].target.value, small.value
    elif isinstance(small, cst.Del) and isinstance(small.target, cst.Attribute) and \
            small.target.attr.value == name:
        owner, delete = small.target.value, True
    elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and \
            _dotted(small.value.func) == "setattr" and len(small.value.args) == 3 and \
            isinstance(small.value.args[1].value, cst.SimpleString) and \
            small.value.args[1].value.evaluated_value == name:
        owner, value = small.value.args[0].value, small.value.args[2].value
    if owner is None or _dotted(owner) is None:
        raise NoRewrite(f"the leaking line is not a plain `obj.{name} = value`: set it with "
                        "monkeypatch.setattr (or mock.patch.object) so that it is undone")
    before = leak.get("before") or {}
    missing = isinstance(before, Mapping) and before.get("type") == "<missing>"
    obj = site.code(owner)
    if ctx.kind == "unittest":
        if delete:
            raise NoRewrite(f"del {obj}.{name} in a TestCase: take the original with "
                            f"vars({obj})[{_str(name)}] and restore it with "
                            "self.addCleanup(setattr, ...)")
        create = ", create=True" if missing else ""
        _guard(site, edit, ctx, f"{_mock_name(site, edit)}.patch.object({obj}, {_str(name)}, "
                                f"{site.code(value)}{create})")  # type: ignore[arg-type]
        return edit.result()
    if not ctx.takes_fixtures:
        raise NoRewrite(f"a {ctx.scope}-scoped fixture cannot take the function-scoped "
                        "monkeypatch fixture: use `with pytest.MonkeyPatch.context() as mp:` "
                        "around its yield, or mock.patch.object")
    edit.add_param(ctx, "monkeypatch")
    if delete:
        call = f"monkeypatch.delattr({obj}, {_str(name)})"
    else:
        raising = ", raising=False" if missing else ""
        call = f"monkeypatch.setattr({obj}, {_str(name)}, {site.code(value)}{raising})"  # type: ignore[arg-type]
    edit.statement(_statements(call + "\n"))
    return edit.result()


def _raw_save(site: _Site, ctx: _Context, small: cst.BaseSmallStatement,
              leak: Mapping[str, Any]) -> str:
    """``Cls.attr = saved`` put back what ``saved = Cls.attr`` read through the descriptor
    (a staticmethod read as its function): read it raw, ``vars(Cls)["attr"]``."""
    import libcst as cst

    name = str(leak.get("name"))
    if not (isinstance(small, cst.Assign) and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Attribute)
            and small.targets[0].target.attr.value == name
            and isinstance(small.value, cst.Name)):
        raise NoRewrite(f"the restoring line is not `obj.{name} = saved`: read the original "
                        f"with vars(obj)[{_str(name)}] or use monkeypatch.setattr")
    before = leak.get("before") or {}
    if isinstance(before, Mapping) and before.get("type") == "<missing>":
        raise NoRewrite(f"{name} was not in the class's own dict: delete it instead of "
                        "assigning it back")
    owner = site.code(small.targets[0].target.value)
    saved = small.value.value
    edit = _Edit(site)
    found: list[cst.Assign] = []

    class Saves(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name) and \
                    node.targets[0].target.value == saved and \
                    isinstance(node.value, cst.Attribute) and node.value.attr.value == name \
                    and site.code(node.value.value) == owner:
                found.append(node)

    ctx.func.visit(Saves())
    if len(found) != 1:
        raise NoRewrite(f"cannot find where {saved} was read: read the original with "
                        f"vars({owner})[{_str(name)}]")
    edit.put(found[0].value, cst.parse_expression(f"vars({owner})[{_str(name)}]"))
    return edit.result()


def _sys_path(site: _Site, ctx: _Context, small: cst.BaseSmallStatement) -> str:
    import libcst as cst

    edit = _Edit(site)
    call = small.value if isinstance(small, cst.Expr) else None
    if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
            and _dotted(call.func.value) in _PATH
            and call.func.attr.value in ("insert", "append")
            and all(a.keyword is None and not a.star for a in call.args)):
        raise NoRewrite("the leaking line is not sys.path.insert/append: use "
                        "monkeypatch.syspath_prepend, or restore sys.path in teardown")
    method = call.func.attr.value
    if ctx.kind == "unittest":
        assert site.stmt is not None
        edit.before(_statements(
            "self.addCleanup(sys.path.__setitem__, slice(None), sys.path[:])\n"))
        return edit.result()
    first = call.args[0].value if call.args else None
    if method != "insert" or len(call.args) != 2 or not (
            isinstance(first, cst.Integer) and first.evaluated_value == 0):
        raise NoRewrite("only sys.path.insert(0, p) has a monkeypatch equivalent "
                        "(monkeypatch.syspath_prepend(p)); restore sys.path in teardown")
    if not ctx.takes_fixtures:
        raise NoRewrite(f"a {ctx.scope}-scoped fixture cannot take monkeypatch: restore "
                        "sys.path after its yield")
    edit.add_param(ctx, "monkeypatch")
    edit.statement(_statements(
        f"monkeypatch.syspath_prepend({site.code(call.args[1].value)})\n"))
    return edit.result()


def _chdir(site: _Site, ctx: _Context, small: cst.BaseSmallStatement) -> str:
    import libcst as cst

    edit = _Edit(site)
    call = small.value if isinstance(small, cst.Expr) else None
    if not (isinstance(call, cst.Call) and _dotted(call.func) in _CHDIR
            and len(call.args) == 1 and call.args[0].keyword is None):
        raise NoRewrite("the leaking line is not os.chdir(path): use monkeypatch.chdir, or "
                        "change back in teardown")
    if ctx.kind == "unittest":
        if _dotted(call.func) != "os.chdir":
            raise NoRewrite("chdir is not called as os.chdir: add "
                            "self.addCleanup(os.chdir, os.getcwd()) before it")
        assert site.stmt is not None
        edit.before(_statements("self.addCleanup(os.chdir, os.getcwd())\n"))
        return edit.result()
    if not ctx.takes_fixtures:
        raise NoRewrite(f"a {ctx.scope}-scoped fixture cannot take monkeypatch: change back "
                        "after its yield")
    edit.add_param(ctx, "monkeypatch")
    edit.statement(_statements(f"monkeypatch.chdir({site.code(call.args[0].value)})\n"))
    return edit.result()


def locate(source: str, leak: Mapping[str, Any]) -> int | None:
    """The line of a ``sys.path`` change found only at the boundary (no ``where``): the one
    ``sys.path.insert/append`` statement of the polluting test (or its fixture)."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    if leak.get("target") != "sys.path":
        return None
    parts = str(leak.get("polluter") or "").split("::")
    if len(parts) < 2:
        return None
    fixture = leak.get("fixture")
    func_name = fixture if isinstance(fixture, str) else parts[-1].split("[")[0]
    classes = [] if isinstance(fixture, str) else parts[1:-1]
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
    except cst.ParserSyntaxError:
        return None
    positions = wrapper.resolve(PositionProvider)
    lines: list[int] = []
    stack: list[str] = []

    class Find(cst.CSTVisitor):
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            stack.append(node.name.value)

        def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
            stack.pop()

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            if node.name.value != func_name or (classes and stack[-len(classes):] != classes):
                return False

            class Calls(cst.CSTVisitor):
                def visit_SimpleStatementLine(self, stmt: cst.SimpleStatementLine) -> None:
                    for small in stmt.body:
                        call = small.value if isinstance(small, cst.Expr) else None
                        if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) \
                                and _dotted(call.func.value) in _PATH:
                            lines.append(int(positions[stmt].start.line))

            node.visit(Calls())
            return False

    wrapper.module.visit(Find())
    return lines[0] if len(lines) == 1 else None


def rewrite(source: str, leak: Mapping[str, Any]) -> str:
    """The new text of the file that holds ``leak``'s statement; raises :class:`NoRewrite`."""
    import libcst as cst

    where = leak.get("where")
    if not isinstance(where, Mapping) or not isinstance(where.get("line"), int):
        raise NoRewrite("the leaking line is not known (found at a boundary, not as it "
                        "happened)")
    kind, target = leak.get("kind"), leak.get("target")
    if kind == "mock-survived":
        raise NoRewrite("a surviving mock has no statement to undo: find what keeps it "
                        "(alive via) and clear that in teardown")
    try:
        site = _Site(source, int(where["line"]))
    except cst.ParserSyntaxError as exc:
        raise NoRewrite(f"the file does not parse ({exc.message})") from None
    small = _only(site)
    ctx = _Context(site)
    if kind == "patch-not-stopped":
        return _patch_started(site, ctx, small)
    if kind == "restore-mismatch":
        return _raw_save(site, ctx, small, leak)
    if target == "os.environ":
        return _dict_write(site, ctx, small, env=True)
    if target == "sys.modules":
        return _dict_write(site, ctx, small, env=False)
    if target == "sys.path":
        return _sys_path(site, ctx, small)
    if target == "cwd":
        return _chdir(site, ctx, small)
    if kind == "binding-changed" and isinstance(target, str) and \
            target.startswith(("module:", "class:", "object:")):
        return _attribute_write(site, ctx, small, leak)
    raise NoRewrite(f"patchtrace knows no mechanical rewrite for a {kind} leak of {target}")
