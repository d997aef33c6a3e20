from shop import config, payments


def test_receipt_total():
    assert payments.charge(42)["amount"] == 42


def test_default_timeout():
    assert config.TIMEOUT == 30


def test_live_mode_by_default():
    assert config.mode() == "live"
