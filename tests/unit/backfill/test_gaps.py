"""streams/backfill/gaps.py: which stretch a pause of consumption lost (partner: tests/integration/test_outage.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.backfill.gaps import Stretch, lost_stretch

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RETENTION, MARGIN = 2 * HOUR, timedelta(minutes=5)


def lost(consumed: datetime | None, resumed: datetime, oldest: datetime | None = None) -> Stretch | None:
    return lost_stretch(consumed, resumed, oldest, retention=RETENTION, margin=MARGIN)


def test_a_pause_shorter_than_the_retention_lost_nothing():
    assert lost(T0, T0 + HOUR + timedelta(minutes=59)) is None


def test_a_pause_longer_than_the_retention_lost_what_was_pushed_before_resumed_minus_retention():
    assert lost(T0, T0 + 5 * HOUR) == Stretch(T0 - MARGIN, T0 + 3 * HOUR)


def test_the_gap_starts_a_margin_before_the_pause_for_values_timed_just_before_it():
    assert lost(T0, T0 + 3 * HOUR).started_at == T0 - MARGIN  # type: ignore[union-attr]


def test_an_oldest_message_older_than_the_retention_shows_tuya_kept_more():
    assert lost(T0, T0 + 5 * HOUR, oldest=T0 + 2 * HOUR) == Stretch(T0 - MARGIN, T0 + 2 * HOUR)


def test_a_newer_oldest_message_does_not_shorten_the_gap():
    assert lost(T0, T0 + 5 * HOUR, oldest=T0 + 4 * HOUR) == Stretch(T0 - MARGIN, T0 + 3 * HOUR)


def test_a_lost_stretch_within_the_margin_is_not_a_gap():
    assert lost(T0, T0 + RETENTION + MARGIN) is None
    assert lost(T0, T0 + RETENTION + MARGIN + timedelta(seconds=1)) is not None


def test_no_earlier_consumption_known_is_no_gap():
    assert lost(None, T0 + 10 * HOUR) is None


def test_a_busy_worker_never_sees_a_gap():
    assert lost(T0, T0 + timedelta(seconds=1), oldest=T0 - timedelta(minutes=30)) is None


def test_stretch_length():
    assert Stretch(T0, T0 + HOUR).length == HOUR
