"""How rows reach each database on the hot path: prepared tuples handed straight to the DBAPI driver.

Owns the per-dialect mechanics (PERFORMANCE.md: SQLAlchemy Core per-row processing costs 2.5×, DateTime columns
double it): SQLite gets ``executemany`` of UTC time text; PostgreSQL gets binary ``COPY``, straight into the table
for rows known to be new, through a stage table for upserts and for the tolerant retry. Runs inside the caller's
transaction on its raw cursor; never commits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from streams.store.facts import seen_only
from streams.store.rows import TimeFormat, json_text, sqlite_time
from streams.store.statements import (
    DEVICES,
    DEVICES_SEEN,
    SQLITE_MILLIS,
    STATUS_SERIES,
    Target,
    postgres_copy,
    postgres_copy_types,
    postgres_from_stage,
    postgres_stage,
    sqlite_insert,
)

if TYPE_CHECKING:  # a SQLite archive's processes never load psycopg (and libpq): about 10 MB each
    import psycopg

__all__ = ["Driver", "KeyConflict", "PostgresDriver", "SqliteDriver", "TextRejected", "sqlite_upserts", "time_format"]

Rows = Iterable[tuple[Any, ...]]  # a list, or made as they are written


class KeyConflict(Exception):
    """A COPY met a row whose key exists (another writer, or history kept past a purge): retry tolerantly."""


class TextRejected(Exception):
    """PostgreSQL refused a text value (a NUL character from a device's payload): retry with clean_text."""


class Driver(Protocol):
    time: TimeFormat

    def existing(self, cursor: Any, table: str, ids: Sequence[str]) -> set[str]: ...

    def status_message_keys(self, cursor: Any, ids: Sequence[str]) -> dict[str, int]: ...

    def next_message_keys(self, cursor: Any, count: int) -> Sequence[int]: ...

    def series_ids(self, cursor: Any, device_ids: Sequence[str]) -> dict[tuple[str, str | None], int]: ...

    def highest_series_id(self, cursor: Any) -> int: ...

    def restate_status_messages(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """(data id, device, first, last, message key): each message's data id and device as derived now, and its
        times widened to hold values timed ``first`` … ``last``."""
        ...

    def insert_returning(self, cursor: Any, target: Target, rows: Rows, column: str) -> set[Any] | None: ...

    def insert(self, cursor: Any, target: Target, rows: Rows) -> None: ...

    def upsert(self, cursor: Any, target: Target, rows: Rows) -> None: ...


class SqliteDriver:
    """``executemany`` on the sqlite3 cursor, inside a ``BEGIN IMMEDIATE`` transaction (streams.store.engine).

    The write lock is held from the first statement, so the look-up of stored message ids is exact; the ON CONFLICT
    clauses still guard history rows that outlived their ``messages`` row (per-table retention).
    """

    time = staticmethod(sqlite_time)

    def existing(self, cursor: sqlite3.Cursor, table: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        # One JSON parameter instead of one per id: no limit on the number of SQL variables.
        cursor.execute(
            f"SELECT message_id FROM {table} WHERE message_id IN (SELECT value FROM json_each(?))", (json_text(ids),)
        )
        return {row[0] for row in cursor.fetchall()}

    def status_message_keys(self, cursor: sqlite3.Cursor, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        cursor.execute(_SQLITE_MESSAGE_KEYS, (json_text(ids),))
        return dict(cursor.fetchall())

    def next_message_keys(self, cursor: sqlite3.Cursor, count: int) -> Sequence[int]:
        # Exact: the transaction holds the write lock from its first statement.
        (top,) = cursor.execute("SELECT COALESCE(MAX(message_key), 0) FROM status_messages").fetchone()
        return range(top + 1, top + 1 + count)

    def series_ids(self, cursor: sqlite3.Cursor, device_ids: Sequence[str]) -> dict[tuple[str, str | None], int]:
        cursor.execute(_SQLITE_SERIES, (json_text(device_ids),))
        return {(device_id, code): series_id for series_id, device_id, code in cursor.fetchall()}

    def highest_series_id(self, cursor: sqlite3.Cursor) -> int:
        return cursor.execute(_HIGHEST_SERIES_ID).fetchone()[0]

    def restate_status_messages(self, cursor: sqlite3.Cursor, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor.executemany(_RESTATE.format(earlier="MIN", later="MAX", at=SQLITE_MILLIS, p="?"), rows)

    def insert_returning(self, cursor: sqlite3.Cursor, target: Target, rows: Rows, column: str) -> set[Any] | None:
        """Insert; None: every row was new (the write lock makes the caller's look-up of stored keys exact)."""
        self.insert(cursor, target, rows)
        return None

    def insert(self, cursor: sqlite3.Cursor, target: Target, rows: Rows) -> None:
        if rows:
            cursor.executemany(sqlite_insert(target), rows)

    def upsert(self, cursor: sqlite3.Cursor, target: Target, rows: Rows) -> None:
        for statement, statement_rows in sqlite_upserts(target, rows):
            self.insert(cursor, statement, statement_rows)


def sqlite_upserts(target: Target, rows: Rows) -> list[tuple[Target, Rows]]:
    """The statements SQLite's upsert of ``rows`` into ``target`` runs, with their rows.

    Most device rows only say that the device reported, and SQLite evaluates every assignment of an upsert for each
    row: theirs (DEVICES_SEEN) has five of twelve, 2.7-3.4 µs a message against 5.3-6.3 (issue 17). PostgreSQL gains
    nothing from it (a row's cost there is its new version) and keeps one statement, so that concurrent writers lock
    devices in key order.
    """
    if target is not DEVICES:
        return [(target, rows)]
    seen, told = seen_only(rows)
    return [(DEVICES_SEEN, seen), (DEVICES, told)]


_HIGHEST_SERIES_ID = "SELECT COALESCE(MAX(series_id), 0) FROM status_series"
_RESTATE = (
    "UPDATE status_messages SET data_id = {p}, device_id = {p}, first_at = {earlier}(first_at, {at}), "
    "last_at = {later}(COALESCE(last_at, first_at), {at}) "
    "WHERE message_key = {p}"
)
_SQLITE_MESSAGE_KEYS = (
    "SELECT message_id, message_key FROM status_messages WHERE message_id IN (SELECT value FROM json_each(?))"
)
_SQLITE_SERIES = (
    "SELECT series_id, device_id, code FROM status_series WHERE device_id IN (SELECT value FROM json_each(?))"
)


def _same(moment: datetime) -> datetime:
    return moment


class PostgresDriver:
    """psycopg 3, binary COPY. ``tolerant=False``: history rows are copied straight into their tables, and a key
    that exists raises KeyConflict. ``tolerant=True``: every table goes through its stage table and ON CONFLICT DO
    NOTHING, and the message ids actually inserted are returned (so concurrent writers cannot double-count).
    Latest-state upserts always go through the stage table. ``clean_text=False``: a NUL character in a text
    column raises TextRejected; ``clean_text=True``: NULs become U+FFFD (the raw payload keeps the original).
    """

    time = staticmethod(_same)

    def __init__(self, *, tolerant: bool = False, clean_text: bool = False) -> None:
        self.tolerant = tolerant
        self.clean_text = clean_text

    def existing(self, cursor: psycopg.Cursor[Any], table: str, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        cursor.execute(f"SELECT message_id FROM {table} WHERE message_id = ANY(%s)", (list(ids),))
        return {row[0] for row in cursor.fetchall()}

    def status_message_keys(self, cursor: psycopg.Cursor[Any], ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        cursor.execute("SELECT message_id, message_key FROM status_messages WHERE message_id = ANY(%s)", (list(ids),))
        return dict(cursor.fetchall())

    def next_message_keys(self, cursor: psycopg.Cursor[Any], count: int) -> Sequence[int]:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('status_messages', 'message_key')) FROM generate_series(1, %s)",
            (count,),
        )
        return [row[0] for row in cursor.fetchall()]

    def series_ids(self, cursor: psycopg.Cursor[Any], device_ids: Sequence[str]) -> dict[tuple[str, str | None], int]:
        cursor.execute(
            "SELECT series_id, device_id, code FROM status_series WHERE device_id = ANY(%s)", (list(device_ids),)
        )
        return {(device_id, code): series_id for series_id, device_id, code in cursor.fetchall()}

    def highest_series_id(self, cursor: psycopg.Cursor[Any]) -> int:
        cursor.execute(_HIGHEST_SERIES_ID)
        return cursor.fetchone()[0]  # type: ignore[index]

    def restate_status_messages(self, cursor: psycopg.Cursor[Any], rows: Sequence[tuple[Any, ...]]) -> None:
        cursor.executemany(_RESTATE.format(earlier="LEAST", later="GREATEST", at="%s", p="%s"), rows)

    def insert_returning(self, cursor: psycopg.Cursor[Any], target: Target, rows: Rows, column: str) -> set[Any] | None:
        """Insert; the ``column`` values of the rows inserted when tolerant (others were stored meanwhile), None
        when not (a stored key raised KeyConflict)."""
        if not self.tolerant:
            self.insert(cursor, target, rows)
            return None
        if not rows:
            return set()
        self._stage(cursor, target, rows)
        cursor.execute(postgres_from_stage(target, returning=column))
        return {row[0] for row in cursor.fetchall()}

    def insert(self, cursor: psycopg.Cursor[Any], target: Target, rows: Rows) -> None:
        if not rows:
            return
        if self.tolerant:
            self.upsert(cursor, target, rows)
            return
        from psycopg.errors import UniqueViolation  # loaded already: the engine's dialect imported psycopg

        try:
            self._copy(cursor, target, rows, staged=False)
        except UniqueViolation as exc:
            raise KeyConflict(f"{target.table}: {exc.diag.message_detail or exc}") from exc

    def upsert(self, cursor: psycopg.Cursor[Any], target: Target, rows: Rows) -> None:
        if rows:
            # Rows in key order: concurrent writers (scale-out workers during a rebalance) lock the same rows in
            # the same order, so they wait for each other instead of deadlocking. Series come in that order already
            # (streams.store.history), and a NULL code would not compare.
            self._stage(cursor, target, rows if target is STATUS_SERIES else sorted(rows))
            cursor.execute(postgres_from_stage(target))

    def _stage(self, cursor: psycopg.Cursor[Any], target: Target, rows: Rows) -> None:
        cursor.execute(postgres_stage(target))
        self._copy(cursor, target, rows, staged=True)

    def _copy(self, cursor: psycopg.Cursor[Any], target: Target, rows: Rows, *, staged: bool) -> None:
        from psycopg.errors import CharacterNotInRepertoire

        if self.clean_text:
            rows = [_without_nul(row) for row in rows]
        try:
            with cursor.copy(postgres_copy(target, staged=staged)) as copy:
                copy.set_types(postgres_copy_types(target))
                for row in rows:
                    copy.write_row(row)
        except CharacterNotInRepertoire as exc:
            raise TextRejected(f"{target.table}: {exc}") from exc


def time_format(dialect: str) -> TimeFormat:
    """How rows carry times into ``dialect``: SQLite's UTC text, or the datetime itself for PostgreSQL."""
    return SqliteDriver.time if dialect == "sqlite" else PostgresDriver.time


def _without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # PostgreSQL text cannot hold U+0000 (JSON text is safe: msgspec writes it as the escape \u0000).
    return tuple(value.replace("\x00", "\ufffd") if isinstance(value, str) else value for value in row)
