"""Tracing puts no frame of its own between an import and the module it executes.

python-dotenv's ``find_dotenv()`` walks ``sys._getframe()`` out of the import machinery to
find the file that imported it; a loader proxy of ours on that stack made a test fail only
when traced (triage OUTCOME-1). The stack seen by a module while it is imported must be the
untraced one, and project modules must still be tracked as soon as they are imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import sys
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

import pytest

from patchtrace.sources import _imports

from .conftest import load_report, package_suite

Enable = Callable[..., Path]

# Like python-dotenv's find_dotenv(): skip our own file and the frames whose file does not
# exist ("<frozen importlib._bootstrap>"); the first real file is the importer.
IMPORTER_AWARE = """
import json, os, sys
from importlib.machinery import ModuleSpec
frame = sys._getframe()
while frame.f_code.co_filename == __file__ or not os.path.exists(frame.f_code.co_filename):
    frame = frame.f_back
IMPORTED_FROM = frame.f_code.co_filename
STACK = []
frame = sys._getframe(1)
while frame is not None and frame.f_code.co_name != "test_importer_is_this_file":
    STACK.append([frame.f_code.co_filename, frame.f_code.co_name])
    frame = frame.f_back
LOADERS = [isinstance(__spec__, ModuleSpec), type(__spec__.loader).__module__,
           __spec__.loader is __loader__]
with open(os.environ["STACK_OUT"], "w") as out:
    json.dump({"stack": STACK, "loaders": LOADERS}, out)
"""

# The control: a loader wrapper with a Python frame in exec_module (what _LoaderProxy was),
# installed by the test itself, must be seen by the same walk.
WRAPPER = """
import sys

class Wrapping:
    def __init__(self, loader):
        self.loader = loader
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        self.loader.exec_module(module)

class Finder:
    def find_spec(self, name, path, target=None):
        if name != "importer_aware_copy":
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    spec.loader = Wrapping(spec.loader)
                    return spec
        return None
"""

SUITE = {
    "importer_aware.py": IMPORTER_AWARE,
    "importer_aware_copy.py": IMPORTER_AWARE.replace('os.environ["STACK_OUT"]',
                                                     'os.devnull'),
    "wrapper.py": WRAPPER,
    "fresh_mod.py": "def func():\n    return 'real'\n",
    "test_x.py": """
import sys

def test_importer_is_this_file():
    import importer_aware
    assert importer_aware.IMPORTED_FROM == __file__
    assert importer_aware.LOADERS[0] is True
    assert not importer_aware.LOADERS[1].startswith("patchtrace")
    assert importer_aware.LOADERS[2] is True

def test_control_a_wrapper_frame_is_seen():
    import wrapper
    finder = wrapper.Finder()
    sys.meta_path.insert(0, finder)
    try:
        import importer_aware_copy
    finally:
        sys.meta_path.remove(finder)
    assert importer_aware_copy.IMPORTED_FROM == wrapper.__file__

def test_imports_and_stores_at_once():
    import fresh_mod
    fresh_mod.func = lambda: "fake"  # FRESH-STORE
""",
}


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, out: Path,
         *args: str) -> dict[str, object]:
    monkeypatch.setenv("STACK_OUT", str(out))
    result = pytester.runpytest_subprocess(*args, timeout=120)
    result.assert_outcomes(passed=3)
    data: dict[str, object] = json.loads(out.read_text())
    return data


def test_an_import_sees_the_untraced_stack(pytester: pytest.Pytester, traced_env: Enable,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    package_suite(pytester, SUITE)
    plain = _run(pytester, monkeypatch, pytester.path / "plain.json")
    report = traced_env()
    traced = _run(pytester, monkeypatch, pytester.path / "traced.json")
    # The module's whole stack up to the test function, frame by frame, as untraced.
    assert traced == plain
    assert not any("patchtrace" in filename for filename, _ in traced["stack"])  # type: ignore[attr-defined]
    # Control for the tracking: the module imported by the test was tracked at once, so
    # the store on the next line is caught with its line (3.10/3.11: the recording module
    # class; 3.12+: its dict watched), not taken for the module's state at the boundary.
    leaks = [leak for leak in load_report(report)["leaks"] if leak["target"] == "module:fresh_mod"]
    line = SUITE["test_x.py"].splitlines().index(
        '    fresh_mod.func = lambda: "fake"  # FRESH-STORE') + 1
    assert [(leak["name"], leak["where"]["line"]) for leak in leaks] == [("func", line)], leaks
    assert leaks[0]["polluter"].endswith("test_imports_and_stores_at_once")


# -- the hook itself -----------------------------------------------------------------------------
_counter = itertools.count()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Writes a module with a fresh name into a directory on sys.path; returns its name."""
    names: list[str] = []

    def write(source: str) -> str:
        name = f"ptimports_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(source)
        names.append(name)
        return name

    sys.path.insert(0, str(tmp_path))
    importlib.invalidate_caches()
    try:
        yield write
    finally:
        sys.path.remove(str(tmp_path))
        for name in names:
            sys.modules.pop(name, None)


