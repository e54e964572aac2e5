"""SQL of gaps and backfill: the ``gaps`` rows, the checkpoints, the worker's consumption time, and log rows.

Owns every statement on ``gaps``, ``backfill_progress`` and ``consumers``, and how a page of Tuya's device log is
stored: status values into ``device_status`` and online/offline into ``device_events`` with ``source = 'log'``,
keyed ``log:<device>:<ms>:<code>`` so that a rerun adds nothing; a value the stream already archived (same device,
code and time to the millisecond; for an online or offline event, the same second) is skipped; ``device_state``
and ``devices.online`` move only for a newer value. The page's checkpoint is written in the same transaction as
its rows, so a crash repeats at most one page, which these rules absorb. The same rules the other way round say
which of the stream's records a backfill already stored from the log (:func:`logged_copies`: ``replay
--dead-letters`` of messages whose values were backfilled meanwhile). SQLAlchemy Core; volumes of a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection, Row

from models import records
from models.tables import BackfillProgress, Consumer, Device, DeviceEvent, DeviceState, DeviceStatus, Gap
from streams.store.dialect import chunks, insert
from streams.store.fleet import state_upsert
from streams.store.row_writer import RowWriter
from streams.store.rows import json_text

__all__ = [
    "AskedDevices",
    "LogEvent",
    "LogValue",
    "asked_devices",
    "consumed_at",
    "devices_to_backfill",
    "find_gap",
    "gap",
    "gaps",
    "logged_copies",
    "open_gaps",
    "progress",
    "record_gap",
    "save_consumed",
    "save_log_page",
    "save_unanswered",
    "stream_pushed",
    "stream_values",
    "unfilled_gaps",
    "update_gap",
]

_GAPS = Gap.__table__
_PROGRESS = BackfillProgress.__table__
_CONSUMERS = Consumer.__table__
_STATUS = DeviceStatus.__table__
_EVENTS = DeviceEvent.__table__
_DEVICES = Device.__table__
_STATE = DeviceState.__table__


@dataclass(frozen=True, slots=True)
class LogValue:
    """A data-point value from a device log, converted to its type."""

    code: str
    value: Any
    dp_id: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class LogEvent:
    """An online or offline row of a device log."""

    event: str
    at: datetime
    data: dict[str, Any]


# --- the worker's consumption time ----------------------------------------------------------------------------------


def consumed_at(connection: Connection, subscription: str) -> datetime | None:
    return connection.scalar(select(_CONSUMERS.c.consumed_at).where(_CONSUMERS.c.subscription == subscription))


def save_consumed(connection: Connection, subscription: str, at: datetime, pushed: datetime | None) -> None:
    """The worker consumed at ``at``, and the stream up to push time ``pushed`` (None: not known yet, which keeps the
    stored one): both only grow."""
    statement = insert(connection, _CONSUMERS)
    stored, incoming = _CONSUMERS.c, statement.excluded
    later = func.max if connection.dialect.name == "sqlite" else func.greatest
    # SQLite's max() of a NULL is NULL: each side falls back to the other, so a NULL never erases a time.
    furthest = later(
        func.coalesce(stored.pushed_at, incoming.pushed_at), func.coalesce(incoming.pushed_at, stored.pushed_at)
    )
    statement = statement.on_conflict_do_update(
        index_elements=[stored.subscription],
        set_={"consumed_at": later(stored.consumed_at, incoming.consumed_at), "pushed_at": furthest},
    )
    connection.execute(statement, {"subscription": subscription, "consumed_at": at, "pushed_at": pushed})


def stream_pushed(connection: Connection) -> datetime | None:
    """How far the stream has been consumed, as a push time (streams.backfill.watch), or None (no worker yet)."""
    return connection.scalar(select(func.max(_CONSUMERS.c.pushed_at)))


# --- gaps ------------------------------------------------------------------------------------------------------------


def record_gap(connection: Connection, started: datetime, ended: datetime, at: datetime, *, origin: str) -> int:
    """A new gap (or the unfilled one of the same stretch), open; returns its id."""
    known = find_gap(connection, started, ended)
    if known is not None:
        return known
    values = {"started_at": started, "ended_at": ended, "detected_at": at, "status": "open", "origin": origin}
    result = connection.execute(_GAPS.insert().values(updated_at=at, **values).returning(_GAPS.c.id))
    return int(result.scalar_one())


def find_gap(connection: Connection, started: datetime, ended: datetime) -> int | None:
    """The gap of exactly this stretch that is not filled yet."""
    query = select(_GAPS.c.id).where(
        _GAPS.c.started_at == started, _GAPS.c.ended_at == ended, _GAPS.c.status != "filled"
    )
    return connection.scalar(query.order_by(_GAPS.c.id))


def gap(connection: Connection, gap_id: int) -> Row[Any] | None:
    return connection.execute(select(_GAPS).where(_GAPS.c.id == gap_id)).one_or_none()


def gaps(connection: Connection) -> list[Row[Any]]:
    """Every gap, newest first."""
    return list(connection.execute(select(_GAPS).order_by(_GAPS.c.started_at.desc(), _GAPS.c.id.desc())))


def open_gaps(connection: Connection) -> list[int]:
    """Gaps a backfill should (still) fill: open, or backfilling (a run was interrupted); oldest first."""
    query = select(_GAPS.c.id).where(_GAPS.c.status.in_(("open", "backfilling")))
    return list(connection.scalars(query.order_by(_GAPS.c.started_at, _GAPS.c.id)))


def unfilled_gaps(connection: Connection) -> int:
    """How many gaps are not filled (yet): open, backfilling, or partly filled (the worker leaves those to a person);
    what ``tuya_gaps_open`` shows, as ``tuya-archiver gaps`` counts them."""
    return int(connection.scalar(select(func.count()).select_from(_GAPS).where(_GAPS.c.status != "filled")) or 0)


def update_gap(connection: Connection, gap_id: int, at: datetime, *, add_calls: int = 0, **values: Any) -> None:
    """Set the gap's ``values``; ``add_calls``: OpenAPI calls made for it that no stored page counted."""
    statement = update(_GAPS).where(_GAPS.c.id == gap_id)
    connection.execute(statement.values(updated_at=at, calls=_GAPS.c.calls + add_calls, **values))


