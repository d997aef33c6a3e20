"""The pytest plugin: options, scopes, boundaries, the summary, strict mode, xdist.

A thin shell: it moves the tracer's scope as pytest moves through collection, setup, call
and teardown, and asks the :class:`~patchtrace.boundary.Detector` at each boundary. At the end
it builds the run's report model (:mod:`patchtrace.render._view`) once and hands it to the
one writer (:mod:`patchtrace.render.report`): the files when the session finishes, the
summary when the terminal reporter asks. State lives in ``config.stash`` only, never in a
module global. Hook wrappers use ``wrapper=True`` and ``try/finally``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import pytest

from . import _autostart, _boundary_times, _session, _tracer
from .analysis import victims as _victims
from .analysis.reads import Reads, reads_of_traceback
from .boundary import Detector
from .config import (
    OFF,
    ON,
    STRICT,
    Config,
    ConfigError,
    companion_bool,
    mark_said,
    parse_mode,
    parse_patterns,
    validate_extras,
)
from .leak import Leak
from .ledger import COLLECTION, Scope

if TYPE_CHECKING:
    from .render import _view

__all__ = ["PatchtraceLeakError"]

_WORKER_KEY: Final = "patchtrace"
#: plugins configuring themselves (pytest-mock wraps mock's asserts for the session)
CONFIGURE: Final = Scope("<configure>", "setup")
BETWEEN: Final = Scope("<session>", "setup")


if TYPE_CHECKING:
    from types import FrameType

    from _pytest.outcomes import Failed as _Failed
else:
    _Failed = pytest.fail.Exception


class PatchtraceLeakError(_Failed, AssertionError):
    """Raised in a polluting test's teardown under ``PATCHTRACE=strict``.

    Raised as ``pytest.fail(..., pytrace=False)`` is: pytest shows the message, which names
    the leaks, their lines and the fixes, and none of patchtrace's own frames
    (``--fulltrace`` still shows them). Still an ``AssertionError``, as it always was.
    """

    def __init__(self, message: str, where: tuple[str, int] | None = None) -> None:
        super().__init__(message, pytrace=False)
        #: (path, line) of the first leak, for the one-line crash report; plain data only
        self.where = where


class _Finalized:
    """Leaks of a wider fixture that pytest finalized while a test was running."""

    __slots__ = ("fixture", "leaks", "phase", "scope", "test")

    def __init__(self, test: str, phase: str, fixture: str, scope: str,
                 leaks: list[Leak]) -> None:
        self.test = test
        self.phase = phase
        self.fixture = fixture
        self.scope = scope
        self.leaks = leaks


class _State:
    def __init__(self, config: Config, tracer: _tracer.Tracer, detector: Detector) -> None:
        self.config = config
        self.tracer = tracer
        self.detector = detector
        self.worker_leaks: list[Leak] = []
        self.worker_tests = 0
        self.worker_mutations = 0
        self.crashed: list[str] = []
        #: the test between the start of its setup and the end of its teardown
        self.running: str | None = None
        #: strict mode: fixture leaks to raise in the teardown of the test that finalized them
        self.finalized: list[_Finalized] = []
        #: the JSON ``hints`` of failing tests (plain data), this process's and the workers'
        self.hints: list[dict[str, Any]] = []
        #: the report model, built when the session finishes; the summary reads it
        self.model: _view.Report | None = None
        #: a session started by a traced session's test (PATCHTRACE_CHILDREN): its mark,
        #: and that test (read at start: our own tests set PYTEST_CURRENT_TEST again)
        self.parent: _session.Marker | None = None
        self.started_by: str | None = None
        #: the mark this session set for the processes its tests start, undone at the end
        self.marker: _session.Marker | None = None
        #: what the traced children handed over, collected at the end of the session
        self.children: list[dict[str, Any]] = []
        #: PATCHTRACE_BASELINE entries, and the one line saying why it could not be read
        self.baseline: frozenset[tuple[str, str, str | None, str | None]] = frozenset()
        self.baseline_error: str | None = None
        #: the private benchmark hook (``_PATCHTRACE_BOUNDARY_TIMES``), None when unset
        self.times: _boundary_times.BoundaryTimes | None = None


_STATE: Final = pytest.StashKey[_State]()


# -- options ------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("patchtrace", "patchtrace: find test pollution")
    group.addoption(
        # nargs="?" only so that --patchtrace=MODE parses: a bare --patchtrace never takes
        # the next argument (see _bare_flag), as the contract's --patchtrace[=MODE] says.
        "--patchtrace", nargs="?", const="report", default=None, metavar="report|strict|off",
        help="trace global mutations and report leaks; --patchtrace=strict also fails the "
        "polluting test, --patchtrace=off turns tracing off (also: PATCHTRACE=1|strict|off)",
    )
    group.addoption("--patchtrace-json", default=None, metavar="PATH",
                    help="write the JSON report to PATH (PATCHTRACE_JSON)")
    group.addoption("--patchtrace-html", default=None, metavar="PATH",
                    help="write a self-contained HTML report to PATH (PATCHTRACE_HTML)")
    group.addoption("--patchtrace-graphs", default=None, metavar="DIR",
                    help="write one reference graph per leaked object (PATCHTRACE_GRAPHS)")
    group.addoption("--patchtrace-pdb", action="store_const", const="1", default=None,
                    help="stop in the debugger when a leak is found (PATCHTRACE_PDB)")
    group.addoption("--patchtrace-ignore", action="append", default=None, metavar="PATTERN",
                    help="ignore leaks whose target/name matches PATTERN (PATCHTRACE_IGNORE)")
    group.addoption("--patchtrace-children", action="store_const", const="1", default=None,
                    help="trace the Python processes tests start, silently, into the "
                         "session's report (PATCHTRACE_CHILDREN)")
    group.addoption("--patchtrace-baseline", default=None, metavar="PATH",
                    help="leaks in this baseline are known and never fail strict mode "
                    "(PATCHTRACE_BASELINE; write one with python -m patchtrace baseline)")
    parser.addini("patchtrace_baseline", "path of a baseline of known leaks", default="")
    parser.addini("patchtrace", "report|strict|off: trace global mutations", default="")
    parser.addini("patchtrace_json", "path of the JSON report", default="")
    parser.addini("patchtrace_html", "path of the HTML report", default="")
    parser.addini("patchtrace_graphs", "directory for reference graphs", default="")
    parser.addini("patchtrace_pdb", "stop in the debugger when a leak is found", default="")
    parser.addini("patchtrace_ignore", "patterns (target/name) of leaks to ignore",
                  type="linelist", default=[])
    parser.addini("patchtrace_children",
                  "trace child processes of the session into its report", default="")


def _option(config: pytest.Config, name: str) -> Any:
    """A command-line option's value, also before pytest has parsed its command line.

    Tracing starts in ``pytest_load_initial_conftests``, before ``config.option`` is filled
    in; ``known_args_namespace`` holds what the command line (with ``addopts`` and
    ``PYTEST_ADDOPTS``) said by then, once plugins' options are known.
    """
    value = config.getoption(name, None)
    if value is None:
        value = getattr(getattr(config, "known_args_namespace", None), name, None)
    return value


def _resolve(config: pytest.Config) -> Config:
    """Option > environment variable > ini key; bad values raise ConfigError.

    Ignore patterns from the three places are combined.
    """
    env = os.environ

    def pick(option: str, variable: str, ini: str) -> tuple[str | None, str]:
        value = _option(config, option)
        if value is not None:
            return value, f"--{option.replace('_', '-')}"
        if variable in env:
            return env[variable], variable
        raw = config.getini(ini)
        return (str(raw) if raw else None), f"ini {ini}"

    mode_value, mode_from = pick("patchtrace", "PATCHTRACE", "patchtrace")
    mode = parse_mode(mode_value, mode_from)
    problems: list[str] = []  # bad companions: said once (the .pth may have), ignored
    validate_extras(env, problems)
    pdb_value, pdb_from = pick("patchtrace_pdb", "PATCHTRACE_PDB", "patchtrace_pdb")
    pdb = companion_bool(pdb_value, pdb_from, problems)
    children_value, children_from = pick(
        "patchtrace_children", "PATCHTRACE_CHILDREN", "patchtrace_children")
    ignore: list[str] = list(config.getini("patchtrace_ignore") or [])
    ignore.extend(parse_patterns(env.get("PATCHTRACE_IGNORE")))
    ignore.extend(_option(config, "patchtrace_ignore") or [])
    return Config(
        mode,
        json=pick("patchtrace_json", "PATCHTRACE_JSON", "patchtrace_json")[0],
        html=pick("patchtrace_html", "PATCHTRACE_HTML", "patchtrace_html")[0],
        graphs=pick("patchtrace_graphs", "PATCHTRACE_GRAPHS", "patchtrace_graphs")[0],
        pdb=pdb,
        ignore=ignore,
        problems=problems,
        children=companion_bool(children_value, children_from, problems),
        baseline=pick("patchtrace_baseline", "PATCHTRACE_BASELINE", "patchtrace_baseline")[0],
    )


def _state(config: pytest.Config) -> _State | None:
    """This run's state: in ``config.stash`` only (no module global: pytester runs many
    sessions in one process, and a finished run's config is never kept alive)."""
    return config.stash.get(_STATE, None)


