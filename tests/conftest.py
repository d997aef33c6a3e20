from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Our own suite must not be traced by an outer PATCHTRACE=1: tests turn it on themselves.
for _name in [n for n in os.environ if n.startswith("PATCHTRACE")]:
    del os.environ[_name]


@pytest.fixture
def traced_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Path]:
    """Turn PATCHTRACE on for subprocesses; returns a function giving the JSON path."""

    def enable(mode: str = "1", **extra: str) -> Path:
        report = tmp_path / "patchtrace.json"
        monkeypatch.setenv("PATCHTRACE", mode)
        monkeypatch.setenv("PATCHTRACE_JSON", str(report))
        for key, value in extra.items():
            monkeypatch.setenv(key, value)
        return report

    return enable


def load_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["schema"] == "patchtrace-report/1"
    return data


def leaks_by_kind(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for leak in report["leaks"]:
        out.setdefault(leak["kind"], []).append(leak)
    return out


def run_python(code: str, cwd: Path, env: dict[str, str] | None = None,
               args: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    script = cwd / "script.py"
    script.write_text(code)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, *(args or [str(script)])], cwd=cwd, env=full_env,
        capture_output=True, text=True, timeout=120,
    )


def package_suite(pytester: pytest.Pytester, files: dict[str, str]) -> pytest.Pytester:
    """Write ``files`` (path -> text) into ``pytester``'s directory, with an ini file that
    puts it on sys.path and keeps pytest-randomly and the cache out of the way."""
    for path, text in files.items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    pytester.makeini("[pytest]\npythonpath = .\naddopts = -p no:randomly -p no:cacheprovider\n")
    return pytester


def leak_rows(report_path: Path) -> set[tuple[str, str | None, str | None, int | None]]:
    """(test function, target, name, line of ``where``) of every leak in a report."""
    return {(leak["polluter"].split("::")[-1], leak["target"], leak["name"],
             leak["where"]["line"] if leak["where"] else None)
            for leak in load_report(report_path)["leaks"]}
