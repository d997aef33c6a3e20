TIMEOUT = 30
CURRENCY = "EUR"


def mode() -> str:
    import os

    return os.environ.get("SHOP_MODE", "live")