# --- what to backfill, and where it stands -------------------------------------------------------------------------


#: A device ``sync`` never listed is read when the stream showed it this long before a window, or since: one paired
#: after the last sync. One heard of only before then may have left the project, and costs a call a gap.
HEARD_WITHIN = timedelta(days=7)


def devices_to_backfill(connection: Connection, since: datetime) -> list[str]:
    """The devices whose log to read: those ``sync`` listed and those the stream showed since HEARD_WITHIN before
    ``since`` (or, before any sync, every device the archive knows), without the ones deleted before ``since``. Of
    devices a person named, :func:`asked_devices` says which."""
    alive = or_(_DEVICES.c.deleted_at.is_(None), _DEVICES.c.deleted_at >= since)
    query = select(_DEVICES.c.device_id).where(alive)
    if connection.scalar(select(func.count()).select_from(_DEVICES).where(_DEVICES.c.synced_at.is_not(None))):
        heard = _DEVICES.c.last_seen_at >= since - HEARD_WITHIN
        query = query.where(or_(_DEVICES.c.synced_at.is_not(None), heard))
    return list(connection.scalars(query.order_by(_DEVICES.c.device_id)))


@dataclass(frozen=True, slots=True)
class AskedDevices:
    """Devices a person asked a backfill for, sorted by what it can do with them (each list in id order)."""

    readable: list[str]  # alive from where the reading starts
    too_late: list[str]  # alive in the window, but deleted before the reading starts (where Tuya's logs begin)
    unknown: list[str]  # not in the archive, or deleted before the window


def asked_devices(
    connection: Connection, devices: Sequence[str], window_start: datetime, read_from: datetime
) -> AskedDevices:
    """Sort ``devices`` for a backfill of a window from ``window_start``, read from ``read_from`` (the later of the
    two: the window cut where Tuya's logs begin), as :func:`devices_to_backfill` would take them."""
    query = select(_DEVICES.c.device_id, _DEVICES.c.deleted_at).where(_DEVICES.c.device_id.in_(list(devices)))
    deleted_at = {device_id: at for device_id, at in connection.execute(query)}
    asked = AskedDevices([], [], [])
    for device_id in sorted(set(devices)):
        known, at = device_id in deleted_at, deleted_at.get(device_id)
        if known and (at is None or at >= read_from):
            asked.readable.append(device_id)
        elif known and at >= window_start:
            asked.too_late.append(device_id)
        else:
            asked.unknown.append(device_id)
    return asked


