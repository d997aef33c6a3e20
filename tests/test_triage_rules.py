"""Rules found by triaging real suites by hand (docs/real-world.md, fourth triage), and the
private benchmark hook that ``benchmarks/real_suites.py`` reads.

Each rule is tested on a small suite run in a subprocess; every case that expects no leak
has a twin in the same run that expects one, so none can pass with detection off.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import load_report, package_suite

Enable = Callable[..., Path]


def _rows(report_path: Path) -> list[tuple[str, str, str | None, str | None, str | None]]:
    return sorted((leak["kind"], leak["polluter"], leak["fixture"], leak["target"],
                   leak["name"]) for leak in load_report(report_path)["leaks"])


# -- the private benchmark hook ---------------------------------------------------------------
def test_boundary_times_are_appended_when_asked(pytester: pytest.Pytester,
                                                traced_env: Enable,
                                                tmp_path: Path) -> None:
    times = tmp_path / "times.tsv"
    times.write_text("earlier\t1.000\n")  # appended to, never truncated
    traced_env(_PATCHTRACE_BOUNDARY_TIMES=str(times))
    package_suite(pytester, {"test_x.py": """
import pytest

@pytest.fixture(scope="module")
def wide():
    yield 1

def test_one(wide, request):
    from patchtrace import pytest_plugin
    assert request.config.stash[pytest_plugin._STATE].times is not None

def test_two(wide):
    pass
"""})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    lines = times.read_text().splitlines()
    assert lines[0] == "earlier\t1.000"
    kinds = [line.split("\t")[0] for line in lines[1:]]
    assert sorted(kinds) == ["begin", "begin", "collection", "end", "end", "finish",
                             "fixture"]
    for line in lines[1:]:
        assert float(line.split("\t")[1]) >= 0.0


def test_boundary_times_cost_nothing_when_unset(pytester: pytest.Pytester,
                                                traced_env: Enable,
                                                tmp_path: Path) -> None:
    # The twin: the same traced run without the variable holds no timer (the plugin skips
    # the clock) and writes nothing; its one leak shows the run was traced.
    report_path = traced_env()
    package_suite(pytester, {"test_x.py": """
import os
from patchtrace import pytest_plugin

def test_hook_is_off(request):
    assert request.config.stash[pytest_plugin._STATE].times is None

def test_leaks():
    os.environ["PT_TRIAGE_LEFT"] = "1"
"""})
    pytester.runpytest_subprocess(timeout=120).assert_outcomes(passed=2)
    assert [leak["name"] for leak in load_report(report_path)["leaks"]] == ["PT_TRIAGE_LEFT"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patchtrace.json"]
