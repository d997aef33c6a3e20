"""The HTML report in a real browser (headless Chromium): it renders, shows graphs, the
filter works, and a ``<script>`` planted in a mock's name does not run."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from patchtrace.leak import Leak
from patchtrace.render import html
from patchtrace.stack import Frame
from patchtrace.values import MISSING, ValueSummary

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"{CHROMIUM} not installed (apt-get install chromium)"),
    pytest.mark.slow,
]

PLANTED = (
    "<script>document.title='pwned';document.documentElement.setAttribute('data-pwned','1')"
    "</script><img src=x onerror=\"document.documentElement.setAttribute('data-pwned','2')\">"
)


def chromium(*args: str, timeout: float = 90) -> str:
    with tempfile.TemporaryDirectory(prefix="pt-chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def make_leak(id: str, polluter: str, label: str, value: ValueSummary, **kw: object) -> Leak:
    frame = Frame("tests/test_a.py", 1, "test_x")
    leak = Leak("patch-not-stopped", polluter, "call", "module:shop.gateway", label,
                where=frame, stack=[frame], before=MISSING, value=value)
    leak.id = id
    leak.alive_via = ["module shop.gateway", f"attribute {label}", "child 'charge' of mock"]
    return leak


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    leaks = [
        make_leak("L1", "tests/test_pay.py::test_charge", "send",
                  ValueSummary("MagicMock", f"<MagicMock name='{PLANTED}' id='1'>", True)),
        make_leak("L2", "tests/test_env.py::test_mode", "zebra_unique",
                  ValueSummary("str", "'sandbox'", False)),
        make_leak("L3", "tests/test_env.py::test_other", "timeout",
                  ValueSummary("int", "1", False)),
    ]
    path = tmp_path_factory.mktemp("browser") / "report.html"
    html.write(str(path), leaks, tests=3, mutations=3, extra={})
    return path


# -- a tiny PNG decoder (8-bit RGB/RGBA, non-interlaced: what Chromium writes) --------------------


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    out = bytearray()
    prev = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1:start + 1 + stride])
        if ftype == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif ftype == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif ftype == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = prev[i]
                c = prev[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        out += line
        prev = line
    return width, height, channels, bytes(out)


def test_report_renders(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", "--window-size=900,700", report.as_uri())
    width, height, channels, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (900, 700)
    lum = [sum(pixels[i:i + 3]) // 3 for i in range(0, len(pixels), channels * 7)]
    mean = sum(lum) / len(lum)
    variance = sum((v - mean) ** 2 for v in lum) / len(lum)
    dark = sum(1 for v in lum if v < 128) / len(lum)
    assert variance > 200, variance  # not a blank page
    assert 0.01 < dark < 0.6, dark  # text and the dark header, on a light page
    assert len(set(lum)) > 20


def dump(report: Path, fragment: str = "") -> str:
    return chromium("--dump-dom", "--virtual-time-budget=3000", report.as_uri() + fragment)


def visible_leaks(dom: str) -> list[str]:
    shown = []
    for match in re.finditer(r"<article ([^>]*)>", dom):
        attrs = match.group(1)
        if not re.search(r"\shidden(=|\s|$)", attrs):
            found = re.search(r'id="leak-([^"]+)"', attrs)
            assert found is not None
            shown.append(found.group(1))
    return shown


def test_graphs_present_and_planted_script_did_not_run(report: Path) -> None:
    dom = dump(report)
    assert dom.count("<svg") == 3
    assert "<title>patchtrace: 3 leaks</title>" in dom
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom).group(1)  # type: ignore[union-attr]
    assert 'data-pwned="' not in dom
    assert "&lt;script&gt;document.title=" in dom  # shown as text instead
    assert visible_leaks(dom) == ["L1", "L2", "L3"]
    assert 'data-shown="3"' in dom  # our own script did run (its CSP hash is right)


def test_filter(report: Path) -> None:
    dom = dump(report, "#filter=zebra_unique")
    assert visible_leaks(dom) == ["L2"]
    assert 'data-shown="1"' in dom
    assert "1 of 3 shown" in dom
    # the group of a polluter with nothing left to show is hidden too
    groups = re.findall(r"<section ([^>]*)>", dom)
    assert sum(1 for g in groups if "hidden" in g) == 2

    dom = dump(report, "#filter=test_env.py%20timeout")  # every word must match
    assert visible_leaks(dom) == ["L3"]


# -- a real report with every kind of leak, as a user would look at it -----------------------------
EVERY_KIND = {
    "shop/__init__.py": "",
    "shop/calc.py": "class Calc:\n    @staticmethod\n    def scale(x):\n        return x * 2\n\n"
                    "REGISTRY = []\nTIMEOUT = 30\n",
    "shop/gateway.py": "def send(x):\n    return x\n",
    "shop/reloaded.py": "class Thing:\n    pass\n",
    "shop/clock.py": "def now():\n    return 1\n",
    "shop/other.py": "VALUE = 1\n",
    "shop/sub/__init__.py": "",
    "shop/sub/leaf.py": "VALUE = 1\n",
    "test_kinds.py": '''\
import importlib, logging, os, sys, types
from unittest import mock
import shop.calc, shop.clock, shop.gateway, shop.other, shop.reloaded, shop.sub.leaf
from shop.calc import Calc
from shop.reloaded import Thing  # the old class stays referenced here after a reload


def test_patch_not_stopped_with_a_name_long_enough_to_wrap_the_title_of_its_reference_graph():
    mock.patch("shop.gateway.send").start()


def test_binding_changed():
    shop.calc.TIMEOUT = 0
    os.environ["DATABASE_URL"] = "postgres://admin:hunter2@db/prod"


def test_restore_mismatch():
    original = Calc.scale
    Calc.scale = lambda x: 3
    Calc.scale = original


def test_mock_survived():
    shop.calc.REGISTRY.append(mock.MagicMock(name="registered"))


def test_module_reloaded():
    importlib.reload(shop.reloaded)


def test_module_replaced():
    sys.modules["shop.other"] = types.ModuleType("shop.other")


def test_module_dropped():
    del sys.modules["shop.sub.leaf"]


def test_patch_dormant():
    with mock.patch("shop.clock.now"):
        mock.patch("shop.clock.now").start()


def test_resource_changed():
    logging.getLogger().addHandler(logging.NullHandler())


def test_victim():
    assert shop.calc.TIMEOUT == 30


def test_later():
    import gc
    gc.collect()


def test_last():
    pass
''',
}


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    import json
    import sys

    root = tmp_path_factory.mktemp("every-kind")
    for name, text in EVERY_KIND.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATCHTRACE")}
    env.update(PATCHTRACE="1", PATCHTRACE_HTML=str(root / "r.html"),
               PATCHTRACE_JSON=str(root / "r.json"))
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:randomly", "-p",
                           "no:cacheprovider", "-p", "no:xdist", "-q"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 1, done.stdout[-3000:]  # test_victim fails
    return root / "r.html", json.loads((root / "r.json").read_text())


def articles(dom: str) -> dict[str, str]:
    """Each leak's <article>, by kind (the last one of a kind wins: one of each here)."""
    out = {}
    for match in re.finditer(r'<article class="pt-leak"[^>]*data-kind="([^"]+)".*?</article>',
                             dom, re.DOTALL):
        out[match.group(1)] = match.group(0)
    return out