def progress(connection: Connection, gap_id: int) -> dict[str, Row[Any]]:
    """The gap's checkpoints by device."""
    rows = connection.execute(select(_PROGRESS).where(_PROGRESS.c.gap_id == gap_id))
    return {row.device_id: row for row in rows}


def _save_progress(
    connection: Connection,
    gap_id: int,
    device_id: str,
    at: datetime,
    *,
    cursor: str | None,
    done: bool,
    added: int,
    calls: int,
) -> None:
    statement = insert(connection, _PROGRESS)
    stored, incoming = _PROGRESS.c, statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[stored.gap_id, stored.device_id],
        set_={
            "done": incoming.done,
            "cursor": incoming.cursor,
            "rows_added": stored.rows_added + incoming.rows_added,
            "calls": stored.calls + incoming.calls,
            "updated_at": incoming.updated_at,
        },
    )
    row = {"gap_id": gap_id, "device_id": device_id, "done": done, "cursor": cursor}
    connection.execute(statement, {**row, "rows_added": added, "calls": calls, "updated_at": at})


def save_unanswered(connection: Connection, gap_id: int, device_id: str, at: datetime, *, calls: int) -> None:
    """A device whose log did not answer: its checkpoint says it was tried (where it stood stays), and the gap counts
    the ``calls`` it cost."""
    statement = insert(connection, _PROGRESS)
    stored, incoming = _PROGRESS.c, statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[stored.gap_id, stored.device_id],
        set_={"calls": stored.calls + incoming.calls, "updated_at": incoming.updated_at},
    )
    row = {"gap_id": gap_id, "device_id": device_id, "done": False, "cursor": None, "rows_added": 0}
    connection.execute(statement, {**row, "calls": calls, "updated_at": at})
    connection.execute(update(_GAPS).where(_GAPS.c.id == gap_id).values(calls=_GAPS.c.calls + calls, updated_at=at))


# --- a page of a device log ----------------------------------------------------------------------------------------


def save_log_page(
    connection: Connection,
    gap_id: int,
    device_id: str,
    values: Sequence[LogValue],
    events: Sequence[LogEvent],
    *,
    cursor: str | None,
    done: bool,
    at: datetime,
    calls: int,
) -> int:
    """Store one page's rows and its checkpoint, with the OpenAPI ``calls`` made since the last one (the token's and
    retries included, as the quota counts them); returns the rows added (values and events)."""
    added = _save_values(connection, device_id, values) + _save_events(connection, device_id, events)
    _save_progress(connection, gap_id, device_id, at, cursor=cursor, done=done, added=added, calls=calls)
    connection.execute(
        update(_GAPS)
        .where(_GAPS.c.id == gap_id)
        .values(rows_added=_GAPS.c.rows_added + added, calls=_GAPS.c.calls + calls, updated_at=at)
    )
    return added


def _archived(
    connection: Connection, device_id: str, column: Any, since: datetime, until: datetime
) -> set[tuple[Any, ...]]:
    """(code or event, time) of the rows the archive already has for the device from ``since`` to ``until``."""
    return {(name, moment) for _, name, moment in _rows(connection, column, [device_id], since, until)}


def logged_copies(connection: Connection, stream: Sequence[records.Record]) -> list[bool]:
    """For each of the stream's records, whether a backfill already stored it from the device log: a status value
    of the same device, code and time, an event of the same device and kind in the same second (the rules by which
    a log page skips what the stream stored). Other records are never copies. Two queries (for up to a chunk of
    devices), whatever the records' number."""
    keys = [_logged_key(record) for record in stream]
    moments = [key[2] for key in keys if key is not None]
    if not moments:
        return [False] * len(stream)
    since, until = _second(min(moments)), max(moments) + timedelta(seconds=1)
    logged: set[tuple[str, Any, datetime]] = set()
    for devices in chunks(sorted({key[0] for key in keys if key is not None})):
        logged.update(_rows(connection, _STATUS.c.code, devices, since, until, source="log"))
        events = _rows(connection, _EVENTS.c.event, devices, since, until, source="log")
        logged.update((device_id, event, _second(at)) for device_id, event, at in events)
    return [key is not None and key in logged for key in keys]


