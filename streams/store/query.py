"""The history questions the CLI and the web view answer: which devices exist, what one reports now, what it
reported when, and what happened to it (events, commands).

Owns the queries behind ``tuya-archiver devices`` and ``history`` and the web view's device pages (``serve``),
which call the same functions. Reads through the typed tables and views of models/tables.py, so times come back as
aware UTC datetimes and JSON values parsed, on SQLite and PostgreSQL alike. Never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, func, or_, select
from sqlalchemy.engine import Connection

from models.tables import Command, Device, DeviceEvent, latest_status, status_history

__all__ = [
    "COMMAND_COLUMNS",
    "DEVICE_COLUMNS",
    "EVENT_COLUMNS",
    "HISTORY_COLUMNS",
    "LATEST_COLUMNS",
    "DeviceFilter",
    "DeviceNotFound",
    "HistoryQuery",
    "count_devices",
    "device_categories",
    "device_commands",
    "device_facts",
    "find_device",
    "latest_values",
    "list_devices",
    "recent_device_events",
    "status_history_rows",
]

DEVICE_COLUMNS = (
    "device_id",
    "name",
    "category",
    "product_key",
    "product_name",
    "online",
    "last_seen_at",
    "report_count",
    "synced_at",
    "deleted_at",
)
HISTORY_COLUMNS = (
    "reported_at",
    "device_id",
    "device_name",
    "code",
    "value",
    "value_scaled",
    "unit",
    "dp_id",
    "message_id",
)
LATEST_COLUMNS = (
    "device_id",
    "device_name",
    "code",
    "value",
    "value_scaled",
    "unit",
    "reported_at",
    "source",
    "dp_id",
    "message_id",
)


EVENT_COLUMNS = ("occurred_at", "event", "biz_code", "data", "source", "message_id")
COMMAND_COLUMNS = (
    "created_at",
    "rule_id",
    "action",
    "device_id",
    "commands",
    "status",
    "attempts",
    "tuya_tid",
    "error_code",
    "error",
    "sent_at",
    "updated_at",
    "id",
)


class DeviceNotFound(LookupError):
    """No device has this id or name, or several devices share the name (the message lists their ids)."""


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """Which devices to list: ``search`` in the name (any case) or the id; a ``category``; ``online`` or not."""

    search: str | None = None
    category: str | None = None
    online: bool | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.search:
            needle = self.search.lower()
            conditions.append(
                or_(
                    func.lower(Device.name).contains(needle, autoescape=True),
                    func.lower(Device.device_id).contains(needle, autoescape=True),
                )
            )
        if self.category:
            conditions.append(Device.category == self.category)
        if self.online is not None:
            conditions.append(Device.online.is_(self.online))
        return conditions


def list_devices(
    connection: Connection, filters: DeviceFilter | None = None, *, limit: int | None = None, offset: int = 0
) -> list[Row[Any]]:
    """Every device (or those ``filters`` select), named ones first by name, then by id; columns DEVICE_COLUMNS."""
    columns = [getattr(Device, name) for name in DEVICE_COLUMNS]
    unnamed_last = Device.name.is_(None)
    query = select(*columns).where(*(filters or DeviceFilter()).conditions())
    query = query.order_by(unnamed_last, Device.name, Device.device_id).offset(offset or None).limit(limit)
    return list(connection.execute(query))


def count_devices(connection: Connection, filters: DeviceFilter | None = None) -> int:
    """How many devices ``filters`` select (all of them without)."""
    query = select(func.count()).select_from(Device).where(*(filters or DeviceFilter()).conditions())
    return int(connection.scalar(query) or 0)


def device_categories(connection: Connection) -> list[str]:
    """The device categories the archive knows (from ``sync``), sorted."""
    query = select(Device.category).where(Device.category.is_not(None)).distinct().order_by(Device.category)
    return list(connection.scalars(query))


def device_facts(connection: Connection, device_id: str) -> Row[Any] | None:
    """One device's row of ``devices`` (columns DEVICE_COLUMNS), or None when the archive has no such device."""
    columns = [getattr(Device, name) for name in DEVICE_COLUMNS]
    return connection.execute(select(*columns).where(Device.device_id == device_id)).first()


def latest_values(connection: Connection, device_id: str) -> list[Row[Any]]:
    """A device's latest value of every code, with the value in physical units; columns LATEST_COLUMNS."""
    view = latest_status.c
    query = select(*(view[name] for name in LATEST_COLUMNS)).where(view.device_id == device_id)
    return list(connection.execute(query.order_by(view.code)))


def find_device(connection: Connection, text: str) -> str:
    """The id of the device whose id, else whose name, is ``text``.

    Raises:
        DeviceNotFound: no such device, or the name is not unique.
    """
    if connection.scalar(select(Device.device_id).where(Device.device_id == text)) is not None:
        return text
    ids = list(connection.scalars(select(Device.device_id).where(Device.name == text).order_by(Device.device_id)))
    if len(ids) == 1:
        return ids[0]
    if ids:
        raise DeviceNotFound(f"{len(ids)} devices are named {text!r}: use one of the ids {', '.join(ids)}")
    count = connection.scalar(select(func.count()).select_from(Device))
    raise DeviceNotFound(f"no device has the id or name {text!r} ({count} devices known: see `tuya-archiver devices`)")


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """``limit``: the newest ``limit`` values (still returned oldest first)."""

    device_id: str
    codes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None


def status_history_rows(connection: Connection, query: HistoryQuery) -> list[Row[Any]]:
    """One device's status values in time order, through the ``status_history`` view; columns HISTORY_COLUMNS."""
    view = status_history.c
    conditions = [view.device_id == query.device_id]
    if query.codes:
        conditions.append(or_(*(view.code == code for code in query.codes)))
    # reported_key: the time as the history keeps it, so the bounds and the order reach the values by key
    if query.since is not None:
        conditions.append(view.reported_key >= query.since)
    if query.until is not None:
        conditions.append(view.reported_key < query.until)
    order = (view.reported_key, view.message_id, view.item_index)
    statement = select(*(view[name] for name in HISTORY_COLUMNS)).where(*conditions)
    if query.limit is None:
        return list(connection.execute(statement.order_by(*order)))
    newest = connection.execute(statement.order_by(*(column.desc() for column in order)).limit(query.limit))
    return list(reversed(list(newest)))


def recent_device_events(connection: Connection, device_id: str, limit: int = 50) -> list[Row[Any]]:
    """A device's newest ``limit`` device events, newest first; columns EVENT_COLUMNS."""
    columns = [getattr(DeviceEvent, name) for name in EVENT_COLUMNS]
    order = (DeviceEvent.occurred_at.desc(), DeviceEvent.message_id.desc())
    query = select(*columns).where(DeviceEvent.device_id == device_id).order_by(*order).limit(limit)
    return list(connection.execute(query))


def device_commands(connection: Connection, device_id: str, limit: int = 50) -> list[Row[Any]]:
    """The newest ``limit`` commands rules sent (or meant to send) to a device, newest first; COMMAND_COLUMNS."""
    columns = [getattr(Command, name) for name in COMMAND_COLUMNS]
    order = (Command.created_at.desc(), Command.id.desc())
    query = select(*columns).where(Command.device_id == device_id).order_by(*order).limit(limit)
    return list(connection.execute(query))
