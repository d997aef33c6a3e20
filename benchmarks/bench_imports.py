"""What the import-state checks of issue 14 cost per boundary, and per event.

    python benchmarks/bench_imports.py

Prints, in µs of CPU time (best of 7 rounds): the check for modules that left
``sys.modules`` while in use (``boundary.checks.modules.check``) when the scope imported no
project module (what nearly every boundary pays), when it imported some and kept them,
when one was dropped and nothing holds its objects (one walk of the other modules'
namespaces), and when one was dropped while a registry holds an instance; keeping the old
copy of a replaced module for its victims (``_note_copies``); the victim evidence of one
failing test (``CopyLeak.met_in`` / ``read_by``); the post-import note per project import;
the collection-file lookup of a store's line (3.10/3.11, once per finding at the end of
collection); and tracking a module right at its import while collecting (per module).
``sys.modules`` holds pytest and the usual standard library, as in a run.
"""

from __future__ import annotations

import sys
import tempfile
import time
import timeit
import types
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest  # noqa: F401  (a pytest-sized sys.modules)

from patchtrace._tracer import Tracer
from patchtrace.analysis import copies as _copies
from patchtrace.analysis import oracle as _oracle
from patchtrace.analysis.reads import Reads
from patchtrace.boundary import Detector
from patchtrace.boundary.checks import Handled, modules
from patchtrace.config import Config
from patchtrace.leak import Leak
from patchtrace.ledger import Scope
from patchtrace.sources.watch import WatchSource


def best(func: Callable[[], object], number: int = 200, repeat: int = 7) -> float:
    # CPU time of this process: the machine may be shared
    return min(timeit.repeat(func, number=number, repeat=repeat,
                             timer=time.process_time)) / number * 1e6


def module(name: str, registry: list[object] | None = None) -> types.ModuleType:
    made = types.ModuleType(name)
    exec("class Handler:\n    pass\n\ndef helper():\n    return 1\n", made.__dict__)
    made.__dict__["Handler"].__module__ = name
    made.__dict__["helper"].__module__ = name
    if registry is not None:
        registry.append(made.Handler())  # type: ignore[attr-defined]
    return made


def main() -> None:
    print(f"Python {sys.version.split()[0]}, {len(sys.modules)} modules, µs of CPU per call")
    detector = Detector(Tracer(Config()))
    scope = Scope("t.py::test_x", "call")
    ctx = detector._context(scope, Handled())

    def dropped_in_use(fresh: dict[str, weakref.ref[types.ModuleType]]) -> object:
        ctx.handled, ctx.fresh = Handled(), fresh  # a new boundary's, as before the split
        return modules.check([], ctx)

    try:
        empty: dict[str, weakref.ref[types.ModuleType]] = {}
        print(f"{'dropped check, no import':<44} "
              f"{best(lambda: dropped_in_use(empty), 5000):8.2f}")
        kept = {f"pt_bench_kept{i}": module(f"pt_bench_kept{i}") for i in range(10)}
        sys.modules.update(kept)
        fresh = {name: weakref.ref(mod) for name, mod in kept.items()}
        print(f"{'dropped check, 10 imported and kept':<44} "
              f"{best(lambda: dropped_in_use(fresh), 2000):8.2f}")
        lone = module("pt_bench_lone")
        one = {"pt_bench_lone": weakref.ref(lone)}
        print(f"{'dropped check, 1 dropped, nothing held':<44} "
              f"{best(lambda: dropped_in_use(one), 50):8.2f}")
        holder = types.ModuleType("pt_bench_registry")
        registry: list[object] = []
        holder.REGISTRY = registry  # type: ignore[attr-defined]
        holder.__file__ = str(Path(tempfile.gettempdir(), "pt_bench_registry.py"))
        sys.modules["pt_bench_registry"] = holder
        held = module("pt_bench_held", registry)
        two = {"pt_bench_held": weakref.ref(held)}

        def dropped_held() -> None:
            detector._pending_copies.clear()
            dropped_in_use(two)

        print(f"{'dropped check, 1 dropped, held by a registry':<44} "
              f"{best(dropped_held, 50):8.2f}")
        leak = Leak("module-replaced", "t.py::test_x", "call", "sys.modules", "pt_bench_held")
        detector.leaks.append(leak)

        def note() -> None:
            detector._copy_leaks.clear()
            detector._pending_copies[id(leak)] = ("pt_bench_held", held)
            detector._note_copies([leak])

        print(f"{'keep the old copy of 1 replaced module':<44} {best(note, 50):8.2f}")
        entry = detector._copy_leaks[0]
        assert entry.holders, "the registry holds an instance of the old copy"

        def repeat() -> None:
            detector._pending_copies[id(leak)] = ("pt_bench_held", held)
            detector._note_copies([leak])
            del entry.old[1:]

        print(f"{'... the same change again (a repeat)':<44} {best(repeat, 2000):8.2f}")
        sys.modules["pt_bench_held"] = module("pt_bench_held")  # the second copy
        try:
            raise AssertionError("assert False")
        except AssertionError as exc:
            error = exc
        print(f"{'victim evidence, met_in (no old object)':<44} "
              f"{best(lambda: entry.met_in(error), 2000):8.2f}")
        reads = Reads()
        reads.names.add("REGISTRY")
        reads.via["REGISTRY"] = {object.__hash__(holder)}
        print(f"{'victim evidence, read_by (a registry read)':<44} "
              f"{best(lambda: entry.read_by(reads), 2000):8.2f}")
        fresh_imports = _copies.FreshImports()
        print(f"{'post-import note, per project import':<44} "
              f"{best(lambda: fresh_imports._imported(lone), 20000):8.2f}")
        with tempfile.TemporaryDirectory() as root:
            files = []
            for i in range(20):
                path = Path(root, f"test_{i}.py")
                path.write_text("import sys\n\n\ndef test_x():\n    pass\n" * 20)
                files.append(str(path))
            Path(files[-1]).write_text('import sys\nsys.modules["heavy"] = None\n')
            _oracle.find_module_store(files, root, "heavy", subscript=True,
                                      target="sys.modules")  # parsed once, cached
            print(f"{'collection line lookup, 20 files (cached)':<44} " + format(best(
                lambda: _oracle.find_module_store(files, root, "heavy", subscript=True,
                                                  target="sys.modules"), 2000), "8.2f"))
        # While collecting, every import tracks its module at once (the same work the
        # next boundary's refresh() did before, moved earlier): per module, on average.
        def track_all() -> None:
            watch = WatchSource()
            for mod in list(sys.modules.values()):
                if type(mod) is types.ModuleType:
                    watch._imported_any(mod)

        count = sum(1 for m in sys.modules.values() if type(m) is types.ModuleType)
        print(f"{'track a module at its import (collection)':<44} "
              f"{best(track_all, 3) / count:8.2f}")
    finally:
        detector.close()
        for name in [n for n in sys.modules if n.startswith("pt_bench_")]:
            del sys.modules[name]


if __name__ == "__main__":
    main()
