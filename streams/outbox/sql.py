"""SQL of the rules and the outbox: read latest values and rule state, write rule state and commands.

Owns every statement the reactor and the sender run (SQLAlchemy Core on the tables of ``models.tables``); small
volumes per batch, so clarity wins over the driver-level fast path of ``streams.store``. Upserts use each dialect's
``ON CONFLICT``, which SQLite and PostgreSQL share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, text, tuple_, update
from sqlalchemy.engine import Connection

from models.tables import Command, Device, DeviceEvent, DeviceState, Message
from models.tables import RuleState as RuleStateRow
from streams.rules import DeviceSeen, LatestStamps, OnlineEvent, RuleState, RuleStateKey, whole_second
from streams.store.dialect import chunks as _chunks
from streams.store.dialect import insert as _insert

__all__ = [
    "NEWEST_ONLINE_EVENTS",
    "claim",
    "due_ids",
    "finish",
    "in_flight",
    "insert_commands",
    "last_seen",
    "latest_values",
    "lock_rule_cooldowns",
    "new_message_ids",
    "rule_states",
    "save_rule_states",
    "settle",
    "shared_by_processors",
]


def new_message_ids(connection: Connection, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are not archived yet (read before the batch's own writes)."""
    known: set[str] = set()
    column = Message.__table__.c.message_id
    for chunk in _chunks(list(ids)):
        known.update(connection.scalars(select(column).where(column.in_(chunk))))
    return set(ids) - known


def latest_values(connection: Connection, device_ids: Iterable[str]) -> tuple[dict[tuple[str, str], Any], LatestStamps]:
    """``device_state`` of the given devices by (device_id, code): their values, and (reported_at, message_id)."""
    table = DeviceState.__table__
    values: dict[tuple[str, str], Any] = {}
    stamps: dict[tuple[str, str], tuple[datetime, str]] = {}
    query = select(table.c.device_id, table.c.code, table.c.value, table.c.reported_at, table.c.message_id)
    for chunk in _chunks(sorted(device_ids)):
        rows = connection.execute(query.where(table.c.device_id.in_(chunk)))
        for device_id, code, value, reported_at, message_id in rows:
            values[device_id, code] = value
            stamps[device_id, code] = (reported_at, message_id)
    return values, stamps


#: The newest events of a device read for its latest second: a reconnect and its log copies fit several times over.
#: ``purge`` keeps as many of each device's online and offline events (streams.store.retention).
NEWEST_ONLINE_EVENTS = 6


def latest_online_events(connection: Connection, device_ids: Iterable[str]) -> dict[str, OnlineEvent]:
    """Each device's latest online or offline event in the archive (``device_events``, before the batch), as the rules
    order them: its whole second (the stream times events so; backfill's log copies have milliseconds), and whether
    an online is among that second's events (an online wins a tie, as the archive's ``devices.online`` has it). Not
    ``devices.online_changed_at``: ``sync`` sets that to the time of Tuya's answer. Newest first through the
    (device, time) index, a device at a time: a device's history of events is not read."""
    table = DeviceEvent.__table__
    query = (
        select(table.c.occurred_at, table.c.event)
        .where(table.c.device_id == bindparam("device"), table.c.event.in_(("online", "offline")))
        .order_by(table.c.occurred_at.desc())
        .limit(NEWEST_ONLINE_EVENTS)
    )
    found: dict[str, OnlineEvent] = {}
    for device_id in sorted(device_ids):
        rows = connection.execute(query, {"device": device_id}).all()
        if rows:
            second = whole_second(rows[0][0])
            found[device_id] = (second, any(event == "online" for at, event in rows if whole_second(at) == second))
    return found


def shared_by_processors(connection: Connection) -> bool:
    """Whether other processes may write rule states while this transaction runs (PostgreSQL: scale-out's
    processors; SQLite lets one writer in at a time)."""
    return connection.dialect.name == "postgresql"


def lock_rule_cooldowns(connection: Connection, rule_ids: Sequence[str]) -> None:
    """Hold, until the transaction ends, a lock for each rule whose cooldown is the rule's (not a device's), so that
    a processor about to fire it waits for another's fire of it to commit, and then sees it. In ``rule_ids``' order:
    the callers sort them. PostgreSQL only (:func:`shared_by_processors`)."""
    for rule_id in rule_ids:
        key = int.from_bytes(hashlib.blake2b(rule_id.encode(), digest_size=8, person=b"cooldown").digest(), "big")
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key - (1 << 63)})


def rule_states(connection: Connection, subjects: Iterable[str] | None = None) -> dict[RuleStateKey, RuleState]:
    """Rule states of the given subjects (device ids, uids, '' for per-rule), or all of them."""
    table = RuleStateRow.__table__
    query = select(table.c.rule_id, table.c.device_id, table.c.last_fired_at, table.c.data)
    if subjects is None:
        rows = list(connection.execute(query))
    else:
        rows = []
        for chunk in _chunks(sorted(subjects)):
            rows.extend(connection.execute(query.where(table.c.device_id.in_(chunk))))
    return _states(rows)


def lock_rule_states(connection: Connection, keys: Iterable[RuleStateKey]) -> dict[RuleStateKey, RuleState]:
    """The states of ``keys`` as committed, locked until the transaction ends: a batch of another processor that is
    changing one is waited for. Rows are locked in (subject, rule) order, as :func:`save_rule_states` writes them, so
    that two transactions rarely wait for each other crosswise (PostgreSQL detects it, and one is retried)."""
    table = RuleStateRow.__table__
    query = select(table.c.rule_id, table.c.device_id, table.c.last_fired_at, table.c.data)
    query = query.order_by(table.c.device_id, table.c.rule_id).with_for_update()
    rows = []
    for chunk in _chunks(sorted(keys, key=_subject_first)):
        rows.extend(connection.execute(query.where(tuple_(table.c.rule_id, table.c.device_id).in_(chunk))))
    return _states(rows)


