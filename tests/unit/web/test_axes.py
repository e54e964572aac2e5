"""streams/web/axes.py: nice value and time ticks, flat series, labels."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from streams.web.axes import format_number, time_ticks, value_range, value_ticks

NOW = datetime(2026, 12, 5, 9, 37, 4, tzinfo=UTC)


def test_value_ticks_are_round_and_cover_the_values() -> None:
    ticks = value_ticks(21.3, 26.7)
    assert ticks == [20, 22, 24, 26, 28]


def test_a_flat_series_gets_a_margin() -> None:
    low, high = value_range(230.0, 230.0)
    assert low < 230.0 < high
    assert value_range(0.0, 0.0) == (-1.0, 1.0)


def test_value_range_covers_the_values_with_ticks() -> None:
    low, high = value_range(0.0, 3125.0)
    assert low <= 0.0 and high >= 3125.0


@pytest.mark.parametrize(
    ("value", "step", "text"),
    [(0.25, 0.25, "0.25"), (230.125, 0.025, "230.125"), (20.0, 2.0, "20"), (2.5, 2.5, "2.5"), (-0.0, 1.0, "0")],
)
def test_tick_labels_have_the_decimals_of_their_step(value: float, step: float, text: str) -> None:
    assert format_number(value, step) == text


def test_numbers_without_a_step_lose_trailing_zeros() -> None:
    assert [format_number(v) for v in (21.5, 3.0, 0.12345, 1234.5678)] == ["21.5", "3", "0.123", "1234.568"]


def test_numbers_below_a_tenth_keep_three_significant_digits() -> None:
    """A scaled 219 at scale 4 is 0.0219 kWh, as the CLI and the CSV show it (before: 0.022; 0.0004 was 0)."""
    assert [format_number(v) for v in (0.0219, 0.0004, -0.00123, 0.0)] == ["0.0219", "0.0004", "-0.00123", "0"]


@pytest.mark.parametrize(("low", "high"), [(-1e308, 1e308), (1.7e308, 1.7e308), (-1.7e308, -1.7e308)])
def test_the_largest_numbers_get_finite_ticks(low: float, high: float) -> None:
    """Their span overflowed to infinity, the step fell back to 1, and listing the ticks never ended."""
    ticks = value_ticks(*value_range(low, high))
    assert 2 <= len(ticks) <= 10 and all(math.isfinite(tick) for tick in ticks)
    shown_low, shown_high = value_range(low, high)
    assert math.isfinite(shown_low) and math.isfinite(shown_high) and shown_low <= low and high <= shown_high


def test_time_ticks_of_an_hour_are_every_ten_minutes() -> None:
    ticks = time_ticks(NOW - timedelta(hours=1), NOW)
    assert [label for _moment, label in ticks] == ["08:40", "08:50", "09:00", "09:10", "09:20", "09:30"]


def test_time_ticks_of_a_week_are_days() -> None:
    labels = [label for _moment, label in time_ticks(NOW - timedelta(days=7), NOW)]
    assert labels[0] == "Nov 29" and labels[-1] == "Dec 05" and len(labels) == 7


def test_time_ticks_of_seconds_show_seconds() -> None:
    ticks = time_ticks(NOW - timedelta(seconds=13), NOW)
    assert all(len(label) == 8 for _moment, label in ticks)
    assert all(NOW - timedelta(seconds=13) <= moment <= NOW for moment, _label in ticks)
