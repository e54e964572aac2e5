"""Benchmark: the history's format on SQLite, today's ``device_status`` against a narrow candidate, same fleet rows.

Issue 17's bytes target (60 a value) is out of reach of today's columns: each value repeats its device id, code,
message id, data id and time as text, twice (the table and its (device_id, reported_at) index). This section
measures what a narrower format would give before the public schema changes, so the decision rests on figures:

- *today*: the migrated ``device_status`` and the store's own INSERT, on the rows the store builds;
- *candidate* (not the archive's schema): a small key for each (device, code) in ``series`` and for each message in
  ``message_keys`` (with its data id), and ``status_values`` keyed (series, time in ms, message key, item) with one
  index on the message key (replay finds a message's rows through it). Views would keep today's column names.

Both run every statement of the worker's SQL (``messages``, ``device_state`` and ``devices`` as today; only the
history rows differ) on the worker's connection set-up (WAL, cache, checkpoints), in the worker's default
transaction (5,000 messages): the rows are built outside the timing, as in the worker benchmark's "SQLite alone".
Printed: messages a second; bytes a value once compacted (VACUUM); one device's history (all of its values), best
of several runs. Run alone with ``python -m tests.bench.formats``; ``make bench`` runs it with the others.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.settings import Settings
from streams.store import migrate
from streams.store.engine import make_engine
from streams.store.rows import json_text
from streams.store.statements import STATUS, sqlite_insert
from streams.tuya.decoder import Decoded
from tests.bench.store import sqlite_statements
from tests.bench.worker import BYTES_TARGET, COUNT, DEVICES, ITEMS, decoded_batches

COMMIT = Settings.model_fields["commit_max_messages"].default
QUERY_ROUNDS = 20

CANDIDATE = """
CREATE TABLE series (series_id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, code TEXT, UNIQUE (device_id, code));
CREATE TABLE message_keys (message_key INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, data_id TEXT);
CREATE TABLE status_values (
    series_id INTEGER NOT NULL, reported_ms INTEGER NOT NULL, message_key INTEGER NOT NULL,
    item_index INTEGER NOT NULL, value TEXT, dp_id INTEGER, source INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (series_id, reported_ms, message_key, item_index)
) WITHOUT ROWID;
CREATE INDEX ix_status_values_message_key ON status_values (message_key);
"""
CANDIDATE_DEVICE = (
    "SELECT s.code, v.value, v.reported_ms FROM series s JOIN status_values v ON v.series_id = s.series_id "
    "WHERE s.device_id = ? ORDER BY v.reported_ms"
)
TODAY_DEVICE = "SELECT code, value, reported_at FROM device_status WHERE device_id = ? ORDER BY reported_at"

Statements = list[tuple[str, list[tuple[object, ...]]]]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    rate: float  # messages a second, the worker's whole SQL
    bytes_per_value: float
    device_s: float  # one device's history, best of QUERY_ROUNDS
    device_values: int


def today_rows(batch: list[Decoded]) -> Statements:
    """Every statement the store runs for the batch on SQLite, with its rows."""
    (writes,) = sqlite_statements([batch])
    return [(sqlite_insert(target), rows) for target, rows in writes]


class CandidateRows:
    """The candidate's rows for each batch; it hands out series and message keys as the writer would."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str | None], int] = {}
        self._messages = 0

    def __call__(self, batch: list[Decoded]) -> Statements:
        """Today's statements, with the candidate's in place of the ``device_status`` insert."""
        writes = [(sqlite_insert(target), rows) for target, rows in sqlite_statements([batch])[0] if target != STATUS]
        return [*writes, *self._history(batch)]

    def _history(self, batch: list[Decoded]) -> Statements:
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
                ms = int(record.reported_at.timestamp() * 1000)
                values.append((key, ms, self._messages, record.item_index, json_text(record.value), record.dp_id))
        return [
            ("INSERT INTO series VALUES (?, ?, ?)", series),
            ("INSERT INTO message_keys VALUES (?, ?, ?)", keys),
            (
                "INSERT INTO status_values (series_id, reported_ms, message_key, item_index, value, dp_id) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                values,
            ),
        ]


@dataclass(frozen=True, slots=True)
class Layout:
    """A format under test: its tables, how a batch becomes its rows, and its query for one device's history."""

    name: str
    create: str  # DDL run on the migrated database ('' for today's, which the migrations made)
    tables: tuple[str, ...]  # whose pages (with their indexes') are counted
    values_table: str
    rows: Callable[[list[Decoded]], Statements]
    device_query: str


def measure(layout: Layout, path: Path) -> Format:
    engine = make_engine(f"sqlite:///{path}")  # the worker's connection set-up (WAL, cache, checkpoints)
    try:
        migrate.upgrade(engine)
        connection = engine.raw_connection()
        cursor = connection.cursor()
        cursor.executescript(layout.create)
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
        marks = ", ".join("?" * len(layout.tables))
        size = cursor.execute(
            "SELECT sum(pgsize) FROM dbstat JOIN sqlite_master m ON m.name = dbstat.name "
            f"WHERE m.tbl_name IN ({marks})",
            layout.tables,
        ).fetchone()[0]
        device_s, found = _best_device_query(cursor, layout.device_query, device_id)
        connection.close()
    finally:
        engine.dispose()
    return Format(layout.name, COUNT / elapsed, size / max(values, 1), device_s, found)


def _best_device_query(cursor: sqlite3.Cursor, query: str, device_id: str | None) -> tuple[float, int]:
    best, found = float("inf"), 0
    for _ in range(QUERY_ROUNDS):
        started = time.perf_counter()
        found = len(cursor.execute(query, (device_id,)).fetchall())
        best = min(best, time.perf_counter() - started)
    return best, found


def main() -> None:
    print(
        f"history format on SQLite: {COUNT:,} status reports × {ITEMS} items, {DEVICES:,} devices, "
        f"{COMMIT:,} messages a transaction,\n  the worker's whole SQL (rows built outside the timing); "
        "bytes of the history tables and their indexes after VACUUM"
    )
    layouts = (
        Layout("today", "", ("device_status",), "device_status", today_rows, TODAY_DEVICE),
        Layout(
            "candidate",
            CANDIDATE,
            ("series", "message_keys", "status_values"),
            "status_values",
            CandidateRows(),
            CANDIDATE_DEVICE,
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


if __name__ == "__main__":
    main()
