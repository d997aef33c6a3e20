"""Later tests and a leak: victims linked to the leak they used (even through project code),
and repairs (``patch.stopall()`` undoing someone else's patch) not blamed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import load_report


@pytest.fixture
def shop(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.mkpydir("shop")
    pytester.path.joinpath("shop", "settings.py").write_text(
        "import os\n"
        "MAX_RETRIES = 3\n"
        "def mode():\n"
        "    return os.environ.get('SHOP_MODE', 'live')\n")
    pytester.path.joinpath("shop", "pricing.py").write_text(
        "from shop import settings\n"
        "def retry_delays():\n"
        "    return [0.5 * 2**i for i in range(settings.MAX_RETRIES)]\n"
        "def checkout_url():\n"
        "    return 'sandbox' if settings.mode() == 'sandbox' else 'live'\n"
        "class Calculator:\n"
        "    def __init__(self):\n"
        "        self.retries = settings.MAX_RETRIES\n")
    pytester.makepyfile(test_a="""
        import os
        from shop import settings, pricing

        def test_no_retries():
            settings.MAX_RETRIES = 0
            assert pricing.retry_delays() == []

        def test_sandbox():
            os.environ["SHOP_MODE"] = "sandbox"
            assert pricing.checkout_url() == "sandbox"
    """, test_b="""
        from shop import pricing

        def test_backoff():
            assert pricing.retry_delays() == [0.5, 1.0, 2.0]

        def test_live_checkout():
            assert pricing.checkout_url() == "live"

        def test_calculator():
            assert pricing.Calculator().retries == 3

        def test_unrelated_failure():
            assert [1, 2] == [2, 1]
    """)
    return pytester


def test_victims_reading_a_leak_inside_project_code_are_linked(
        shop: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    result = shop.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=2, failed=4)
    leaks = {leak["name"]: leak for leak in load_report(report_path)["leaks"]}
    victims = {name: leak["victims"] for name, leak in leaks.items()}
    assert victims == {
        "MAX_RETRIES": ["test_b.py::test_backoff", "test_b.py::test_calculator"],
        "SHOP_MODE": ["test_b.py::test_live_checkout"],
    }
    # every link says what the victim used (CONTRACT: victim_evidence); the unrelated
    # failure, linked to nothing, has no entry anywhere
    assert {name: leak["victim_evidence"] for name, leak in leaks.items()} == {
        "MAX_RETRIES": {"test_b.py::test_backoff": "read shop.settings.MAX_RETRIES",
                        "test_b.py::test_calculator": "read shop.settings.MAX_RETRIES"},
        "SHOP_MODE": {"test_b.py::test_live_checkout": "read os.environ['SHOP_MODE']"},
    }
    assert "monkeypatch.setenv" in leaks["SHOP_MODE"]["fix"]
    assert "monkeypatch.setattr" in leaks["MAX_RETRIES"]["fix"]
    # the unrelated failure still shows what was polluted when it ran, but is not a victim
    result.stdout.fnmatch_lines(["*test_unrelated_failure*", "*pollution present*"])


def test_stopall_undoing_an_earlier_leak_is_a_repair_not_a_leak(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    pytester.makepyfile(test_a="""
        import builtins
        from unittest import mock

        def test_polluter():
            mock.patch.object(builtins, "input", return_value="y").start()

        def test_cleaner():
            patcher = mock.patch.object(builtins, "print")
            patcher.start()
            mock.patch.stopall()  # also stops test_polluter's patch

        def test_after():
            assert not hasattr(builtins.input, "assert_called")
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=3)
    leaks = load_report(report_path)["leaks"]
    assert [(leak["kind"], leak["polluter"], leak["name"]) for leak in leaks] == [
        ("patch-not-stopped", "test_a.py::test_polluter", "input")]


def test_victim_of_a_leak_in_an_installed_package(
        pytester: pytest.Pytester, traced_env: Callable[..., Path]) -> None:
    # A suite testing its package installed into site-packages (tox, nox, CI wheels):
    # the code that reads the leaked binding is not "project" code, but it is followed
    # because it belongs to the package holding the leak.
    report_path = traced_env()
    site = pytester.path / "venv" / "lib" / "site-packages" / "wheelmod"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(
        "import re\n"
        "pattern = re.compile(r'(?P<tag>py\\d)')\n"
        "def parse(name):\n"
        "    return pattern.search(name).group('tag')\n")
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(site.parent)!r})\n")
    pytester.makepyfile(test_w="""
        import wheelmod

        class Stub:
            def search(self, name):
                return None

        def test_stubs_the_pattern():
            wheelmod.pattern = Stub()

        def test_version_parsing():
            assert wheelmod.parse("x-py3-none") == "py3"
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    (leak,) = load_report(report_path)["leaks"]
    assert (leak["target"], leak["name"]) == ("module:wheelmod", "pattern")
    assert leak["victims"] == ["test_w.py::test_version_parsing"]