def _set_state(config: pytest.Config, state: _State | None) -> None:
    if state is None:
        del config.stash[_STATE]
    else:
        config.stash[_STATE] = state


# -- start: before conftests are imported, so their mutations count as collection ---------------
@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> Generator[None, None, None]:
    _bare_flag(early_config, parser, args)
    _start(early_config)
    try:
        return (yield)
    finally:
        state = _state(early_config)
        if state is not None:
            _guard(state, lambda: _checkpoint(state, CONFIGURE))


def _bare_flag(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    """A bare ``--patchtrace`` means ``report`` and never takes the next argument.

    argparse gives an optional value (``nargs="?"``) the next word, so ``pytest --patchtrace
    tests/`` would read ``tests/`` as the mode. pytest parses ``args`` again after this hook
    (its documentation edits them here in place), so the bare flag is spelled
    ``--patchtrace=report`` there, and the options already parsed are corrected.
    ``--patchtrace strict`` (a mode word that is not a path) is an error that shows the
    ``=`` form, rather than a guess.
    """
    end = args.index("--") if "--" in args else len(args)
    bare = [i for i in range(end) if args[i] == "--patchtrace"]
    if not bare:
        return
    for i in bare:
        following = args[i + 1] if i + 1 < len(args) else None
        if (following is not None and following.strip().lower() in (*ON, *STRICT, *OFF)
                and not (early_config.invocation_params.dir / following).exists()):
            raise pytest.UsageError(
                f"patchtrace: --patchtrace takes its value after '=': write "
                f"--patchtrace={following} (a bare --patchtrace means report, and "
                f"{following!r} would be read as a test path)")
        args[i] = "--patchtrace=report"
    known = parser.parse_known_args(args)
    namespace = early_config.known_args_namespace
    namespace.patchtrace = known.patchtrace
    namespace.file_or_dir = known.file_or_dir


def _checkpoint(state: _State, next_scope: Scope) -> None:
    """Attribute what the scan finds to the scope that ends, then move to ``next_scope``."""
    watch = state.tracer.source("watch")
    if watch is not None:
        watch.refresh()  # type: ignore[attr-defined]
        watch.scan()  # type: ignore[attr-defined]
    state.tracer.scope = next_scope


def _is_worker(config: pytest.Config) -> bool:
    """An xdist worker is part of its controller's session, not a process a test started.

    ``config.workerinput`` is set only after the initial conftests are loaded; before
    that, a worker is the process whose pytest runs inside xdist's ``remote.py``, which
    execnet executes as ``__channelexec__``. (``PYTEST_XDIST_WORKER`` alone says nothing:
    every process started by a worker's tests inherits it.)
    """
    if getattr(config, "workerinput", None) is not None:
        return True
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return False
    from .stack import _getframe

    frame: FrameType | None = _getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "__channelexec__":
            return True
        frame = frame.f_back
    return False


def _child_settings(config: pytest.Config) -> Config:
    """A traced child session: the ignore patterns, none of the parent's output paths."""
    ignore: list[str] = list(config.getini("patchtrace_ignore") or [])
    ignore.extend(parse_patterns(os.environ.get("PATCHTRACE_IGNORE")))
    return Config("report", ignore=ignore)


def _start(config: pytest.Config) -> None:
    if _state(config) is not None:
        return
    if _session.in_process() and _tracer.current() is not None:
        # A session run in-process by a test this process's session traces (pytester's
        # runpytest, pytest.main() in a test): it is part of that test's call, traced by
        # the running session. A second start would take the tracer over and stop it when
        # the inner session ends, leaving the rest of the outer run untraced.
        return
    parent = _session.other()
    if parent is not None and _is_worker(config):
        parent = None  # xdist workers are traced like their controller
    if parent is not None:
        # Started by a test of a traced session (a pytester child, a CLI under test):
        # untraced and silent, or, under PATCHTRACE_CHILDREN, traced silently for it.
        if parent.directory is None:
            return
        settings = _child_settings(config)
    else:
        try:
            settings = _resolve(config)
        except ConfigError as exc:
            mark_said(str(exc))  # pytest says it: the .pth's deferred line stays silent
            raise pytest.UsageError(f"patchtrace: {exc}") from None
        if not settings.enabled:
            _autostart.release(stop=True)
            return
        if settings.problems:
            # CONTRACT: under pytest a value that cannot be understood is a usage error
            # naming it (said once: the .pth's deferred line stays silent).
            for line in settings.problems:
                mark_said(line)
            raise pytest.UsageError("\n".join(
                line.removesuffix("; ignored") for line in settings.problems))
    from . import stack

    stack.reset_hidden_cache()  # pytest and pluggy are imported now: hide their frames
    running = _tracer.current()
    # Before the tracer and the detector's first snapshot: no boundary sees our mark.
    marker = None if parent is not None else _session.mark(running,
                                                            children=settings.children)
    tracer = _tracer.start(settings)
    tracer.silent = parent is not None
    _autostart.claim()  # the process-level report is ours now
    from . import debugger

    debugger.install()  # `pt ...` commands in --pdb, --trace and breakpoint() sessions
    tracer.scope = COLLECTION
    detector = Detector(tracer, rootdir=str(config.rootpath))
    tracer.detector = detector
    if not config.pluginmanager.is_blocked("warnings"):
        # pytest's warnings plugin wraps each test in catch_warnings(), which restores the
        # filters after our check: a simplefilter() inside a test is not a leak.
        detector.ignore_targets.add("warnings")
    state = _State(settings, tracer, detector)
    _track_imports(state, True)  # what conftests import and patch at once is seen
    state.parent = parent
    state.started_by = _session.started_by() if parent is not None else None
    state.marker = marker
    if parent is None:
        state.times = _boundary_times.from_environ()
    _load_baseline(state)
    _set_state(config, state)


def _load_baseline(state: _State) -> None:
    """A baseline that cannot be read is one line in the summary; tracing goes on."""
    if not state.config.baseline:
        return
    from .fix import _baseline

    try:
        state.baseline = _baseline.load(state.config.baseline)
    except _baseline.BaselineError as exc:
        state.baseline_error = f"patchtrace: {exc}; every leak counts as new"


def pytest_configure(config: pytest.Config) -> None:
    # Registered whether tracing is on or not: with --strict-markers, a marked test must
    # pass or fail the same way in both.
    config.addinivalue_line("markers", "patchtrace_ignore: leaks of this test are not reported")
    _start(config)  # for pytester in-process runs, xdist workers, plugins that skip conftests
    if _state(config) is None:
        # Off: nothing of ours runs from here on, not even a hook wrapper that returns at
        # once. Only this config's plugin manager forgets us (pytester runs in-process).
        plugin = sys.modules[__name__]
        if config.pluginmanager.is_registered(plugin):
            config.pluginmanager.unregister(plugin)
    else:
        _label_worker_ids(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = _state(config)
    if state is None:
        return
    state.detector.close()
    state.tracer.stop()
    from . import debugger

    debugger.uninstall()
    if state.marker is not None:
        _session.unmark(state.tracer, state.marker)
    _set_state(config, None)


# -- collection ---------------------------------------------------------------------------------
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    state = _state(session.config)
    if state is None:
        return (yield)
    _guard(state, lambda: _checkpoint(state, COLLECTION))
    try:
        return (yield)
    finally:
        _guard(state, lambda: _end_collection(state, session.config))


def pytest_collectstart(collector: pytest.Collector) -> None:
    """A test module about to be imported: where a change found at the collection boundary
    may have been made (its line is looked up there on 3.10/3.11: no dict watcher saw it)."""
    if isinstance(collector, pytest.Module):
        state = _state(collector.config)
        if state is not None:
            state.detector.collected_files.append(str(collector.path))


def _conftest_files(config: pytest.Config) -> list[str]:
    """The conftests loaded so far, the rootdir's first (they are loaded outside in)."""
    paths = []
    for plugin in config.pluginmanager.get_plugins():
        if issubclass(type(plugin), ModuleType):  # 3.10/3.11: a _TracedModule
            path = vars(plugin).get("__file__")
            if type(path) is str and os.path.basename(path) == "conftest.py":
                paths.append(path)
    return sorted(paths, key=lambda p: (p.count(os.sep), p))


def _track_imports(state: _State, on: bool) -> None:
    watch = state.tracer.source("watch")
    if watch is not None:
        watch.track_imports(on)  # type: ignore[attr-defined]


def _end_collection(state: _State, config: pytest.Config) -> None:
    _track_imports(state, False)
    state.detector.collected_files[:0] = _conftest_files(config)
    leaks = _timed(state, "collection",
                   lambda: state.detector.end(COLLECTION, collection=True))
    state.tracer.scope = BETWEEN
    _after_leaks(state, leaks)


# -- the test protocol --------------------------------------------------------------------------
# The baseline is taken at the start of setup and compared at the end of teardown, by
# wrappers of the same rank: pytest's capture, logging and unraisable-exception plugins
# wrap setup and teardown alike, so they are in the same state at both ends. (Around
# pytest_runtest_protocol they are not: warnings and assertion rewriting wrap it.)
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    state = _state(item.config)
    if state is not None:
        state.running = item.nodeid
        state.finalized.clear()
        state.detector.running_fixtures = (
            item.nodeid, tuple(n for n in getattr(item, "fixturenames", ()) if type(n) is str))
        _guard(state, lambda: _timed(state, "begin", state.detector.begin))
    return (yield from _phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _phase(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    state = _state(item.config)
    if state is None:
        return (yield)
    state.tracer.scope = Scope(item.nodeid, "teardown")
    failed = False
    try:
        return (yield)
    except BaseException:
        failed = True
        raise
    finally:
        leaks = _guard(state, lambda: _timed(
            state, "end", lambda: state.detector.end(Scope(item.nodeid, "teardown")))) or []
        leaks = _filter_marked(item, leaks, state)
        _after_leaks(state, leaks)
        finalized = [f for f in state.finalized if f.test == item.nodeid]
        state.finalized.clear()
        state.running = None
        state.tracer.scope = BETWEEN
        if state.config.strict and not failed:
            # Only what this test did, or what a wider fixture pytest finalized during it
            # left behind: a survivor of an earlier test, confirmed now, is not this test's.
            own = [leak for leak in leaks if leak.polluter == item.nodeid]
            error = _guard(state, lambda: _strict_error(own, finalized))
            if error is not None:
                raise error


def _phase(item: pytest.Item, phase: str) -> Generator[None, object, object]:
    state = _state(item.config)
    if state is None:
        return (yield)
    state.tracer.scope = Scope(item.nodeid, phase)
    try:
        return (yield)
    finally:
        if phase == "call":
            state.tracer.scope = Scope(item.nodeid, "teardown")


def _filter_marked(item: pytest.Item, leaks: list[Leak], state: _State) -> list[Leak]:
    """The marker drops this test's own leaks; an earlier test's survivor confirmed at
    this boundary is not the marked test's to hide."""
    if not leaks or item.get_closest_marker("patchtrace_ignore") is None:
        return leaks
    kept = []
    for leak in leaks:
        if leak.polluter != item.nodeid:
            kept.append(leak)
        elif leak in state.detector.leaks:
            state.detector.leaks.remove(leak)
    return kept


def _strict_error(own: list[Leak], finalized: list[_Finalized]) -> PatchtraceLeakError | None:
    """The error naming each leak, its line and its fix; None when there is nothing."""
    from .render.secrets import mask_leak

    # Leaks in the baseline are known: reported, never an error (new ones still are).
    own = [leak for leak in own if not leak.known]
    finalized = [_Finalized(f.test, f.phase, f.fixture, f.scope,
                            [leak for leak in f.leaks if not leak.known]) for f in finalized]
    groups: list[tuple[str, str | None, list[Leak]]] = []
    if own:
        groups.append(("this test", None, own))
    for fin in finalized:
        if fin.leaks:
            groups.append((f"fixture {fin.fixture!r}",
                           f"set up by {fin.leaks[0].polluter} ({fin.scope} scope), "
                           f"finalized in this test's {fin.phase}", fin.leaks))
    if not groups:
        return None
    lines = []
    for who, origin, leaks in groups:
        masked = [mask_leak(leak) for leak in leaks]
        more = f" and {len(masked) - 1} more" if len(masked) > 1 else ""
        lines.append(f"{who} leaked {masked[0].label}{more}:")
        if origin is not None:
            lines.append(f"  {origin}")
        lines.extend(f"  {leak.id} {leak.kind}: {leak.message()}" for leak in masked)
    where = groups[0][2][0].where
    return PatchtraceLeakError(
        "patchtrace (strict): " + "\n".join(lines),
        (where.file, where.line) if where is not None else None,
    )


# -- fixtures of wider scope --------------------------------------------------------------------
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(
    fixturedef: Any, request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    state = _state(request.config)
    scope = getattr(fixturedef, "scope", "function")
    if state is None:
        return (yield)
    node = getattr(request, "_pyfuncitem", None) or getattr(request, "node", None)
    test = getattr(node, "nodeid", "<session>")
    saved = state.tracer.scope
    name = _fixture_label(str(getattr(fixturedef, "argname", "?")), request)
    state.tracer.scope = Scope(test, "setup", name, scope)
    wide = scope != "function"
    if wide:
        _guard(state, lambda: state.detector.wide_setup_start(id(fixturedef), name, scope, test))
    try:
        return (yield)
    finally:
        if wide:
            _guard(state, lambda: state.detector.wide_setup_end(id(fixturedef)))
        state.tracer.scope = saved


#: pytest's generated fixtures for xunit-style setup (``_pytest/python.py``,
#: ``_pytest/unittest.py``): what the user wrote, and whether the class is named before it
_XUNIT: Final = (
    ("_unittest_setUpClass_fixture_", "setUpClass", True),
    ("_xunit_setup_class_fixture_", "setup_class", True),
    ("_xunit_setup_method_fixture_", "setup_method", True),
    ("_xunit_setup_function_fixture_", "setup_function", False),
)


def _fixture_label(argname: str, request: Any) -> str:
    """The name users know a fixture by: ``TestX.setUpClass`` for pytest's generated
    ``_unittest_setUpClass_fixture_TestX``, ``setUpModule`` or ``setup_module`` for
    ``_xunit_setup_module_fixture_mod``; a fixture's own name otherwise."""
    if not argname.startswith("_"):
        return argname
    for prefix, function, with_class in _XUNIT:
        if argname.startswith(prefix):
            owner = argname[len(prefix):]
            return f"{owner}.{function}" if with_class and owner else function
    if argname.startswith("_xunit_setup_module_fixture_"):
        module = getattr(request, "module", None)
        namespace = getattr(module, "__dict__", None) or {}
        return "setUpModule" if "setUpModule" in namespace else "setup_module"
    return argname


@pytest.hookimpl(trylast=True)
def pytest_fixture_post_finalizer(fixturedef: Any, request: pytest.FixtureRequest) -> None:
    state = _state(request.config)
    if state is None or getattr(fixturedef, "scope", "function") == "function":
        return
    leaks = _guard(state, lambda: _timed(
        state, "fixture", lambda: state.detector.wide_finalized(id(fixturedef))))
    if leaks:
        _after_leaks(state, leaks)
        scope = state.tracer.scope
        if state.config.strict and state.running is not None and scope.test == state.running:
            # Raised in the teardown of the test during which pytest finalized the fixture
            # (a module fixture: the module's last test); the polluter stays the test whose
            # setup ran it. Finalized outside a test: reported, and the run fails.
            state.finalized.append(_Finalized(
                state.running, scope.phase,
                _fixture_label(str(getattr(fixturedef, "argname", "?")), request),
                str(getattr(fixturedef, "scope", "?")), leaks))


# -- victims and "pollution present" --------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    state = _state(item.config)
    calls = None
    if state is not None and call.excinfo is not None and call.when != "teardown" and \
            not call.excinfo.errisinstance((pytest.skip.Exception, pytest.xfail.Exception)):
        # before the report is rendered: rendering may call what a mocker patch replaced
        calls = _guard(state, lambda: _hint_calls(state, item))
        _victims.freeze()  # what the test read is judged as of its failure
    report = yield
    if state is None or not report.failed or call.excinfo is None:
        return report
    excinfo = call.excinfo
    if isinstance(excinfo.value, PatchtraceLeakError):
        _crash_line(report, excinfo.value, item.config)
        return report  # a leak, not a victim of one: its message names its own values

    def names(packages: frozenset[str]) -> Reads:
        return _names_in_traceback(excinfo.tb, packages)

    text = str(report.longrepr)[:20_000]
    hits = _guard(state, lambda: state.detector.victim_of(
        item.nodeid, names, text, tb=excinfo.tb, exc=excinfo.value)) or []
    live = _guard(state, state.detector.live) or []
    # a module's old copy that this test met: no binding is "live", its objects are
    live += [leak for leak in hits if leak not in live]
    if live:
        report.sections.append(("patchtrace: pollution present",
                                "\n".join(_victims.pollution_lines(live, hits, item.nodeid))))
    if calls is not None:  # not in teardown: by then the records no longer hold originals
        _guard(state, lambda: _add_hints(state, item, report, excinfo.tb, calls))
    return report


def _hint_calls(state: _State, item: pytest.Item) -> dict[int, int]:
    from .analysis import hints as _hints

    # The detector's mark is where this test's setup began; its records are unsealed until
    # the teardown boundary, so they still hold each patch's original and replacement.
    return _hints.calls_at_failure(state.tracer.ledger.since(state.detector.scope_mark()),
                                   item.nodeid)


def _add_hints(state: _State, item: pytest.Item, report: pytest.TestReport, tb: Any,
               calls: dict[int, int]) -> None:
    """A patch of this failing test that never took effect, and who holds the original."""
    from .analysis import hints as _hints

    records = state.tracer.ledger.since(state.detector.scope_mark())
    path, line0, _ = item.location
    hints = _hints.hints_for_failure(
        records, item.nodeid, tb, rootdir=str(item.config.rootpath),
        fallback_where=(path, line0 + 1) if line0 is not None else None, calls=calls)
    if hints:
        state.hints.extend(hint.to_json() for hint in hints)
        report.sections.append(("patchtrace: patch not used",
                                "\n".join(hint.message for hint in hints)))


def _crash_line(report: pytest.TestReport, error: PatchtraceLeakError,
                config: pytest.Config) -> None:
    """The one-line form of a strict error (the short summary, JUnit's message) is its
    first line at the leak's line, not ``patchtrace.pytest_plugin.PatchtraceLeakError``
    at patchtrace's own ``raise``."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None or config.getoption("fulltrace", False):
        return
    try:
        crash.message = str(error).partition("\n")[0]
        if error.where is not None:
            crash.path = str(config.rootpath / error.where[0])
            crash.lineno = error.where[1]
    except AttributeError:  # another pytest's repr: leave it as it is
        pass


def _names_in_traceback(tb: Any, packages: frozenset[str]) -> Reads:
    """What the failing frames, and the project code they call, could have read."""
    return reads_of_traceback(tb, packages)


# -- reporting ----------------------------------------------------------------------------------
def _after_leaks(state: _State, leaks: list[Leak]) -> None:
    if not leaks:
        return
    if state.baseline:
        from .fix import _baseline

        _baseline.mark(leaks, state.baseline)
    if state.config.pdb:
        from . import debugger

        for leak in leaks:
            debugger.stop_at_leak(leak, state.detector)


def _label_worker_ids(config: pytest.Config) -> None:
    """In an xdist worker, leak ids carry the worker's id (``gw0-L1``): the id a failing
    test's "pollution present" section shows is the one of the final summary and the JSON,
    and a wide fixture's leak made on two workers is two labelled leaks, never two ``L1``."""
    state = _state(config)
    workerinput = getattr(config, "workerinput", None)
    if state is None or workerinput is None:
        return
    worker = str(workerinput.get("workerid", "") or "worker")
    state.detector.id_prefix = f"{worker}-"


def _model(state: _State, config: pytest.Config) -> _view.Report:
    """The report model of this run (built once): this process's leaks and the workers',
    numbered and masked once for every output (see :mod:`patchtrace.render._view`)."""
    if state.model is not None:
        return state.model
    from .render import _view

    seed = getattr(config.option, "randomly_seed", None)
    randomly = seed is not None and config.pluginmanager.has_plugin("randomly")
    extra: dict[str, Any] = {}
    if randomly:
        extra["randomly_seed"] = seed
    if state.crashed:
        extra["crashed_workers"] = list(state.crashed)
    extra["rootdir"] = str(config.rootpath)
    state.model = _view.build(
        state.detector.leaks, workers=state.worker_leaks, baseline=state.baseline,
        tests=state.detector.tests + state.worker_tests,
        mutations=len(state.tracer.ledger) + state.worker_mutations,
        rootdir=str(config.rootpath), extra=extra, children=state.children,
        hints=state.hints, seed=str(seed) if randomly else None, crashed=state.crashed,
        baseline_error=state.baseline_error)
    return state.model


@pytest.hookimpl(trylast=True)  # after pytest's own, which may still finalize fixtures
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state is None:
        return
    config = session.config
    leaks_at_end = _guard(state, lambda: _timed(state, "finish", state.detector.finish))
    if state.times is not None:
        state.times.write()
    if leaks_at_end:
        _after_leaks(state, leaks_at_end)
    from .render import report

    if state.parent is not None:  # a traced child: our findings go to the parent session
        report.hand_to_parent(state.parent, started_by=state.started_by,
                              leaks=state.detector.leaks)
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand our findings to the controller
        workeroutput[_WORKER_KEY] = report.worker_payload(
            state.detector.leaks, tests=state.detector.tests,
            mutations=len(state.tracer.ledger), hints=state.hints)
        return
    state.children = _guard(state, lambda: _session.collect(state.marker)) or []
    model = _model(state, config)
    report.write_files(model, state.config, internal_error=state.tracer.internal_error)
    new = [leak for leak in model.leaks if not leak.known]
    if state.config.strict and new and session.exitstatus == pytest.ExitCode.OK:
        # Leaks no test raised (found at collection, at the end, after their test: a
        # survivor, or a fixture finalized outside any test) still fail a strict run.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        model.failed_run = True


@pytest.hookimpl(optionalhook=True)  # an xdist hook: pytest without xdist must not fail
def pytest_testnodedown(node: Any, error: object) -> None:
    state = _state(node.config)
    if state is None:
        return
    output = getattr(node, "workeroutput", None) or {}
    data = output.get(_WORKER_KEY)
    gateway = getattr(node, "gateway", None)
    worker = str(getattr(gateway, "id", None) or "worker")
    if data is None:
        state.crashed.append(worker)
        return
    try:
        from .render import report

        found = report.read_worker_payload(data)
    except Exception as exc:
        state.crashed.append(f"{worker} (unreadable report: {exc})")
        return
    state.worker_tests += found.tests
    state.worker_mutations += found.mutations
    state.worker_leaks.extend(found.leaks)
    state.hints.extend(found.hints)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if (state is None or getattr(config, "workerinput", None) is not None
            or state.parent is not None):
        return
    from .render import report

    model = _model(state, config)
    model.errors = list(state.tracer.errors)
    verbosity = int(config.getoption("verbose"))  # Config.get_verbosity() needs pytest 8
    terminal = report.ReporterTerminal(terminalreporter, verbosity)

    def internal_error(part: str, exc: BaseException) -> None:
        state.tracer.internal_error(part, exc)
        model.errors = list(state.tracer.errors)

    report.write_summary(model, state.config, terminal, internal_error=internal_error)


def _timed(state: _State, what: str, func: Any) -> Any:
    """``func()``, timed when the private benchmark hook asks for it."""
    times = state.times
    return func() if times is None else times.timed(what, func)


def _guard(state: _State, func: Any) -> Any:
    """Run detector work; an internal error is said once and never changes an outcome."""
    try:
        return func()
    except Exception as exc:
        state.tracer.internal_error("leak detection", exc)
        return None
