"""``python -m patchtrace``: look at saved reports, and run a command traced.

    python -m patchtrace report report.json        the terminal summary of a saved report
    python -m patchtrace run -- pytest tests/      run a command with PATCHTRACE=1
    python -m patchtrace graph report.json -o DIR  redraw the reference graphs of a report
    python -m patchtrace fix report.json [--apply] [--verify]   the suggested patches
    python -m patchtrace baseline report.json > baseline.json   the leaks to tolerate
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .leak import Leak

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
    _fix_parsers(sub)
    return parser


def _fix_parsers(sub: Any) -> None:
    fix = sub.add_parser("fix", help="print, apply or verify the suggested patches of a report")
    fix.add_argument("path", metavar="REPORT.json", help="a saved JSON report")
    fix.add_argument("--apply", action="store_true",
                     help="write the patches into the files (only where a file still matches)")
    fix.add_argument("--verify", action="store_true",
                     help="apply each patch in a scratch copy of rootdir and run its reproduce "
                     "command; with --apply, only verified patches are written")
    fix.add_argument("--rootdir", default=None,
                     help="the directory node ids and paths are relative to (default: the "
                     "report's rootdir, else the current directory)")
    fix.add_argument("-o", "--output", default=None, metavar="PATH",
                     help="where --verify writes the report with `verified` set "
                     "(default: REPORT.verified.json next to REPORT)")
    baseline = sub.add_parser("baseline", help="write a baseline of a report's leaks to stdout")
    baseline.add_argument("path", metavar="REPORT.json", help="a saved JSON report")


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
        from .config import Config
        from .render import _view, report

        loaded = _load(args.path)
        if loaded is None:
            return 2
        data, leaks = loaded
        # the run's model and writer: the same lines as the run's own summary
        model = _view.from_saved(data, leaks)
        report.write_summary(model, Config("report"), report.StdoutTerminal(args.verbose))
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
    if args.command == "fix":
        return _fix(args)
    if args.command == "baseline":
        return _baseline(args)
    parser.print_usage(sys.stderr)
    print("python -m patchtrace: give a command (python -m patchtrace --help lists them)",
          file=sys.stderr)
    return 2


def _baseline(args: argparse.Namespace) -> int:
    import json

    from .fix import _baseline as baseline

    loaded = _load(args.path)
    if loaded is None:
        return 2
    data = loaded[0]
    leaks = [leak for leak in data.get("leaks") or () if isinstance(leak, dict)]
    print(json.dumps(baseline.build(leaks), indent=2))
    return 0


def _fix(args: argparse.Namespace) -> int:
    from .fix import _diff, _verify, reproduce, suggest
    from .render import json as json_report

    loaded = _load(args.path)
    if loaded is None:
        return 2
    data, leaks = loaded
    rootdir = args.rootdir or data.get("rootdir")
    if not isinstance(rootdir, str) or not os.path.isdir(rootdir):
        rootdir = os.getcwd()
    items = [leak for leak in data.get("leaks") or () if isinstance(leak, dict)]
    sources: dict[str, str | None] = {}
    for item, leak in zip(items, leaks, strict=False):
        if not isinstance(item.get("reproduce"), str):
            item["reproduce"] = reproduce(item)
        why = ""
        if not isinstance(item.get("suggested_patch"), str):
            item["suggested_patch"], why = suggest(item, rootdir, sources)
        print(f"{leak.id} {leak.kind} {leak.label} from {leak.polluter}")
        if item["reproduce"]:
            print(f"  reproduce: {item['reproduce']}")
        if item["suggested_patch"]:
            print(item["suggested_patch"].rstrip("\n"))
        else:
            print(f"  no safe rewrite: {why or 'none suggested'}")
            if leak.fix:
                print(f"  fix: {leak.fix}")
    if not items:
        print("patchtrace fix: the report has no leaks")
    if args.verify:
        data = _verify.verify(data, rootdir)
        output = args.output or _verified_path(args.path)
        try:
            json_report.write(output, data)
        except OSError as exc:
            print(f"patchtrace: cannot write {output}: {exc}", file=sys.stderr)
            return 2
        print(f"patchtrace fix: report with `verified` written to {output}")
        items = [leak for leak in data.get("leaks") or () if isinstance(leak, dict)]
    if args.apply:
        done: dict[str, str] = {}  # one statement can leak twice (update() of two keys)
        for item in items:
            diff = item.get("suggested_patch")
            if not isinstance(diff, str) or (args.verify and item.get("verified") is not True):
                continue
            if diff in done:
                print(f"{item.get('id')}: the same patch as {done[diff]}")
                continue
            done[diff] = str(item.get("id"))
            for rel in _diff.files_of(diff):
                path = os.path.join(rootdir, rel)
                try:
                    with open(path, encoding="utf-8", newline="") as handle:
                        text = handle.read()
                    new = _diff.apply(diff, text)
                except (OSError, _diff.DiffError) as exc:
                    print(f"{item.get('id')}: not applied to {rel}: {exc}")
                    continue
                with open(path, "w", encoding="utf-8", newline="") as handle:
                    handle.write(new)
                print(f"{item.get('id')}: applied to {rel}")
    return 0


def _verified_path(path: str) -> str:
    stem = path[:-5] if path.endswith(".json") else path
    return f"{stem}.verified.json"