def _rows(
    connection: Connection,
    column: Any,
    devices: Sequence[str],
    since: datetime,
    until: datetime,
    *,
    source: str | None = None,
) -> list[tuple[str, Any, datetime]]:
    """(device, code or event, time) of the history rows (``column``'s table: status values or device events) of
    ``devices`` from ``since`` to ``until``; of ``source`` only, when given."""
    table = column.table
    at = table.c.reported_key if table is _STATUS else table.c.occurred_at
    query = select(table.c.device_id, column, at).where(table.c.device_id.in_(list(devices)), at >= since, at <= until)
    if source is not None:
        query = query.where(table.c.source == source)
    return [(device_id, name, moment) for device_id, name, moment in connection.execute(query)]


def _logged_key(record: records.Record) -> tuple[str, Any, datetime] | None:
    if type(record) is records.StatusReported and record.code is not None:
        return (record.device_id, record.code, record.reported_at)
    if type(record) is records.DeviceEvent:
        return (record.device_id, record.event, _second(record.occurred_at))
    return None


def stream_values(connection: Connection, device_id: str) -> dict[str, Any]:
    """The device's latest value of each code as the stream sent it (``device_state``): the types a log value takes
    where no specification says."""
    query = select(_STATE.c.code, _STATE.c.value).where(_STATE.c.device_id == device_id, _STATE.c.source == "stream")
    return {code: value for code, value in connection.execute(query)}


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _key(device_id: str, at: datetime, name: str) -> str:
    return f"log:{device_id}:{int(at.timestamp() * 1000)}:{name}"


def _save_values(connection: Connection, device_id: str, values: Sequence[LogValue]) -> int:
    if not values:
        return 0
    times = [value.at for value in values]
    known = _archived(connection, device_id, _STATUS.c.code, min(times), max(times))
    fresh = {(v.code, v.at): v for v in values if (v.code, v.at) not in known}
    if not fresh:
        return 0
    rows = [
        (_key(device_id, v.at, v.code), 0, device_id, v.code, json_text(v.value), v.dp_id, v.at, None)
        for v in fresh.values()
    ]
    RowWriter(connection).insert_status(rows, stored="skip", source="log")
    newest: dict[str, LogValue] = {}
    for value in fresh.values():
        if value.code not in newest or value.at > newest[value.code].at:
            newest[value.code] = value
    state = [
        {"device_id": device_id, "code": v.code, "value": v.value, "dp_id": v.dp_id, "reported_at": v.at}
        | {"message_id": _key(device_id, v.at, v.code), "source": "log"}
        for v in newest.values()
    ]
    connection.execute(state_upsert(connection), state)
    return len(rows)


def _save_events(connection: Connection, device_id: str, events: Sequence[LogEvent]) -> int:
    if not events:
        return 0
    # The stream times an online or offline event by bizData.time, in whole seconds as a rule (SPEC.md §3.5), the
    # log to the millisecond: the stream's event is the log's of the same kind in the same second.
    since, until = _second(min(e.at for e in events)), _second(max(e.at for e in events)) + timedelta(seconds=1)
    known = {(name, _second(at)) for name, at in _archived(connection, device_id, _EVENTS.c.event, since, until)}
    fresh = {(e.event, e.at): e for e in events if (e.event, _second(e.at)) not in known}
    if not fresh:
        return 0
    rows = [
        {"message_id": _key(device_id, e.at, e.event), "device_id": device_id, "event": e.event, "biz_code": "log"}
        | {"protocol": 0, "occurred_at": e.at, "data": e.data, "source": "log"}
        for e in fresh.values()
    ]
    connection.execute(insert(connection, _EVENTS).on_conflict_do_nothing(), rows)
    # The newest event decides, online winning a tie (streams.store.statements, device_online_periods).
    last = max(fresh.values(), key=lambda event: (event.at, event.event == "online"))
    stored = _DEVICES.c.online_changed_at
    newer = or_(stored.is_(None), stored <= last.at if last.event == "online" else stored < last.at)
    connection.execute(
        update(_DEVICES)
        .where(and_(_DEVICES.c.device_id == device_id, newer))
        .values(online=last.event == "online", online_changed_at=last.at)
    )
    return len(rows)
