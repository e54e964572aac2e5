"""A batch turned into rows before it meets the database: every message's rows, built on their own, merged later.

Owns the split of the store's work into a pure part and a part that needs the database. :func:`prepare_batch`
builds, per message, its ``messages`` row, its history rows and the device and user facts it carries; which messages
are new is known only inside the transaction, so :func:`merge` then combines the rows of the new ones (latest
state per device and code, the newest facts per device and user, reports counted once). Preparing needs no
connection, so the worker can do it in one process while another writes (streams.writer). Pure: no I/O, no
SQLAlchemy. ``PreparedBatch`` encodes compactly with msgspec (arrays, not maps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from models.records import DeadLetter, DeviceEvent, StatusReported, UnknownMessage, UserEvent
from streams.store.facts import DeviceFacts, merge_device_rows, merge_user_rows, user_rows
from streams.store.rows import (
    StatusRows,
    TimeFormat,
    dead_letter_row,
    device_event_row,
    latest_state,
    message_row,
    status_rows,
    unique,
    user_event_row,
)

if TYPE_CHECKING:  # the writer process builds no Decoded and needs no ciphers
    from streams.tuya.decoder import Decoded

__all__ = [
    "MessageRows",
    "PreparedBatch",
    "RecordRows",
    "combine",
    "distinct",
    "merge",
    "no_rows",
    "prepare_batch",
    "record_rows",
]

Row = tuple[Any, ...]


class MessageRows(msgspec.Struct, array_like=True):
    """One message's rows: its ``messages`` row, history rows (its status values, if any, as one StatusRows), and
    the facts (device and user rows) it carries."""

    message_id: str
    message: Row
    status: StatusRows | None
    device_events: list[Row]
    user_events: list[Row]
    devices: list[Row]
    users: list[Row]


class PreparedBatch(msgspec.Struct, array_like=True):
    """A batch's rows, times already in the database's form; messages and dead letters each once, in order.
    ``decoded`` and ``dead`` count them as received (a message delivered twice in the batch twice)."""

    messages: list[MessageRows]
    dead_letters: list[Row]
    decoded: int
    dead: int


def no_rows() -> PreparedBatch:
    """A batch of no rows, what a transaction of the rules' clock alone writes beside their own rows; a new one each
    time, as a batch's lists are its holder's."""
    return PreparedBatch([], [], 0, 0)


@dataclass(frozen=True, slots=True)
class RecordRows:
    """The merged rows of the new messages of a batch, table by table (status values a StatusRows a message)."""

    status: list[StatusRows]
    device_events: list[Row]
    user_events: list[Row]
    device_state: list[Row]
    devices: list[Row]
    users: list[Row]


def message_rows(item: Decoded, received_at: Any, time: TimeFormat) -> MessageRows:
    """One decoded message's rows (``received_at`` already in the database's form)."""
    statuses, events, users = [], [], []
    unknown = False
    for record in item.records:
        if type(record) is StatusReported:
            statuses.append(record)
        elif isinstance(record, DeviceEvent):
            events.append(device_event_row(record, time))
        elif isinstance(record, UserEvent):
            users.append(record)
        elif isinstance(record, UnknownMessage):
            unknown = True
    facts = DeviceFacts()
    facts.add_message(item.records)
    return MessageRows(
        item.message.message_id,
        message_row(item.message, received_at, time, unknown=unknown),
        status_rows(statuses, time) if statuses else None,
        events,
        [user_event_row(record, time) for record in users],
        facts.rows(time, raw=True),
        user_rows(users, time),
    )


def prepare_batch(
    decoded: Sequence[Decoded], dead_letters: Sequence[DeadLetter], received_at: Any, time: TimeFormat
) -> PreparedBatch:
    """Every message's rows (a message delivered twice in the batch once), and the dead letters' rows."""
    received = time(received_at)
    messages = [message_rows(item, received, time) for item in distinct(decoded)]
    letters = [dead_letter_row(letter, received, time) for letter in unique(dead_letters, _letter_id)]
    return PreparedBatch(messages, letters, len(decoded), len(dead_letters))


def combine(batches: Sequence[PreparedBatch]) -> PreparedBatch:
    """Several batches as one (one transaction for all): each message and dead letter once, counts added."""
    if len(batches) == 1:
        return batches[0]
    messages = unique((rows for batch in batches for rows in batch.messages), _rows_id)
    letters = unique((row for batch in batches for row in batch.dead_letters), _first)
    return PreparedBatch(
        messages, letters, sum(batch.decoded for batch in batches), sum(batch.dead for batch in batches)
    )


def merge(messages: Iterable[MessageRows]) -> RecordRows:
    """The rows to write for these (new) messages: history concatenated, latest state and facts merged."""
    status: list[StatusRows] = []
    device_events: list[Row] = []
    user_events: list[Row] = []
    devices: list[Row] = []
    users: list[Row] = []
    for rows in messages:
        if rows.status is not None:
            status.append(rows.status)
        device_events.extend(rows.device_events)
        user_events.extend(rows.user_events)
        devices.extend(rows.devices)
        users.extend(rows.users)
    return RecordRows(
        status=status,
        device_events=device_events,
        user_events=user_events,
        device_state=latest_state(status),
        devices=merge_device_rows(devices),
        users=merge_user_rows(users),
    )


def record_rows(decoded: Sequence[Decoded], time: TimeFormat) -> RecordRows:
    """The merged rows of ``decoded``, every message taken as new (replay re-derives rows this way)."""
    return merge(message_rows(item, None, time) for item in decoded)


def distinct(decoded: Sequence[Decoded]) -> list[Decoded]:
    """Each message once, at its first delivery (a broker may deliver one twice in a batch)."""
    return unique(decoded, _message_id)


def _message_id(item: Decoded) -> str:
    return item.message.message_id


def _letter_id(letter: DeadLetter) -> str:
    return letter.message_id


def _rows_id(rows: MessageRows) -> str:
    return rows.message_id


def _first(row: Row) -> Any:
    return row[0]
