from unittest import mock

from shop.util import Money


def test_rounding_is_patched():
    original = Money.round  # BUG: reads the plain function out of the staticmethod
    Money.round = mock.Mock(return_value=1.0)
    try:
        assert Money().total([0.5, 0.5]) == 1.0
    finally:
        Money.round = original  # now an instance method: self is passed as `value`


def test_rounding():
    assert Money().total([0.333, 0.333]) == 0.67
