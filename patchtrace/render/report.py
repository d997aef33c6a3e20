"""The one writer: every output of a run, from its :class:`~patchtrace.render._view.Report`.

Used alike by the pytest plugin, plain unittest runs and traced scripts (``_autostart``),
and for the hand-offs: an xdist worker's findings to its controller, a traced child's to
the session that started it.

- :func:`write_files`: the JSON report, the HTML report and the graphs, each remembered in
  ``model.outputs`` as written or not (and why not). A report that cannot be written is
  one line, ``patchtrace: could not write PATH (reason)``; nothing says "written to" unless
  the file was written. Files are written with the references captured when tracing
  started (:mod:`patchtrace._captured`): a suite that left ``builtins.open`` mocked still
  gets its reports.
- :func:`write_summary`: the terminal summary, the lines about the files, hints, child
  processes, internal errors and GitHub annotations, through a :class:`Terminal`
  (pytest's terminal reporter, or the real standard error).
- :func:`write_all`: both. pytest writes the files when the session finishes and the
  summary when its terminal reporter asks for it, so the plugin calls the two halves.

Never raises for a file: a report that cannot be written never changes a run's outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, final

from ._view import Report, build

if TYPE_CHECKING:
    from .._session import Marker
    from ..config import Config
    from ..leak import Leak

__all__ = [
    "Report",
    "ReporterTerminal",
    "StderrTerminal",
    "StdoutTerminal",
    "Terminal",
    "WorkerReport",
    "build",
    "hand_to_parent",
    "read_worker_payload",
    "worker_payload",
    "write_all",
    "write_files",
    "write_summary",
]

#: ``internal_error(part, exc)``: a part failed; say it once (``Tracer.internal_error``)
InternalError = Callable[[str, BaseException], None]
if TYPE_CHECKING:
    # Only for type checkers: the writer is imported at the end of a run, in a process the
    # suite may have polluted, and building a Literal at run time calls sys._getframe on
    # 3.10 with typing_extensions installed (a suite may have set it to None).
    Style = Literal["warn", "bad"] | None


class Terminal(Protocol):
    """Where the summary goes."""

    color: bool
    width: int
    verbosity: int

    def sep(self, text: str, *, bad: bool = False) -> None: ...

    def line(self, text: str, *, style: Style = None) -> None: ...


@final
class StderrTerminal:
    """The real standard error, captured at start (unittest runs and scripts): plain
    lines, no colour, the headline without a separator."""

    color = False
    width = 100
    verbosity = 0

    def sep(self, text: str, *, bad: bool = False) -> None:
        self.line(text)

    def line(self, text: str, *, style: Style = None) -> None:
        from .. import _captured

        _captured.say(text)


@final
class StdoutTerminal:
    """Standard output (``python -m patchtrace report``): the headline without a
    separator, colour on a terminal, rich wrapping at the terminal's width (``COLUMNS``) as
    pytest's reporter does."""

    def __init__(self, verbosity: int = 0) -> None:
        import shutil
        import sys

        self.verbosity = verbosity
        self.color = sys.stdout.isatty()
        self.width = shutil.get_terminal_size(fallback=(80, 24)).columns

    def sep(self, text: str, *, bad: bool = False) -> None:
        self.line(text)

    def line(self, text: str, *, style: Style = None) -> None:
        print(text)


@final
class ReporterTerminal:
    """pytest's terminal reporter: ``write_sep`` for the headline, ``write_line`` for the
    rest, in colour when pytest has markup."""

    def __init__(self, reporter: Any, verbosity: int) -> None:
        self._tr = reporter
        self.verbosity = verbosity
        self.color = bool(getattr(reporter, "hasmarkup", False))
        writer = getattr(reporter, "_tw", None)
        self.width = int(writer.fullwidth) if writer is not None else 100

    def sep(self, text: str, *, bad: bool = False) -> None:
        if bad:
            self._tr.write_sep("=", text, red=True, bold=True)
        else:
            self._tr.write_sep("-", text)

    def line(self, text: str, *, style: Style = None) -> None:
        if style == "warn":
            self._tr.write_line(text, yellow=True)
        elif style == "bad":
            self._tr.write_line(text, red=True, bold=True)
        else:
            self._tr.write_line(text)


