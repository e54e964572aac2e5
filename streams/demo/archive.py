"""What the demo reads back from the archive: the counts it waits for, the summary's figures, the gaps and their
backfill, the example queries.

Owns read-only SQL on the public tables and views of ``models.tables`` (SQLAlchemy Core, same results on SQLite and
PostgreSQL) and the three example queries printed with their output, written as a user would type them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from models.tables import (
    ApiUsage,
    BackfillProgress,
    Command,
    DataPoint,
    DeadLetter,
    Device,
    DeviceEvent,
    DeviceStatus,
    Gap,
    Message,
    User,
)

__all__ = [
    "EXAMPLE_QUERIES",
    "ArchiveFigures",
    "CommandRow",
    "ExampleQuery",
    "FleetFigures",
    "GapRow",
    "archived_messages",
    "by_source",
    "command_rows",
    "figures",
    "gap_rows",
    "open_commands",
    "run_example",
]


def _count(connection: Connection, table: Any) -> int:
    return int(connection.scalar(select(func.count()).select_from(table)) or 0)


def archived_messages(connection: Connection) -> int:
    """Distinct messages the archive holds: stored ones plus dead letters."""
    return _count(connection, Message) + _count(connection, DeadLetter)


def open_commands(connection: Connection) -> int:
    """Outbox rows not settled yet (pending or in flight)."""
    query = select(func.count()).select_from(Command).where(Command.status.in_(("pending", "in_flight")))
    return int(connection.scalar(query) or 0)


@dataclass(frozen=True, slots=True)
class GapRow:
    """A gap and how far its backfill got: ``devices_done`` devices' logs read to the end."""

    id: int
    started_at: datetime
    ended_at: datetime
    status: str
    reason: str | None
    rows_added: int
    calls: int
    devices_done: int

    @property
    def open(self) -> bool:
        """Not (yet) filled as far as it can be: found, or a backfill is under way."""
        return self.status in ("open", "backfilling")


def gap_rows(connection: Connection) -> list[GapRow]:
    """Every gap, oldest first."""
    done = (
        select(func.count()).where(BackfillProgress.gap_id == Gap.id, BackfillProgress.done.is_(True)).scalar_subquery()
    )
    columns = (Gap.id, Gap.started_at, Gap.ended_at, Gap.status, Gap.reason, Gap.rows_added, Gap.calls, done)
    return [GapRow(*row) for row in connection.execute(select(*columns).order_by(Gap.started_at, Gap.id))]


def by_source(connection: Connection, table: Any) -> dict[str, int]:
    """Rows of ``device_status`` or ``device_events`` by ``source``: ``stream``, or ``log`` (a backfill)."""
    return {
        str(source): int(n)
        for source, n in connection.execute(select(table.source, func.count()).group_by(table.source))
    }


@dataclass(frozen=True, slots=True)
class CommandRow:
    rule_id: str
    action: str
    device_id: str
    device_name: str | None
    commands: Any
    status: str
    tuya_tid: str | None
    error: str | None


def command_rows(connection: Connection) -> list[CommandRow]:
    """Every outbox row, oldest first, with the device's archived name."""
    query = (
        select(
            Command.rule_id,
            Command.action,
            Command.device_id,
            Device.name,
            Command.commands,
            Command.status,
            Command.tuya_tid,
            Command.error,
        )
        .outerjoin(Device, Device.device_id == Command.device_id)
        .order_by(Command.created_at, Command.id)
    )
    return [CommandRow(*row) for row in connection.execute(query)]


@dataclass(frozen=True, slots=True)
class ArchiveFigures:
    """The summary's counts: rows per table, and breakdowns as (label, count) pairs, largest first."""

    messages: int
    dead_letters: int
    devices: int
    users: int
    status_values: int
    device_events: int
    by_kind: list[tuple[int, str, int]]
    by_cipher: list[tuple[str, int]]
    by_product: list[tuple[str, int]]
    dead_by_kind: list[tuple[str, int]]
    fleet: FleetFigures


@dataclass(frozen=True, slots=True)
class FleetFigures:
    """What the archive learnt from the OpenAPI (``sync``): devices, categories, data points, users, calls."""

    devices: int
    by_category: list[tuple[str, int]]
    products: int
    data_points: int
    users: int
    calls: int


def fleet_figures(connection: Connection) -> FleetFigures:
    synced = Device.synced_at.is_not(None)
    categories = connection.execute(
        select(func.coalesce(Device.category, "?"), func.count()).where(synced).group_by(Device.category)
    )
    return FleetFigures(
        devices=int(connection.scalar(select(func.count()).select_from(Device).where(synced)) or 0),
        by_category=sorted(((str(c), int(n)) for c, n in categories), key=lambda row: -row[1]),
        products=int(connection.scalar(select(func.count(func.distinct(DataPoint.product_id)))) or 0),
        data_points=_count(connection, DataPoint),
        users=int(connection.scalar(select(func.count()).select_from(User).where(User.synced_at.is_not(None))) or 0),
        calls=int(connection.scalar(select(func.sum(ApiUsage.calls))) or 0),
    )


def figures(connection: Connection) -> ArchiveFigures:
    kind = func.coalesce(Message.biz_code, "status report")
    by_kind = select(Message.protocol, kind, func.count()).group_by(Message.protocol, kind)
    return ArchiveFigures(
        messages=_count(connection, Message),
        dead_letters=_count(connection, DeadLetter),
        devices=_count(connection, Device),
        users=_count(connection, User),
        status_values=_count(connection, DeviceStatus),
        device_events=_count(connection, DeviceEvent),
        by_kind=sorted(((p, k, n) for p, k, n in connection.execute(by_kind)), key=lambda row: -row[2]),
        by_cipher=_grouped(connection, Message.encrypt_model),
        by_product=_grouped(connection, func.coalesce(Device.product_key, "?")),
        dead_by_kind=_grouped(connection, DeadLetter.error_kind),
        fleet=fleet_figures(connection),
    )


def _grouped(connection: Connection, column: Any) -> list[tuple[str, int]]:
    rows = connection.execute(select(column, func.count()).group_by(column))
    return sorted(((str(label), int(n)) for label, n in rows), key=lambda row: -row[1])


@dataclass(frozen=True, slots=True)
class ExampleQuery:
    title: str
    sql: str


#: Printed with their real output; plain SQL on the public views, for SQLite and PostgreSQL alike.
EXAMPLE_QUERIES = (
    ExampleQuery(
        "What the kitchen plug reports now (it confirmed the rule's switch-off), in physical units",
        "SELECT code, value, value_scaled, unit, reported_at FROM latest_status\n"
        "WHERE device_name = 'Kitchen plug' ORDER BY code;",
    ),
    ExampleQuery(
        "The greenhouse sensor's last five temperatures (Tuya sends 261 for 26.1 °C: the scale is 1)",
        "SELECT reported_at, value, value_scaled, unit FROM status_history\n"
        "WHERE device_name = 'Greenhouse sensor' AND code = 'temp_current'\n"
        "ORDER BY reported_at DESC LIMIT 5;",
    ),
    ExampleQuery(
        "When the front door was online and offline (no end: still offline)",
        "SELECT state, started_at, ended_at, duration_s FROM device_online_periods\n"
        "WHERE device_name = 'Front door' ORDER BY started_at;",
    ),
)


def run_example(connection: Connection, query: ExampleQuery) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
    """The column names and rows of an example query."""
    result = connection.execute(text(query.sql))
    return list(result.keys()), [tuple(row) for row in result]
