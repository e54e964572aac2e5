"""The history's time on SQLite (models.tables.EpochMillis, HISTORY_TIME): whole milliseconds since the epoch, bound
and read back as aware UTC datetimes; and the store's SQL that converts SQLite's text times to the same
milliseconds (streams.store.statements.SQLITE_MILLIS). Known answers: 2023-11-14 22:13:20 UTC is 1,700,000,000
seconds after the epoch."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from models.tables import HISTORY_TIME, EpochMillis
from streams.store.rows import sqlite_time
from streams.store.statements import SQLITE_MILLIS, STATUS_VALUES, sqlite_insert

KNOWN = datetime(2023, 11, 14, 22, 13, 20, 87_000, tzinfo=UTC)
KNOWN_MS = 1_700_000_000_087


def bind(moment: datetime | None) -> object:
    return EpochMillis().process_bind_param(moment, sqlite.dialect())


@pytest.mark.parametrize(
    ("moment", "millis"),
    [
        (KNOWN, KNOWN_MS),
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (KNOWN.replace(tzinfo=None), KNOWN_MS),  # naive: UTC, as SQLite's text times are
        (KNOWN.astimezone(timezone(timedelta(hours=8))), KNOWN_MS),  # Tuya's China data centre's zone
        (KNOWN + timedelta(microseconds=1), KNOWN_MS + 1),  # a finer bound: up to the next millisecond
        (KNOWN + timedelta(microseconds=999), KNOWN_MS + 1),
        (datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC), 0),
        (None, None),
    ],
)
def test_a_time_binds_as_whole_milliseconds_since_the_epoch(moment: datetime | None, millis: int | None) -> None:
    assert bind(moment) == millis


@pytest.mark.parametrize("offset_us", [1, 300, 999])
def test_a_finer_bound_finds_the_same_millisecond_times_as_the_exact_one(offset_us: int) -> None:
    """>= since and < until, with since and until between two milliseconds: the times a text comparison found."""
    bound = KNOWN + timedelta(microseconds=offset_us)
    stored = [KNOWN - timedelta(milliseconds=1), KNOWN, KNOWN + timedelta(milliseconds=1)]
    as_millis = [bind(moment) for moment in stored]
    assert [m >= bind(bound) for m in as_millis] == [moment >= bound for moment in stored]
    assert [m < bind(bound) for m in as_millis] == [moment < bound for moment in stored]


def test_milliseconds_read_back_as_the_aware_utc_time() -> None:
    read = EpochMillis().process_result_value(KNOWN_MS, sqlite.dialect())
    assert read == KNOWN
    assert read is not None and read.utcoffset() == timedelta(0)


def test_the_history_keeps_milliseconds_on_sqlite_and_timestamptz_on_postgresql() -> None:
    assert str(HISTORY_TIME.compile(dialect=sqlite.dialect())) == "BIGINT"
    assert str(HISTORY_TIME.compile(dialect=postgresql.dialect())) == "TIMESTAMP WITH TIME ZONE"


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        (sqlite_time(KNOWN), KNOWN_MS),
        ("1970-01-01 00:00:00.000000", 0),
        ("2023-11-14 22:13:20.999000", 1_700_000_000_999),
        ("2023-11-14 22:13:21.000000", 1_700_000_001_000),
    ],
)
def test_sqlite_converts_the_store_s_text_times_as_the_type_binds_them(text: str, millis: int) -> None:
    """The store's times are Tuya's whole milliseconds, in SQLAlchemy's text form (rows.sqlite_time)."""
    (converted,) = sqlite3.connect(":memory:").execute(f"SELECT {SQLITE_MILLIS}", (text,)).fetchone()
    assert converted == millis
    assert bind(datetime.fromisoformat(text)) == millis


def test_sqlite_s_insert_of_values_converts_only_the_time() -> None:
    statement = sqlite_insert(STATUS_VALUES)
    assert statement.count(SQLITE_MILLIS) == 1
    assert statement.count("?") == len(STATUS_VALUES.columns)