SEES_ITSELF = """
import sys
FRAMES = []
frame = sys._getframe()
while frame is not None:
    FRAMES.append(frame.f_code.co_filename)
    frame = frame.f_back
LOADER_IS_REAL = __spec__.loader is __loader__ and type(__loader__).__module__ != __name__
LAST = True
"""


def test_when_imported_fires_after_the_module_ran_with_no_frame_of_ours(
        fresh: Callable[[str], str]) -> None:
    name = fresh(SEES_ITSELF)
    seen: list[tuple[ModuleType, bool]] = []

    def callback(module: ModuleType) -> None:
        seen.append((module, "LAST" in module.__dict__))

    _imports.when_imported(name, callback)
    try:
        module = importlib.import_module(name)
    finally:
        _imports.cancel(name, callback)  # no-op when it fired; cleans up if not
    assert seen == [(module, True)]  # once, with the module complete
    assert not any(_imports.__file__ == f for f in module.FRAMES)
    assert not any("patchtrace" in f for f in module.FRAMES[1:])
    assert module.LOADER_IS_REAL
    assert type(module.__spec__) is ModuleSpec
    assert module.__spec__._initializing is False


def test_the_spec_hook_is_seen_only_by_what_reads_it(fresh: Callable[[str], str]) -> None:
    # During execution the spec is our subclass (the one observable trace, by design);
    # afterwards it is a plain ModuleSpec again, also when the import fails.
    name = fresh("import sys\nSPEC_TYPE = type(__spec__).__name__\n")
    fired: list[ModuleType] = []
    _imports.when_imported(name, fired.append)
    module = importlib.import_module(name)
    assert module.SPEC_TYPE == "_WatchedSpec" and type(module.__spec__) is ModuleSpec
    assert fired == [module]

    broken = fresh("raise RuntimeError('boom')\n")
    fired.clear()
    _imports.when_imported(broken, fired.append)
    try:
        with pytest.raises(RuntimeError):
            importlib.import_module(broken)
        assert fired == []  # a failed import fires nothing; the callback waits
        # the control: the next, successful import of the same name fires it
        Path(sys.path[0], f"{broken}.py").write_text("OK = 1\n")
        importlib.invalidate_caches()
        sys.modules.pop(broken, None)
        again = importlib.import_module(broken)
        assert fired == [again]
    finally:
        _imports.cancel(broken, fired.append)


def test_a_reload_and_find_spec_are_left_alone(fresh: Callable[[str], str]) -> None:
    name = fresh("X = 1\n")
    calls: list[ModuleType] = []

    def predicate(origin: str) -> bool:
        return origin.endswith(f"{name}.py")

    _imports.on_import(predicate, calls.append)
    try:
        module = importlib.import_module(name)
        assert calls == [module]  # the control: a real import fires
        importlib.reload(module)
        assert type(module.__spec__) is ModuleSpec and calls == [module]
        sys.modules.pop(name)
        found = importlib.util.find_spec(name)
        assert found is not None and type(found) is ModuleSpec and calls == [module]
    finally:
        _imports.cancel_on_import(calls.append)