# -- files --------------------------------------------------------------------------------------
def _output(model: Report, what: str, path: str, write: Callable[[], bool]) -> None:
    """Write one report; remember whether it was written (and why not) for the summary."""
    try:
        written = write()
    except Exception as exc:
        from .. import _captured

        model.outputs.append((what, path, _captured.reason(exc)))
    else:
        if written:
            model.outputs.append((what, path, None))


def write_files(model: Report, config: Config, *,
                internal_error: InternalError | None = None) -> None:
    """The JSON and HTML reports and the graphs that ``config`` asks for."""
    leaks = model.leaks
    if leaks and (config.json or config.html):
        try:
            from .. import fix

            fix.fill(leaks, model.rootdir)
        except Exception as exc:  # a suggestion is never worth a lost report
            _failed(internal_error, "suggested patches", exc,
                    f"patchtrace: could not suggest patches ({exc!r})")
    if config.json:
        json_path = config.json

        def write_json() -> bool:
            from . import json as json_report

            json_report.write(json_path, json_report.build(
                leaks, tests=model.tests, mutations=model.mutations, extra=model.extra,
                children=model.children, hints=model.hints))
            return True

        _output(model, "JSON report", json_path, write_json)
    if config.html:
        html_path = config.html

        def write_html() -> bool:
            try:
                from . import html
            except ImportError:
                return False
            html.write(html_path, leaks, tests=model.tests, mutations=model.mutations,
                       extra=model.extra, rootdir=model.rootdir, hints=model.hints)
            return True

        _output(model, "HTML report", html_path, write_html)
    if config.graphs:
        directory = config.graphs

        def write_graphs() -> bool:
            try:
                from . import graph
            except ImportError:
                return False
            return bool(graph.write_leak_graphs(leaks, directory))

        _output(model, "graphs", directory, write_graphs)


def _failed(internal_error: InternalError | None, part: str, exc: BaseException,
            line: str) -> None:
    if internal_error is not None:
        internal_error(part, exc)
        return
    from .. import _captured

    _captured.say(line)


# -- the summary --------------------------------------------------------------------------------
def _plain_line(leak: Leak) -> str:
    where = f" at {leak.where.file}:{leak.where.line}" if leak.where else ""
    return f"{leak.id} {leak.kind} {leak.label} from {leak.polluter}{where}"


def leak_lines(model: Report, terminal: Terminal, *,
               internal_error: InternalError | None = None) -> list[str]:
    """The leaks, grouped by polluter (rich); plain lines when rich cannot render."""
    try:
        from . import terminal as rich_terminal

        return rich_terminal.render(
            model.leaks, verbosity=max(terminal.verbosity, -1), color=terminal.color,
            width=terminal.width, rootdir=model.rootdir, same_change=model.same_change)
    except Exception as exc:
        # rich imports what a leak may have replaced (a test that left
        # sys.modules["colorsys"] = MagicMock()): the summary falls back to plain lines.
        lines = [_plain_line(leak) for leak in model.leaks]
        if internal_error is not None:
            internal_error("terminal summary", exc)
            return lines
        return [f"patchtrace: plain summary ({type(exc).__name__}: {exc})", *lines]


def write_summary(model: Report, config: Config, terminal: Terminal, *,
                  internal_error: InternalError | None = None) -> None:
    """The terminal summary: the headline, the leaks, the files, hints and problems."""
    from .terminal import headline

    if model.baseline_error:
        terminal.line(model.baseline_error, style="warn")
    title = headline(model.leaks, model.tests)
    if not model.leaks:
        if model.session and terminal.verbosity >= 0:
            note = f" (pytest-randomly seed {model.seed})" if model.seed is not None else ""
            terminal.sep(f"{title}{note}")
        _hints(model, terminal)
        _outputs(model, terminal)
        _problems(model, terminal)
        return
    terminal.sep(title, bad=True)
    if model.seed is not None:
        terminal.line(f"test order: pytest-randomly seed {model.seed} "
                      f"(reproduce with -p randomly --randomly-seed={model.seed})")
    for line in leak_lines(model, terminal, internal_error=internal_error):
        terminal.line(line)
    for test_id, lines in model.pollution:  # as pytest's failure reports show them
        terminal.line(f"patchtrace: pollution present when {test_id} failed:")
        for line in lines:
            terminal.line(f"  {line}")
    _outputs(model, terminal)
    if model.failed_run:
        terminal.line("patchtrace (strict): no test failed, but these leaks fail the run "
                      "(exit status 1)", style="bad")
    _hints(model, terminal)
    _problems(model, terminal)
    from . import github

    if github.enabled():
        for line in github.commands(model.leaks, strict=config.strict):
            terminal.line(line)


