"""The public API of ``patchtrace/__init__.py``, used as a script or a notebook would."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = """
import json, sys
from unittest import mock
import patchtrace
import target

with patchtrace.tracing() as book:
    started = mock.patch.object(target, "func", return_value=1)
    started.start()
    target.VALUE = 2  # LINE-DIRECT
    active = patchtrace.active_patches()
    hist = patchtrace.history(target, "func")
    hist_by_name = patchtrace.history("target", "VALUE")
    everything = patchtrace.ledger()
    started.stop()
print(json.dumps({
    "same_ledger": everything is book,
    "ledger_callable": callable(patchtrace.ledger),
    "active": [(a.mutation.target, a.mutation.name) for a in active],
    "history_ops": [m.op for m in hist],
    "history_by_name": [(m.op, m.where.line if m.where else None) for m in hist_by_name],
    "active_after_stop": len(patchtrace.active_patches()),
}))
"""


def test_api_functions_work_while_tracing(tmp_path: Path) -> None:
    (tmp_path / "target.py").write_text("VALUE = 1\ndef func():\n    return 0\n")
    (tmp_path / "script.py").write_text(textwrap.dedent(SCRIPT))
    result = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True,
                            text=True, env={"PATH": "", "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    line = next(i for i, text in enumerate(SCRIPT.splitlines(), 1)
                if "LINE-DIRECT" in text)
    assert data["ledger_callable"] is True
    assert data["same_ledger"] is True
    assert data["active"] == [["module:target", "func"]]
    assert data["history_ops"] == ["patch"]
    assert data["history_by_name"] == [["set", line]]
    assert data["active_after_stop"] == 0


def test_ledger_module_stays_importable() -> None:
    import patchtrace
    from patchtrace.ledger import Mutation

    assert callable(patchtrace.ledger)
    assert Mutation.__module__ == "patchtrace.ledger"
