"""Nothing when off: a plain run goes through no patchtrace hook at all."""

from __future__ import annotations

import ast

import pytest

PROBE = """
import pytest

HOOKS = ("pytest_runtest_setup", "pytest_runtest_call", "pytest_runtest_teardown",
         "pytest_runtest_makereport", "pytest_fixture_setup", "pytest_collection",
         "pytest_sessionfinish", "pytest_terminal_summary", "pytest_unconfigure")

@pytest.mark.patchtrace_ignore  # still a known marker under --strict-markers
def test_probe(request):
    hook = request.config.pluginmanager.hook
    ours = sorted(name for name in HOOKS
                  for impl in getattr(hook, name).get_hookimpls()
                  if getattr(impl.plugin, "__name__", "") == "patchtrace.pytest_plugin")
    print("OURS", ours)
"""


def _ours(result: pytest.RunResult) -> list[str]:
    [line] = [line for line in result.stdout.lines if "OURS [" in line]
    value: list[str] = ast.literal_eval(line[line.index("OURS [") + 5:].rstrip(". "))
    return value


@pytest.mark.parametrize("inprocess", [False, True])
def test_a_plain_run_has_no_patchtrace_hooks(pytester: pytest.Pytester,
                                            inprocess: bool) -> None:
    pytester.makepyfile(test_probe=PROBE)
    args = ("-s", "--strict-markers", "-p", "no:randomly")
    result = pytester.runpytest(*args) if inprocess else pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    assert _ours(result) == []


@pytest.mark.parametrize("how", ["option", "ini", "env"])
def test_control_a_traced_run_has_them(pytester: pytest.Pytester,
                                       monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    pytester.makepyfile(test_probe=PROBE)
    args = ["-s", "--strict-markers", "-p", "no:randomly"]
    if how == "option":
        args.append("--patchtrace")
    elif how == "ini":
        pytester.makeini("[pytest]\npatchtrace = report\n")
    else:
        monkeypatch.setenv("PATCHTRACE", "1")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1)
    assert "pytest_runtest_setup" in _ours(result)
    assert "pytest_terminal_summary" in _ours(result)


def test_off_explicitly_under_the_variable_has_none(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHTRACE", "1")
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_subprocess("-s", "--patchtrace=off", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert _ours(result) == []
    assert "patchtrace" not in result.stderr.str()
