"""``benchmarks/real_suites.py``'s own parts that need no suite: the child runner that reads
the CPU time, the boundary-times reading (a design without the hook says "—"), the old
leg's outcome differences (said, but not this checkout's exit status), and the summary's
verdict against issue 15's targets. No timing is asserted: only what the script computes
from the numbers it is given."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "real_suites.py"


@pytest.fixture(scope="module")
def rs() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("real_suites_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_run_child_passes_exit_status_output_and_a_cpu_time_through(
        rs: ModuleType, tmp_path: Path) -> None:
    code = "import sys; sys.stdout.write('out'); sys.stderr.write('err'); sys.exit(3)"
    status, out, err, wall, cpu = rs.run_child([sys.executable, "-c", code], tmp_path,
                                               {"PATH": "/usr/bin:/bin"})
    assert (status, out, err) == (3, "out", "err")
    assert isinstance(wall, float) and isinstance(cpu, float) and cpu >= 0.0


def test_run_child_says_a_signal_as_a_negative_status(rs: ModuleType, tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    status, _out, _err, _wall, _cpu = rs.run_child([sys.executable, "-c", code], tmp_path, {})
    assert status == -15


def _leg(rs: ModuleType, label: str, seconds: list[float], cpu: list[float],
         timed: bool = True) -> object:
    leg = rs.Leg(label, Path("/nonexistent"))
    leg.seconds, leg.cpu, leg.timed = seconds, cpu, timed
    leg.slow, leg.over_50, leg.longest = [3] * len(seconds), [0] * len(seconds), 42.0
    return leg


def test_a_design_without_the_boundary_hook_prints_a_dash(rs: ModuleType,
                                                          tmp_path: Path) -> None:
    assert rs.read_times(tmp_path / "absent.times") == []
    without = _leg(rs, "old", [2.0], [2.0], timed=False)
    with_hook = _leg(rs, "new", [2.0], [2.0], timed=True)
    assert rs._boundaries(without) == ("—", "—")
    assert rs._boundaries(with_hook) == ("3", "42.0")


def test_the_old_legs_outcome_differences_are_said_but_do_not_fail_the_run(
        rs: ModuleType) -> None:
    result = rs.Result(rs.SUITES["click"])
    plain = rs.Run(1.0, {"t::a": "passed"}, 0, "")
    changed = rs.Run(1.0, {"t::a": "failure"}, 1, "")
    rs.compare(result, plain, changed, "round 1", "old")
    assert result.problems and all(p.startswith("OLD DESIGN: OUTCOME DIFFERS")
                                   for p in result.problems)
    # the control: the same difference on the new leg is the run's failure
    rs.compare(result, plain, changed, "round 1", "new")
    assert any(p.startswith("OUTCOME DIFFERS") for p in result.problems)


def _result(rs: ModuleType, name: str, plain: float, old: float, new: float) -> object:
    result = rs.Result(rs.SUITES[name], tests=100)
    result.plain, result.plain_cpu = [plain], [plain]
    result.legs = [_leg(rs, "old", [old], [old]), _leg(rs, "new", [new], [new])]
    return result


def test_the_summary_gives_median_and_max_per_leg_against_the_targets(rs: ModuleType) -> None:
    results = [_result(rs, "click", 10.0, 15.0, 10.5), _result(rs, "attrs", 10.0, 12.0, 10.2),
               _result(rs, "mock", 10.0, 30.0, 11.0)]
    lines = rs.summary(results)
    new_wall = next(line for line in lines if line.lstrip().startswith("new wall"))
    old_wall = next(line for line in lines if line.lstrip().startswith("old wall"))
    assert "median 1.050x" in new_wall and "max 1.100x (mock" in new_wall
    assert new_wall.endswith("met [3 suites]")
    assert "median 1.500x" in old_wall and "max 3.000x (mock" in old_wall
    assert "MISSED" in old_wall
    assert rs.row_old(results[0]).split()[:3] == ["click==8.1.7", "100", "10.00"]
