import os

from shop import config


def test_sandbox_mode():
    # BUG: teardown forgot this key (use monkeypatch.setenv).
    os.environ["SHOP_MODE"] = "sandbox"
    assert config.mode() == "sandbox"
