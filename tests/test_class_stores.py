"""Stores on the project's classes and instances: seen on every Python version, named."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import leak_rows, load_report


def test_plain_and_new_class_attributes(pytester: pytest.Pytester,
                                        traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    pytester.mkpydir("shop")
    pytester.path.joinpath("shop", "money.py").write_text(
        "class Money:\n"
        "    rate = 1.0\n"
        "    _cache = None\n"
        "    @classmethod\n"
        "    def cached(cls):\n"
        "        if cls._cache is None:\n"
        "            cls._cache = object()\n"
        "        return cls._cache\n")
    pytester.makepyfile(test_a="""
        from shop.money import Money

        def test_rate():
            Money.rate = 2.0

        def test_new_attribute():
            Money.debug = True

        def test_own_cache_is_not_a_leak():
            assert Money.cached() is Money.cached()
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=3)
    assert leak_rows(report_path) == {
        ("test_rate", "class:shop.money.Money", "rate", 4),
        ("test_new_attribute", "class:shop.money.Money", "debug", 7),
    }


def test_patched_instances_are_named_by_their_path(pytester: pytest.Pytester,
                                                   traced_env: Callable[..., Path]) -> None:
    report_path = traced_env()
    pytester.makepyfile(conf="""
        class Settings:
            debug = False
            retries = 3

        settings = Settings()
    """, test_a="""
        from unittest import mock
        import pytest
        import conf

        def test_patch_object_on_an_instance():
            mock.patch.object(conf.settings, "debug", True).start()

        def test_monkeypatch_on_an_instance():
            pytest.MonkeyPatch().setattr(conf.settings, "retries", 0)
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=2)
    found = {(leak["target"], leak["name"]) for leak in load_report(report_path)["leaks"]}
    assert found == {("object:conf.settings", "debug"), ("object:conf.settings", "retries")}
