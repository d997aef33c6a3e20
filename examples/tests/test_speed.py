import sys
from unittest import mock


def test_fast_json():
    # BUG: a fake module planted in sys.modules, never removed.
    sys.modules["shop.fastjson"] = mock.MagicMock()
    from shop import fastjson

    fastjson.dumps({"a": 1})


def test_encode():
    import importlib

    fastjson = importlib.import_module("shop.fastjson")
    assert fastjson.dumps({"a": 1}) == '{"a":1}'