def _subject_first(key: RuleStateKey) -> tuple[str, str]:
    return key[1], key[0]


def _states(rows: Iterable[Any]) -> dict[RuleStateKey, RuleState]:
    states = (RuleState.from_row(row._mapping) for row in rows)
    return {(state.rule_id, state.device_id): state for state in states}


def save_rule_states(connection: Connection, changes: Mapping[RuleStateKey, RuleState], now: datetime) -> None:
    """Write an evaluation's state changes: empty states delete their row, others upsert it."""
    table = RuleStateRow.__table__
    ordered = sorted(changes.items(), key=lambda item: _subject_first(item[0]))  # as lock_rule_states locks them
    gone = [key for key, state in ordered if state.is_empty]
    for chunk in _chunks(gone):
        connection.execute(delete(table).where(tuple_(table.c.rule_id, table.c.device_id).in_(chunk)))
    rows = [{**state.to_row(), "updated_at": now} for _key, state in ordered if not state.is_empty]
    if not rows:
        return
    statement = _insert(connection, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.rule_id, table.c.device_id],
        set_={name: statement.excluded[name] for name in rows[0] if name not in ("rule_id", "device_id")},
    )
    connection.execute(statement, rows)


def insert_commands(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Add outbox rows; a row whose idempotency key exists (a redelivered trigger) is ignored."""
    if rows:
        statement = _insert(connection, Command.__table__).on_conflict_do_nothing(index_elements=["idempotency_key"])
        connection.execute(statement, list(rows))


def last_seen(connection: Connection) -> dict[str, DeviceSeen]:
    table = Device.__table__
    query = select(table.c.device_id, table.c.last_seen_at, table.c.product_key).where(table.c.deleted_at.is_(None))
    return {
        device_id: DeviceSeen(seen, product)
        for device_id, seen, product in connection.execute(query)
        if seen is not None
    }


def due_ids(
    connection: Connection, now: datetime, waits: Sequence[timedelta], limit: int = 100
) -> list[tuple[int, int, str | None]]:
    """Pending rows, oldest first, that are due, with their tries so far and the device a command row is for (None:
    a webhook or a log line): never tried, or tried ``n`` times and last finished ``waits[n]`` or longer ago (the
    last wait for more tries than ``waits`` names). A device's commands go in the order they were written: none is
    due while an older one of its device waits for its next try or is in flight (the older decision would land
    last)."""
    table = Command.__table__
    query = (
        select(table.c.id, table.c.action, table.c.device_id, table.c.status, table.c.attempts, table.c.updated_at)
        .where(table.c.status.in_(("pending", "in_flight")))
        .order_by(table.c.created_at, table.c.id)
    )
    due: list[tuple[int, int, str | None]] = []
    waiting: set[str] = set()  # devices with an older command waiting or in flight
    for command_id, action, device_id, status, attempts, finished in connection.execute(query):
        device = device_id if action == "tuya.send_command" else None
        if device is not None and device in waiting:
            continue
        if status == "in_flight" or (attempts and finished > now - waits[min(attempts, len(waits) - 1)]):
            if device is not None:
                waiting.add(device)
            continue
        due.append((command_id, attempts, device))
        if len(due) == limit:
            break
    return due


def claim(connection: Connection, command_id: int, attempts: int, now: datetime) -> Mapping[str, Any] | None:
    """Mark a pending command in flight (attempts + 1) and return it; None if another sender took it, or tried it
    since it was listed with ``attempts`` (its next try is not due then)."""
    table = Command.__table__
    claimed = connection.execute(
        update(table)
        .where(and_(table.c.id == command_id, table.c.status == "pending", table.c.attempts == attempts))
        .values(status="in_flight", attempts=table.c.attempts + 1, updated_at=now)
    )
    if claimed.rowcount != 1:
        return None
    return connection.execute(select(table).where(table.c.id == command_id)).one()._mapping


def in_flight(connection: Connection, claimed_before: datetime) -> list[Mapping[str, Any]]:
    """Commands claimed before ``claimed_before`` and still in flight: their sender died or lost the call."""
    table = Command.__table__
    query = select(table).where(and_(table.c.status == "in_flight", table.c.updated_at < claimed_before))
    return [row._mapping for row in connection.execute(query)]


def settle(connection: Connection, row: Mapping[str, Any], now: datetime, **values: Any) -> bool:
    """Finish an in-flight ``row`` unless it changed since it was read (its sender finished after all)."""
    table = Command.__table__
    settled = connection.execute(
        update(table)
        .where(and_(table.c.id == row["id"], table.c.status == "in_flight", table.c.updated_at == row["updated_at"]))
        .values(updated_at=now, **values)
    )
    return settled.rowcount == 1


def finish(connection: Connection, command_id: int, now: datetime, **values: Any) -> bool:
    """Record the outcome of a command in flight: status and, as known, tuya_tid, error_code, error, sent_at; False
    when it is no longer in flight (another sender settled it after its lease)."""
    table = Command.__table__
    statement = update(table).where(table.c.id == command_id, table.c.status == "in_flight")
    return connection.execute(statement.values(updated_at=now, **values)).rowcount == 1
