import logging
import os
import warnings
from unittest import mock

import pytest

from shop import config, payments


@pytest.fixture(scope="module")
def euro():
    with mock.patch.object(config, "CURRENCY", "EUR"):
        yield


def test_context_manager():
    with mock.patch("shop.payments.gateway") as gateway:
        payments.charge(1)
    gateway.send.assert_called_once_with(1)


@mock.patch.dict(os.environ, {"SHOP_MODE": "sandbox"})
def test_decorator():
    assert config.mode() == "sandbox"


def test_monkeypatch(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "TIMEOUT", 5)
    monkeypatch.setenv("SHOP_EXTRA", "1")
    monkeypatch.delenv("SHOP_MODE", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert config.TIMEOUT == 5


def test_capture_and_logging(capsys, caplog):
    logging.getLogger("shop").warning("careful")
    print("hello")
    warnings.simplefilter("ignore")
    assert "hello" in capsys.readouterr().out
    assert "careful" in caplog.text


def test_module_fixture(euro):
    assert config.CURRENCY == "EUR"


def test_addcleanup_style():
    patcher = mock.patch.object(config, "CURRENCY", "USD")
    patcher.start()
    try:
        assert config.CURRENCY == "USD"
    finally:
        mock.patch.stopall()
