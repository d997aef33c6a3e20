from unittest import mock

from shop import config, payments


def test_charge_is_sent():
    # BUG: started, never stopped. Every later test talks to the mock.
    send = mock.patch("shop.gateway.send", return_value={"status": "mocked"}).start()
    assert payments.charge(10) == {"status": "mocked"}
    send.assert_called_once_with(10)


def test_timeout_is_short():
    # BUG: a direct store, never restored.
    config.TIMEOUT = 1
    assert payments.charge(5)["status"] in ("ok", "mocked")
