"""A batch's latest facts per device and per user: the rows of the ``devices`` and ``users`` upserts.

Owns which record sets which fact: any record → seen (first/last seen, product key); online/offline → online;
name_updated → name; bound → owner uid; deleted → deleted_at (cleared by a later bind); a status report → one
more report. Each fact keeps the
time it was true at, so the upsert (streams.store.statements) can refuse an older fact that arrives late. Pure: no
I/O, no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

from models.records import LONGEST_KEY, DeviceEvent, Record, StatusReported, UnknownMessage, UserEvent, key_text
from streams.store.rows import TimeFormat, json_text

__all__ = [
    "DEVICE_COLUMNS",
    "DEVICE_SEEN_COLUMNS",
    "USER_COLUMNS",
    "DeviceFacts",
    "merge_device_rows",
    "merge_user_rows",
    "seen_only",
    "user_rows",
]


def _newer(at: Any, than: Any) -> bool:
    """Whether ``at`` (a time, or a row's time as it is written) is newer than ``than`` (None: nothing yet)."""
    return than is None or at > than


def _online_takes_over(at: Any, online: bool, than: Any) -> bool:
    """Whether an online or offline fact of time ``at`` replaces the one of time ``than``: the newer one does, and of
    two of one time online does (a reconnect is often reported offline and online within a second, in either order;
    streams.store.statements and the device_online_periods view decide ties the same way)."""
    return _newer(at, than) or (at == than and online)


def _time(moment: datetime | None, time: TimeFormat) -> Any:
    return None if moment is None else time(moment)


class _Device:
    __slots__ = (
        "deleted_at",
        "first_seen_at",
        "last_seen_at",
        "name",
        "name_updated_at",
        "online",
        "online_changed_at",
        "owner_uid",
        "owner_updated_at",
        "product_key",
        "report_count",
    )

    def __init__(self, at: datetime) -> None:
        self.product_key: str | None = None
        self.name: str | None = None
        self.name_updated_at: datetime | None = None
        self.online: bool | None = None
        self.online_changed_at: datetime | None = None
        self.owner_uid: str | None = None
        self.owner_updated_at: datetime | None = None
        self.first_seen_at = at
        self.last_seen_at = at
        self.deleted_at: datetime | None = None
        self.report_count = 0

    def seen(self, product_key: str | None, at: datetime) -> None:
        if product_key:
            self.product_key = product_key
        if at < self.first_seen_at:
            self.first_seen_at = at
        elif at > self.last_seen_at:
            self.last_seen_at = at

    @property
    def is_deleted(self) -> bool:
        """Deleted, and not bound again after the deletion (a re-paired device)."""
        if self.deleted_at is None:
            return False
        return self.owner_updated_at is None or self.deleted_at > self.owner_updated_at

    def event(self, record: DeviceEvent) -> None:
        at, event, data = record.occurred_at, record.event, record.data
        if event in ("online", "offline"):
            if _online_takes_over(at, event == "online", self.online_changed_at):
                self.online, self.online_changed_at = event == "online", at
        elif event == "name_updated":
            name = data.get("name")  # a name longer than an index takes is left in the event's data
            if isinstance(name, str) and len(name) <= LONGEST_KEY and _newer(at, self.name_updated_at):
                self.name, self.name_updated_at = name, at
        elif event == "bound":
            uid = key_text(data.get("uid"))
            if uid is not None and _newer(at, self.owner_updated_at):
                self.owner_uid, self.owner_updated_at = uid, at
        elif event == "deleted" and _newer(at, self.deleted_at):
            self.deleted_at = at


DEVICE_COLUMNS = (
    "device_id",
    "product_key",
    "name",
    "name_updated_at",
    "online",
    "online_changed_at",
    "owner_uid",
    "owner_updated_at",
    "first_seen_at",
    "last_seen_at",
    "deleted_at",
    "report_count",
)


class DeviceFacts:
    """Collects, message by message, the newest facts of each device in a batch."""

    def __init__(self) -> None:
        self._devices: dict[str, _Device] = {}

    def _seen(self, device_id: str, product_key: str | None, at: datetime) -> _Device:
        device = self._devices.get(device_id)
        if device is None:
            device = self._devices[device_id] = _Device(at)
        device.seen(product_key, at)
        return device

    def add_message(self, records: Sequence[Record]) -> None:
        """The records of one message; a message with status values counts as one report."""
        reporter, reporter_id = None, ""
        for record in records:
            if isinstance(record, StatusReported):
                # The values of one report share their device: look it up once.
                if reporter is not None and record.device_id == reporter_id:
                    reporter.seen(record.product_key, record.reported_at)
                else:
                    reporter_id = record.device_id
                    reporter = self._seen(reporter_id, record.product_key, record.reported_at)
            elif isinstance(record, DeviceEvent):
                self._seen(record.device_id, record.product_key, record.occurred_at).event(record)
            elif isinstance(record, UnknownMessage) and record.device_id:
                self._seen(record.device_id, None, record.occurred_at)
        if reporter is not None:
            reporter.report_count += 1

    def rows(self, time: TimeFormat, *, raw: bool = False) -> list[tuple[Any, ...]]:
        """One row per device, in DEVICE_COLUMNS order; ``raw`` keeps a deletion a later bind undid (for
        :func:`merge_device_rows`, which decides once it has seen every message)."""
        return [
            (
                device_id,
                d.product_key,
                d.name,
                _time(d.name_updated_at, time),
                d.online,
                _time(d.online_changed_at, time),
                d.owner_uid,
                _time(d.owner_updated_at, time),
                time(d.first_seen_at),
                time(d.last_seen_at),
                _time(d.deleted_at if raw or d.is_deleted else None, time),
                d.report_count,
            )
            for device_id, d in self._devices.items()
        ]


#: The columns of a device row that only says the device reported: no name, online state, owner or deletion.
DEVICE_SEEN_COLUMNS = ("device_id", "product_key", "first_seen_at", "last_seen_at", "report_count")

_COLUMN = {name: index for index, name in enumerate(DEVICE_COLUMNS)}
_PRODUCT, _FIRST_SEEN, _LAST_SEEN = _COLUMN["product_key"], _COLUMN["first_seen_at"], _COLUMN["last_seen_at"]
_DELETED, _REPORTS, _OWNER_UPDATED = _COLUMN["deleted_at"], _COLUMN["report_count"], _COLUMN["owner_updated_at"]
_ONLINE, _ONLINE_AT = _COLUMN["online"], _COLUMN["online_changed_at"]
# Facts of a device row that change together with the time they were true at (online has a tie rule of its own).
_STAMPED = tuple(
    (_COLUMN[value], _COLUMN[stamp])
    for value, stamp in (
        ("name", "name_updated_at"),
        ("owner_uid", "owner_updated_at"),
    )
)


def merge_device_rows(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Raw device rows of several messages (in message order) as one row per device, by DeviceFacts' rules: each
    fact from the newer time (the earlier message on a tie, but online wins a tie with offline), the product key last
    given, first seen the earliest, last seen the latest, reports added, and a deletion kept unless a bind as new or
    newer followed it."""
    merged: dict[str, list[Any]] = {}
    for row in rows:
        current = merged.get(row[0])
        if current is None:
            merged[row[0]] = list(row)
            continue
        if row[_PRODUCT]:
            current[_PRODUCT] = row[_PRODUCT]
        for value, stamp in _STAMPED:
            if row[stamp] is not None and _newer(row[stamp], current[stamp]):
                current[value], current[stamp] = row[value], row[stamp]
        if row[_ONLINE_AT] is not None and _online_takes_over(row[_ONLINE_AT], row[_ONLINE], current[_ONLINE_AT]):
            current[_ONLINE], current[_ONLINE_AT] = row[_ONLINE], row[_ONLINE_AT]
        current[_FIRST_SEEN] = min(current[_FIRST_SEEN], row[_FIRST_SEEN])
        current[_LAST_SEEN] = max(current[_LAST_SEEN], row[_LAST_SEEN])
        if row[_DELETED] is not None and _newer(row[_DELETED], current[_DELETED]):
            current[_DELETED] = row[_DELETED]
        current[_REPORTS] += row[_REPORTS]
    for row in merged.values():
        deleted, bound = row[_DELETED], row[_OWNER_UPDATED]
        if deleted is not None and bound is not None and deleted <= bound:
            row[_DELETED] = None  # bound again after the deletion: a re-paired device
    return [tuple(row) for row in merged.values()]


_SEEN = itemgetter(*(_COLUMN[name] for name in DEVICE_SEEN_COLUMNS))
_TOLD = itemgetter(*(index for name, index in _COLUMN.items() if name not in DEVICE_SEEN_COLUMNS))
_NOTHING_TOLD = (None,) * (len(DEVICE_COLUMNS) - len(DEVICE_SEEN_COLUMNS))


def seen_only(rows: Iterable[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Device rows (DEVICE_COLUMNS) split in two: those that only say the device reported, as DEVICE_SEEN_COLUMNS
    rows, and the others as they are. A status report's row is of the first kind; a device event's of the second."""
    seen, told = [], []
    for row in rows:
        if _TOLD(row) == _NOTHING_TOLD:
            seen.append(_SEEN(row))
        else:
            told.append(row)
    return seen, told


USER_COLUMNS = ("uid", "registered_at", "deleted_at", "updated_at", "data")


def user_rows(events: Iterable[UserEvent], time: TimeFormat) -> list[tuple[Any, ...]]:
    """One row per uid in USER_COLUMNS order: newest registration, deletion, and the newest event's data."""
    registered: dict[str, datetime] = {}
    deleted: dict[str, datetime] = {}
    newest: dict[str, UserEvent] = {}
    for event in events:
        uid, at = event.uid, event.occurred_at
        if event.event == "registered" and _newer(at, registered.get(uid)):
            registered[uid] = at
        elif event.event == "deleted" and _newer(at, deleted.get(uid)):
            deleted[uid] = at
        current = newest.get(uid)
        if current is None or at > current.occurred_at:
            newest[uid] = event
    return [
        (uid, _time(registered.get(uid), time), _time(deleted.get(uid), time), time(e.occurred_at), json_text(e.data))
        for uid, e in newest.items()
    ]


def merge_user_rows(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """User rows of several messages as one per uid: the newest registration and deletion, the newest data."""
    merged: dict[str, list[Any]] = {}
    for row in rows:
        current = merged.get(row[0])
        if current is None:
            merged[row[0]] = list(row)
            continue
        for column in (1, 2):
            if row[column] is not None and _newer(row[column], current[column]):
                current[column] = row[column]
        if row[3] > current[3]:
            current[3], current[4] = row[3], row[4]
    return [tuple(row) for row in merged.values()]
