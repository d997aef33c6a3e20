"""Sessions: tests on every supported Python, lint, types, docs.

    python -m nox                 everything
    python -m nox -s tests-3.12   one Python
    python -m nox -s tests -- -k plugin   pass arguments to pytest
"""

from __future__ import annotations

import glob
import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "types", "docs"]
nox.options.reuse_existing_virtualenvs = False

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = nox.project.python_versions(PYPROJECT)


def _expose_pyenv_interpreters() -> None:
    """Put pyenv's interpreters on PATH: its shims find ``python3.12`` only for versions
    named in PYENV_VERSION, and a fresh machine has the versions but no such setting."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found: list[str] = []
    for minor in PYTHONS:
        candidates = sorted(glob.glob(os.path.join(root, "versions", f"{minor}.*", "bin")))
        if candidates and shutil.which(f"python{minor}", path=candidates[-1]) is not None:
            found.append(candidates[-1])
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_expose_pyenv_interpreters()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (a real install, so patchtrace.pth is in site-packages)."""
    session.install(".[test]")
    session.run(
        "python", "-m", "pytest", "--strict-config", "--strict-markers", "-ra",
        # most tests run pytest in a subprocess: spread them over the cores
        *(session.posargs or ["-n", "auto", "tests"]),
        env={"PATCHTRACE": ""},
    )


@nox.session(python=PYTHONS[-1])
def lint(session: nox.Session) -> None:
    """Ruff: style and common bugs."""
    session.install("ruff")
    session.run("ruff", "check", "patchtrace", "tests", "benchmarks", "noxfile.py")


@nox.session(python=PYTHONS[0])
def types(session: nox.Session) -> None:
    """mypy --strict on the package (checked against the oldest supported Python)."""
    session.install("mypy", "pytest", "rich", "objgraph", "libcst")
    session.install("--no-deps", ".")
    session.run("mypy", "--strict", "patchtrace")


@nox.session(python=PYTHONS[-1])
def docs(session: nox.Session) -> None:
    """Build the Sphinx site into docs/_build/html; every warning (nitpicky) is an error."""
    session.install(".[docs]")
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-b", "html", *session.posargs,
        "docs", "docs/_build/html",
        env={"PATCHTRACE": ""},
    )
