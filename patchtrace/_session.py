"""The mark a traced test session leaves for the processes its tests start.

A traced test session (pytest, or ``python -m unittest``) sets one private variable::

    PATCHTRACE_SESSION=<pid>          its child processes are not traced: the .pth line
                                      returns at once, importing nothing of patchtrace
    PATCHTRACE_SESSION=<pid>:<dir>    PATCHTRACE_CHILDREN=1: they are traced silently and
                                      each writes its leaks into <dir> at exit

``<pid>`` is the session's own process: a pytester in-process run sees its own session's
mark, and an xdist worker (a direct child of the controller) tells itself apart from a
process a test started. The variable is set once, when tracing starts and before the
boundary's first snapshot, with our sources quiet, so no boundary reports it and a test's
view of ``os.environ`` is the same from its first line to its last.

Keep the format in step with ``src-pth/patchtrace.pth``, which reads it without importing
this module: a mark without ``:`` means "not traced".
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, final

from . import _captured

if TYPE_CHECKING:
    from ._tracer import Tracer

__all__ = ["VARIABLE", "Marker", "collect", "in_process", "mark", "other", "read", "summary",
           "unmark", "write_child"]

VARIABLE: Final = "PATCHTRACE_SESSION"
_PREFIX: Final = "child-"


@final
class Marker:
    """A parsed mark: the session's pid, and its children directory (None: children quiet)."""

    __slots__ = ("directory", "pid", "value")

    def __init__(self, pid: int, directory: str | None) -> None:
        self.pid = pid
        self.directory = directory or None
        self.value = str(pid) if directory is None else f"{pid}:{directory}"

    def __repr__(self) -> str:
        return f"Marker({self.value!r})"


def read(environ: Mapping[str, str] | None = None) -> Marker | None:
    """The mark in ``environ`` (default: this process's), or None.

    A value we cannot read still means "a traced session started this process": it is
    read as a quiet mark, as the .pth line reads it.
    """
    env = _captured.environ if environ is None else environ
    value = env.get(VARIABLE)
    if value is None:
        return None
    pid_text, colon, directory = value.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        pid = -1
    return Marker(pid, directory if colon else None)


def other() -> Marker | None:
    """The mark of *another* process's session: this process was started by its tests."""
    marker = read()
    if marker is None or marker.pid == _captured.getpid():
        return None
    return marker


def in_process() -> bool:
    """A session of *this* process has marked it: a pytest session starting now is run
    in-process by one of its tests (pytester's ``runpytest``, ``pytest.main()``)."""
    marker = read()
    return marker is not None and marker.pid == _captured.getpid()


def mark(tracer: Tracer | None, *, children: bool) -> Marker | None:
    """Mark this process's environment for the processes it starts; returns the mark to
    :func:`unmark` later, or None when a mark is already there (ours, or a parent
    session's: a traced child passes its parent's directory on to its own children)."""
    if _captured.environ.get(VARIABLE) is not None:
        return None
    directory = None
    if children:
        import tempfile

        directory = tempfile.mkdtemp(prefix="patchtrace-children-")
    marker = Marker(_captured.getpid(), directory)
    _set(tracer, marker.value)
    return marker


def unmark(tracer: Tracer | None, marker: Marker) -> None:
    """Take our mark away again (a pytester in-process run ends) and remove the children
    directory with what is left in it. Idempotent."""
    if _captured.environ.get(VARIABLE) == marker.value:
        _set(tracer, None)
    directory = marker.directory
    if directory is None:
        return
    try:
        names = _captured.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(_PREFIX):
            try:
                _captured.unlink(_join(directory, name))
            except OSError:
                pass
    try:
        _captured.rmdir(directory)
    except OSError:
        pass


def _set(tracer: Tracer | None, value: str | None) -> None:
    env = _captured.environ
    if tracer is None:
        _store(env, value)
        return
    with tracer.quiet():  # our own bookkeeping: no source records it
        _store(env, value)


def _store(env: Any, value: str | None) -> None:
    if value is None:
        env.pop(VARIABLE, None)
    else:
        env[VARIABLE] = value


def _join(directory: str, name: str) -> str:
    return directory.rstrip("/\\") + "/" + name


# -- a traced child's findings ----------------------------------------------------------------
def started_by(environ: Mapping[str, str] | None = None) -> str | None:
    """The node id of the test that started this process: pytest's ``PYTEST_CURRENT_TEST``
    (``tests/test_a.py::test_x (call)``) inherited from the session; None outside pytest."""
    env = _captured.environ if environ is None else environ
    current = env.get("PYTEST_CURRENT_TEST")
    if not current:
        return None
    node, _, phase = current.rpartition(" (")
    return node if node and phase.endswith(")") else current


def command() -> list[str]:
    """This process's command line, interpreter included (``sys.orig_argv``)."""
    argv = getattr(sys, "orig_argv", None) or sys.argv
    return [str(arg) for arg in argv]


def write_child(marker: Marker, *, command: list[str], started_by: str | None,
                leaks: Iterable[Any]) -> str | None:
    """Write one child's findings into the session's directory, atomically; returns the
    path, or None when there was nothing to hand over (or nowhere to put it). Never
    raises: a child never fails because of us."""
    directory = marker.directory
    items = [leak.to_json() for leak in leaks]
    if directory is None or not items:
        return None
    path = _join(directory, f"{_PREFIX}{_captured.getpid()}-{_captured.time_ns()}.json")
    try:
        _captured.write_json(path, {"command": command, "started_by": started_by,
                                    "leaks": items})
    except Exception:
        return None
    return path


def collect(marker: Marker | None) -> list[dict[str, Any]]:
    """Every child's findings handed over so far, oldest first; unreadable files skipped."""
    if marker is None or marker.directory is None:
        return []
    directory = marker.directory
    try:
        names = [n for n in _captured.listdir(directory)
                 if n.startswith(_PREFIX) and n.endswith(".json")]
    except OSError:
        return []
    found: list[tuple[int, str, dict[str, Any]]] = []
    for name in names:
        path = _join(directory, name)
        try:
            with _captured.open_file(path, encoding="utf-8") as handle:
                data = _captured.loads(handle.read())
            when = _captured.stat(path).st_mtime_ns
        except (OSError, ValueError):
            continue
        if type(data) is dict and type(data.get("leaks")) is list:
            found.append((when, name, {"command": data.get("command"),
                                       "started_by": data.get("started_by"),
                                       "leaks": data["leaks"]}))
    found.sort(key=lambda item: (item[0], item[1]))
    return [item[2] for item in found]


def summary(children: list[dict[str, Any]], most: int = 10) -> list[str]:
    """One line per child that handed leaks over, for the terminal or stderr summary."""
    lines = []
    for child in children[:most]:
        leaks = child.get("leaks") or []
        lines.append(f"patchtrace: {len(leaks)} leak{'s' * (len(leaks) != 1)} in a child "
                     f"process started by {child.get('started_by') or '?'}: "
                     f"{_one_line(child.get('command'))}")
    if len(children) > most:
        lines.append(f"patchtrace: {len(children) - most} more child processes with leaks "
                     "(see 'children' in the JSON report)")
    return lines


def _one_line(command: object, width: int = 120) -> str:
    import shlex

    args = [str(arg) for arg in command] if type(command) is list else []
    text = shlex.join(args).replace("\n", "\\n")
    return text if len(text) <= width else text[:width - 3] + "..."
