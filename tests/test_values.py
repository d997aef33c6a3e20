from __future__ import annotations

from unittest import mock

from patchtrace.values import is_mock, safe_repr, summarize


class Spec:
    def method(self) -> int:
        return 1


def function(a: int) -> int:
    return a


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_is_mock_sees_through_a_lying_class() -> None:
    m = mock.MagicMock(spec=Spec)
    assert isinstance(m, Spec)  # the lie
    assert is_mock(m)
    assert m.mock_calls == []  # and we did not touch it


def test_is_mock_for_every_mock_class_and_autospec() -> None:
    for cls in (mock.Mock, mock.MagicMock, mock.NonCallableMock, mock.AsyncMock,
                mock.NonCallableMagicMock):
        assert is_mock(cls())
    assert is_mock(mock.create_autospec(function))
    assert not is_mock(function)
    assert not is_mock(Spec())
    assert not is_mock(mock.sentinel.x)


def test_subclass_of_a_mock_is_a_mock() -> None:
    class MyMock(mock.MagicMock):
        pass

    assert is_mock(MyMock())


def test_safe_repr_survives_a_raising_repr() -> None:
    text = safe_repr(BadRepr())
    assert "BadRepr" in text
    assert "RuntimeError" in text


def test_safe_repr_truncates() -> None:
    assert len(safe_repr("x" * 10_000)) <= 120
    assert len(safe_repr(list(range(10_000)))) <= 120


def test_summarize_a_mock_records_no_call() -> None:
    m = mock.MagicMock(name="thing")
    summary = summarize(m)
    assert summary.is_mock
    assert summary.type == "MagicMock"
    assert "thing" in summary.repr
    assert m.mock_calls == []
    assert m._mock_children == {}
