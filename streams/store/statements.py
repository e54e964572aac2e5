"""The SQL text of the batch store: idempotent inserts and "newer wins" upserts, for SQLite and PostgreSQL.

Owns every ON CONFLICT clause. The clauses are the same on both databases (SQLite ≥ 3.24 and PostgreSQL both have
``INSERT … ON CONFLICT … DO UPDATE … WHERE`` with ``excluded``); only the row source differs: ``VALUES`` for SQLite's
executemany; for PostgreSQL, binary ``COPY`` into the table itself, or into a temporary stage table that one
``INSERT … SELECT … ON CONFLICT`` then moves over. Builds text only: runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary

from models.tables import Base, UtcDateTime
from streams.store.facts import DEVICE_COLUMNS, DEVICE_SEEN_COLUMNS, USER_COLUMNS
from streams.store.rows import (
    DEAD_LETTER_COLUMNS,
    DEVICE_EVENT_COLUMNS,
    DEVICE_STATE_COLUMNS,
    MESSAGE_COLUMNS,
    USER_EVENT_COLUMNS,
)

__all__ = [
    "DEAD_LETTERS",
    "DEVICES",
    "DEVICES_SEEN",
    "DEVICE_EVENTS",
    "DEVICE_STATE",
    "MESSAGES",
    "SQLITE_MILLIS",
    "STATUS_MESSAGES",
    "STATUS_RECENT",
    "STATUS_SERIES",
    "STATUS_VALUES",
    "USERS",
    "USER_EVENTS",
    "Target",
    "postgres_copy",
    "postgres_copy_types",
    "postgres_from_stage",
    "postgres_stage",
    "sqlite_insert",
]


@dataclass(frozen=True, slots=True)
class Target:
    """A table, the columns a row tuple fills (in order) and what a row whose key exists does. ``times``: columns
    of the history's times (models.tables.HISTORY_TIME), which SQLite keeps as milliseconds: rows carry them as
    every time, and SQLite's statement converts them (:data:`SQLITE_MILLIS`)."""

    table: str
    columns: tuple[str, ...]
    on_conflict: str
    times: tuple[str, ...] = ()


#: A time parameter in SQLite's text form as whole milliseconds since the epoch: julianday() reads the text to the
#: millisecond and keeps it exactly.
SQLITE_MILLIS = "CAST(ROUND((julianday(?) - 2440587.5) * 86400000.0) AS INTEGER)"


def _newer(table: str, stamp: str) -> str:
    return f"excluded.{stamp} IS NOT NULL AND ({table}.{stamp} IS NULL OR excluded.{stamp} > {table}.{stamp})"


def _newest(table: str, stamp: str) -> str:
    return f"CASE WHEN {_newer(table, stamp)} THEN excluded.{stamp} ELSE {table}.{stamp} END"


def _if_newer(table: str, stamp: str, *columns: str) -> list[str]:
    """Take ``columns`` (and ``stamp``) from the new row only when its ``stamp`` is set and later than the stored."""
    return [f"{c} = CASE WHEN {_newer(table, stamp)} THEN excluded.{c} ELSE {table}.{c} END" for c in (*columns, stamp)]


# A device deleted and bound again (re-paired) is not deleted: deleted_at is the newest delete unless a bind as new
# or newer follows it (streams.store.facts applies the same rule within a batch; a tie is a re-pairing there too),
# or a listing answered after it (synced_at: the delete the stream delivers late, after the sync, is over too).
_DELETED_AT = (
    f"deleted_at = CASE WHEN {_newest('devices', 'owner_updated_at')} >= {_newest('devices', 'deleted_at')} "
    f"OR devices.synced_at >= {_newest('devices', 'deleted_at')} THEN NULL ELSE {_newest('devices', 'deleted_at')} END"
)


def _set(assignments: list[str]) -> str:
    return "DO UPDATE SET " + ", ".join(assignments)


# A late report (older than the stored one) leaves the latest state alone; it is still stored in device_status.
# Equal times: the greater message id wins, so the result does not depend on arrival order.
_DEVICE_STATE_UPSERT = (
    "ON CONFLICT (device_id, code) DO UPDATE SET value = excluded.value, dp_id = excluded.dp_id, "
    "reported_at = excluded.reported_at, message_id = excluded.message_id, source = excluded.source "
    "WHERE excluded.reported_at > device_state.reported_at OR "
    "(excluded.reported_at = device_state.reported_at AND excluded.message_id > device_state.message_id)"
)

# What a row that only says the device reported can change (the other assignments keep the stored values when the
# new row's times are NULL): the whole upsert of such a row (DEVICES_SEEN), and part of every device row's.
_DEVICE_REPORTED = [
    # The stream fills it in; a product changes with a re-pairing, which sync reads (a late message keeps its old one)
    "product_key = COALESCE(devices.product_key, excluded.product_key)",
    _DELETED_AT,
    "first_seen_at = CASE WHEN excluded.first_seen_at < devices.first_seen_at "
    "THEN excluded.first_seen_at ELSE devices.first_seen_at END",
    "last_seen_at = CASE WHEN excluded.last_seen_at > devices.last_seen_at "
    "THEN excluded.last_seen_at ELSE devices.last_seen_at END",
    # Idempotent because only messages not stored before are counted (streams.store.sql).
    "report_count = devices.report_count + excluded.report_count",
]

