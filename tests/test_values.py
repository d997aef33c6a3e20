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


def test_same_value_by_identity_or_by_value_for_known_types_only() -> None:
    import datetime
    import decimal
    import enum
    import fractions
    import pathlib

    from patchtrace.values import same_value

    class Color(enum.Enum):
        RED = 1

    equal_pairs = [
        (None, None), (1, 1), ("a" * 40, "".join(["a"] * 40)), (2.5, 2.5),
        (float("nan"), float("nan")),
        (pathlib.Path("/tmp/x"), pathlib.Path("/tmp/x")),
        (datetime.datetime(2020, 1, 1), datetime.datetime(2020, 1, 1)),
        (datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
         datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)),
        (datetime.date(2020, 1, 1), datetime.date(2020, 1, 1)),
        (datetime.timedelta(3), datetime.timedelta(3)),
        (decimal.Decimal("1.5"), decimal.Decimal("1.5")),
        (fractions.Fraction(1, 3), fractions.Fraction(1, 3)),
        (Color.RED, Color.RED),
        ((1, "a", pathlib.Path("p")), (1, "a", pathlib.Path("p"))),
        (frozenset({1, "x"}), frozenset({"x", 1})),
        ((function, None), (function, None)),  # __defaults__: item by item, by identity
    ]
    for a, b in equal_pairs:
        assert same_value(a, b), (a, b)
    different = [
        (1, True), (1, 1.0), (None, 0), ("a", "b"), (pathlib.Path("a"), pathlib.PurePath("a")),
        ((Spec(),), (Spec(),)), ([1], [1]), (Spec(), Spec()), (frozenset({Spec()}), frozenset()),
    ]
    for a, b in different:
        assert not same_value(a, b), (a, b)


def test_same_value_never_calls_a_user_eq() -> None:
    import datetime
    import pathlib

    from patchtrace.values import same_value

    calls = []

    class MyPath(type(pathlib.Path())):  # type: ignore[misc]
        def __eq__(self, other: object) -> bool:
            calls.append("path")
            return True

        __hash__ = object.__hash__

    class Zone(datetime.tzinfo):
        def utcoffset(self, dt: object) -> datetime.timedelta:
            calls.append("tz")
            return datetime.timedelta(0)

    m = mock.MagicMock()
    assert not same_value(m, mock.MagicMock()) and m.mock_calls == []
    assert not same_value(MyPath("/a"), MyPath("/a"))
    assert not same_value(datetime.datetime(2020, 1, 1, tzinfo=Zone()),
                          datetime.datetime(2020, 1, 1, tzinfo=Zone()))
    assert not same_value((m,), (mock.MagicMock(),))
    assert calls == [] and m.mock_calls == []
