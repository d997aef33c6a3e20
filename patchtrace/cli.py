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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m patchtrace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    report = sub.add_parser("report", help="print a saved JSON report")
    report.add_argument("path")
    report.add_argument("-v", "--verbose", action="count", default=0)
    run = sub.add_parser("run", help="run a command with tracing on")
    run.add_argument("--strict", action="store_true", help="PATCHTRACE=strict")
    run.add_argument("--json", metavar="PATH", help="PATCHTRACE_JSON")
    run.add_argument("argv", nargs=argparse.REMAINDER)
    graph = sub.add_parser("graph", help="redraw reference graphs from a saved report")
    graph.add_argument("path")
    graph.add_argument("-o", "--output", default="patchtrace-graphs")
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
    args = _parser().parse_args(argv)
    if args.version:
        from ._version import __version__

        print(f"patchtrace {__version__}")
        return 0
    if args.command == "report":
        from .render.terminal import render

        loaded = _load(args.path)
        if loaded is None:
            return 2
        data, leaks = loaded
        print(f"{len(leaks)} leak(s) in {data.get('tests', '?')} tests "
              f"({data.get('mutations', '?')} mutations recorded)")
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
        return subprocess.call(command, env=env)
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
    _parser().print_help()
    return 0
