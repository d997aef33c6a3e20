"""What our own work uses, captured once, when tracing starts.

A suite under test may leave ``builtins.open`` mocked, ``os.replace`` or ``os.getcwd``
patched, ``json.dumps`` replaced or ``sys.stderr`` swapped; patchtrace still writes every
report, correctly. So report writing and our own messages go through the references
below, taken when this module is first imported (:meth:`Tracer.start
<patchtrace._tracer.Tracer.start>` imports it, before any test runs), never through what
the process holds at the time of writing.

``os.makedirs`` and ``os.path.abspath`` are Python functions that look ``os.mkdir``,
``os.stat`` and ``os.getcwd`` up at call time, so they are rebuilt here from captured
primitives.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat as _stat
import sys
import time
from typing import IO, Any, Final

__all__ = ["abspath", "makedirs", "reason", "say", "write_atomic"]

open_file: Final = io.open
replace: Final = os.replace
mkdir: Final = os.mkdir
stat: Final = os.stat
unlink: Final = os.unlink
listdir: Final = os.listdir
rmdir: Final = os.rmdir
getpid: Final = os.getpid
strerror: Final = os.strerror
getcwd: Final = os.getcwd
fspath: Final = os.fspath
environ: Final = os.environ
dumps: Final = json.dumps
loads: Final = json.loads
S_ISDIR: Final = _stat.S_ISDIR
time_ns: Final = time.time_ns
#: the process's real standard error, whatever pytest's capture or a test does to sys.stderr
stderr: Final[IO[str] | None] = sys.__stderr__
_path: Final = os.path
_join: Final = _path.join
_dirname: Final = _path.dirname
_isabs: Final = _path.isabs
_normpath: Final = _path.normpath
_split: Final = _path.split


def abspath(path: str) -> str:
    """``os.path.abspath`` without looking ``os.getcwd`` up at call time."""
    path = fspath(path)
    if not _isabs(path):
        path = _join(getcwd(), path)
    return _normpath(path)


def _is_dir(path: str) -> bool:
    try:
        return S_ISDIR(stat(path).st_mode)
    except (OSError, ValueError):
        return False


def makedirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` from captured ``mkdir`` and ``stat``."""
    path = abspath(path)
    if _is_dir(path):
        return
    head, tail = _split(path)
    if not tail:
        head, tail = _split(head)
    if head and tail and head != path and not _is_dir(head):
        makedirs(head)
    try:
        mkdir(path)
    except FileExistsError:
        if not _is_dir(path):  # a file where a directory should be: say that, not "exists"
            raise NotADirectoryError(errno.ENOTDIR, strerror(errno.ENOTDIR), path) from None
    except OSError:
        if not _is_dir(path):
            raise


def write_atomic(path: str, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, so a
    reader never sees half a file; the temporary file is removed when anything fails."""
    directory = _dirname(abspath(path))
    makedirs(directory)
    tmp = f"{path}.tmp{getpid()}"
    try:
        if isinstance(data, str):
            with open_file(tmp, "w", encoding="utf-8") as handle:
                handle.write(data)
        else:
            with open_file(tmp, "wb") as handle:
                handle.write(data)
        replace(tmp, path)
    except BaseException:
        try:
            unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str, data: Any) -> None:
    write_atomic(path, dumps(data, indent=2, default=str) + "\n")


def reason(exc: BaseException) -> str:
    """Why a write failed, in words: ``Not a directory``, ``Permission denied``, ..."""
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def say(line: str) -> None:
    """One line on the real standard error; never raises."""
    stream = stderr
    if stream is None:
        return
    try:
        stream.write(line + "\n")
        stream.flush()
    except Exception:
        pass
