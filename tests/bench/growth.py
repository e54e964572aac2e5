"""Benchmark: SQLite alone as the archive grows, the history in its key order against the same rows in arrival order.

A commit writes every page it changed. The history's key (series, time) keeps each series' values together, which
makes one device's history one range of the key to read; it also puts a batch's values in as many places as the
batch has series. In a fresh archive many series share a page; as the archive grows they need a page each, so a
commit writes more pages for the same messages, and a backlog drains slower the larger the archive it drains into.

This section measures that: the worker's SQL (tests.bench.store.sqlite_statements: every statement, rows built
outside the timing, the keys handed out in advance) for GROWTH_COUNT messages of the worker benchmark's fleet,
timed a chunk of CHUNK messages at a time, into two archives written side by side, batch by batch:

- the archive's schema;
- the same schema with ``status_values`` keyed (message key, item) instead: new rows fill its last pages one after
  another, whatever the archive's size. Not a usable archive (a device's history would be read from everywhere),
  it bounds what a change that keeps the history's order could gain by writing recent values apart, in arrival
  order, and moving them into the history now and then in its key order.

Both archives get the same rows in the same transactions, each batch written to one and then the other (which one
first alternates), so a slow minute of the machine falls on both. Run alone with ``python -m tests.bench.growth``;
``make bench`` runs it with the others.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from streams.settings import Settings
from streams.store import migrate
from streams.store.engine import make_engine
from streams.store.sql import Writes
from tests.bench.store import HistoryKeys, sqlite_statements, sqlite_transaction
from tests.bench.worker import DEVICES, ITEMS, decoded_batches

GROWTH_COUNT = int(os.environ.get("BENCH_GROWTH_MESSAGES", "1000000"))
CHUNK = 200_000
COMMIT = Settings.model_fields["commit_max_messages"].default

# status_values with the archive's columns, keyed in arrival order (its message keys are handed out in that order).
ARRIVAL_ORDER = """
CREATE TABLE status_values (
    series_id INTEGER NOT NULL,
    reported_at DATETIME NOT NULL,
    message_key INTEGER NOT NULL,
    item_index INTEGER NOT NULL,
    value TEXT NOT NULL,
    dp_id INTEGER,
    PRIMARY KEY (message_key, item_index, series_id, reported_at)
) WITHOUT ROWID
"""


@dataclass
class Archive:
    """One archive being filled: its engine, a connection, and the seconds its transactions took, a chunk at a time."""

    name: str
    engine: Engine
    connection: Any
    chunks: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def write(self, writes: Writes) -> None:
        cursor = self.connection.cursor()
        self.elapsed += sqlite_transaction(cursor, writes)
        cursor.close()

    def end_chunk(self) -> None:
        self.chunks.append(self.elapsed)
        self.elapsed = 0.0

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


def archive(path: Path, name: str, *, arrival_order: bool) -> Archive:
    """A migrated archive on the worker's connection set-up (WAL, cache, checkpoints), and its engine."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    connection = engine.raw_connection()
    if arrival_order:
        cursor = connection.cursor()
        cursor.execute("DROP TABLE status_values")  # the views over it are not read here
        cursor.execute(ARRIVAL_ORDER)
        cursor.close()
        connection.commit()
    return Archive(name, engine, connection)


def fill(archives: list[Archive]) -> None:
    """The fleet's GROWTH_COUNT messages into every archive, COMMIT a transaction, each batch into all of them."""
    history = HistoryKeys().writes  # fresh archives handed the same rows: the same keys are right for each
    for n, batch in enumerate(decoded_batches(COMMIT, GROWTH_COUNT), 1):
        (writes,) = sqlite_statements([batch], history)
        for target in archives[n % 2 :] + archives[: n % 2]:
            target.write(writes)
        if n * COMMIT % CHUNK == 0:
            for target in archives:
                target.end_chunk()


def main() -> None:
    print(
        f"growth of the archive on SQLite: {GROWTH_COUNT:,} status reports × {ITEMS} items, {DEVICES:,} devices, "
        f"{COMMIT:,} messages a transaction;\n  SQLite alone (the worker's SQL, rows built outside the timing), "
        f"two archives filled side by side, timed every {CHUNK:,} messages"
    )
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as folder:
        archives = [
            archive(Path(folder) / "key.db", "history keyed (series, time), as stored", arrival_order=False),
            archive(Path(folder) / "arrival.db", "status_values keyed in arrival order", arrival_order=True),
        ]
        try:
            fill(archives)
        finally:
            for target in archives:
                target.close()
    stored, arrival = archives
    print(f"  {'messages in the archive':<26}{stored.name:>42}{arrival.name:>40}")
    for n, (key_s, arrival_s) in enumerate(zip(stored.chunks, arrival.chunks, strict=True), 1):
        print(f"  {n * CHUNK:<26,}{CHUNK / key_s:>36,.0f} msg/s{CHUNK / arrival_s:>34,.0f} msg/s")
    first, last = stored.chunks[0], stored.chunks[-1]
    print(
        f"  as stored, the last {CHUNK:,} went {first / last:.2f}x as fast as the first; in arrival order "
        f"{arrival.chunks[0] / arrival.chunks[-1]:.2f}x. At {GROWTH_COUNT:,} messages, arrival order was "
        f"{last / arrival.chunks[-1]:.2f}x as fast: the most that writing recent values apart could gain here"
    )


if __name__ == "__main__":
    main()