def test_every_kind_of_leak_as_a_user_sees_it(every_kind: tuple[Path, dict[str, object]],
                                              tmp_path: Path) -> None:
    page, data = every_kind
    leaks = data["leaks"]
    assert isinstance(leaks, list)
    from patchtrace.leak import KINDS

    assert {leak["kind"] for leak in leaks} == set(KINDS)
    dom = dump(page)
    found = articles(dom)
    assert set(found) == set(KINDS)
    for kind, article in found.items():
        leak = next(leak for leak in leaks if leak["kind"] == kind)
        message = re.search(r'<p class="pt-msg">(.*?)</p>', article, re.DOTALL)
        assert message is not None
        # the one-line message does not repeat the rows under it
        assert leak["fix"] and html._e(leak["fix"]) not in message.group(1), kind
        if kind in ("binding-changed", "restore-mismatch"):
            assert html._e(leak["before"]["repr"]) not in message.group(1), kind
        # file:line is a real link to the absolute file, with its line, or no link at all
        for link in re.findall(r'<a class="pt-where"[^>]*>', article):
            href = re.search(r'href="file://(/[^"#]+)#L(\d+)"', link)
            assert href is not None, link
            assert os.path.isfile(href.group(1)), link
        assert 'class="pt-where"' not in article.replace('<a class="pt-where"', ""), kind
        # a graph that says no more than the "alive via" line starts collapsed
        details = re.search(r'<details class="pt-graph"( open)?', article)
        assert details is not None
        svg = re.search(r"<svg.*?</svg>", article, re.DOTALL)
        assert svg is not None
        boxes = len(re.findall(r'class="(?:node|pt-node [^"]*)"', svg.group(0)))
        assert (details.group(1) is not None) == (boxes > 2), (kind, boxes)
        assert "\\n" not in svg.group(0), kind  # tooltips: no literal backslash-n
    assert "hunter2" not in dom and "postgres://admin:***@db/prod" in dom
    # the restore-mismatch graph: one edge for the one reference
    restore = found["restore-mismatch"]
    assert restore.count("class attribute scale") >= 1
    assert "class attribute scale of" not in restore
    shot = tmp_path / "every-kind.png"
    chromium(f"--screenshot={shot}", "--window-size=1200,3200", page.as_uri())
    width, height, channels, pixels = decode_png(shot.read_bytes())
    assert (width, height) == (1200, 3200)
    lum = [sum(pixels[i:i + 3]) // 3 for i in range(0, len(pixels), channels * 7)]
    assert len(set(lum)) > 20  # not blank
    if os.environ.get("PT_KEEP_SCREENSHOT"):
        import shutil

        shutil.copy(shot, os.environ["PT_KEEP_SCREENSHOT"])