# Online wins a tie with offline (the stream times these events in whole seconds, and a reconnect is often reported
# offline and online within one second, in either order); device_online_periods orders them the same way.
_ONLINE = (
    f"online = CASE WHEN {_newer('devices', 'online_changed_at')} THEN excluded.online "
    "WHEN excluded.online_changed_at = devices.online_changed_at THEN devices.online OR excluded.online "
    "ELSE devices.online END"
)

_DEVICES_UPSERT = "ON CONFLICT (device_id) " + _set(
    [
        *_if_newer("devices", "name_updated_at", "name"),
        _ONLINE,
        *_if_newer("devices", "online_changed_at"),
        *_if_newer("devices", "owner_updated_at", "owner_uid"),
        *_DEVICE_REPORTED,
    ]
)

_USERS_UPSERT = "ON CONFLICT (uid) " + _set(
    [
        *_if_newer("users", "registered_at"),
        *_if_newer("users", "deleted_at"),
        *_if_newer("users", "updated_at", "data"),
    ]
)

MESSAGES = Target("messages", MESSAGE_COLUMNS, "ON CONFLICT (message_id) DO NOTHING")
# The history's narrow format (streams.store.history): a key for each series and each message, a row a value.
# Without a conflict target: a series also conflicts on its partial index (the device's unnamed series).
STATUS_SERIES = Target("status_series", ("device_id", "code"), "ON CONFLICT DO NOTHING")
STATUS_MESSAGES = Target(
    "status_messages",
    ("message_key", "message_id", "data_id", "device_id", "first_at", "last_at", "source"),
    "ON CONFLICT (message_id) DO NOTHING",
    times=("first_at", "last_at"),
)
STATUS_VALUES = Target(
    "status_values",
    ("series_id", "reported_at", "message_key", "item_index", "value", "dp_id"),
    "ON CONFLICT (series_id, reported_at, message_key, item_index) DO NOTHING",
    times=("reported_at",),
)
# Where the worker's new values wait until settled into status_values (streams.store.settle): the same columns and key.
STATUS_RECENT = Target("status_recent", STATUS_VALUES.columns, STATUS_VALUES.on_conflict, STATUS_VALUES.times)
DEVICE_EVENTS = Target("device_events", DEVICE_EVENT_COLUMNS, "ON CONFLICT (message_id) DO NOTHING")
USER_EVENTS = Target("user_events", USER_EVENT_COLUMNS, "ON CONFLICT (message_id) DO NOTHING")
DEAD_LETTERS = Target("dead_letters", DEAD_LETTER_COLUMNS, "ON CONFLICT (message_id) DO NOTHING")
DEVICE_STATE = Target("device_state", DEVICE_STATE_COLUMNS, _DEVICE_STATE_UPSERT)
DEVICES = Target("devices", DEVICE_COLUMNS, _DEVICES_UPSERT)
# The devices whose rows only say they reported (streams.store.facts.seen_only): SQLite's upsert of them
# (streams.store.drivers.sqlite_upserts says why).
DEVICES_SEEN = Target("devices", DEVICE_SEEN_COLUMNS, "ON CONFLICT (device_id) " + _set(_DEVICE_REPORTED))
USERS = Target("users", USER_COLUMNS, _USERS_UPSERT)


@cache
def sqlite_insert(target: Target) -> str:
    """For ``executemany`` with one tuple per row."""
    marks = ", ".join(SQLITE_MILLIS if column in target.times else "?" for column in target.columns)
    return f"INSERT INTO {target.table} ({', '.join(target.columns)}) VALUES ({marks}) {target.on_conflict}"


def _copy_type(table: str, column: str) -> str:
    """The type psycopg sends a column as in binary COPY: JSON and strings go as text, which the server's json and
    varchar receive functions read as is (so JSON text encoded once by msgspec is not encoded again)."""
    type_ = Base.metadata.tables[table].c[column].type
    if isinstance(type_, Boolean):
        return "bool"
    if isinstance(type_, BigInteger):
        return "int8"
    if isinstance(type_, Integer):
        return "int4"
    if isinstance(type_, UtcDateTime):
        return "timestamptz"
    if isinstance(type_, LargeBinary):
        return "bytea"
    return "text"


@cache
def postgres_copy_types(target: Target) -> list[str]:
    return [_copy_type(target.table, column) for column in target.columns]


@cache
def postgres_copy(target: Target, *, staged: bool = False) -> str:
    """Binary COPY straight into the table (rows known to be new) or into its stage table."""
    table = f"stage_{target.table}" if staged else target.table
    return f"COPY {table} ({', '.join(target.columns)}) FROM STDIN (FORMAT BINARY)"


@cache
def postgres_stage(target: Target) -> str:
    """A session's stage table for ``target``: emptied at each commit, gone with a rollback that created it.

    The table's columns without its constraints or defaults (only ``target.columns`` move on): a default of the
    table's sequence (``status_messages.message_key``) would make every writer's session depend on it, and a
    migration could not drop the table while a worker is connected."""
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS stage_{target.table} ON COMMIT DELETE ROWS "
        f"AS SELECT * FROM {target.table} WITH NO DATA"
    )


@cache
def postgres_from_stage(target: Target, returning: str | None = None) -> str:
    """Move the staged rows into the table through its ON CONFLICT clause."""
    columns = ", ".join(target.columns)
    statement = (
        f"INSERT INTO {target.table} ({columns}) SELECT {columns} FROM stage_{target.table} {target.on_conflict}"
    )
    return f"{statement} RETURNING {returning}" if returning else statement
