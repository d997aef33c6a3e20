"""Benchmark patchtrace.refs.explain against objgraph.find_backref_chain.

Each (heap size, variant) runs in a fresh interpreter so heaps do not add up:

* narrow: a used MagicMock (called, attributes read: it has children and MagicProxy objects)
  10 edges below a module global; the heap is padded with reachable filler objects.
* wide:   the same, plus 1,000 other objects holding the mock, themselves 12 edges below
  another module global (so a shortest-chain search has to look at all of them).
* deep:   a used MagicMock at the end of a linked list, 60 edges below a module global.
* many:   100 used MagicMocks whose chains are 10 to 60 edges deep, explained together
  (``explain_all``; one ``explain`` each where it does not exist): the shape met on a real
  suite, a linked list of handlers growing one link per test, each link's handler a closure
  over that test's mock (module -> link -> ... -> link -> handlers list -> function ->
  closure -> cell -> mock).
* apart:  100 used MagicMocks, each on a chain of its own (10 to 60 edges, no node shared)
  under a module global of its own: the worst case for a search that shares heap scans.

Usage::

    python benchmarks/bench_explain.py                       # 100k, 1M, 3M; objgraph capped at 20 s
    python benchmarks/bench_explain.py --sizes 100000,1000000 --cap 5
    python benchmarks/bench_explain.py --no-objgraph

Columns: patchtrace time without and with a trivial audit hook (``sys.addaudithook(lambda e,
a: None)``), the objgraph time (">CAP s" when it was killed at the cap), the ratio, the
extra memory explain() needed (tracemalloc peak during the call, and the RSS growth), and
the cost in heap scans: explain()'s CPU time divided by that of one ``gc.get_referrers``
call over the same heap, timed in the same run (``scan`` is its wall time), with the number of
``gc.get_referrers`` calls made beside it.  ``PT_BENCH_ROOT=DIR`` imports patchtrace from
DIR (an older checkout, for a before/after).
objgraph runs only for the one-object variants.
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

    def scan() -> tuple[float, float]:
        """One heap scan: (wall, CPU) seconds, best of 5."""
        best = cpu = float("inf")
        for _ in range(5):
            start, start_cpu = time.perf_counter(), time.process_time()
            gc.get_referrers(targets[0]())
            best = min(best, time.perf_counter() - start)
            cpu = min(cpu, time.process_time() - start_cpu)
        return best, cpu

    explain_all = refs.__dict__.get("explain_all")

    def explain_them() -> list[Any]:
        if len(targets) == 1:
            return [refs.explain(targets[0]())]
        if explain_all is not None:
            return list(explain_all([t() for t in targets]))
        return [refs.explain(t()) for t in targets]  # before explain_all: one search each

    cpu_seconds = [float("inf")]

    def run() -> tuple[float, list[Any]]:
        start, start_cpu = time.perf_counter(), time.process_time()
        result = explain_them()
        cpu_seconds[0] = min(cpu_seconds[0], time.process_time() - start_cpu)
        return time.perf_counter() - start, result

    calls = [0]
    real = gc.get_referrers

    def counting(*objs: Any) -> list[Any]:
        calls[0] += 1
        return real(*objs)

    repeat = len(targets) == 1
    scans = [scan()]
    # Calls are counted in the first run: naming a chain gives (3.11+) the instances on it a
    # __dict__ of their own, so a later run's chains are longer by one edge per instance.
    gc.get_referrers = counting
    try:
        seconds, result = run()
    finally:
        gc.get_referrers = real
    if repeat:
        seconds = min(seconds, run()[0])
    scans.append(scan())
    out["seconds"] = seconds
    out["scan"] = min(wall for wall, _ in scans)
    # The cost in scans is a ratio of CPU times: on a shared machine, waiting for a core
    # inflates wall times, not this.
    out["cost"] = cpu_seconds[0] / max(1e-9, min(cpu for _, cpu in scans))
    out["explained"] = sum(1 for r in result if r.chains)
    out["chain"] = result[0].chains[0].labels() if result[0].chains else [result[0].note]
    out["depths"] = [len(r.chains[0]) if r.chains else 0 for r in result]
    out["calls"] = calls[0]
    out["rss_delta_mb"] = _rss_delta(explain_them) if repeat else None
    import tracemalloc

    if repeat:
        tracemalloc.start()
        explain_them()
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    sys.addaudithook(lambda event, args: None)
    out["seconds_hook"] = min(run()[0], run()[0]) if repeat else run()[0]
    print(json.dumps(out), flush=True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_delta(fn: Any) -> float | None:
    """Peak RSS growth during fn(), sampled from a thread (Linux only)."""
    if not os.path.exists("/proc/self/statm"):
        return None
    import threading

    base = _rss_mb()
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        peak = max(peak, _rss_mb())
        done.set()
        sampler.join()
    return peak - base


# --------------------------------------------------------------------------- parent side


def _run_patchtrace(size: int, variant: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", str(size), variant, "patchtrace"]
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
    parser.add_argument("--variants", default="narrow,wide,deep,many")
    parser.add_argument("--cap", type=float, default=20.0, help="objgraph time cap, seconds")
    parser.add_argument("--no-objgraph", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("SIZE", "VARIANT", "MODE"), help="internal")
    parser.add_argument("--show-chain", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        _child(int(args.child[0]), args.child[1], args.child[2])
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    variants = [v for v in args.variants.split(",") if v]
    print(f"Python {sys.version.split()[0]}, objgraph cap {args.cap:g} s, patchtrace from {ROOT}")
    header = (
        f"{'heap objects':>12}  {'variant':<7}  {'objgraph':>9}  {'patchtrace':>10}  "
        f"{'+audit hook':>11}  {'ratio':>7}  {'tracemalloc':>11}  {'RSS delta':>9}  "
        f"{'scan':>7}  {'cost':>11}  {'calls':>5}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        for variant in variants:
            ours = _run_patchtrace(size, variant)
            if "error" in ours:
                print(f"{size:>12,}  {variant:<7}  patchtrace failed: {ours['error']}")
                continue
            theirs: float | None = None
            capped = False
            one = variant not in ("many", "apart")
            if not args.no_objgraph and one:
                theirs = _run_objgraph(size, variant, args.cap)
                capped = theirs is None
            seconds = float(ours["seconds"])
            if args.no_objgraph or not one:
                og, ratio = "-", "-"
            elif capped:
                og, ratio = f">{args.cap:g} s", f">{args.cap / seconds:,.0f}x"
            else:
                assert theirs is not None
                og, ratio = f"{theirs:.2f} s", f"{theirs / seconds:,.0f}x"
            rss = ours.get("rss_delta_mb")
            peak = ours.get("traced_peak_mb")
            scan = float(ours["scan"])
            print(
                f"{ours['heap']:>12,}  {variant:<7}  {og:>9}  {seconds * 1000:>7.0f} ms  "
                f"{float(ours['seconds_hook']) * 1000:>8.0f} ms  {ratio:>7}  "
                f"{'-' if peak is None else f'{peak:.1f} MB':>11}  "
                f"{'-' if rss is None else f'{rss:.0f} MB':>9}  "
                f"{scan * 1000:>4.1f} ms  {float(ours['cost']):>6.1f} scans  {ours['calls']:>5}",
                flush=True,
            )
            if not one:
                depths = ours["depths"]
                print(f"    {ours['explained']}/{len(depths)} explained, chains of "
                      f"{min(depths)}..{max(depths)} steps")
            if args.show_chain:
                print("    " + " -> ".join(str(s) for s in ours["chain"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
