"""Benchmark patchtrace.refs.explain against objgraph.find_backref_chain.

Each (heap size, variant) runs in a fresh interpreter so heaps do not add up:

* narrow: a used MagicMock (called, attributes read: it has children and MagicProxy objects)
  10 edges below a module global; the heap is padded with reachable filler objects.
* wide:   the same, plus 1,000 other objects holding the mock, themselves 12 edges below
  another module global (so a shortest-chain search has to look at all of them).

Usage::

    python benchmarks/bench_explain.py                       # 100k, 1M, 3M; objgraph capped at 20 s
    python benchmarks/bench_explain.py --sizes 100000,1000000 --cap 5
    python benchmarks/bench_explain.py --no-objgraph

Columns: patchtrace time without and with a trivial audit hook (``sys.addaudithook(lambda e,
a: None)``), the objgraph time (">CAP s" when it was killed at the cap), the ratio, and the
extra memory explain() needed (tracemalloc peak during the call, and the RSS growth).
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
ROOT = os.path.dirname(HERE)


# ---------------------------------------------------------------------------- child side


def _build(size: int, variant: str) -> Any:
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

    def closure(value: object) -> Any:
        def get() -> object:
            return value

        return get

    target = mock.MagicMock(name="leaked")
    target(1, "two", three=3)
    target.configure.return_value = 5
    target.configure(debug=True)
    target.settings.timeout
    target.client.get("/x")
    len(target)

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

    app = types.ModuleType("bench_app")
    sys.modules["bench_app"] = app
    app.__dict__["settings"] = chain_of(10, target)
    if variant == "wide":
        holders = [Node(target) for _ in range(1000)]
        other = types.ModuleType("bench_other")
        sys.modules["bench_other"] = other
        other.__dict__["deep"] = chain_of(11, holders)
    filler: list[object] = []
    app.__dict__["filler"] = filler
    gc.collect()
    missing = size - len(gc.get_objects())
    # A Filler is 2 tracked objects (instance + its list); 3.10 adds the instance __dict__.
    per = 3 if sys.version_info < (3, 11) else 2
    filler.extend(Filler(i) for i in range(max(0, missing // per)))
    gc.collect()
    return target


def _child(size: int, variant: str, mode: str) -> None:
    import gc
    import weakref

    # Only a weak reference here: a local would be the shortest chain (a live frame local).
    target = weakref.ref(_build(size, variant))
    heap = len(gc.get_objects())
    out: dict[str, Any] = {"heap": heap}
    if mode == "objgraph":
        import objgraph

        print(json.dumps({"ready": True}), flush=True)
        start = time.perf_counter()
        chain = objgraph.find_backref_chain(target(), objgraph.is_proper_module, max_depth=40)
        out["seconds"] = time.perf_counter() - start
        out["length"] = len(chain)
        print(json.dumps(out), flush=True)
        return

    sys.path.insert(0, ROOT)
    from patchtrace.refs import explain

    def run() -> tuple[float, Any]:
        start = time.perf_counter()
        result = explain(target())
        return time.perf_counter() - start, result

    seconds, result = run()
    out["seconds"] = min(seconds, run()[0])
    out["chain"] = result.chains[0].labels() if result.chains else [result.note]
    out["rss_delta_mb"] = _rss_delta(lambda: explain(target()))
    import tracemalloc

    tracemalloc.start()
    explain(target())
    out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    sys.addaudithook(lambda event, args: None)
    out["seconds_hook"] = min(run()[0], run()[0])
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
    parser.add_argument("--variants", default="narrow,wide")
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
    print(f"Python {sys.version.split()[0]}, objgraph cap {args.cap:g} s")
    header = (
        f"{'heap objects':>12}  {'variant':<7}  {'objgraph':>9}  {'patchtrace':>10}  "
        f"{'+audit hook':>11}  {'ratio':>7}  {'tracemalloc':>11}  {'RSS delta':>9}"
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
            if not args.no_objgraph:
                theirs = _run_objgraph(size, variant, args.cap)
                capped = theirs is None
            seconds = float(ours["seconds"])
            if args.no_objgraph:
                og, ratio = "-", "-"
            elif capped:
                og, ratio = f">{args.cap:g} s", f">{args.cap / seconds:,.0f}x"
            else:
                assert theirs is not None
                og, ratio = f"{theirs:.2f} s", f"{theirs / seconds:,.0f}x"
            rss = ours.get("rss_delta_mb")
            print(
                f"{ours['heap']:>12,}  {variant:<7}  {og:>9}  {seconds * 1000:>7.0f} ms  "
                f"{float(ours['seconds_hook']) * 1000:>8.0f} ms  {ratio:>7}  "
                f"{float(ours['traced_peak_mb']):>8.1f} MB  "
                f"{'-' if rss is None else f'{rss:.0f} MB':>9}",
                flush=True,
            )
            if args.show_chain:
                print("    " + " -> ".join(str(s) for s in ours["chain"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
