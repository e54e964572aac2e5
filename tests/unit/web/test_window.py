"""streams/web/window.py: presets, chosen ranges, and the errors a reader sees (status 400)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from streams.web.window import DEFAULT_PRESET, EARLIEST, MAX_SPAN, PRESETS, Window, WindowError, parse_window

NOW = datetime(2026, 12, 5, 9, 37, 4, tzinfo=UTC)


def test_no_parameters_mean_the_default_preset() -> None:
    assert parse_window({}, NOW) == Window(NOW - PRESETS[DEFAULT_PRESET], NOW, DEFAULT_PRESET)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_ends_now(preset: str) -> None:
    window = parse_window({"range": preset}, NOW)
    assert (window.until, window.span, window.preset) == (NOW, PRESETS[preset], preset)
    assert window.query() == {"range": preset}


def test_a_chosen_range_reads_browser_datetime_local_fields_as_utc() -> None:
    window = parse_window({"from": "2026-12-05T09:36:50", "until": "2026-12-05T09:37:05", "range": "7d"}, NOW)
    assert window == Window(datetime(2026, 12, 5, 9, 36, 50, tzinfo=UTC), datetime(2026, 12, 5, 9, 37, 5, tzinfo=UTC))
    assert window.query() == {"from": "2026-12-05T09:36:50Z", "until": "2026-12-05T09:37:05Z"}


def test_a_chosen_range_takes_durations_ago_and_offsets() -> None:
    window = parse_window({"from": "2h", "until": "2026-12-05T10:00+01:00"}, NOW)
    assert window.since == NOW - timedelta(hours=2)
    assert window.until == datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def test_from_alone_ends_now_and_until_alone_spans_the_default() -> None:
    assert parse_window({"from": "1h"}, NOW).until == NOW
    assert parse_window({"until": "1h"}, NOW).span == PRESETS[DEFAULT_PRESET]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "3w"}, "range must be one of"),
        ({"from": "yesterday"}, "neither a duration"),
        ({"from": "2026-12-05T10:00", "until": "2026-12-05T09:00"}, "must be before"),
        ({"from": "2026-12-05T10:00", "until": "2026-12-05T10:00"}, "must be before"),
        ({"from": "2020-01-01", "until": "2026-01-01"}, f"at most {MAX_SPAN.days} days"),
        ({"from": "99999999d"}, "before year 1"),
        ({"from": "999999999999h"}, "longer than any duration"),
        ({"from": "0001-01-01T00:30+01:00"}, "out of the range of times"),
        ({"until": "0001-01-01T00:30"}, "must lie between 1970-01-01T00:00:00Z and 9999-01-01T00:00:00Z"),
        ({"from": "1969-12-31T23:00", "until": "1970-01-01T01:00"}, "must lie between"),
        ({"from": "9999-12-31T00:00", "until": "9999-12-31T23:59:59"}, "must lie between"),
    ],
)
def test_unusable_parameters_say_why(params: dict[str, str], message: str) -> None:
    with pytest.raises(WindowError, match=message):
        parse_window(params, NOW)


def test_until_alone_near_the_earliest_time_starts_there() -> None:
    window = parse_window({"until": "1970-01-01T06:00"}, NOW)
    assert (window.since, window.until) == (EARLIEST, EARLIEST + timedelta(hours=6))
