"""Retention: delete history older than a cutoff, table by table, in bounded chunks (``tuya-archiver purge``).

Owns which tables may be purged and by which time column. Latest-fact tables (devices, device_state, users,
rule_state) are never purged, and commands only once finished (sent, failed, dry_run): a pending command is work
still to do. Each chunk is its own short transaction, so the worker keeps writing between chunks. SQLite does not
shrink its file when rows go; run ``VACUUM`` for that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, delete, func, select, true, tuple_
from sqlalchemy.engine import Connection, Engine

from models.tables import Base, Device
from streams.store.engine import WRITE_LOCK

__all__ = ["CHUNK_ROWS", "POLICIES", "Retention", "count_older", "purge_older"]

CHUNK_ROWS = 5_000
_DEVICES_PER_SCOPE = 100


@dataclass(frozen=True, slots=True)
class Retention:
    """``per_device``: reach old rows through the (device_id, time) index, a group of devices at a time, because the
    table has no index on time alone (see models.tables.DeviceStatus)."""

    table: str
    time_column: str
    per_device: bool = False
    finished_commands_only: bool = False


POLICIES = {
    policy.table: policy
    for policy in (
        Retention("messages", "received_at"),
        Retention("device_status", "reported_at", per_device=True),
        Retention("device_events", "occurred_at"),
        Retention("user_events", "occurred_at"),
        Retention("dead_letters", "received_at"),
        Retention("commands", "created_at", finished_commands_only=True),
    )
}


def _table(policy: Retention) -> Table:
    return Base.metadata.tables[policy.table]


def _scopes(connection: Connection, policy: Retention) -> Iterator[ColumnElement[bool]]:
    if not policy.per_device:
        yield true()
        return
    device_ids = list(connection.scalars(select(Device.device_id).order_by(Device.device_id)))
    column = _table(policy).c.device_id
    for start in range(0, len(device_ids), _DEVICES_PER_SCOPE):
        yield column.in_(device_ids[start : start + _DEVICES_PER_SCOPE])


def _older(policy: Retention, cutoff: datetime, scope: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    table = _table(policy)
    conditions = [table.c[policy.time_column] < cutoff, scope]
    if policy.finished_commands_only:
        conditions.append(table.c.status.in_(("sent", "failed", "dry_run")))
    return conditions


def count_older(engine: Engine, policy: Retention, cutoff: datetime) -> int:
    """How many rows :func:`purge_older` would delete now."""
    with engine.connect() as connection:
        scopes = list(_scopes(connection, policy))
        statement = select(func.count()).select_from(_table(policy))
        return sum(connection.scalar(statement.where(*_older(policy, cutoff, scope))) or 0 for scope in scopes)


def purge_older(
    engine: Engine,
    policy: Retention,
    cutoff: datetime,
    *,
    chunk_rows: int = CHUNK_ROWS,
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Delete the table's rows older than ``cutoff``, at most ``chunk_rows`` per transaction; returns the count.
    Ends early, between chunks, once ``stopping()`` is true."""
    table = _table(policy)
    key = tuple_(*table.primary_key.columns)
    with engine.connect() as connection:
        scopes = list(_scopes(connection, policy))
    deleted = 0
    for scope in scopes:
        chunk = select(*table.primary_key.columns).where(*_older(policy, cutoff, scope)).limit(chunk_rows)
        statement = delete(table).where(key.in_(chunk))
        while True:
            with engine.connect() as connection:
                connection.execution_options(**{WRITE_LOCK: True})
                with connection.begin():
                    count = connection.execute(statement).rowcount
            deleted += count
            if count < chunk_rows or stopping():
                break
        if stopping():
            break
    return deleted
