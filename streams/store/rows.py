"""Records → row tuples: one small pure function per history table (STYLE.md P10).

Owns the column order of every hot-path INSERT (each ``*_COLUMNS`` sits next to the function that fills it), the
JSON text of JSON columns, the SQLite time text, a message's status values as one :class:`StatusRows`, and the
choice of each (device, code)'s newest value for ``device_state``. Pure: no I/O, no SQLAlchemy. The ``devices``
and ``users`` rows are in :mod:`streams.store.facts`.

Times go through a ``time`` function chosen by the caller: :func:`sqlite_time` for SQLite, the datetime itself for
PostgreSQL (psycopg sends it as timestamptz).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
    "STATUS_ITEM_COLUMNS",
    "USER_EVENT_COLUMNS",
    "StatusRows",
    "TimeFormat",
    "dead_letter_row",
    "device_event_row",
    "flat_status",
    "grouped_status",
    "json_text",
    "latest_state",
    "message_row",
    "sqlite_time",
    "status_rows",
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
    "unknown",
)


def message_row(message: DecodedMessage, received_at: Any, time: TimeFormat, *, unknown: bool) -> tuple[Any, ...]:
    """``received_at`` is already in the driver's form (one value for the whole batch); ``unknown``: the message is
    an UnknownMessage, which retention keeps (stored as true, else NULL)."""
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
        message.payload,
        json_text(message.properties),
        True if unknown else None,
    )


#: A status value as ``device_status`` shows it: how replay compares values and ``backfill`` makes them.
STATUS_COLUMNS = ("message_id", "item_index", "device_id", "code", "value", "dp_id", "reported_at", "data_id")

#: A status value inside its message's StatusRows.
STATUS_ITEM_COLUMNS = ("item_index", "code", "value", "dp_id", "reported_at")


class StatusRows(msgspec.Struct, array_like=True):
    """A message's status values: what they share once (message, device, data id), then each value's own columns
    (STATUS_ITEM_COLUMNS). A report is one device's, so a message's values are too. The writer process receives
    them in this form: its frames are a fifth smaller than with a row a value that repeats them (issue 17)."""

    message_id: str
    device_id: str
    data_id: str | None
    items: list[tuple[Any, ...]]


_INT32 = 2**31


def status_rows(records: Sequence[StatusReported], time: TimeFormat) -> StatusRows:
    """The status values of one message (``records``: at least one).

    Raises:
        ValueError: values of two devices in one message.
    """
    first = records[0]
    items = []
    for record in records:
        if record.device_id != first.device_id:
            raise _two_devices(first.message_id, first.device_id, record.device_id)
        dp_id = record.dp_id
        if dp_id is not None and not -_INT32 <= dp_id < _INT32:
            # Tuya's DP ids are 1-255 (SPEC.md §3.2): a larger one is garbage, and PostgreSQL's binary COPY of an
            # ``integer`` would silently keep only its low 32 bits. The messages row keeps the payload as sent.
            dp_id = None
        items.append((record.item_index, record.code, json_text(record.value), dp_id, time(record.reported_at)))
    return StatusRows(first.message_id, first.device_id, first.data_id, items)


def flat_status(messages: Iterable[StatusRows]) -> list[tuple[Any, ...]]:
    """Every value as a STATUS_COLUMNS row."""
    return [
        (m.message_id, index, m.device_id, code, value, dp_id, at, m.data_id)
        for m in messages
        for index, code, value, dp_id, at in m.items
    ]


def grouped_status(rows: Iterable[tuple[Any, ...]]) -> list[StatusRows]:
    """STATUS_COLUMNS rows as one StatusRows a message, in the order messages first appear (a message's data id is
    its first row's).

    Raises:
        ValueError: values of two devices in one message.
    """
    messages: dict[str, StatusRows] = {}
    for message_id, index, device_id, code, value, dp_id, at, data_id in rows:
        message = messages.get(message_id)
        if message is None:
            message = messages[message_id] = StatusRows(message_id, device_id, data_id, [])
        elif device_id != message.device_id:
            raise _two_devices(message_id, message.device_id, device_id)
        message.items.append((index, code, value, dp_id, at))
    return list(messages.values())


def _two_devices(message_id: str, device_id: str, other: str) -> ValueError:
    return ValueError(f"message {message_id} has values of two devices ({device_id}, {other})")


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


def latest_state(messages: Iterable[StatusRows]) -> list[tuple[Any, ...]]:
    """The ``device_state`` rows of a batch: each (device, code)'s newest status value.

    Built from the values' rows, so values are encoded and times formatted once. "Newest" is the order of the
    upsert's WHERE (streams.store.statements): later time, then the greater message id, then the greater item index,
    for a code repeated within one message: a message's items come in their index order (streams.tuya.normalize),
    so of two that tie on time and message the later one is kept. Each row is built as it is kept: 3.3 µs a message
    on the worker benchmark's fleet, timed alone, against 5.3 with comparison keys kept and the rows built at the end.
    """
    newest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for message in messages:
        device_id, message_id = message.device_id, message.message_id
        for _index, code, value, dp_id, at in message.items:
            if code is None:
                continue  # a DP id whose code is unknown has no latest state until `sync` names it
            key = (device_id, code)
            current = newest.get(key)
            if current is None or (at, message_id) >= (current[4], current[5]):
                newest[key] = (device_id, code, value, dp_id, at, message_id, "stream")
    return list(newest.values())
