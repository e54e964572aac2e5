"""Retention: delete history older than a cutoff, table by table, in bounded chunks (``tuya-archiver purge``).

Owns which tables may be purged and by which time column. Latest-fact tables (devices, device_state, users,
rule_state) are never purged, and some rows of the others are kept whatever their age: a command until finished
(sent, failed, dry_run: a pending one is work still to do), a dead letter until replayed and a message of no kind
the normaliser knew (each is the only record of its message), and each device's newest online and offline events
(what the rules tell a late one by). Each chunk
is its own short transaction, so the worker keeps writing between chunks; the history's recent values are settled
first, in one transaction (streams.store.settle). SQLite does not shrink its file when rows go; ``tuya-archiver db
compact`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, delete, func, or_, select, true, tuple_
from sqlalchemy.engine import Connection, Engine

from models.tables import Base, StatusMessage, StatusSeries
from streams.outbox.sql import NEWEST_ONLINE_EVENTS
from streams.store.dialect import chunks
from streams.store.engine import write_transaction
from streams.store.history import VALUE_TABLES, where_placed
from streams.store.settle import settle_all

__all__ = ["CHUNK_ROWS", "POLICIES", "REDELIVERY_MEMORY", "Retention", "count_older", "purge_older"]

CHUNK_ROWS = 5_000
_SERIES_PER_SCOPE = 500


@dataclass(frozen=True, slots=True)
class Retention:
    """``table``: the name users purge by; ``stored_in``: the table that holds its rows, when that is another one
    (``device_status`` is a view over the history's narrow format). ``per_series``: reach old rows through the
    (series, time) primary key, a group of series at a time, because the table has no index on time alone (see
    models.tables.StatusValue). ``message_keys``: then delete the ``status_messages`` rows left without values.
    ``recent_in``: the table of its rows not settled yet (streams.store.settle): counted too, and settled before a
    purge. ``kept_for``: its rows younger than this are kept, whatever the cutoff. ``purgeable``: the condition a
    row must meet to be purged at all, None: any row. ``oldest_first``: the rows ``purgeable`` keeps can be many, so
    each chunk starts where the last one ended instead of reading them again (ordered chunks cost more otherwise)."""

    table: str
    time_column: str
    stored_in: str | None = None
    per_series: bool = False
    message_keys: bool = False
    recent_in: str | None = None
    kept_for: timedelta = timedelta(0)
    purgeable: Callable[[Table], ColumnElement[bool]] | None = None
    oldest_first: bool = False

    def bounded(self, cutoff: datetime) -> datetime:
        """``cutoff``, or the start of ``kept_for`` when that is earlier."""
        return min(cutoff, datetime.now(UTC) - self.kept_for) if self.kept_for else cutoff


#: ``messages`` rows are never purged younger than this: a redelivered message (Tuya redelivers for 2 hours) whose
#: row is gone would be news again to the rules. KEEP_MESSAGES has the same floor (streams.settings).
REDELIVERY_MEMORY = timedelta(days=1)


def _not_among_the_newest_online_events(events: Table) -> ColumnElement[bool]:
    """Rows other than the device's newest online and offline events, as many as the rules read to tell a late one
    (streams.outbox.sql.latest_online_events): purged, a late event would fire rules as news."""
    newer = events.alias("newer")
    online = ("online", "offline")
    last_kept = (
        select(newer.c.occurred_at)
        .where(newer.c.device_id == events.c.device_id, newer.c.event.in_(online))
        .order_by(newer.c.occurred_at.desc())
        .offset(NEWEST_ONLINE_EVENTS - 1)
        .limit(1)
        .scalar_subquery()
    )
    return or_(events.c.event.not_in(online), events.c.occurred_at < last_kept)


POLICIES = {
    policy.table: policy
    for policy in (
        # a message of no kind the normaliser knew: its row is its only record (models.tables.Message.unknown)
        Retention("messages", "received_at", kept_for=REDELIVERY_MEMORY, purgeable=lambda t: t.c.unknown.is_(None)),
        Retention(
            "device_status",
            "reported_at",
            stored_in="status_values",
            per_series=True,
            message_keys=True,
            recent_in="status_recent",
        ),
        # each device's newest online and offline events: the rules' guard against a late one (replay --rules)
        Retention("device_events", "occurred_at", purgeable=_not_among_the_newest_online_events, oldest_first=True),
        Retention("user_events", "occurred_at"),
        # a dead letter until replayed: the only copy of a message the archive did not store
        Retention("dead_letters", "received_at", purgeable=lambda t: t.c.resolved_at.is_not(None), oldest_first=True),
        Retention("commands", "created_at", purgeable=lambda t: t.c.status.in_(("sent", "failed", "dry_run"))),
    )
}


def _table(policy: Retention) -> Table:
    return Base.metadata.tables[policy.stored_in or policy.table]


def _scopes(connection: Connection, policy: Retention) -> Iterator[ColumnElement[bool]]:
    if not policy.per_series:
        yield true()
        return
    series_ids = list(connection.scalars(select(StatusSeries.series_id).order_by(StatusSeries.series_id)))
    column = _table(policy).c.series_id
    for start in range(0, len(series_ids), _SERIES_PER_SCOPE):
        yield column.in_(series_ids[start : start + _SERIES_PER_SCOPE])


def _message_keys(connection: Connection, chunk: Select[Any]) -> list[int]:
    """The message keys of the status values a chunk selects."""
    return list(connection.scalars(select(chunk.subquery().c.message_key).distinct()))


def _drop_unused_message_keys(connection: Connection, keys: list[int]) -> None:
    """Delete the ``status_messages`` rows of ``keys`` left without values: purged history leaves no keys behind."""
    messages = StatusMessage.__table__
    used = [select(values.c.message_key).where(where_placed(values)).exists() for values in VALUE_TABLES]
    for part in chunks(keys):
        connection.execute(delete(messages).where(messages.c.message_key.in_(part), *(~exists for exists in used)))


def _older(policy: Retention, cutoff: datetime, scope: ColumnElement[bool]) -> list[ColumnElement[bool]]:
    table = _table(policy)
    conditions = [table.c[policy.time_column] < policy.bounded(cutoff), scope]
    if policy.purgeable is not None:
        conditions.append(policy.purgeable(table))
    return conditions


def count_older(engine: Engine, policy: Retention, cutoff: datetime) -> int:
    """How many rows :func:`purge_older` would delete now."""
    with engine.connect() as connection:
        scopes = list(_scopes(connection, policy))
        statement = select(func.count()).select_from(_table(policy))
        count = sum(connection.scalar(statement.where(*_older(policy, cutoff, scope))) or 0 for scope in scopes)
        if policy.recent_in:
            recent = Base.metadata.tables[policy.recent_in]
            count += connection.scalar(select(func.count()).where(recent.c[policy.time_column] < cutoff)) or 0
        return count


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
    if policy.oldest_first:
        return _purge_oldest_first(engine, policy, cutoff, chunk_rows, stopping)
    table = _table(policy)
    key = tuple_(*table.primary_key.columns)
    if policy.recent_in:
        settle_all(engine)
    with engine.connect() as connection:
        scopes = list(_scopes(connection, policy))
    deleted = 0
    for scope in scopes:
        chunk = select(*table.primary_key.columns).where(*_older(policy, cutoff, scope)).limit(chunk_rows)
        statement = delete(table).where(key.in_(chunk))
        while True:
            with write_transaction(engine) as connection:
                keys = _message_keys(connection, chunk) if policy.message_keys else []
                count = connection.execute(statement).rowcount
                _drop_unused_message_keys(connection, keys)
            deleted += count
            if count < chunk_rows or stopping():
                break
        if stopping():
            break
    return deleted


def _purge_oldest_first(
    engine: Engine, policy: Retention, cutoff: datetime, chunk_rows: int, stopping: Callable[[], bool]
) -> int:
    """:func:`purge_older` of a table with one key column and an index on its time, oldest first, each chunk from
    where the last one ended: the rows the policy keeps (``purgeable``) are read once, not once a chunk (100,000
    silent devices' online events: 114 s to purge, and a second's write lock a chunk)."""
    table = _table(policy)
    (key,) = table.primary_key.columns
    time = table.c[policy.time_column]
    deleted, reached = 0, None
    while True:
        conditions = _older(policy, cutoff, true()) + ([time >= reached] if reached is not None else [])
        chunk = select(key).where(*conditions).order_by(time).limit(chunk_rows)
        with write_transaction(engine) as connection:
            times = connection.execute(delete(table).where(key.in_(chunk)).returning(time)).scalars().all()
        deleted += len(times)
        if len(times) < chunk_rows or stopping():
            return deleted
        reached = max(times)
