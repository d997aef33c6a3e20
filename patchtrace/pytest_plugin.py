"""The pytest plugin: options, scopes, boundaries, the summary, strict mode, xdist.

A thin shell: it moves the tracer's scope as pytest moves through collection, setup, call
and teardown, and asks the :class:`~patchtrace.leaks.Detector` at each boundary. State
lives in ``config.stash``. Hook wrappers use ``wrapper=True`` and ``try/finally``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final

import pytest

from . import _autostart, _tracer
from ._reads import Reads, reads_of_traceback
from .config import (
    OFF,
    ON,
    STRICT,
    Config,
    ConfigError,
    parse_bool,
    parse_mode,
    parse_patterns,
    validate_extras,
)
from .leaks import Detector, Leak
from .ledger import COLLECTION, Scope

__all__ = ["PatchtraceLeakError"]

_WORKER_KEY: Final = "patchtrace"
#: plugins configuring themselves (pytest-mock wraps mock's asserts for the session)
CONFIGURE: Final = Scope("<configure>", "setup")
BETWEEN: Final = Scope("<session>", "setup")


if TYPE_CHECKING:
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
        #: strict mode: the exit status is 1 only because of leaks no test raised
        self.failed_run = False
        #: PATCHTRACE_BASELINE entries, and the one line saying why it could not be read
        self.baseline: frozenset[tuple[str, str, str | None, str | None]] = frozenset()
        self.baseline_error: str | None = None


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
    validate_extras(env)
    pdb_value, pdb_from = pick("patchtrace_pdb", "PATCHTRACE_PDB", "patchtrace_pdb")
    ignore: list[str] = list(config.getini("patchtrace_ignore") or [])
    ignore.extend(parse_patterns(env.get("PATCHTRACE_IGNORE")))
    ignore.extend(_option(config, "patchtrace_ignore") or [])
    return Config(
        mode,
        json=pick("patchtrace_json", "PATCHTRACE_JSON", "patchtrace_json")[0],
        html=pick("patchtrace_html", "PATCHTRACE_HTML", "patchtrace_html")[0],
        graphs=pick("patchtrace_graphs", "PATCHTRACE_GRAPHS", "patchtrace_graphs")[0],
        pdb=parse_bool(pdb_value, pdb_from),
        ignore=ignore,
        baseline=pick("patchtrace_baseline", "PATCHTRACE_BASELINE", "patchtrace_baseline")[0],
    )


#: (config, its state): hooks ask ~10 times per test, and ``Stash.get`` is three Python calls
_cached: tuple[object, _State | None] = (None, None)


def _state(config: pytest.Config) -> _State | None:
    global _cached
    cached_config, state = _cached
    if cached_config is config:
        return state
    state = config.stash.get(_STATE, None)
    _cached = (config, state)
    return state


def _set_state(config: pytest.Config, state: _State | None) -> None:
    global _cached
    _cached = (None, None)
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


def _start(config: pytest.Config) -> None:
    if _state(config) is not None:
        return
    try:
        settings = _resolve(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"patchtrace: {exc}") from None
    if not settings.enabled:
        _autostart.release(stop=True)
        return
    from . import stack

    stack.reset_hidden_cache()  # pytest and pluggy are imported now: hide their frames
    tracer = _tracer.start(settings)
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
    _start(config)  # for pytester in-process runs and plugins that skip initial conftests


def pytest_unconfigure(config: pytest.Config) -> None:
    global _cached
    state = _state(config)
    _cached = (None, None)  # never keep a finished run's config alive (pytester runs many)
    if state is None:
        return
    state.detector.close()
    state.tracer.stop()
    from . import debugger

    debugger.uninstall()
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
        _guard(state, lambda: _end_collection(state))


def _end_collection(state: _State) -> None:
    leaks = state.detector.end(COLLECTION, collection=True)
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
        _guard(state, state.detector.begin)
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
        leaks = _guard(state, lambda: state.detector.end(Scope(item.nodeid, "teardown"))) or []
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
    name = str(getattr(fixturedef, "argname", "?"))
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


@pytest.hookimpl(trylast=True)
def pytest_fixture_post_finalizer(fixturedef: Any, request: pytest.FixtureRequest) -> None:
    state = _state(request.config)
    if state is None or getattr(fixturedef, "scope", "function") == "function":
        return
    leaks = _guard(state, lambda: state.detector.wide_finalized(id(fixturedef)))
    if leaks:
        _after_leaks(state, leaks)
        scope = state.tracer.scope
        if state.config.strict and state.running is not None and scope.test == state.running:
            # Raised in the teardown of the test during which pytest finalized the fixture
            # (a module fixture: the module's last test); the polluter stays the test whose
            # setup ran it. Finalized outside a test: reported, and the run fails.
            state.finalized.append(_Finalized(
                state.running, scope.phase, str(getattr(fixturedef, "argname", "?")),
                str(getattr(fixturedef, "scope", "?")), leaks))


# -- victims and "pollution present" --------------------------------------------------------------
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    state = _state(item.config)
    if state is None or not report.failed or call.excinfo is None:
        return report
    excinfo = call.excinfo
    if isinstance(excinfo.value, PatchtraceLeakError):
        _crash_line(report, excinfo.value, item.config)
        return report  # a leak, not a victim of one: its message names its own values

    def names(packages: frozenset[str]) -> Reads:
        return _names_in_traceback(excinfo.tb, packages)

    text = str(report.longrepr)[:20_000]
    hits = _guard(state, lambda: state.detector.victim_of(item.nodeid, names, text)) or []
    live = _guard(state, state.detector.live) or []
    if live:
        lines = []
        for leak in live:
            used = " (used by this test)" if leak in hits else ""
            lines.append(f"{leak.id} {leak.kind}: {leak.label} from {leak.polluter}{used}")
        report.sections.append(("patchtrace: pollution present", "\n".join(lines)))
    return report


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


def _all_leaks(state: _State) -> list[Leak]:
    """This process's leaks and the workers', numbered, secrets masked for every output."""
    from .render.secrets import mask_leak

    leaks = list(state.detector.leaks) + list(state.worker_leaks)
    if state.baseline:
        from .fix import _baseline

        _baseline.mark(leaks, state.baseline)
    for number, leak in enumerate(leaks, 1):
        leak.id = f"L{number}"
    return [mask_leak(leak) for leak in leaks]


@pytest.hookimpl(trylast=True)  # after pytest's own, which may still finalize fixtures
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _state(session.config)
    if state is None:
        return
    config = session.config
    leaks_at_end = _guard(state, state.detector.finish)
    if leaks_at_end:
        _after_leaks(state, leaks_at_end)
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand our findings to the controller
        workeroutput[_WORKER_KEY] = json.dumps({
            "tests": state.detector.tests,
            "mutations": len(state.tracer.ledger),
            "leaks": [leak.to_json() for leak in state.detector.leaks],
        })
        return
    leaks = _all_leaks(state)
    tests = state.detector.tests + state.worker_tests
    mutations = len(state.tracer.ledger) + state.worker_mutations
    extra: dict[str, Any] = {}
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None and config.pluginmanager.has_plugin("randomly"):
        extra["randomly_seed"] = seed
    if state.crashed:
        extra["crashed_workers"] = list(state.crashed)
    extra["rootdir"] = str(config.rootpath)
    if leaks and (state.config.json or state.config.html):
        from . import fix

        _guard(state, lambda: fix.fill(leaks, str(config.rootpath)))
    json_path = state.config.json
    if json_path:
        from .render import json as json_report

        report = json_report.build(leaks, tests=tests, mutations=mutations, extra=extra)
        _guard(state, lambda: json_report.write(json_path, report))
    if state.config.html:
        _guard(state, lambda: _write_html(state, leaks, tests, mutations, extra))
    if state.config.graphs:
        _guard(state, lambda: _write_graphs(state, leaks))
    new = [leak for leak in leaks if not leak.known]
    if state.config.strict and new and session.exitstatus == pytest.ExitCode.OK:
        # Leaks no test raised (found at collection, at the end, after their test: a
        # survivor, or a fixture finalized outside any test) still fail a strict run.
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        state.failed_run = True


def _write_html(state: _State, leaks: list[Leak], tests: int, mutations: int,
                extra: dict[str, Any]) -> None:
    try:
        from .render import html
    except ImportError:
        return
    html.write(state.config.html or "", leaks, tests=tests, mutations=mutations, extra=extra,
               rootdir=str(state.detector.rootdir or os.getcwd()))


def _write_graphs(state: _State, leaks: list[Leak]) -> None:
    try:
        from .render import graph
    except ImportError:
        return
    graph.write_leak_graphs(leaks, state.config.graphs or "")


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
        payload = json.loads(data)
        state.worker_tests += int(payload.get("tests", 0))
        state.worker_mutations += int(payload.get("mutations", 0))
        state.worker_leaks.extend(Leak.from_json(item) for item in payload.get("leaks", ()))
    except Exception as exc:
        state.crashed.append(f"{worker} (unreadable report: {exc})")


def _plain_line(leak: Leak) -> str:
    where = f" at {leak.where.file}:{leak.where.line}" if leak.where else ""
    return f"{leak.id} {leak.kind} {leak.label} from {leak.polluter}{where}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    if state is None or getattr(config, "workerinput", None) is not None:
        return
    leaks = _all_leaks(state)
    tr = terminalreporter
    if state.baseline_error:
        tr.write_line(state.baseline_error, yellow=True)
    verbosity = int(config.getoption("verbose"))  # Config.get_verbosity() needs pytest 8
    seed = getattr(config.option, "randomly_seed", None)
    randomly = seed is not None and config.pluginmanager.has_plugin("randomly")
    if not leaks:
        if verbosity >= 0:
            note = f" (pytest-randomly seed {seed})" if randomly else ""
            tr.write_sep("-", f"patchtrace: no leaks in {state.detector.tests + state.worker_tests}"
                              f" tests{note}")
        _report_crashes(tr, state)
        return
    polluters = {leak.polluter for leak in leaks}
    tr.write_sep("=", f"patchtrace: {len(leaks)} leak{'s' * (len(leaks) != 1)} "
                      f"from {len(polluters)} polluter{'s' * (len(polluters) != 1)}",
                 red=True, bold=True)
    if randomly:
        tr.write_line(f"test order: pytest-randomly seed {seed} "
                      f"(reproduce with -p randomly --randomly-seed={seed})")
    try:
        from .render import terminal

        lines = terminal.render(
            leaks, verbosity=-1 if verbosity < 0 else verbosity, color=bool(tr.hasmarkup),
            width=tr._tw.fullwidth if getattr(tr, "_tw", None) is not None else 100,
            rootdir=str(config.rootpath),
        )
    except Exception as exc:
        # rich imports what a leak may have replaced (a test that left
        # sys.modules["colorsys"] = MagicMock()): the summary falls back to plain lines.
        state.tracer.internal_error("terminal summary", exc)
        lines = [_plain_line(leak) for leak in leaks]
    for line in lines:
        tr.write_line(line)
    if state.config.json:
        tr.write_line(f"patchtrace: JSON report written to {state.config.json}")
    if state.config.html:
        tr.write_line(f"patchtrace: HTML report written to {state.config.html}")
    if state.failed_run:
        tr.write_line("patchtrace (strict): no test failed, but these leaks fail the run "
                      "(exit status 1)", red=True, bold=True)
    _report_crashes(tr, state)
    _github_annotations(tr, state, leaks)


def _github_annotations(tr: Any, state: _State, leaks: list[Leak]) -> None:
    """Under GitHub Actions, one workflow command per leak, shown at its line on the PR."""
    from .render import github

    if leaks and github.enabled():
        for line in github.commands(leaks, strict=state.config.strict):
            tr.write_line(line)


def _report_crashes(tr: Any, state: _State) -> None:
    for error in state.tracer.errors:
        tr.write_line(f"patchtrace: internal error, that part was disabled: {error}",
                      yellow=True)
    for worker in state.crashed:
        tr.write_line(f"patchtrace: worker {worker} ended without a report; "
                      "leaks from its tests are missing", yellow=True)


def _guard(state: _State, func: Any) -> Any:
    """Run detector work; an internal error is said once and never changes an outcome."""
    try:
        return func()
    except Exception as exc:
        state.tracer.internal_error("leak detection", exc)
        return None
