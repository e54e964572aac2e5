"""Benchmark: the history's format on SQLite, the wide table it replaced against the narrow schema, same fleet rows.

The wide table repeated each value's device id, code, message id, data id and time as text, twice (the table and its
(device_id, reported_at) index), which kept issue 17's bytes target (60 a value) out of reach. The archive's schema
now keeps those texts once (migration 2026_12_06_narrow_history), and on SQLite its times as integer milliseconds
(2026_12_06_integer_history_times). This section measures what the change gives and costs:

- *wide*: the format before the change, ``wide_status`` (tests.bench.wide) created beside the migrated tables, and
  the store's insert of that time;
- *narrow*: the archive's schema, ``status_series``, ``status_messages`` and ``status_values`` keyed (series, time,
  message key, item), the time as integer milliseconds, read through the ``device_status`` view, which shows it as
  today's UTC text (``reported_at``) and as the milliseconds (``reported_key``).

All run every statement of the worker's SQL (``messages``, ``device_state`` and ``devices`` as the store runs them;
only the history rows differ; the narrow format's keys handed out in advance, as tests.bench.store does) on the
worker's connection set-up (WAL, cache, checkpoints), in the worker's default transaction (5,000 messages): the rows
are built outside the timing, as in the worker benchmark's "SQLite alone". Printed: messages a second (and as a
ratio to the wide format's); bytes a value once compacted (VACUUM); one device's history (all of its values, in the
order of the time they are keyed by, read through the table or view), best of several runs; and how SQLite plans
users' own SQL on that table or view filtered by device and time, by each time column: whether the time bound
reaches the values' key, or every value of the device is read to compute ``reported_at``. Then, on PostgreSQL
(TEST_DATABASE_URL; skipped when unset), bytes a value of the same rows in the wide table and in the narrow schema
(binary COPY, the time a timestamptz in both), and in a row a message (MESSAGE_ROWS), not the archive's schema:
where a row a value pays PostgreSQL's row header and pointer and an index entry for each value, this layout pays
them once a message: the nearest to issue 17's 60 bytes a value measured there. Beside them, the floor of any row
a value there (VALUE_FLOOR): the values with only their series and time, indexed by both, and nothing else. Run
alone with
``python -m tests.bench.formats``; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, MetaData

from models.tables import UtcDateTime
from streams.settings import Settings
from streams.store import migrate
from streams.store.drivers import PostgresDriver
from streams.store.engine import make_engine
from streams.store.prepared import record_rows
from streams.store.rows import flat_status
from streams.store.settle import settle_all
from streams.store.statements import postgres_copy, postgres_copy_types
from tests.bench.store import (
    History,
    HistoryKeys,
    SqliteAlone,
    sqlite_statements,
    wide_history,
)
from tests.bench.wide import WIDE, WIDE_STATUS
from tests.bench.worker import BYTES_TARGET, COUNT, DEVICES, ITEMS, decoded_batches, table_bytes
from tests.unit.store.databases import scratch_postgres

COMMIT = Settings.model_fields["commit_max_messages"].default
QUERY_ROUNDS = 20

# One device's history in time order, and users' SQL filtered by device and time, on a table or view with today's
# column names; {time}: the time column filtered and ordered by (the narrow schema has two: reported_at as text on
# SQLite, and reported_key, the milliseconds the values are keyed by).
DEVICE_QUERY = "SELECT code, value, reported_at FROM {relation} WHERE device_id = ? ORDER BY {time}"
USERS_QUERY = "SELECT code, value, reported_at FROM {relation} WHERE device_id = ? AND {time} >= ?"

# The wide table is not in Base.metadata, where postgres_copy_types looks: its binary COPY's types, in its columns.
_WIDE_COLUMNS = WIDE.tables["wide_status"].c
WIDE_COPY_TYPES = [
    "int4" if isinstance(type_, Integer) else "timestamptz" if isinstance(type_, UtcDateTime) else "text"
    for type_ in (_WIDE_COLUMNS[name].type for name in WIDE_STATUS.columns)
]


# A row a message on PostgreSQL, made from the narrow tables: the message's key, id and data id, its device (a small
# key: the device's first series), the time its values share (every fleet report's do), and its values' series,
# values and DP ids in arrays, in item order; keyed by message key, unique by message id, and indexed by device and
# time as the history is read.
MESSAGE_ROWS = (
    """CREATE TABLE message_rows AS
    SELECT m.message_key, d.device_key, m.first_at AS reported_at, m.message_id, m.data_id,
           array_agg(v.series_id ORDER BY v.item_index) AS series_ids,
           array_agg(v.value::text ORDER BY v.item_index) AS "values",
           array_agg(v.dp_id ORDER BY v.item_index) AS dp_ids
    FROM status_messages m
    JOIN status_values v ON v.message_key = m.message_key
    JOIN (SELECT device_id, min(series_id) AS device_key FROM status_series GROUP BY device_id) d
      ON d.device_id = m.device_id
    GROUP BY m.message_key, d.device_key, m.first_at, m.message_id, m.data_id""",
    "ALTER TABLE message_rows ADD PRIMARY KEY (message_key)",
    "CREATE UNIQUE INDEX ON message_rows (message_id)",
    "CREATE INDEX ON message_rows (device_key, reported_at)",
    "VACUUM FULL message_rows",
)

# The least a row a value can take on PostgreSQL: each value with only its series and time (no message, item or DP
# id, no series or message table), indexed by series and time as the history is read.
VALUE_FLOOR = (
    "CREATE TABLE value_floor AS SELECT series_id, reported_at, value FROM status_values "
    "ORDER BY series_id, reported_at, message_key, item_index",
    "CREATE INDEX ON value_floor (series_id, reported_at)",
    "VACUUM FULL value_floor",
)


@dataclass(frozen=True, slots=True)
class PostgresBytes:
    """Bytes a value on PostgreSQL, everything of the tables counted (indexes, TOAST), after VACUUM FULL."""

    wide: float
    narrow: float  # the archive's schema
    per_message: float  # MESSAGE_ROWS, with the series it names
    floor: float  # VALUE_FLOOR


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    rate: float  # messages a second, the worker's whole SQL
    bytes_per_value: float
    device_s: float  # one device's history, best of QUERY_ROUNDS
    device_values: int
    users_plans: dict[str, str]  # how SQLite searches the values for USERS_QUERY, by time column


@dataclass(frozen=True, slots=True)
class Layout:
    """A format under test: its tables, its history's writes, and what users' SQL reads."""

    name: str
    create: MetaData | None  # tables created beside the migrated ones (the narrow schema's: the migrations made them)
    tables: tuple[str, ...]  # whose pages (with their indexes') are counted
    values_table: str
    history: Callable[[], History]  # a new history for a run (its keys go on from batch to batch)
    relation: str  # the table or view with today's column names that users' SQL reads
    values_name: str  # the values' table in the relation's query plan (its name or alias)
    times: tuple[str, ...]  # the relation's time columns; the first is the one its values are keyed by


LAYOUTS = (
    Layout(
        "wide",
        WIDE,
        ("wide_status",),
        "wide_status",
        lambda: wide_history,
        "wide_status",
        "wide_status",
        ("reported_at",),
    ),
    Layout(
        "narrow",
        None,
        ("status_series", "status_messages", "status_values"),
        "status_values",
        lambda: HistoryKeys().writes,
        "device_status",
        "v",
        ("reported_key", "reported_at"),
    ),
)


def measure(layout: Layout, path: Path) -> Format:
    engine = make_engine(f"sqlite:///{path}")  # the worker's connection set-up (WAL, cache, checkpoints)
    try:
        migrate.upgrade(engine)
        if layout.create is not None:
            layout.create.create_all(engine)
        connection = engine.raw_connection()
        cursor = connection.cursor()
        history, writer = layout.history(), SqliteAlone(cursor)
        elapsed, device_id = 0.0, None
        for batch in decoded_batches(COMMIT):
            device_id = device_id or batch[0].records[0].device_id
            (writes,) = sqlite_statements([batch], history)
            elapsed += writer.write(writes)
        elapsed += writer.settle()  # the history as it is kept for years: settled
        values = cursor.execute(f"SELECT count(*) FROM {layout.values_table}").fetchone()[0]
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.execute("VACUUM")
        size = table_bytes(engine, *layout.tables)
        query = DEVICE_QUERY.format(relation=layout.relation, time=layout.times[0])
        device_s, found = _best_device_query(cursor, query, device_id)
        plans = {time: _users_plan(cursor, layout, time) for time in layout.times}
        connection.close()
    finally:
        engine.dispose()
    return Format(layout.name, COUNT / elapsed, size / max(values, 1), device_s, found, plans)


def _users_plan(cursor: sqlite3.Cursor, layout: Layout, time: str) -> str:
    query = USERS_QUERY.format(relation=layout.relation, time=time)
    plan = cursor.execute(f"EXPLAIN QUERY PLAN {query}", ("device", "2026-01-01")).fetchall()
    return next(detail for *_, detail in plan if detail.split()[1:2] == [layout.values_name])


def _best_device_query(cursor: sqlite3.Cursor, query: str, device_id: str | None) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(QUERY_ROUNDS):
        started = time.perf_counter()
        found = len(cursor.execute(query, (device_id,)).fetchall())
        best = min(best, time.perf_counter() - started)
    return best, found


def postgres_bytes(server_url: str) -> PostgresBytes:
    """Bytes a value of the wide history, of the narrow schema, of a row a message and of a row a value's floor
    on PostgreSQL: the same rows copied in (the narrow ones with keys from HistoryKeys), then VACUUM FULL (a
    long-running archive's tables once compacted)."""
    with scratch_postgres(server_url) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            WIDE.create_all(engine)
            raw = engine.raw_connection()
            connection = raw.driver_connection
            cursor = connection.cursor()  # type: ignore[union-attr]
            keys = HistoryKeys()
            for batch in decoded_batches(COMMIT):
                status = record_rows(batch, PostgresDriver.time).status
                copies = [(target, postgres_copy_types(target), rows) for target, rows in keys.writes(status)]
                for target, types, rows in [(WIDE_STATUS, WIDE_COPY_TYPES, flat_status(status)), *copies]:
                    with cursor.copy(postgres_copy(target)) as copy:
                        copy.set_types(types)
                        for row in rows:
                            copy.write_row(row)
                connection.commit()  # type: ignore[union-attr]
            settle_all(engine)  # the history as it is kept for years: settled
            connection.autocommit = True  # type: ignore[union-attr]
            cursor.execute("VACUUM FULL wide_status, status_series, status_messages, status_values")
            wide = table_bytes(engine, "wide_status") / _rows(cursor, "wide_status")
            values = _rows(cursor, "status_values")
            narrow = table_bytes(engine, "status_series", "status_messages", "status_values") / values
            for statement in MESSAGE_ROWS:
                cursor.execute(statement)
            per_message = table_bytes(engine, "status_series", "message_rows") / values
            for statement in VALUE_FLOOR:
                cursor.execute(statement)
            floor = table_bytes(engine, "value_floor") / values
            raw.close()
        finally:
            engine.dispose()
    return PostgresBytes(wide, narrow, per_message, floor)


def _rows(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT count(*) FROM {table}")
    return max(cursor.fetchone()[0], 1)


def main() -> None:
    print(
        f"history format on SQLite: {COUNT:,} status reports × {ITEMS} items, {DEVICES:,} devices, "
        f"{COMMIT:,} messages a transaction,\n  the worker's whole SQL (rows built outside the timing); "
        "bytes of the history tables and their indexes after VACUUM"
    )
    with tempfile.TemporaryDirectory() as folder:
        results = [measure(layout, Path(folder) / f"{n}.db") for n, layout in enumerate(LAYOUTS)]
    wide = results[0]
    for result in results:
        print(
            f"  {result.name:<10} {result.rate:>9,.0f} msg/s ({result.rate / wide.rate:4.2f}x wide)  "
            f"{result.bytes_per_value:6.1f} bytes a value (target <= {BYTES_TARGET})  one device's "
            f"{result.device_values:,} values in {result.device_s * 1e3:.2f} ms"
        )
    print(f"  users' SQL filtered by device and time: {USERS_QUERY.format(relation='<relation>', time='<time>')}")
    for layout, result in zip(LAYOUTS, results, strict=True):
        for time_column, plan in result.users_plans.items():
            print(f"  {result.name:<10} on {layout.relation}, by {time_column}, searches the values: {plan}")
    server_url = os.environ.get("TEST_DATABASE_URL")
    if server_url is None:
        print("  PostgreSQL: skipped (TEST_DATABASE_URL is not set)")
        return
    pg = postgres_bytes(server_url)
    print(
        f"  PostgreSQL, the same rows copied in, after VACUUM FULL: wide {pg.wide:.1f} bytes a value, "
        f"narrow {pg.narrow:.1f} (target <= {BYTES_TARGET}; {pg.narrow / pg.floor:.2f}x the floor below);\n"
        f"    a row a message with its values in arrays (not the archive's schema; the series' table included) "
        f"{pg.per_message:.1f};\n    the floor of a row a value (only series, time and value, one index on series "
        f"and time) {pg.floor:.1f}"
    )


if __name__ == "__main__":
    main()
