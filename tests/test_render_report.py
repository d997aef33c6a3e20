"""The report model (render/_view.py) and the one writer (render/report.py), on hand-built
leaks: numbered once, masked once, every output from one model, files written or said
not to be."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from patchtrace.config import Config
from patchtrace.leak import Leak
from patchtrace.render import _view, report
from patchtrace.render.secrets import MASK, mask_leak
from patchtrace.stack import Frame
from patchtrace.values import MISSING, ValueSummary, summarize

SECRET = "hunter2-very-secret"
URL = "postgres://admin:s3cr3t-pw@db.example/prod"


@pytest.fixture(autouse=True)
def _masking_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHTRACE_SHOW_SECRETS", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def make_leak(leak_id: str = "", *, kind: Any = "patch-not-stopped",
              target: str | None = "module:pkg.mod", name: str | None = "func",
              value: ValueSummary | None = None, obj: object = None,
              polluter: str = "tests/test_a.py::test_x") -> Leak:
    kwargs: dict[str, Any] = {} if obj is None else {"obj": obj}
    leak = Leak(kind, polluter, "call", target, name,
                where=Frame("tests/test_a.py", 3, "test_x"),
                stack=[Frame("tests/test_a.py", 3, "test_x")], before=MISSING,
                value=value or ValueSummary("MagicMock", "<MagicMock name='func'>", True),
                **kwargs)
    leak.id = leak_id
    return leak


def env_leak(leak_id: str = "L1", name: str = "API_TOKEN", value: str = SECRET) -> Leak:
    return make_leak(leak_id, kind="binding-changed", target="os.environ", name=name,
                     value=ValueSummary("str", repr(value), False), obj=value)


class Recorder:
    """A Terminal that keeps what it was given."""

    color = False
    width = 100

    def __init__(self, verbosity: int = 0) -> None:
        self.verbosity = verbosity
        self.lines: list[tuple[str, str | None]] = []

    def sep(self, text: str, *, bad: bool = False) -> None:
        self.lines.append((text, "sep-bad" if bad else "sep"))

    def line(self, text: str, *, style: report.Style = None) -> None:
        self.lines.append((text, style))

    def text(self) -> str:
        return "\n".join(line for line, _ in self.lines)


def model_of(*leaks: Leak, **fields: Any) -> _view.Report:
    fields.setdefault("tests", 3)
    fields.setdefault("mutations", 7)
    fields.setdefault("rootdir", "/nonexistent-root")
    return _view.build(list(leaks), **fields)


# -- numbered once ------------------------------------------------------------------------------
def test_ids_given_when_found_are_kept_and_workers_come_in_natural_order() -> None:
    own = [make_leak("L1"), make_leak("L2")]
    workers = [make_leak("gw10-L1"), make_leak("gw1-L3"), make_leak("gw1-L10"),
               make_leak("gw1-L2")]
    model = model_of(*own, workers=workers)
    assert [leak.id for leak in model.leaks] == [
        "L1", "L2", "gw1-L2", "gw1-L3", "gw1-L10", "gw10-L1"]


def test_a_leak_without_an_id_gets_the_next_free_one_and_keeps_it() -> None:
    first, second, unnumbered = make_leak("L1"), make_leak("L4"), make_leak()
    model = model_of(first, unnumbered, second)
    assert [leak.id for leak in model.leaks] == ["L1", "L5", "L4"]
    # Built again (the summary after the files): nothing is renumbered.
    again = model_of(*model.leaks)
    assert [leak.id for leak in again.leaks] == ["L1", "L5", "L4"]
    assert unnumbered.id == "L5"  # the leak itself carries it: the same in every output


def test_every_output_names_a_leak_by_the_same_id(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    model = model_of(make_leak("L1"), make_leak(), workers=[make_leak("gw0-L1")])
    config = Config("report", json=str(tmp_path / "r.json"), html=str(tmp_path / "r.html"))
    terminal = Recorder()
    report.write_all(model, config, terminal)
    ids = ["L1", "L2", "gw0-L1"]
    data = json.loads((tmp_path / "r.json").read_text())
    assert [leak["id"] for leak in data["leaks"]] == ids
    page = (tmp_path / "r.html").read_text()
    text = terminal.text()
    for leak_id in ids:
        assert leak_id in page
        assert f"title=patchtrace {leak_id} patch-not-stopped::" in text
        assert any(line.lstrip().startswith(leak_id) or f" {leak_id} " in line
                   for line, _ in terminal.lines if "::" not in line), leak_id


# -- masked once --------------------------------------------------------------------------------
def test_masked_once_and_a_masked_copy_masks_to_itself() -> None:
    leak = env_leak()
    assert mask_leak(leak) is not leak  # the control: this leak needs masking
    model = model_of(leak, env_leak("L2", name="SHOP_MODE", value="sandbox"))
    masked, plain = model.leaks
    assert masked is not leak and masked.value.repr == MASK
    assert masked.obj() is not SECRET  # the copy keeps no live value
    assert mask_leak(masked) is masked  # a renderer masking again changes nothing
    assert plain.value.repr == "'sandbox'"
    assert leak.value.repr == repr(SECRET)  # the detector's leak is untouched


def test_masking_counts_once_per_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    from patchtrace.render import secrets

    calls: list[str] = []
    original = secrets.mask_leak

    def counting(leak: Leak) -> Leak:
        calls.append(leak.id)
        return original(leak)

    monkeypatch.setattr(secrets, "mask_leak", counting)
    model_of(env_leak("L1"), make_leak("L2"), workers=[make_leak("gw0-L1")])
    assert sorted(calls) == ["L1", "L2", "gw0-L1"]


def test_a_secret_in_a_value_is_in_no_output(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def run(out: Path) -> str:
        out.mkdir()
        leaks = [make_leak("L1", kind="binding-changed", name="DSN_URL",
                           value=ValueSummary("str", repr(URL), False)),
                 env_leak("L2")]
        config = Config("report", json=str(out / "r.json"), html=str(out / "r.html"),
                        graphs=str(out / "graphs"))
        terminal = Recorder(verbosity=2)
        report.write_all(model_of(*leaks, extra={"note": URL}), config, terminal)
        files = [p for p in out.rglob("*") if p.is_file()]
        assert {p.name for p in files} >= {"r.json", "r.html", "L1.svg", "L2.svg"}
        return terminal.text() + "".join(p.read_text() for p in files)

    everything = run(tmp_path / "masked")
    assert "s3cr3t-pw" not in everything and SECRET not in everything
    assert "postgres://admin:***@db.example/prod" in everything
    # The twin: with masking switched off the same run shows both, so the check above
    # looked where the secrets would be.
    monkeypatch.setenv("PATCHTRACE_SHOW_SECRETS", "1")
    shown = run(tmp_path / "shown")
    assert "s3cr3t-pw" in shown and SECRET in shown


# -- plain data ---------------------------------------------------------------------------------
class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_a_value_whose_repr_raises(tmp_path: Path) -> None:
    bad = BadRepr()
    leak = make_leak("L1", kind="binding-changed", name="thing", value=summarize(bad), obj=bad)
    model = model_of(leak, extra={"odd": bad, "seed": 5, "names": ["a", bad]})
    assert model.extra["seed"] == 5
    assert "repr raised RuntimeError" in str(model.extra["odd"])
    assert "repr raised RuntimeError" in str(model.extra["names"])
    config = Config("report", json=str(tmp_path / "r.json"), html=str(tmp_path / "r.html"),
                    graphs=str(tmp_path / "graphs"))
    terminal = Recorder()
    report.write_all(model, config, terminal)
    assert [reason for _, _, reason in model.outputs] == [None, None, None]
    data = json.loads((tmp_path / "r.json").read_text())
    assert "repr raised RuntimeError" in data["leaks"][0]["value"]["repr"]
    assert "repr raised RuntimeError" in data["odd"]
    assert "repr raised RuntimeError" in terminal.text()
    assert (tmp_path / "graphs" / "L1.svg").exists()


def test_the_model_is_plain_data() -> None:
    model = model_of(make_leak("L1"), hints=[{"test": "t", "message": "m"}],
                     children=[{"command": ["python"], "started_by": "t", "leaks": []}])
    assert type(model.tests) is int and type(model.mutations) is int
    assert type(model.rootdir) is str
    assert json.loads(json.dumps(model.hints)) == [{"test": "t", "message": "m"}]
    assert json.loads(json.dumps(model.children))[0]["command"] == ["python"]


# -- write_all ----------------------------------------------------------------------------------
def test_an_unwritable_path_says_so_and_never_written_to(tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]
                                                         ) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = str(blocker / "r.json")
    report.write_all(model_of(make_leak("L1")), Config("report", json=bad))
    err = capfd.readouterr().err
    assert f"patchtrace: could not write {bad} (Not a directory)" in err.splitlines()
    assert "written to" not in err
    assert not os.path.exists(bad)
    # The twin, in the same setup: a writable path is written and said to be.
    good = str(tmp_path / "out" / "r.json")
    report.write_all(model_of(make_leak("L1")), Config("report", json=good))
    err = capfd.readouterr().err
    assert f"patchtrace: JSON report written to {good}" in err.splitlines()
    assert "could not write" not in err
    assert json.loads(Path(good).read_text())["leaks"][0]["id"] == "L1"


def test_nothing_said_written_when_the_writer_is_missing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import patchtrace.render

    model = model_of(make_leak("L1"))
    monkeypatch.delattr(patchtrace.render, "html", raising=False)
    with mock.patch.dict("sys.modules", {"patchtrace.render.html": None}):
        report.write_files(model, Config("report", html=str(tmp_path / "r.html"),
                                         json=str(tmp_path / "r.json")))
    assert model.outputs == [("JSON report", str(tmp_path / "r.json"), None)]
    terminal = Recorder()
    report.write_summary(model, Config("report"), terminal)
    assert "HTML report" not in terminal.text()
    assert f"patchtrace: JSON report written to {tmp_path / 'r.json'}" in terminal.text()


def test_open_mocked_by_the_suite_still_writes(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    page = tmp_path / "r.html"
    with mock.patch("builtins.open") as fake_open, mock.patch("io.open", fake_open), \
            mock.patch("os.replace") as fake_replace, mock.patch("json.dumps") as fake_dumps:
        # The control: what the suite left in place writes nothing.
        with open(tmp_path / "control.txt", "w") as handle:
            handle.write("x")
        report.write_all(model_of(make_leak("L1")),
                         Config("report", json=str(path), html=str(page)), Recorder())
    assert not (tmp_path / "control.txt").exists()
    assert json.loads(path.read_text())["leaks"][0]["id"] == "L1"
    assert "L1" in page.read_text()
    fake_replace.assert_not_called()
    fake_dumps.assert_not_called()


def test_summary_of_a_clean_script_is_silent_and_of_a_session_is_not() -> None:
    quiet = Recorder()
    report.write_summary(model_of(tests=0, session=False), Config("report"), quiet)
    assert quiet.lines == []
    session = Recorder()
    report.write_summary(model_of(tests=2, session=True), Config("report"), session)
    assert session.lines == [("patchtrace: no leaks in 2 tests", "sep")]


def test_summary_order_and_styles() -> None:
    model = model_of(make_leak("L1"), hints=[{"test": "t::a", "message": "never used"}],
                     crashed=["gw3"], errors=["watch: boom"], baseline_error="bad baseline",
                     seed="123")
    model.outputs.append(("JSON report", "/x/r.json", None))
    model.failed_run = True
    terminal = Recorder()
    report.write_summary(model, Config("strict"), terminal)
    texts = [line for line, _ in terminal.lines]
    assert terminal.lines[0] == ("bad baseline", "warn")
    assert terminal.lines[1] == ("patchtrace: 1 leak from 1 polluter in 3 tests", "sep-bad")
    assert texts[2].startswith("test order: pytest-randomly seed 123")
    order = [texts.index(t) for t in (
        "patchtrace: JSON report written to /x/r.json",
        "patchtrace (strict): no test failed, but these leaks fail the run (exit status 1)",
        "patchtrace: 1 hint: t::a: never used",
        "patchtrace: internal error, that part was disabled: watch: boom",
        "patchtrace: worker gw3 ended without a report; leaks from its tests are missing")]
    assert order == sorted(order)


def test_rich_failing_falls_back_to_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    from patchtrace.render import terminal as rich_terminal

    def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise ImportError("colorsys is a MagicMock")

    monkeypatch.setattr(rich_terminal, "render", broken)
    errors: list[str] = []
    terminal = Recorder()
    report.write_summary(model_of(make_leak("L1")), Config("report"), terminal,
                         internal_error=lambda part, exc: errors.append(part))
    assert errors == ["terminal summary"]
    assert ("L1 patch-not-stopped pkg.mod.func from tests/test_a.py::test_x at "
            "tests/test_a.py:3", None) in terminal.lines
    # Without a tracer to tell (a script), the summary says it is the plain one.
    script = Recorder()
    report.write_summary(model_of(make_leak("L1")), Config("report"), script)
    assert script.lines[1][0].startswith("patchtrace: plain summary (ImportError: ")


# -- hand-offs ----------------------------------------------------------------------------------
def test_worker_payload_round_trip_keeps_ids_and_is_masked_by_the_controller() -> None:
    data = report.worker_payload([env_leak("gw0-L1"), make_leak("gw0-L2")], tests=4,
                                 mutations=9, hints=[{"test": "t", "message": "m"}])
    found = report.read_worker_payload(data)
    assert (found.tests, found.mutations, found.hints) == (4, 9, [{"test": "t", "message": "m"}])
    model = model_of(make_leak("L1"), workers=found.leaks)
    assert [leak.id for leak in model.leaks] == ["L1", "gw0-L1", "gw0-L2"]
    assert model.leaks[1].value.repr == MASK
    with pytest.raises(ValueError):
        report.read_worker_payload("[1, 2]")


def test_reporter_terminal_writes_through_the_reporter() -> None:
    class Reporter:
        hasmarkup = True

        class _tw:  # pytest's attribute name
            fullwidth = 120

        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def write_sep(self, sep: str, text: str, **markup: bool) -> None:
            self.calls.append(("sep", sep, text, markup))

        def write_line(self, text: str, **markup: bool) -> None:
            self.calls.append(("line", text, markup))

    tr = Reporter()
    terminal = report.ReporterTerminal(tr, verbosity=1)
    assert (terminal.color, terminal.width, terminal.verbosity) == (True, 120, 1)
    report.write_summary(model_of(make_leak("L1"), hints=[{"test": "t", "message": "m"}]),
                         Config("report"), terminal)
    assert tr.calls[0] == ("sep", "=", "patchtrace: 1 leak from 1 polluter in 3 tests",
                           {"red": True, "bold": True})
    assert ("line", "patchtrace: 1 hint: t: m", {"yellow": True}) in tr.calls


def test_stderr_terminal_uses_the_captured_stream(capfd: pytest.CaptureFixture[str]) -> None:
    fake = io.StringIO()
    with mock.patch("sys.stderr", fake):
        report.write_summary(model_of(tests=1), Config("report"), report.StderrTerminal())
    assert fake.getvalue() == ""
    assert capfd.readouterr().err == "patchtrace: no leaks in 1 test\n"


def test_the_plugin_keeps_no_module_global_state() -> None:
    import ast

    import patchtrace.pytest_plugin as plugin

    tree = ast.parse(Path(plugin.__file__).read_text(encoding="utf-8"))
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Global)]
    # What the module holds at the top level is constants, functions and classes.
    mutable = {name for name, value in vars(plugin).items()
               if type(value) in (list, dict, set) and not name.startswith("__")}
    assert mutable == set()
