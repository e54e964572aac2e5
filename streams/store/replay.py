"""SQL of ``tuya-archiver replay`` on the archive's inputs: pages of kept dead letters and of stored messages, and the
mark a replayed dead letter gets.

Owns the paging order (``received_at``, then ``message_id``: a keyset, so a page never repeats or skips a row while
the worker writes newer ones) and the replay's filters: received since a time and up to the replay's start (a replay
is bounded: rows that arrive while it runs are the worker's), unresolved dead letters only, of some error kinds.
Reads through the typed tables (aware UTC times, parsed JSON); a message's payload comes back as its JSON text, to be
decoded the way the decoder does. The re-derivation's writes are in :mod:`streams.store.rederive`. SQLAlchemy Core
on the tables of ``models.tables``; imports nothing of the worker's runtime (decoder, rules, sources).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, Text, and_, bindparam, cast, or_, select, update
from sqlalchemy.engine import Connection

from models.tables import DeadLetter, Message

__all__ = [
    "Position",
    "StoredDeadLetter",
    "StoredMessage",
    "Window",
    "dead_letter_page",
    "mark_resolved",
    "message_page",
]

_LETTERS = DeadLetter.__table__
_MESSAGES = Message.__table__

#: Where a page ended: the last row's (received_at, message_id); None before the first page.
Position = tuple[datetime, str] | None


@dataclass(frozen=True, slots=True)
class Window:
    """The rows a replay reads: received at or after ``since`` (None: from the start) and at or before ``until``;
    dead letters of one of ``error_kinds`` only (empty: any kind)."""

    until: datetime
    since: datetime | None = None
    error_kinds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """An unresolved ``dead_letters`` row: the raw message as it arrived, and why it failed then."""

    message_id: str
    topic: str
    payload: bytes
    properties: dict[str, str]
    error_kind: str
    published_at: datetime | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A ``messages`` row; ``payload`` is the decrypted payload's JSON text as stored."""

    message_id: str
    topic: str
    protocol: int
    biz_code: str | None
    device_id: str | None
    encrypt_model: str
    sign_ok: bool
    pushed_at: datetime
    published_at: datetime | None
    received_at: datetime
    payload: str
    properties: dict[str, str]


def _in_window(table: Table, window: Window, after: Position) -> ColumnElement[bool]:
    received, message_id = table.c.received_at, table.c.message_id
    conditions = [received <= window.until]
    if window.since is not None:
        conditions.append(received >= window.since)
    if after is not None:
        conditions.append(or_(received > after[0], and_(received == after[0], message_id > after[1])))
    return and_(*conditions)


def dead_letter_page(connection: Connection, window: Window, after: Position, limit: int) -> list[StoredDeadLetter]:
    """The next ``limit`` unresolved dead letters of ``window`` after ``after``, in paging order."""
    table = _LETTERS
    query = select(
        table.c.message_id,
        table.c.topic,
        table.c.payload,
        table.c.properties,
        table.c.error_kind,
        table.c.published_at,
        table.c.received_at,
    ).where(_in_window(table, window, after), table.c.resolved_at.is_(None))
    if window.error_kinds:
        query = query.where(table.c.error_kind.in_(window.error_kinds))
    rows = connection.execute(query.order_by(table.c.received_at, table.c.message_id).limit(limit))
    return [StoredDeadLetter(*row) for row in rows]


def message_page(connection: Connection, window: Window, after: Position, limit: int) -> list[StoredMessage]:
    """The next ``limit`` messages of ``window`` after ``after``, in paging order (``window.error_kinds`` unused)."""
    table = _MESSAGES
    query = select(
        table.c.message_id,
        table.c.topic,
        table.c.protocol,
        table.c.biz_code,
        table.c.device_id,
        table.c.encrypt_model,
        table.c.sign_ok,
        table.c.pushed_at,
        table.c.published_at,
        table.c.received_at,
        cast(table.c.payload, Text),  # the text as stored: the caller decodes it as the decoder does
        table.c.properties,
    ).where(_in_window(table, window, after))
    rows = connection.execute(query.order_by(table.c.received_at, table.c.message_id).limit(limit))
    return [StoredMessage(*row) for row in rows]


def mark_resolved(connection: Connection, resolutions: Mapping[str, str], at: datetime) -> int:
    """Mark the dead letters of ``resolutions`` (message id → what became of it) resolved at ``at``; one already
    resolved (by a replay running beside this one) keeps its mark. Returns how many were marked."""
    if not resolutions:
        return 0
    table = _LETTERS
    statement = (
        update(table)
        .where(table.c.message_id == bindparam("letter_id"), table.c.resolved_at.is_(None))
        .values(resolved_at=at, resolution=bindparam("outcome"))
    )
    params: list[dict[str, Any]] = [
        {"letter_id": message_id, "outcome": outcome} for message_id, outcome in sorted(resolutions.items())
    ]
    result = connection.execute(statement, params)
    return max(result.rowcount, 0)
