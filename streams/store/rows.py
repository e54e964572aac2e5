"""Records → row tuples: one small pure function per history table (STYLE.md P10).

Owns the column order of every hot-path INSERT (each ``*_COLUMNS`` sits next to the function that fills it), the
JSON text of JSON columns, the SQLite time text, and the choice of each (device, code)'s newest value for
``device_state``. Pure: no I/O, no SQLAlchemy. The ``devices`` and ``users`` rows are in :mod:`streams.store.facts`.

Times go through a ``time`` function chosen by the caller: :func:`sqlite_time` for SQLite, the datetime itself for
PostgreSQL (psycopg sends it as timestamptz).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

import msgspec

from models.records import DeadLetter, DecodedMessage, DeviceEvent, StatusReported, UserEvent

__all__ = [
    "DEAD_LETTER_COLUMNS",
    "DEVICE_EVENT_COLUMNS",
    "DEVICE_STATE_COLUMNS",
    "MESSAGE_COLUMNS",
    "STATUS_COLUMNS",
    "USER_EVENT_COLUMNS",
    "TimeFormat",
    "dead_letter_row",
    "device_event_row",
    "json_text",
    "latest_state",
    "message_row",
    "sqlite_time",
    "status_row",
    "unique",
    "user_event_row",
]

TimeFormat = Callable[[datetime], Any]
T = TypeVar("T")

_encode = msgspec.json.Encoder().encode


def json_text(value: Any) -> str:
    """The JSON text of a JSON column (str, not bytes: SQLite would store bytes as a BLOB)."""
    return _encode(value).decode()


@lru_cache(maxsize=65_536)
def sqlite_time(moment: datetime) -> str:
    """UTC text in the exact form SQLAlchemy's SQLite DateTime writes and reads back (always with microseconds).

    Records of one report share their datetime objects, so the cache turns most calls into one dict lookup.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(" ", "microseconds")


def unique(items: Iterable[T], key: Callable[[T], str]) -> list[T]:
    """``items`` without repeats of ``key`` (the first one wins): a batch may hold a redelivered message twice."""
    seen: set[str] = set()
    kept = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            kept.append(item)
    return kept


MESSAGE_COLUMNS = (
    "message_id",
    "topic",
    "protocol",
    "biz_code",
    "device_id",
    "encrypt_model",
    "sign_ok",
    "published_at",
    "pushed_at",
    "received_at",
    "payload",
    "properties",
)


def message_row(message: DecodedMessage, received_at: Any, time: TimeFormat) -> tuple[Any, ...]:
    """``received_at`` is already in the driver's form (one value for the whole batch)."""
    published = message.published_at
    return (
        message.message_id,
        message.topic,
        message.protocol,
        message.biz_code,
        message.device_id,
        message.encrypt_model,
        message.sign_ok,
        None if published is None else time(published),
        time(message.pushed_at),
        received_at,
        json_text(message.payload),
        json_text(message.properties),
    )


STATUS_COLUMNS = ("message_id", "item_index", "device_id", "code", "value", "dp_id", "reported_at", "data_id")


_INT32 = 2**31


def status_row(record: StatusReported, time: TimeFormat) -> tuple[Any, ...]:
    dp_id = record.dp_id
    if dp_id is not None and not -_INT32 <= dp_id < _INT32:
        # Tuya's DP ids are 1-255 (SPEC.md §3.2): a larger one is garbage, and PostgreSQL's binary COPY of an
        # ``integer`` would silently keep only its low 32 bits. The messages row keeps the payload as sent.
        dp_id = None
    return (
        record.message_id,
        record.item_index,
        record.device_id,
        record.code,
        json_text(record.value),
        dp_id,
        time(record.reported_at),
        record.data_id,
    )


DEVICE_EVENT_COLUMNS = ("message_id", "device_id", "event", "biz_code", "protocol", "occurred_at", "data")


def device_event_row(record: DeviceEvent, time: TimeFormat) -> tuple[Any, ...]:
    return (
        record.message_id,
        record.device_id,
        record.event,
        record.biz_code,
        record.protocol,
        time(record.occurred_at),
        json_text(record.data),
    )


USER_EVENT_COLUMNS = ("message_id", "uid", "event", "biz_code", "occurred_at", "data")


def user_event_row(record: UserEvent, time: TimeFormat) -> tuple[Any, ...]:
    return (
        record.message_id,
        record.uid,
        record.event,
        record.biz_code,
        time(record.occurred_at),
        json_text(record.data),
    )


DEAD_LETTER_COLUMNS = (
    "message_id",
    "topic",
    "payload",
    "properties",
    "error_kind",
    "error",
    "published_at",
    "received_at",
)


def dead_letter_row(letter: DeadLetter, received_at: Any, time: TimeFormat) -> tuple[Any, ...]:
    published = letter.published_at
    return (
        letter.message_id,
        letter.topic,
        letter.payload,
        json_text(letter.properties),
        letter.error_kind,
        letter.error,
        None if published is None else time(published),
        received_at,
    )


DEVICE_STATE_COLUMNS = ("device_id", "code", "value", "dp_id", "reported_at", "message_id", "source")


def latest_state(status_rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The ``device_state`` rows of a batch: each (device, code)'s newest status row.

    Built from the STATUS_COLUMNS tuples, so values are encoded and times formatted once. "Newest" is the order of
    the upsert's WHERE (streams.store.statements): later time, then the greater message id (then item index, for a
    code repeated within one message).
    """
    newest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in status_rows:
        if row[3] is None:
            continue  # a DP id whose code is unknown has no latest state until `sync` names it
        key = (row[2], row[3])
        current = newest.get(key)
        if current is None or (row[6], row[0], row[1]) > (current[6], current[0], current[1]):
            newest[key] = row
    return [(r[2], r[3], r[4], r[5], r[6], r[0], "stream") for r in newest.values()]
