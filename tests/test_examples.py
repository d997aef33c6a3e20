"""The bundled example suite finds what examples/README.md says it finds (README's first
command runs it): every planted leak, blamed on its test and line, with its victims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    # polluter, kind, name: victims
    ("test_payments.py::test_charge_is_sent", "patch-not-stopped", "send"):
        ["test_receipts.py::test_receipt_total"],
    ("test_payments.py::test_timeout_is_short", "binding-changed", "TIMEOUT"):
        ["test_receipts.py::test_default_timeout"],
    ("test_env.py::test_sandbox_mode", "binding-changed", "SHOP_MODE"):
        ["test_receipts.py::test_live_mode_by_default"],
    ("test_util.py::test_rounding_is_patched", "restore-mismatch", "round"):
        ["test_util.py::test_rounding"],
    ("test_speed.py::test_fast_json", "binding-changed", "shop.fastjson"):
        ["test_speed.py::test_encode"],
    ("test_clients.py::test_client_is_cached", "mock-survived", None): [],
    ("test_prompt.py::test_confirm", "patch-not-stopped", "input"): [],
}


def test_every_planted_leak_is_found_with_its_victims(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    env.update(PATCHTRACE="1", PATCHTRACE_JSON=str(report))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "examples/tests", "-p", "no:randomly", "-q",
         "-p", "no:cacheprovider"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout[-3000:]  # five victims fail, on purpose
    assert "5 failed, 15 passed" in result.stdout
    found = {}
    for leak in json.loads(report.read_text())["leaks"]:
        polluter = leak["polluter"].removeprefix("examples/tests/")
        found[(polluter, leak["kind"], leak["name"])] = [
            v.removeprefix("examples/tests/") for v in leak["victims"]]
        assert leak["where"] is not None, leak
    assert found == EXPECTED
