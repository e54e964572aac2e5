"""Benchmark: SQLite alone as the archive grows, new values settled in bulk against values written straight into
the history.

A commit writes every page it changed. The history's key (series, time) keeps each series' values together, which
makes one device's history one range of the key to read; it also puts a batch's values in as many places as the
batch has series. In a fresh archive many series share a page; as the archive grows they need a page each, so a
commit that wrote its values straight into ``status_values`` wrote more pages for the same messages, and a backlog
drained slower the larger the archive it drained into. The store therefore writes new values to ``status_recent``,
in arrival order, and settles them into ``status_values`` once SETTLE_EVERY of them wait (streams.store.settle).

This section measures both: the worker's SQL (tests.bench.store.sqlite_statements: every statement, rows built
outside the timing, the keys handed out in advance) for GROWTH_COUNT messages of the worker benchmark's fleet,
timed a chunk of CHUNK messages at a time (the settles included), into two archives written side by side, batch by
batch:

- as stored: the values into ``status_recent``, settled (tests.bench.store.SqliteAlone);
- straight into the history: the same values into ``status_values`` in each batch's transaction, as the store
  wrote them before.

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
from tests.bench.store import (
    SETTLE_EVERY,
    HistoryKeys,
    SqliteAlone,
    sqlite_statements,
    sqlite_transaction,
    straight_in,
)
from tests.bench.worker import DEVICES, ITEMS, decoded_batches

GROWTH_COUNT = int(os.environ.get("BENCH_GROWTH_MESSAGES", "1000000"))
CHUNK = 200_000
COMMIT = Settings.model_fields["commit_max_messages"].default


@dataclass
class Archive:
    """One archive being filled: its engine, a connection, and the seconds its transactions took, a chunk at a time.
    ``settled``: values into status_recent and settled, as the store writes them; else straight into the history."""

    name: str
    engine: Engine
    connection: Any
    settled: bool
    chunks: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    def __post_init__(self) -> None:
        self._cursor = self.connection.cursor()
        self._writer = SqliteAlone(self._cursor)

    def write(self, writes: Writes) -> None:
        if self.settled:
            self.elapsed += self._writer.write(writes)
        else:
            self.elapsed += sqlite_transaction(self._cursor, straight_in(writes))

    def end_chunk(self) -> None:
        self.chunks.append(self.elapsed)
        self.elapsed = 0.0

    def close(self) -> None:
        self._cursor.close()
        self.connection.close()
        self.engine.dispose()


def archive(path: Path, name: str, *, settled: bool) -> Archive:
    """A migrated archive on the worker's connection set-up (WAL, cache, checkpoints), and its engine."""
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    return Archive(name, engine, engine.raw_connection(), settled)


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
            archive(Path(folder) / "settled.db", f"as stored (settled every {SETTLE_EVERY:,} values)", settled=True),
            archive(Path(folder) / "straight.db", "straight into status_values (before)", settled=False),
        ]
        try:
            fill(archives)
        finally:
            for target in archives:
                target.close()
    stored, straight = archives
    print(f"  {'messages in the archive':<26}{stored.name:>44}{straight.name:>40}")
    for n, (stored_s, straight_s) in enumerate(zip(stored.chunks, straight.chunks, strict=True), 1):
        print(f"  {n * CHUNK:<26,}{CHUNK / stored_s:>38,.0f} msg/s{CHUNK / straight_s:>34,.0f} msg/s")
    print(
        f"  the last {CHUNK:,} went {stored.chunks[0] / stored.chunks[-1]:.2f}x as fast as the first as stored, "
        f"{straight.chunks[0] / straight.chunks[-1]:.2f}x straight into the history. At {GROWTH_COUNT:,} messages, "
        f"as stored was {straight.chunks[-1] / stored.chunks[-1]:.2f}x as fast"
    )


if __name__ == "__main__":
    main()
