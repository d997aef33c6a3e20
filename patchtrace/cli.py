"""``python -m patchtrace``: look at saved reports, and run a command traced.

    python -m patchtrace report report.json        the terminal summary of a saved report
    python -m patchtrace run -- pytest tests/      run a command with PATCHTRACE=1
    python -m patchtrace graph report.json -o DIR  redraw the reference graphs of a report
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .leaks import Leak

__all__ = ["main"]


#: what ``--help`` shows: plain text (the module docstring is reST, for the API docs)
DESCRIPTION = """\
Look at saved patchtrace reports, and run a command traced.

  python -m patchtrace report report.json        the terminal summary of a saved report
  python -m patchtrace run -- pytest tests/      run a command with PATCHTRACE=1
  python -m patchtrace graph report.json -o DIR  redraw the reference graphs of a report
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m patchtrace", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    report = sub.add_parser("report", help="print a saved JSON report",
                            description="Print a saved JSON report as the terminal summary; "
                            "exit status 1 when it has leaks.")
    report.add_argument("path", metavar="REPORT.json",
                        help="a report written with PATCHTRACE_JSON / --patchtrace-json")
    report.add_argument("-v", "--verbose", action="count", default=0,
                        help="show more: the whole user stack of each leak (-v)")
    run = sub.add_parser("run", help="run a command with tracing on",
                         description="Run CMD with PATCHTRACE=1; the exit status is CMD's "
                         "(127 when CMD cannot be found, 126 when it cannot be executed).")
    run.add_argument("--strict", action="store_true",
                     help="run with PATCHTRACE=strict: leaks fail the run")
    run.add_argument("--json", metavar="PATH",
                     help="write the JSON report to PATH (PATCHTRACE_JSON)")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                     help="the command to run, after --")
    graph = sub.add_parser("graph", help="redraw reference graphs from a saved report",
                           description="Draw one reference graph per leaked object of a "
                           "saved report.")
    graph.add_argument("path", metavar="REPORT.json", help="a saved JSON report")
    graph.add_argument("-o", "--output", default="patchtrace-graphs", metavar="DIR",
                       help="the directory to write the graphs to (default: %(default)s)")
    return parser


def _load(path: str) -> tuple[dict[str, Any], list[Leak]] | None:
    """A saved report and its leaks, or None after one line on stderr saying why not."""
    from .render import json as json_report

    try:
        return json_report.load(path)
    except (OSError, ValueError) as exc:  # missing, unreadable, not JSON, not a report
        reason = str(exc) if path in str(exc) else f"{path}: {exc}"
    except (KeyError, TypeError, AttributeError) as exc:  # JSON, but leaks of another shape
        reason = f"{path}: not a readable patchtrace report ({type(exc).__name__}: {exc})"
    print(f"patchtrace: {reason}", file=sys.stderr)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a reader that stops reading (``| head``) ends it quietly."""
    try:
        status = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader is gone: say nothing more, and keep Python's own flush at exit from
        # failing again on the closed pipe.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    return status


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from ._version import __version__

        print(f"patchtrace {__version__}")
        return 0
    if args.command == "report":
        from .render.terminal import headline, render

        loaded = _load(args.path)
        if loaded is None:
            return 2
        data, leaks = loaded
        tests = data.get("tests")
        print(headline(leaks, tests if isinstance(tests, int) else 0))
        for line in render(leaks, verbosity=args.verbose, color=sys.stdout.isatty()):
            print(line)
        return 1 if leaks else 0
    if args.command == "run":
        # Only the separator after `run` is ours; a later `--` belongs to the command.
        command = list(args.argv[1:] if args.argv[:1] == ["--"] else args.argv)
        if not command:
            print("patchtrace run: give a command, e.g. python -m patchtrace run -- pytest",
                  file=sys.stderr)
            return 2
        env = dict(os.environ, PATCHTRACE="strict" if args.strict else "1")
        if args.json:
            env["PATCHTRACE_JSON"] = args.json
        try:
            return subprocess.call(command, env=env)
        except FileNotFoundError:
            print(f"patchtrace run: {command[0]}: command not found", file=sys.stderr)
            return 127
        except OSError as exc:  # found, but not executable (permissions, bad format)
            print(f"patchtrace run: {command[0]}: cannot run it ({exc.strerror or exc})",
                  file=sys.stderr)
            return 126
    if args.command == "graph":
        try:
            from .render import graph as graph_render
        except ImportError:
            print("patchtrace: graph rendering is not available in this version",
                  file=sys.stderr)
            return 2
        loaded = _load(args.path)
        if loaded is None:
            return 2
        try:
            written = graph_render.write_leak_graphs(loaded[1], args.output)
        except OSError as exc:
            print(f"patchtrace: cannot write graphs to {args.output}: {exc}", file=sys.stderr)
            return 2
        for path in written:
            print(path)
        return 0
    parser.print_usage(sys.stderr)
    print("python -m patchtrace: give a command (python -m patchtrace --help lists them)",
          file=sys.stderr)
    return 2
