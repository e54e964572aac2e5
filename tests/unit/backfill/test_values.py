"""streams/backfill/values.py: Tuya's device-log strings back in the types the stream sends."""

from __future__ import annotations

import pytest

from models.points import PointSpec
from streams.backfill.values import log_value


def point(type_: str) -> PointSpec:
    return PointSpec(product_id="p", code="c", type=type_)


@pytest.mark.parametrize(
    ("text", "type_", "expected"),
    [
        ("65", "Integer", 65),
        ("-175", "Integer", -175),
        ("+7", "Integer", 7),
        ("12.5", "Integer", "12.5"),  # not a whole number: kept as sent
        ("false", "Boolean", False),
        ("TRUE", "Boolean", True),
        ("maybe", "Boolean", "maybe"),
        ("1", "Enum", "1"),  # an enum's text is text, even when it looks like a number
        ("middle", "Enum", "middle"),
        ("true", "String", "true"),
        ('{"a": 1}', "Json", '{"a": 1}'),
        ("7", "Bitmap", 7),
        ("", "Integer", ""),
    ],
)
def test_values_take_their_data_points_type(text, type_, expected):
    value = log_value(text, point(type_))
    assert (value, type(value)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("false", False), ("true", True), ("42", 42), ("-3", -3), ("eco", "eco"), ("1" * 19, "1" * 19), ("007", "007")],
)
def test_without_a_specification_a_value_is_read_as_what_it_looks_like(text, expected):
    value = log_value(text, None)
    assert (value, type(value)) == (expected, type(expected))


@pytest.mark.parametrize(
    ("text", "like", "expected"),
    [("1", "2", "1"), ("1", 2, 1), ("true", "false", "true"), ("true", False, True), ("1", True, "1"), ("5", 2.5, 5)],
)
def test_without_a_specification_a_value_takes_the_type_the_stream_sent_for_its_code(text, like, expected):
    value = log_value(text, None, like)
    assert (value, type(value)) == (expected, type(expected))


def test_a_value_the_log_already_typed_is_kept():
    assert log_value(17, point("Integer")) == 17 and log_value(True, None) is True