def write_all(model: Report, config: Config, terminal: Terminal | None = None, *,
              internal_error: InternalError | None = None) -> None:
    """Every output of a run: the files, then the summary (on stderr by default)."""
    write_files(model, config, internal_error=internal_error)
    write_summary(model, config, terminal if terminal is not None else StderrTerminal(),
                  internal_error=internal_error)


def _hints(model: Report, terminal: Terminal) -> None:
    """One line per hint (a failing test's patch that never took effect)."""
    hints = model.hints
    if not hints:
        return
    if len(hints) == 1:
        terminal.line(f"patchtrace: 1 hint: {hints[0].get('test')}: "
                      f"{hints[0].get('message')}", style="warn")
        return
    terminal.line(f"patchtrace: {len(hints)} hints:", style="warn")
    for hint in hints:
        terminal.line(f"  {hint.get('test')}: {hint.get('message')}")


def _outputs(model: Report, terminal: Terminal) -> None:
    """``written to PATH`` only for a file really written; ``could not write`` otherwise."""
    from .. import _session

    for line in _session.summary(model.children):
        terminal.line(line)
    for what, path, reason in model.outputs:
        if reason is None:
            terminal.line(f"patchtrace: {what} written to {path}")
        else:
            terminal.line(f"patchtrace: could not write {path} ({reason})", style="warn")


def _problems(model: Report, terminal: Terminal) -> None:
    for error in model.errors:
        terminal.line(f"patchtrace: internal error, that part was disabled: {error}",
                      style="warn")
    for worker in model.crashed:
        terminal.line(f"patchtrace: worker {worker} ended without a report; "
                      "leaks from its tests are missing", style="warn")


# -- hand-offs ----------------------------------------------------------------------------------
@final
class WorkerReport:
    """What an xdist worker handed to its controller."""

    __slots__ = ("hints", "leaks", "mutations", "tests")

    def __init__(self, tests: int, mutations: int, leaks: list[Leak],
                 hints: list[dict[str, Any]]) -> None:
        self.tests = tests
        self.mutations = mutations
        self.leaks = leaks
        self.hints = hints


def worker_payload(leaks: Iterable[Leak], *, tests: int, mutations: int,
                   hints: Sequence[dict[str, Any]]) -> str:
    """An xdist worker's findings, for ``workeroutput`` (a string: execnet sends it as is).
    Leaks keep their ids (``gw0-L1``) and are masked by the controller's model."""
    from .. import _captured

    return str(_captured.dumps({"tests": tests, "mutations": mutations,
                                "leaks": [leak.to_json() for leak in leaks],
                                "hints": list(hints)}, default=str))


def read_worker_payload(data: str) -> WorkerReport:
    """A worker's findings; raises ``ValueError`` (and the like) when they are unreadable."""
    from .. import _captured
    from ..leak import Leak

    payload = _captured.loads(data)
    if type(payload) is not dict:
        raise ValueError("not a patchtrace worker report")
    return WorkerReport(
        int(payload.get("tests", 0)), int(payload.get("mutations", 0)),
        [Leak.from_json(item) for item in payload.get("leaks", ())],
        [hint for hint in payload.get("hints", ()) if isinstance(hint, dict)])


def hand_to_parent(marker: Marker, *, started_by: str | None, leaks: Iterable[Leak]) -> None:
    """A traced child (PATCHTRACE_CHILDREN): its leaks, masked, into the session's
    directory; nothing printed, nothing written when there is nothing to hand over."""
    found = list(leaks)
    if not found:
        return
    from .. import _session
    from .secrets import mask_leak

    _session.write_child(marker, command=_session.command(), started_by=started_by,
                         leaks=[mask_leak(leak) for leak in found])
