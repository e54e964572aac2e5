"""Durations and moments as typed on the command line (streams/durations.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.durations import format_duration, parse_duration, parse_moment

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("2h", timedelta(hours=2)),
        ("15m", timedelta(minutes=15)),
        ("45s", timedelta(seconds=45)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_parse_duration_reads_units(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "2 hours", "-2h", "2h-", "1y"])
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_format_duration_round_trips_whole_seconds(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    text = format_duration(value)
    assert (parse_duration(text.lstrip("-")) * (-1 if text.startswith("-") else 1)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", datetime(2026, 11, 28, 10, 0, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:30", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30Z", datetime(2026, 11, 1, 8, 30, tzinfo=UTC)),
        ("2026-11-01T08:30+01:00", datetime(2026, 11, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_parse_moment_reads_ages_dates_and_times_as_utc(text: str, expected: datetime) -> None:
    moment = parse_moment(text, NOW)
    assert moment == expected
    assert moment.tzinfo is UTC


def test_parse_moment_names_both_forms_when_it_fails() -> None:
    with pytest.raises(ValueError, match=r"neither a duration .* nor an ISO date"):
        parse_moment("yesterday", NOW)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("999999999999h", "longer than any duration"),
        ("9" * 400 + "s", "longer than any duration"),
    ],
)
def test_parse_duration_refuses_what_no_duration_holds(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99999999d", "ago is before year 1"),
        ("999999999999h", "longer than any duration"),
        ("0001-01-01T00:30+01:00", "out of the range of times"),
        ("9999-12-31T23:30-01:00", "out of the range of times"),
    ],
)
def test_parse_moment_refuses_moments_beyond_the_years_it_holds(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_moment(text, NOW)
