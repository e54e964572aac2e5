"""Benchmark: the history's format on SQLite, today's ``device_status`` against narrow candidates, same fleet rows.

Issue 17's bytes target (60 a value) is out of reach of today's columns: each value repeats its device id, code,
message id, data id and time as text, twice (the table and its (device_id, reported_at) index). This section
measures what a narrower format would give before the public schema changes, so the decision rests on figures:

- *today*: the migrated ``device_status`` and the store's own INSERT, on the rows the store builds;
- *candidate* (not the archive's schema): a small key for each (device, code) in ``series`` and for each message in
  ``message_keys`` (with its data id), and ``status_values`` keyed (series, time in ms, message key, item) with one
  index on the message key (replay finds a message's rows through it). Views would keep today's column names.
- *candidate, text time*: the same tables with the time kept as today's UTC text, which a view can hand on as
  ``reported_at`` unchanged.

All run every statement of the worker's SQL (``messages``, ``device_state`` and ``devices`` as today; only the
history rows differ) on the worker's connection set-up (WAL, cache, checkpoints), in the worker's default
transaction (5,000 messages): the rows are built outside the timing, as in the worker benchmark's "SQLite alone".
Printed: messages a second; bytes a value once compacted (VACUUM); one device's history (all of its values), best
of several runs; and for each candidate, how SQLite plans users' own SQL on a view with today's column names
(``device_status_view``) filtered by device and time: whether the time bound reaches the primary key, or every value
of the device is read to compute ``reported_at``. Then, on PostgreSQL (TEST_DATABASE_URL; skipped when unset),
bytes a value of the same rows today and in the candidate (which keeps its time a timestamptz there). Run alone with
``python -m tests.bench.formats``; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from models.tables import JSONDocument
from streams.settings import Settings
from streams.store import migrate
from streams.store.drivers import PostgresDriver
from streams.store.engine import make_engine
from streams.store.prepared import record_rows
from streams.store.rows import json_text, sqlite_time
from streams.store.statements import STATUS, postgres_copy, postgres_copy_types, sqlite_insert
from streams.tuya.decoder import Decoded
from tests.bench.store import sqlite_statements
from tests.bench.worker import BYTES_TARGET, COUNT, DEVICES, ITEMS, decoded_batches, table_bytes
from tests.unit.store.databases import scratch_postgres

COMMIT = Settings.model_fields["commit_max_messages"].default
QUERY_ROUNDS = 20


def candidate_tables(time_type: Any) -> MetaData:
    """The candidate's tables, created by SQLAlchemy on either database as the archive's are, with its time column
    (``status_values.reported``) of ``time_type``."""
    tables = MetaData()
    Table(
        "series",
        tables,
        Column("series_id", Integer, primary_key=True),
        Column("device_id", String, nullable=False),
        Column("code", String),
        UniqueConstraint("device_id", "code"),
    )
    Table(
        "message_keys",
        tables,
        Column("message_key", Integer().with_variant(BigInteger, "postgresql"), primary_key=True),
        Column("message_id", String, nullable=False, unique=True),
        Column("data_id", String),
    )
    Table(
        "status_values",
        tables,
        Column("series_id", Integer, primary_key=True),
        Column("reported", time_type, primary_key=True),
        Column("message_key", Integer().with_variant(BigInteger, "postgresql"), primary_key=True),
        Column("item_index", SmallInteger, primary_key=True),
        Column("value", JSONDocument),
        Column("dp_id", SmallInteger),
        Column("source", SmallInteger, nullable=False, server_default="0"),
        Index("ix_status_values_message_key", "message_key"),
        sqlite_with_rowid=False,
    )
    return tables


# Time in milliseconds on SQLite; a timestamptz on PostgreSQL (8 bytes there, and a real column a view can filter by
# index). The text-time variant is measured on SQLite only.
CANDIDATE = candidate_tables(BigInteger().with_variant(DateTime(timezone=True), "postgresql"))
CANDIDATE_TEXT = candidate_tables(String)
# The columns a row fills, in order (``source`` is left to its default).
_FILLED = {
    name: [column.name for column in table.columns if column.name != "source"]
    for name, table in CANDIDATE.tables.items()
}
_INSERTS = {
    name: f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) ON CONFLICT DO NOTHING"
    for name, columns in _FILLED.items()
}
_COPIES = {name: f"COPY {name} ({', '.join(columns)}) FROM STDIN" for name, columns in _FILLED.items()}
CANDIDATE_DEVICE = (
    "SELECT s.code, v.value, v.reported FROM series s JOIN status_values v ON v.series_id = s.series_id "
    "WHERE s.device_id = ? ORDER BY v.reported"
)
TODAY_DEVICE = "SELECT code, value, reported_at FROM device_status WHERE device_id = ? ORDER BY reported_at"
# A view with today's column names over a candidate's tables; ``reported_at`` is the expression for the stored time.
_VIEW = (
    "CREATE VIEW device_status_view AS SELECT m.message_id, v.item_index, s.device_id, s.code, v.value, v.dp_id, "
    "{reported_at} AS reported_at, m.data_id FROM status_values v JOIN series s ON s.series_id = v.series_id "
    "LEFT JOIN message_keys m ON m.message_key = v.message_key"
)
MS_AS_TEXT = "strftime('%Y-%m-%d %H:%M:%f', v.reported / 1000.0, 'unixepoch')"
USERS_QUERY = "SELECT code, value, reported_at FROM device_status_view WHERE device_id = ? AND reported_at >= ?"

Statements = list[tuple[str, list[tuple[object, ...]]]]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    rate: float  # messages a second, the worker's whole SQL
    bytes_per_value: float
    device_s: float  # one device's history, best of QUERY_ROUNDS
    device_values: int
    users_plan: str | None  # how SQLite searches status_values for USERS_QUERY on the layout's view


def today_rows(batch: list[Decoded]) -> Statements:
    """Every statement the store runs for the batch on SQLite, with its rows."""
    (writes,) = sqlite_statements([batch])
    return [(sqlite_insert(target), rows) for target, rows in writes]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CandidateRows:
    """The candidate's rows for each batch; it hands out series and message keys as the writer would. ``time``: how
    a time is stored (milliseconds on SQLite; PostgreSQL's timestamptz is 8 bytes and stays a real column)."""

    def __init__(self, time: Callable[[datetime], object] = epoch_ms) -> None:
        self._series: dict[tuple[str, str | None], int] = {}
        self._messages = 0
        self._time = time

    def __call__(self, batch: list[Decoded]) -> Statements:
        """Today's statements, with the candidate's in place of the ``device_status`` insert."""
        writes = [(sql, rows) for sql, rows in today_rows(batch) if sql != sqlite_insert(STATUS)]
        return [*writes, *((_INSERTS[table], rows) for table, rows in self.rows(batch).items())]

    def rows(self, batch: list[Decoded]) -> dict[str, list[tuple[object, ...]]]:
        """The batch's rows of each candidate table, in its columns' order (``source`` left to its default)."""
        series, keys, values = [], [], []
        for item in batch:
            self._messages += 1
            records = [record for record in item.records if record.kind == "status"]
            keys.append((self._messages, item.message.message_id, records[0].data_id if records else None))
            for record in records:
                key = self._series.get((record.device_id, record.code))
                if key is None:
                    key = self._series[record.device_id, record.code] = len(self._series) + 1
                    series.append((key, record.device_id, record.code))
                at = self._time(record.reported_at)
                values.append((key, at, self._messages, record.item_index, json_text(record.value), record.dp_id))
        return {"series": series, "message_keys": keys, "status_values": values}


@dataclass(frozen=True, slots=True)
class Layout:
    """A format under test: its tables, how a batch becomes its rows, and its query for one device's history."""

    name: str
    create: MetaData | None  # tables created beside the migrated ones (today's: the migrations made them)
    tables: tuple[str, ...]  # whose pages (with their indexes') are counted
    values_table: str
    rows: Callable[[list[Decoded]], Statements]
    device_query: str
    view_time: str | None = None  # a candidate's view: the SQL giving ``reported_at`` from ``v.reported``


def measure(layout: Layout, path: Path) -> Format:
    engine = make_engine(f"sqlite:///{path}")  # the worker's connection set-up (WAL, cache, checkpoints)
    try:
        migrate.upgrade(engine)
        if layout.create is not None:
            layout.create.create_all(engine)
        connection = engine.raw_connection()
        cursor = connection.cursor()
        elapsed, device_id = 0.0, None
        for batch in decoded_batches(COMMIT):
            device_id = device_id or batch[0].records[0].device_id
            statements = layout.rows(batch)
            started = time.perf_counter()
            cursor.execute("BEGIN IMMEDIATE")
            for sql, table_rows in statements:
                cursor.executemany(sql, table_rows)
            cursor.execute("COMMIT")
            elapsed += time.perf_counter() - started
        values = cursor.execute(f"SELECT count(*) FROM {layout.values_table}").fetchone()[0]
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("VACUUM")
        size = table_bytes(engine, *layout.tables)
        device_s, found = _best_device_query(cursor, layout.device_query, device_id)
        plan = None if layout.view_time is None else _users_plan(cursor, layout.view_time)
        connection.close()
    finally:
        engine.dispose()
    return Format(layout.name, COUNT / elapsed, size / max(values, 1), device_s, found, plan)


def _users_plan(cursor: sqlite3.Cursor, reported_at: str) -> str:
    cursor.execute(_VIEW.format(reported_at=reported_at))
    plan = cursor.execute(f"EXPLAIN QUERY PLAN {USERS_QUERY}", ("device", "2026-01-01")).fetchall()
    return next(detail for *_, detail in plan if detail.startswith("SEARCH v "))


def _best_device_query(cursor: sqlite3.Cursor, query: str, device_id: str | None) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(QUERY_ROUNDS):
        started = time.perf_counter()
        found = len(cursor.execute(query, (device_id,)).fetchall())
        best = min(best, time.perf_counter() - started)
    return best, found


def postgres_bytes(server_url: str) -> tuple[float, float]:
    """Bytes a value of today's history and of the candidate's on PostgreSQL: the same rows copied in, then VACUUM
    FULL (a long-running archive's tables once compacted), everything of the tables counted (indexes, TOAST)."""
    with scratch_postgres(server_url) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            CANDIDATE.create_all(engine)
            raw = engine.raw_connection()
            connection = raw.driver_connection
            cursor = connection.cursor()  # type: ignore[union-attr]
            candidate = CandidateRows(time=PostgresDriver.time)
            for batch in decoded_batches(COMMIT):
                status = record_rows(batch, PostgresDriver.time).status
                with cursor.copy(postgres_copy(STATUS)) as copy:
                    copy.set_types(postgres_copy_types(STATUS))
                    for row in status:
                        copy.write_row(row)
                for table, rows in candidate.rows(batch).items():
                    with cursor.copy(_COPIES[table]) as copy:
                        for row in rows:
                            copy.write_row(row)
                connection.commit()  # type: ignore[union-attr]
            connection.autocommit = True  # type: ignore[union-attr]
            cursor.execute("VACUUM FULL device_status, series, message_keys, status_values")
            today = table_bytes(engine, "device_status") / _rows(cursor, "device_status")
            narrow = table_bytes(engine, *CANDIDATE.tables) / _rows(cursor, "status_values")
            raw.close()
        finally:
            engine.dispose()
    return today, narrow


def _rows(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return max(cursor.fetchone()[0], 1)


def main() -> None:
    print(
        f"history format on SQLite: {COUNT:,} status reports × {ITEMS} items, {DEVICES:,} devices, "
        f"{COMMIT:,} messages a transaction,\n  the worker's whole SQL (rows built outside the timing); "
        "bytes of the history tables and their indexes after VACUUM"
    )
    layouts = (
        Layout("today", None, ("device_status",), "device_status", today_rows, TODAY_DEVICE),
        Layout(
            "candidate",
            CANDIDATE,
            tuple(CANDIDATE.tables),
            "status_values",
            CandidateRows(),
            CANDIDATE_DEVICE,
            MS_AS_TEXT,
        ),
        Layout(
            "text time",
            CANDIDATE_TEXT,
            tuple(CANDIDATE_TEXT.tables),
            "status_values",
            CandidateRows(time=sqlite_time),
            CANDIDATE_DEVICE,
            "v.reported",
        ),
    )
    with tempfile.TemporaryDirectory() as folder:
        results = [measure(layout, Path(folder) / f"{layout.name}.db") for layout in layouts]
    today = results[0]
    for result in results:
        print(
            f"  {result.name:<10} {result.rate:>9,.0f} msg/s ({result.rate / today.rate:4.2f}x today)  "
            f"{result.bytes_per_value:6.1f} bytes a value (target <= {BYTES_TARGET})  one device's "
            f"{result.device_values:,} values in {result.device_s * 1e3:.2f} ms"
        )
    print(f"  users' SQL on a view with today's column names: {USERS_QUERY}")
    for result in results[1:]:
        print(f"  {result.name:<10} searches status_values: {result.users_plan}")
    server_url = os.environ.get("TEST_DATABASE_URL")
    if server_url is None:
        print("  PostgreSQL: skipped (TEST_DATABASE_URL is not set)")
        return
    today_pg, candidate_pg = postgres_bytes(server_url)
    print(
        f"  PostgreSQL, the same rows copied in, after VACUUM FULL: today {today_pg:.1f} bytes a value, "
        f"candidate {candidate_pg:.1f} (target <= {BYTES_TARGET})"
    )


if __name__ == "__main__":
    main()
