"""Every row one batch of new messages writes besides their ``messages`` rows: the pure plan of a batch.

Owns the split of records by table; the rows come from :mod:`streams.store.rows` and :mod:`streams.store.facts`.
Pure: no I/O, no SQLAlchemy. Unknown messages have no rows here: their payload is their ``messages`` row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.records import DeviceEvent, StatusReported, UserEvent
from streams.store.facts import DeviceFacts, user_rows
from streams.store.rows import TimeFormat, device_event_row, latest_state, status_row, user_event_row
from streams.tuya.decoder import Decoded

__all__ = ["RecordRows", "record_rows"]

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class RecordRows:
    status: Rows
    device_events: Rows
    user_events: Rows
    device_state: Rows
    devices: Rows
    users: Rows


def record_rows(decoded: Sequence[Decoded], time: TimeFormat) -> RecordRows:
    """The rows of the records of ``decoded``, which must be messages not stored before (facts count reports)."""
    statuses: list[StatusReported] = []
    device_events: list[DeviceEvent] = []
    user_events: list[UserEvent] = []
    devices = DeviceFacts()
    for item in decoded:
        for record in item.records:
            if isinstance(record, StatusReported):
                statuses.append(record)
            elif isinstance(record, DeviceEvent):
                device_events.append(record)
            elif isinstance(record, UserEvent):
                user_events.append(record)
        devices.add_message(item.records)
    status = [status_row(record, time) for record in statuses]
    return RecordRows(
        status=status,
        device_events=[device_event_row(record, time) for record in device_events],
        user_events=[user_event_row(record, time) for record in user_events],
        device_state=latest_state(status),
        devices=devices.rows(time),
        users=user_rows(user_events, time),
    )
