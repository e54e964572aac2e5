"""The history questions the CLI answers: which devices exist, what one reports now, and what it reported when.

Owns the queries behind ``tuya-archiver devices`` and ``history``. Reads through the typed tables and views of
models/tables.py, so times come back as aware UTC datetimes and JSON values parsed, on SQLite and PostgreSQL alike.
Never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.engine import Connection

from models.tables import Device, latest_status, status_history

__all__ = [
    "DEVICE_COLUMNS",
    "HISTORY_COLUMNS",
    "LATEST_COLUMNS",
    "DeviceNotFound",
    "HistoryQuery",
    "find_device",
    "latest_values",
    "list_devices",
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


class DeviceNotFound(LookupError):
    """No device has this id or name, or several devices share the name (the message lists their ids)."""


def list_devices(connection: Connection) -> list[Row[Any]]:
    """Every device, named ones first by name, then by id; columns DEVICE_COLUMNS."""
    columns = [getattr(Device, name) for name in DEVICE_COLUMNS]
    unnamed_last = Device.name.is_(None)
    return list(connection.execute(select(*columns).order_by(unnamed_last, Device.name, Device.device_id)))


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
    if query.since is not None:
        conditions.append(view.reported_at >= query.since)
    if query.until is not None:
        conditions.append(view.reported_at < query.until)
    order = (view.reported_at, view.message_id, view.item_index)
    statement = select(*(view[name] for name in HISTORY_COLUMNS)).where(*conditions)
    if query.limit is None:
        return list(connection.execute(statement.order_by(*order)))
    newest = connection.execute(statement.order_by(*(column.desc() for column in order)).limit(query.limit))
    return list(reversed(list(newest)))
