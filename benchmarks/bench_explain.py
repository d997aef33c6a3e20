"""Benchmark patchtrace.refs: one search per survivor against explain_all's two paths.

Each (heap size, variant, method) runs in a fresh interpreter, so heaps do not add up and
every method sees the heap as built (naming a chain changes the heap a little: 3.11+ gives
the instances on it a ``__dict__`` of their own):

* narrow:   a used MagicMock (called, attributes read: it has children and MagicProxy
  objects) 10 edges below a module global; the heap is padded with reachable filler objects.
* wide:     the same, plus 1,000 other objects holding the mock, themselves 12 edges below
  another module global (so a shortest-chain search has to look at all of them).
* deep:     a used MagicMock at the end of a linked list, 60 edges below a module global.
* handlers: 16 survivors on one chain of signal handlers, each test's handler a closure over
  its mock and the handler it replaced (3 to 48 edges deep): the chain grows one link per
  test, the shape met on a real suite.
* many:     100 used MagicMocks whose chains are 10 to 60 edges deep and share one linked
  list of handlers (module -> link -> ... -> link i -> handlers list -> function -> closure
  -> cell -> mock).
* apart:    100 used MagicMocks, each on a chain of its own (10 to 60 edges, no node shared)
  under a module global of its own: the worst case for a search that shares heap scans.

Methods: ``each``: one ``explain(obj, strategy="levels")`` per object (the first design);
``levels``, ``index``, ``auto``: ``explain_all(objects, strategy=...)``.

Usage::

    python benchmarks/bench_explain.py --sizes 1000000                  # every variant
    python benchmarks/bench_explain.py --sizes 1000000,3000000 --variants apart,many
    python benchmarks/bench_explain.py --sizes 1000000 --objgraph --cap 20

Each cell: wall time, the cost in heap scans (explain's CPU time divided by that of one
``gc.get_referrers`` call over the same heap, timed in the same child: a ratio that the
load on a shared machine does not inflate the way it inflates wall times) and the number of
``gc.get_referrers`` calls.  Below each row: whether every method found the same chains,
and each method's tracemalloc peak.  ``PT_BENCH_ROOT=DIR`` imports patchtrace from DIR (an
older checkout, for a before/after; methods other than ``each`` need explain_all).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("PT_BENCH_ROOT") or os.path.dirname(HERE)
MANY = 100
HANDLERS = 16
METHODS = ("each", "levels", "index", "auto")


# ---------------------------------------------------------------------------- child side


def _build(size: int, variant: str) -> list[Any]:
    import gc
    import types
    from unittest import mock

    class Filler:
        def __init__(self, i: int) -> None:
            self.i = i
            self.tag = [i]

    class Node:
        def __init__(self, child: object) -> None:
            self.child = child

    class Link:
        __slots__ = ("handlers", "next")  # one edge per link on every version

        def __init__(self, nxt: object) -> None:
            self.next = nxt
            self.handlers: list[object] = []

    def closure(value: object) -> Any:
        def get() -> object:
            return value

        return get

    def handler_over(target: object, previous: Any) -> Any:
        def handler(*args: object) -> None:
            target(*args)  # type: ignore[operator]
            if previous is not None:
                previous(*args)

        return handler

    def used_mock(name: str) -> Any:
        target = mock.MagicMock(name=name)
        target(1, "two", three=3)
        target.configure.return_value = 5
        target.configure(debug=True)
        target.settings.timeout
        target.client.get("/x")
        len(target)
        return target

    def chain_of(depth: int, leaf: object) -> object:
        # depth edges: alternate dict, list, instance attribute, closure cell, tuple
        obj: object = leaf
        used = 0
        kinds = ["dict", "list", "node", "closure", "tuple"]
        while used < depth:
            kind = kinds[used % len(kinds)]
            if kind == "dict":
                obj, used = {"key": obj}, used + 1
            elif kind == "list":
                obj, used = [None, obj], used + 1
            elif kind == "node":
                obj, used = Node(obj), used + 1
            elif kind == "closure" and used + 3 <= depth:
                obj, used = closure(obj), used + 3  # function -> closure tuple -> cell -> obj
            else:
                obj, used = (obj,), used + 1
        return obj

    def depth_of(i: int) -> int:
        return 10 + round(50 * i / (MANY - 1))  # 10 .. 60

    app = types.ModuleType("bench_app")
    sys.modules["bench_app"] = app
    targets: list[Any] = []
    if variant in ("narrow", "wide"):
        target = used_mock("leaked")
        targets.append(target)
        app.__dict__["settings"] = chain_of(10, target)
    if variant == "wide":
        holders = [Node(targets[0]) for _ in range(1000)]
        other = types.ModuleType("bench_other")
        sys.modules["bench_other"] = other
        other.__dict__["deep"] = chain_of(11, holders)
    elif variant == "deep":
        # module dict -> 59 links -> the mock: 60 edges
        node: object = used_mock("leaked")
        targets.append(node)
        for _ in range(59):
            node = Link(node)
        app.__dict__["head"] = node
    elif variant == "many":
        # module dict -> link 0 -> ... -> link i -> handlers -> function -> closure -> cell
        # -> mock: i + 6 edges
        links = [Link(None)]
        for _ in range(depth_of(MANY - 1) - 6):
            links.append(Link(None))
            links[-2].next = links[-1]
        app.__dict__["head"] = links[0]
        for i in range(MANY):
            target = used_mock(f"leaked{i}")
            targets.append(target)
            links[depth_of(i) - 6].handlers.append(closure(target))
        del links
    elif variant == "handlers":
        # Each test installs a signal handler that calls its mock and then the handler it
        # replaced: module -> handler 15 -> closure -> cell -> handler 14 -> ... -> handler j
        # -> closure -> cell -> mock j.  Test j's mock is 3 * (15 - j) + 3 edges deep: 3..48.
        previous: Any = None
        for j in range(HANDLERS):
            target = used_mock(f"handler{j}")
            targets.append(target)
            previous = handler_over(target, previous)
        app.__dict__["installed"] = previous
        del previous
    elif variant == "apart":
        for i in range(MANY):
            target = used_mock(f"leaked{i}")
            targets.append(target)
            app.__dict__[f"settings{i}"] = chain_of(depth_of(i) - 1, target)
    filler: list[object] = []
    app.__dict__["filler"] = filler
    gc.collect()
    missing = size - len(gc.get_objects())
    # A Filler is 2 tracked objects (instance + its list); 3.10 adds the instance __dict__.
    per = 3 if sys.version_info < (3, 11) else 2
    filler.extend(Filler(i) for i in range(max(0, missing // per)))
    gc.collect()
    return targets


def _child(size: int, variant: str, mode: str) -> None:
    import gc
    import weakref

    if mode.startswith("patchtrace"):
        gc.disable()  # no collection between the build and the search: the heap as built

    # Only weak references here: a local would be the shortest chain (a live frame local).
    targets = [weakref.ref(t) for t in _build(size, variant)]
    heap = len(gc.get_objects())
    out: dict[str, Any] = {"heap": heap}
    if mode == "objgraph":
        import objgraph

        print(json.dumps({"ready": True}), flush=True)
        start = time.perf_counter()
        chain = objgraph.find_backref_chain(targets[0](), objgraph.is_proper_module, max_depth=70)
        out["seconds"] = time.perf_counter() - start
        out["length"] = len(chain)
        print(json.dumps(out), flush=True)
        return

    sys.path.insert(0, ROOT)
    from patchtrace import refs

    method = mode.partition(":")[2] or "auto"

    def scan() -> float:
        """CPU seconds of one heap scan (gc.get_referrers of one object), best of 5."""
        cpu = float("inf")
        for _ in range(5):
            start_cpu = time.process_time()
            gc.get_referrers(targets[0]())
            cpu = min(cpu, time.process_time() - start_cpu)
        return cpu

    explain_all = refs.__dict__.get("explain_all")
    takes_strategy = "strategy" in refs.explain.__code__.co_varnames

    def explain_them() -> list[Any]:
        if method == "each" or (explain_all is None and len(targets) > 1):
            # one search per object: the first design (and the only one before explain_all)
            options = {"strategy": "levels"} if takes_strategy else {}
            return [refs.explain(t(), **options) for t in targets]
        options = {"strategy": method} if takes_strategy else {}
        if explain_all is None:
            return [refs.explain(targets[0](), **options)]
        return list(explain_all([t() for t in targets], **options))

    calls = [0]
    real = gc.get_referrers

    def counting(*objs: Any) -> list[Any]:
        calls[0] += 1
        return real(*objs)

    scans = [scan()]
    # One run only, on a fresh heap: naming a chain gives (3.11+) the instances on it a
    # __dict__ of their own, so a later run's chains are longer by one edge per instance.
    gc.get_referrers = counting
    try:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = explain_them()
        cpu = time.process_time() - start_cpu
        seconds = time.perf_counter() - start
    finally:
        gc.get_referrers = real
    scans.append(scan())
    out["seconds"] = seconds
    out["scan"] = min(scans)
    # The cost in scans is a ratio of CPU times: on a shared machine, waiting for a core
    # inflates wall times, not this.
    out["cost"] = cpu / max(1e-9, min(scans))
    out["explained"] = sum(1 for r in result if r.chains)
    out["chain"] = result[0].chains[0].labels() if result[0].chains else [result[0].note]
    out["depths"] = [len(r.chains[0]) if r.chains else 0 for r in result]
    out["chains"] = [sorted(repr(c) for c in r.chains) for r in result]
    out["calls"] = calls[0]
    import tracemalloc

    # Memory: a second run under tracemalloc (its chains may be one edge longer; its
    # memory is what counts here).
    tracemalloc.start()
    explain_them()
    out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------- parent side


def _run_patchtrace(size: int, variant: str, method: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(size), variant, f"patchtrace:{method}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _run_objgraph(size: int, variant: str, cap: float) -> float | None:
    """objgraph's time in seconds, or None when it ran past ``cap`` (then it is killed)."""
    cmd = [sys.executable, __file__, "--child", str(size), variant, "objgraph"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        proc.stdout.readline()  # {"ready": true}: the heap is built, the clock starts now
        start = time.monotonic()
        try:
            proc.wait(timeout=cap)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
        line = proc.stdout.read().strip().splitlines()
        elapsed = time.monotonic() - start
    try:
        return float(json.loads(line[-1])["seconds"])
    except (IndexError, KeyError, ValueError):
        return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000,1000000,3000000")
    parser.add_argument("--variants", default="narrow,wide,deep,handlers,many,apart")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="each: one explain per object; levels, index, auto: explain_all")
    parser.add_argument("--cap", type=float, default=20.0, help="objgraph time cap, seconds")
    parser.add_argument("--objgraph", action="store_true",
                        help="also time objgraph.find_backref_chain (one-object variants)")
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "VARIANT", "MODE"), help="internal")
    parser.add_argument("--show-chain", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        _child(int(args.child[0]), args.child[1], args.child[2])
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    methods = [m for m in args.methods.split(",") if m]
    print(f"Python {sys.version.split()[0]}, patchtrace from {ROOT}")
    print("each cell: wall ms / cost in heap scans (CPU) / gc.get_referrers calls; "
          "peak: tracemalloc MB of that method")
    cell = 24
    header = (f"{'heap objects':>12}  {'variant':<8}  {'scan':>7}  "
              + "  ".join(f"{m:>{cell}}" for m in methods)
              + ("  objgraph" if args.objgraph else ""))
    print(header)
    print("-" * len(header))
    for size in sizes:
        for variant in variants:
            rows = {m: _run_patchtrace(size, variant, m) for m in methods}
            first = next((r for r in rows.values() if "error" not in r), None)
            if first is None:
                print(f"{size:>12,}  {variant:<8}  failed: {next(iter(rows.values()))}")
                continue
            cells = []
            for m in methods:
                r = rows[m]
                if "error" in r:
                    cells.append(f"{'failed':>{cell}}")
                    continue
                text = (f"{r['seconds'] * 1000:.0f} ms / {r['cost']:.1f} / {r['calls']}")
                cells.append(f"{text:>{cell}}")
            og = ""
            if args.objgraph and variant in ("narrow", "wide", "deep"):
                theirs = _run_objgraph(size, variant, args.cap)
                capped = f">{args.cap:g} s"
                og = f"  {capped if theirs is None else f'{theirs:.2f} s'}"
            print(f"{first['heap']:>12,}  {variant:<8}  {first['scan'] * 1000:>4.1f} ms  "
                  + "  ".join(cells) + og, flush=True)
            peaks = "  ".join(f"{m} {rows[m]['traced_peak_mb']:.0f} MB" for m in methods
                              if "error" not in rows[m])
            depths = first["depths"]
            same = all(rows[m].get("chains") == first["chains"] for m in methods
                       if "error" not in rows[m])
            print(f"    {first['explained']}/{len(depths)} explained, chains of "
                  f"{min(depths)}..{max(depths)} steps; same chains by every method: {same}; "
                  f"peak {peaks}")
            if args.show_chain:
                print("    " + " -> ".join(str(s) for s in first["chain"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
