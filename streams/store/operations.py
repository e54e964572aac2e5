"""The questions of whoever runs the archive: what failed to decode, what was lost and backfilled, what the rules
did, what the outbox still holds, and how far behind the stream the archive is.

Owns the read queries behind the web view's operations page (``serve``): dead letters by ``error_kind``, gaps and
their backfill, commands by status and by rule, the rules' last firing (``rule_state``), the newest message. Each
is an aggregate or a short, ordered, limited list, on indexed columns where the table can grow (``messages`` by
``received_at``, ``commands`` by status). Never writes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.engine import Connection

from models.tables import Command, DeadLetter, Gap, Message, RuleState
from streams.store.query import COMMAND_COLUMNS

__all__ = [
    "DEAD_LETTER_COLUMNS",
    "GAP_COLUMNS",
    "OPEN_STATUSES",
    "RuleActivity",
    "dead_letter_kinds",
    "gap_counts",
    "newest_message",
    "open_commands",
    "outbox_counts",
    "recent_dead_letters",
    "recent_gaps",
    "rule_activity",
]

#: The commands the outbox still has to deal with, or gave up on.
OPEN_STATUSES = ("pending", "in_flight", "failed")
DEAD_LETTER_COLUMNS = ("received_at", "error_kind", "error", "topic", "message_id", "resolved_at", "resolution")
GAP_COLUMNS = ("id", "started_at", "ended_at", "status", "reason", "rows_added", "calls", "origin", "updated_at")

RuleActivity = dict[str, dict[str, Any]]


def dead_letter_kinds(connection: Connection) -> list[Row[Any]]:
    """Per ``error_kind``: count, unresolved (not yet replayed), newest received_at; the commonest first."""
    unresolved = func.count() - func.count(DeadLetter.resolved_at)
    query = (
        select(
            DeadLetter.error_kind,
            func.count().label("count"),
            unresolved.label("unresolved"),
            func.max(DeadLetter.received_at).label("newest"),
        )
        .group_by(DeadLetter.error_kind)
        .order_by(func.count().desc(), DeadLetter.error_kind)
    )
    return list(connection.execute(query))


def recent_dead_letters(connection: Connection, limit: int = 20) -> list[Row[Any]]:
    """The newest ``limit`` dead letters, newest first, with the size of the raw payload (``bytes``), not itself."""
    columns = [getattr(DeadLetter, name) for name in DEAD_LETTER_COLUMNS]
    size = func.length(DeadLetter.payload).label("bytes")
    query = select(*columns, size).order_by(DeadLetter.received_at.desc()).limit(limit)
    return list(connection.execute(query))


def gap_counts(connection: Connection) -> list[Row[Any]]:
    """Per gap status: count, rows_added (by their backfills)."""
    query = (
        select(Gap.status, func.count().label("count"), func.coalesce(func.sum(Gap.rows_added), 0).label("rows_added"))
        .group_by(Gap.status)
        .order_by(Gap.status)
    )
    return list(connection.execute(query))


def recent_gaps(connection: Connection, limit: int = 50) -> list[Row[Any]]:
    """The newest ``limit`` gaps by start, newest first; columns GAP_COLUMNS."""
    columns = [getattr(Gap, name) for name in GAP_COLUMNS]
    return list(connection.execute(select(*columns).order_by(Gap.started_at.desc(), Gap.id.desc()).limit(limit)))


def outbox_counts(connection: Connection) -> dict[str, int]:
    """How many commands are in each status (statuses with none are left out)."""
    rows = connection.execute(select(Command.status, func.count()).group_by(Command.status))
    return {status: count for status, count in rows}


def open_commands(connection: Connection, limit: int = 50) -> list[Row[Any]]:
    """The newest ``limit`` commands pending, in flight or failed, newest first; COMMAND_COLUMNS."""
    columns = [getattr(Command, name) for name in COMMAND_COLUMNS]
    query = (
        select(*columns)
        .where(Command.status.in_(OPEN_STATUSES))
        .order_by(Command.created_at.desc(), Command.id.desc())
        .limit(limit)
    )
    return list(connection.execute(query))


def rule_activity(connection: Connection) -> RuleActivity:
    """Per rule id: ``commands`` (how many), ``last_command_at`` (the newest's creation), ``last_fired_at`` (its
    newest firing in ``rule_state``, over all devices)."""
    activity: RuleActivity = {}
    commands = select(Command.rule_id, func.count(), func.max(Command.created_at)).group_by(Command.rule_id)
    for rule_id, count, newest in connection.execute(commands):
        activity[rule_id] = {"commands": count, "last_command_at": newest, "last_fired_at": None}
    fired = select(RuleState.rule_id, func.max(RuleState.last_fired_at)).group_by(RuleState.rule_id)
    for rule_id, last_fired in connection.execute(fired):
        entry = activity.setdefault(rule_id, {"commands": 0, "last_command_at": None, "last_fired_at": None})
        entry["last_fired_at"] = last_fired
    return activity


def newest_message(connection: Connection) -> Row[Any] | None:
    """The newest message by arrival (its index): received_at, pushed_at; None for an archive without messages."""
    query = select(Message.received_at, Message.pushed_at).order_by(Message.received_at.desc()).limit(1)
    return connection.execute(query).first()
