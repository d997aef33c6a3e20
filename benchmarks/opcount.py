"""Bytecodes executed per function while pytest runs: a deterministic profile.

    python benchmarks/opcount.py run OUT.pkl [pytest args...]     # in the suite's directory
    python benchmarks/opcount.py diff OLD.pkl NEW.pkl TESTS [--top 40]

``run`` runs ``pytest.main`` in this process with a trace function that counts every
bytecode executed (``f_trace_opcodes``) per code object, and pickles
``{(file, first line, qualname): count}``. Give it the suite's interpreter, with
``PATCHTRACE=1`` and ``PYTHONPATH`` set as for the design to measure; ``PYTHONHASHSEED=0``
keeps the counts the same from run to run. ``diff`` prints, per test, the counts of two
runs side by side: by file (patchtrace's files as ``PT:path``) and by function.

Where ``cProfile`` on a shared machine moves by tens of percent per function and weighs
tiny calls far too heavily, these counts do not move at all; what they do not see is work
done in C (a ``dict`` copy, ``compile()``, the garbage collector), which callgrind's total
for the same run does. The trace function is installed before pytest starts and after
``site`` (so patchtrace's start-up imports are not counted); the run takes ~30x as long.
CPython 3.10/3.11 only: 3.12.1 sends a trace function no ``opcode`` events.
"""

from __future__ import annotations

import collections
import pickle
import sys
from types import FrameType
from typing import Any

_MARKERS = ("/patchtrace/", "/site-packages/", "/lib/python3.")


def run(out: str, args: list[str]) -> int:
    counts: dict[int, int] = {}
    codes: dict[int, Any] = {}

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "opcode":
            key = id(frame.f_code)
            counts[key] = counts.get(key, 0) + 1
        return local

    def start(frame: FrameType, event: str, arg: object) -> Any:
        codes.setdefault(id(frame.f_code), frame.f_code)
        frame.f_trace_opcodes = True
        return local

    sys.settrace(start)
    try:
        import pytest

        status = int(pytest.main(args))
    finally:
        sys.settrace(None)
        table: dict[tuple[str, int, str], int] = {}
        for key, count in counts.items():
            code = codes.get(key)
            name = (code.co_filename, code.co_firstlineno,
                    getattr(code, "co_qualname", code.co_name)) if code else ("?", 0, "?")
            table[name] = table.get(name, 0) + count
        with open(out, "wb") as handle:
            pickle.dump(table, handle)
    return status


def _load(path: str) -> collections.Counter[str]:
    with open(path, "rb") as handle:
        table = pickle.load(handle)
    out: collections.Counter[str] = collections.Counter()
    for (filename, _line, qualname), count in table.items():
        for marker in _MARKERS:
            if marker in filename:
                rest = filename.split(marker, 1)[1]
                if marker == "/lib/python3.":
                    rest = rest.partition("/")[2]
                filename = f"PT:{rest}" if marker == "/patchtrace/" else rest
                break
        out[f"{filename}:{qualname}"] += count
    return out


def _part(key: str) -> str:
    return key.split(":")[1] if key.startswith("PT:") else key.split("/")[0].split(":")[0]


def diff(old_path: str, new_path: str, tests: int, top: int) -> None:
    old, new = _load(old_path), _load(new_path)
    print(f"bytecodes per test: old {sum(old.values()) / tests:.0f}, "
          f"new {sum(new.values()) / tests:.0f}, "
          f"new - old {(sum(new.values()) - sum(old.values())) / tests:+.0f}")
    parts_old: collections.Counter[str] = collections.Counter()
    parts_new: collections.Counter[str] = collections.Counter()
    for key, count in old.items():
        parts_old[_part(key)] += count
    for key, count in new.items():
        parts_new[_part(key)] += count
    print(f"\n{'old':>9} {'new':>9} {'new - old':>9}  by file (per test)")
    for part in sorted(parts_old.keys() | parts_new.keys(),
                       key=lambda p: -abs(parts_new[p] - parts_old[p]))[:top]:
        print(f"{parts_old[part] / tests:9.0f} {parts_new[part] / tests:9.0f} "
              f"{(parts_new[part] - parts_old[part]) / tests:+9.0f}  {part}")
    print(f"\n{'old':>9} {'new':>9} {'new - old':>9}  by function (per test)")
    for key in sorted(old.keys() | new.keys(), key=lambda k: -abs(new[k] - old[k]))[:top]:
        print(f"{old[key] / tests:9.1f} {new[key] / tests:9.1f} "
              f"{(new[key] - old[key]) / tests:+9.1f}  {key}")


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) >= 5 and sys.argv[1] == "diff":
        top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 40
        diff(sys.argv[2], sys.argv[3], int(sys.argv[4]), top)
        return
    raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
