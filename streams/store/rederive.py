"""SQL of ``replay --messages``: the history rows a stored message has, the latest-state rows they feed, and the
writes that bring both to what the message derives today.

Owns reading rows in the form the row builders of :mod:`streams.store.rows` and :mod:`streams.store.facts` produce
with ``time`` left as datetimes (JSON as canonical text, times as aware UTC datetimes), so a stored row and a derived
one are equal exactly when their content is; deleting history rows by key, of source ``stream`` only (rows that
``backfill`` took from Tuya's device logs are never touched); and a (device, code)'s newest history row. The
writes go through :class:`~streams.store.row_writer.RowWriter`. Runs in the caller's transaction and never commits.
Imports nothing of the worker's runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import JSON, ColumnElement, Table, Text, and_, bindparam, cast, delete, select, tuple_, update
from sqlalchemy.engine import Connection

from models.tables import Base, Message, StatusMessage, views
from streams.store.dialect import chunks
from streams.store.history import VALUE_TABLES, where_placed
from streams.store.rows import DEVICE_STATE_COLUMNS, STATUS_COLUMNS, json_text
from streams.store.statements import DEVICE_EVENTS, DEVICE_STATE, DEVICES, USER_EVENTS, USERS, Target

__all__ = [
    "HISTORIES",
    "LATEST",
    "STATUS_VIEW",
    "History",
    "Latest",
    "delete_history",
    "delete_latest",
    "mark_unknown",
    "newest_status",
    "stored_history",
    "stored_latest",
]

Row = tuple[Any, ...]
Key = tuple[Any, ...]

_decode = msgspec.json.Decoder().decode
_STREAM = "stream"


@dataclass(frozen=True, slots=True)
class History:
    """A history table as replay re-derives it: its insert, its key (a prefix of the row) and whether it has a
    ``source`` column (only ``stream`` rows are a message's to change)."""

    target: Target
    key: tuple[str, ...]
    sourced: bool

    def key_of(self, row: Row) -> Key:
        return row[: len(self.key)]


@dataclass(frozen=True, slots=True)
class Latest:
    """A latest-state table: its upsert (the store's "newer wins" rule) and its key (a prefix of the row)."""

    target: Target
    key: tuple[str, ...]

    def key_of(self, row: Row) -> Key:
        return row[: len(self.key)]


#: ``device_status`` as replay reads it: a view over the history's narrow format, whose rows are written and
#: deleted in its tables (:func:`~streams.store.history.insert_status`, :func:`delete_history`).
STATUS_VIEW = Target("device_status", STATUS_COLUMNS, "")

HISTORIES = {
    "device_status": History(STATUS_VIEW, ("message_id", "item_index"), sourced=True),
    "device_events": History(DEVICE_EVENTS, ("message_id",), sourced=True),
    "user_events": History(USER_EVENTS, ("message_id",), sourced=False),
}

LATEST = {
    "device_state": Latest(DEVICE_STATE, ("device_id", "code")),
    "devices": Latest(DEVICES, ("device_id",)),
    "users": Latest(USERS, ("uid",)),
}


def _table(target: Target) -> Table:
    return views.tables[target.table] if target is STATUS_VIEW else Base.metadata.tables[target.table]


def _json_positions(table: Table, columns: Sequence[str]) -> list[int]:
    return [index for index, name in enumerate(columns) if isinstance(table.c[name].type, JSON)]


def _select_rows(table: Table, columns: Sequence[str]) -> Any:
    """A SELECT of ``columns`` with JSON columns as their stored text (parsed JSON would make 1 equal true)."""
    json_at = set(_json_positions(table, columns))
    return select(*(cast(table.c[name], Text) if i in json_at else table.c[name] for i, name in enumerate(columns)))


def _canonical(rows: Iterable[Any], json_at: Sequence[int]) -> list[Row]:
    """Rows with each JSON text as :func:`~streams.store.rows.json_text` writes that value (stored text may have
    been written by another encoder, e.g. SQLAlchemy's for values `sync` stored)."""
    canonical = []
    for row in rows:
        values = list(row)
        for index in json_at:
            if values[index] is not None:
                values[index] = json_text(_decode(values[index]))
        canonical.append(tuple(values))
    return canonical


def stored_history(connection: Connection, history: History, message_ids: Sequence[str]) -> list[Row]:
    """The ``stream`` rows of ``history`` that the messages ``message_ids`` have now, in its target's column order."""
    table, columns = _table(history.target), history.target.columns
    rows: list[Any] = []
    for chunk in chunks(list(message_ids)):
        query = _select_rows(table, columns).where(table.c.message_id.in_(chunk))
        if history.sourced:
            query = query.where(table.c.source == _STREAM)
        rows.extend(connection.execute(query))
    return _canonical(rows, _json_positions(table, columns))


def _key_match(table: Table, key: Sequence[str]) -> ColumnElement[bool]:
    return and_(*(table.c[name] == bindparam(f"key_{name}") for name in key))


def delete_history(connection: Connection, history: History, keys: Sequence[Key]) -> None:
    """Delete the ``stream`` rows of ``history`` with these keys."""
    if not keys:
        return
    if history.target is STATUS_VIEW:
        _delete_status(connection, keys)
        return
    table = _table(history.target)
    statement = delete(table).where(_key_match(table, history.key))
    if history.sourced:
        statement = statement.where(table.c.source == _STREAM)
    connection.execute(statement, [dict(zip((f"key_{n}" for n in history.key), k, strict=True)) for k in keys])


def _delete_status(connection: Connection, keys: Sequence[Key]) -> None:
    """Delete the ``stream`` values with these (message id, item index) keys, settled or not: found through their
    message's device and times (models.tables.StatusMessage), deleted by primary key."""
    messages = StatusMessage.__table__
    wanted = set(keys)
    message_ids = sorted({message_id for message_id, _ in keys})
    for values in VALUE_TABLES:
        primary_key = list(values.primary_key.columns)
        found = []
        for chunk in chunks(message_ids):
            query = select(messages.c.message_id, values.c.item_index, *primary_key).where(
                messages.c.message_id.in_(chunk), messages.c.source == _STREAM, where_placed(values)
            )
            found += [
                {column.name: value for column, value in zip(primary_key, row[2:], strict=True)}
                for row in connection.execute(query)
                if (row[0], row[1]) in wanted
            ]
        if found:
            statement = delete(values).where(*(column == bindparam(column.name) for column in primary_key))
            connection.execute(statement, found)


def _key_in(table: Table, key: Sequence[str], keys: Sequence[Key]) -> ColumnElement[bool]:
    if len(key) == 1:
        return table.c[key[0]].in_([k[0] for k in keys])
    return tuple_(*(table.c[name] for name in key)).in_(list(keys))


def stored_latest(connection: Connection, latest: Latest, keys: Iterable[Key], *, lock: bool = False) -> dict[Key, Row]:
    """The rows of ``latest`` with these keys, in its target's column order. ``lock``: lock them (PostgreSQL), in
    key order, as the store's upserts do, so that a worker storing beside the replay waits instead of deadlocking."""
    table, columns = _table(latest.target), latest.target.columns
    ordered = sorted(set(keys))
    found: dict[Key, Row] = {}
    for chunk in chunks(ordered):
        query = _select_rows(table, columns).where(_key_in(table, latest.key, chunk))
        query = query.order_by(*(table.c[name] for name in latest.key))
        rows = connection.execute(query.with_for_update() if lock else query)
        found.update((latest.key_of(row), row) for row in _canonical(rows, _json_positions(table, columns)))
    return found


def delete_latest(connection: Connection, latest: Latest, keys: Sequence[Key]) -> None:
    if keys:
        table = _table(latest.target)
        params = [dict(zip((f"key_{n}" for n in latest.key), k, strict=True)) for k in keys]
        connection.execute(delete(table).where(_key_match(table, latest.key)), params)


def newest_status(connection: Connection, device_id: str, code: str) -> Row | None:
    """The ``device_state`` row the newest history value of (device, code) makes, any source; None without one.

    "Newest" is the store's order (streams.store.rows.latest_state): time, then message id, then item index.
    """
    table, columns = _table(STATUS_VIEW), DEVICE_STATE_COLUMNS  # device_status has every column of device_state
    query = (
        _select_rows(table, columns)
        .where(table.c.device_id == device_id, table.c.code == code)
        .order_by(table.c.reported_key.desc(), table.c.message_id.desc(), table.c.item_index.desc())
        .limit(1)
    )
    rows = _canonical(connection.execute(query), _json_positions(table, columns))
    return rows[0] if rows else None


def mark_unknown(connection: Connection, unknown: Sequence[str], known: Sequence[str]) -> None:
    """``messages.unknown`` as the messages derive now: true for ``unknown`` (their row is their only record, kept
    by retention), NULL for ``known``."""
    table = Message.__table__
    for ids, value in ((unknown, True), (known, None)):
        for chunk in chunks(list(ids)):
            connection.execute(
                update(table).where(table.c.message_id.in_(chunk), table.c.unknown.is_distinct_from(value)),
                {"unknown": value},
            )
