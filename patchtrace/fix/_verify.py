"""``fix --verify``: apply each suggested patch in a scratch copy and run its reproduction.

A patch is verified when, in a copy of the rootdir, the reproduction fails without it (the
victim fails after the polluter) and passes with it, traced, with the leak gone: the
victim passes, the polluter still passes, and patchtrace no longer sees the leak.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from . import _baseline
from ._diff import DiffError, apply, files_of
from ._reproduce import polluter_only

__all__ = ["IGNORED", "Runner", "verify"]

#: not copied into the scratch directory: VCS data, environments, caches
IGNORED: Final = (".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "node_modules",
                  "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "*.egg-info",
                  ".hypothesis")
#: (argv, cwd, env) -> exit status; a seam for tests
Runner = Callable[[Sequence[str], str, Mapping[str, str]], int]


def _run(argv: Sequence[str], cwd: str, env: Mapping[str, str]) -> int:
    try:
        return subprocess.run(list(argv), cwd=cwd, env=dict(env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=600, check=False).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 127


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    if argv and argv[0] == "python":
        argv[0] = sys.executable
    return argv


def _clean_env() -> dict[str, str]:
    # The reproduction runs as the user would run it: no tracing, no baseline, no CI
    # annotations; tracing is switched on explicitly for the run with the patch.
    return {k: v for k, v in os.environ.items()
            if not k.startswith("PATCHTRACE") and k != "GITHUB_ACTIONS"}


def verify(data: dict[str, Any], rootdir: str, *, run: Runner = _run,
           say: Callable[[str], None] = print) -> dict[str, Any]:
    """A copy of the report ``data`` with ``verified`` set on each leak that has a patch."""
    out: dict[str, Any] = json.loads(json.dumps(data))
    leaks = [leak for leak in out.get("leaks") or () if isinstance(leak, dict)]
    todo = [leak for leak in leaks if isinstance(leak.get("suggested_patch"), str)]
    if not todo:
        say("patchtrace fix --verify: no leak has a suggested patch")
        return out
    scratch = tempfile.mkdtemp(prefix="patchtrace-verify-")
    copy = os.path.join(scratch, "root")
    reports = os.path.join(scratch, "reports")
    try:
        shutil.copytree(rootdir, copy, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
        os.mkdir(reports)
        for number, leak in enumerate(todo):
            verdict, why = _one(leak, copy, os.path.join(reports, f"{number}.json"), run)
            leak["verified"] = verdict
            state = {True: "verified", False: "NOT verified", None: "not tried"}[verdict]
            say(f"{leak.get('id', '?')} {state}: {why}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _one(leak: dict[str, Any], root: str, report: str, run: Runner) -> tuple[bool | None, str]:
    diff = str(leak["suggested_patch"])
    reproduce = leak.get("reproduce")
    command = reproduce if isinstance(reproduce, str) else polluter_only(leak)
    if command is None:
        return None, "nothing to run (no victim and no test to blame)"
    argv = _argv(command)
    env = _clean_env()
    if isinstance(reproduce, str) and run(argv, root, env) == 0:
        return None, "the victim passed after the polluter without the patch: not reproduced"
    originals: dict[str, str] = {}
    try:
        for rel in files_of(diff):
            path = os.path.join(root, rel)
            with open(path, encoding="utf-8", newline="") as handle:
                originals[path] = handle.read()
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(apply(diff, originals[path]))
        traced = dict(env, PATCHTRACE="1", PATCHTRACE_JSON=report)
        status = run(argv, root, traced)
        if status != 0:
            who = "the victim or the polluter" if isinstance(reproduce, str) else "the polluter"
            return False, f"{who} failed with the patch (exit status {status}): {command}"
        if _still_leaks(leak, report):
            return False, "the tests pass, but patchtrace still sees the leak"
        return True, ("with the patch the victim passes after the polluter, and the leak "
                      "is gone" if isinstance(reproduce, str) else
                      "with the patch the polluter passes, and the leak is gone")
    except (OSError, DiffError) as exc:
        return False, f"the patch does not apply ({exc})"
    finally:
        for path, text in originals.items():
            with open(path, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)


def _still_leaks(leak: Mapping[str, Any], report: str) -> bool:
    try:
        with open(report, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return True  # no report: we cannot say the leak is gone
    wanted = _baseline.key(leak)
    return any(_baseline.key(other) == wanted for other in data.get("leaks") or ()
               if isinstance(other, dict))
