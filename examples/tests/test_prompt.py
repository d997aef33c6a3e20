import builtins
from unittest import mock

import pytest

from shop import prompt


@pytest.fixture(scope="module")
def always_yes():
    # BUG: a module-scoped fixture patches input() for its module and never undoes it.
    patcher = mock.patch.object(builtins, "input", return_value="y")
    patcher.start()
    yield


def test_confirm(always_yes):
    assert prompt.confirm("Ship it?")


def test_confirm_again(always_yes):
    assert prompt.confirm("Really?")
