"""Benchmark: the batch store's throughput on SQLite and PostgreSQL, next to the floor measured in the same run.

The floor is the bare driver writing the same ``messages`` rows and the history's rows (``status_series``,
``status_messages``, ``status_values``: prepared tuples, keys given, built outside the timing) into tables with the
same indexes: plain ``sqlite3`` executemany, psycopg binary ``COPY``.
The store does more than the floor (dedup look-up, ``device_state`` and ``devices`` upserts, building rows from
records); the ratio says what that costs. Between the two, the store's own SQL alone (sqlite_alone,
postgres_alone): its statements and commits on rows prepared in advance, which the store's Python only adds to.
Status reports of 5 items from a 10,000-device fleet, message ids monotonic like Pulsar's, batches of 1,000 (the
worker's default); best of 3 rounds, each on fresh databases, under the worker's garbage-collector policy
(streams.heap).
PostgreSQL comes from TEST_DATABASE_URL (scratch databases are created and dropped); skipped when it is not set.

Run alone with ``python -m tests.bench.store``; ``make bench`` runs it with the other benchmarks.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

from models.records import DecodedMessage, StatusReported
from models.tables import Base
from streams.heap import settle_heap
from streams.store import migrate
from streams.store.drivers import PostgresDriver, sqlite_upserts
from streams.store.engine import autocheckpoint_pages, make_engine
from streams.store.history import message_places, status_message_row
from streams.store.prepared import record_rows
from streams.store.rows import (
    StatusRows,
    TimeFormat,
    flat_status,
    json_text,
    message_row,
    sqlite_time,
    status_rows,
)
from streams.store.settle import (
    EVERY_SERIES,
    RANGE_END,
    SETTLE_CHUNK_VALUES,
    SQLITE_SETTLE,
    range_end,
    settle_every,
)
from streams.store.sql import ArchiveStore, Writes, record_writes
from streams.store.statements import (
    MESSAGES,
    STATUS_MESSAGES,
    STATUS_RECENT,
    STATUS_VALUES,
    Target,
    postgres_copy,
    postgres_copy_types,
    sqlite_insert,
)
from streams.tuya.decoder import Decoded
from tests.bench.wide import WIDE_STATUS
from tests.unit.store.databases import scratch_postgres

COUNT = 50_000
ROUNDS = 3
BATCH = 1_000
DEVICES = 10_000
CODES = ("switch_1", "cur_power", "cur_current", "cur_voltage", "add_ele")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
TOPIC = "persistent://bench/out/event"
SETTLE_EVERY = settle_every(None, "sqlite")  # how many values the SQLite worker lets wait by default


def make_batches(count: int = COUNT, batch: int = BATCH) -> list[list[Decoded]]:
    """``count`` status reports as the decoder returns them, in batches."""
    messages = []
    for n in range(count):
        message_id = f"{n // 1000 + 1}:{n % 1000}:0:-1"
        device = f"bf{n % DEVICES:020d}"
        when = T0 + timedelta(milliseconds=10 * n)
        ms = int(when.timestamp() * 1000)
        values = (n % 2 == 0, n % 997, n % 503, 2200 + n % 40, n // 10)
        items = [
            {"code": c, "value": v, "t": ms, str(i + 1): v} for i, (c, v) in enumerate(zip(CODES, values, strict=True))
        ]
        payload = {"dataId": f"data{n:016d}", "devId": device, "productKey": "keyjup78v54myhan", "status": items}
        message = DecodedMessage(
            message_id=message_id, topic=TOPIC, protocol=4, biz_code=None, device_id=device,
            encrypt_model="aes_gcm", sign_ok=True, pushed_at=when, published_at=when, payload=json_text(payload),
            properties={"em": "aes_gcm"},
        )  # fmt: skip
        records = [
            StatusReported(message_id, i, device, "keyjup78v54myhan", c, v, i + 1, when, f"data{n:016d}")
            for i, (c, v) in enumerate(zip(CODES, values, strict=True))
        ]
        messages.append(Decoded(message, records))
    return [messages[i : i + batch] for i in range(0, count, batch)]


#: status_series with its ids given: rows prepared in advance name their series before the table hands ids out.
SERIES_WITH_IDS = Target("status_series", ("series_id", "device_id", "code"), "ON CONFLICT DO NOTHING")


class HistoryKeys:
    """Status rows into the history's narrow rows as the store writes them into a fresh archive, keys handed out
    in advance (a series id for each new (device, code), a message key for each message), so that the store's SQL
    can be timed alone (streams.store.history does the same with look-ups in the transaction)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str | None], int] = {}
        self._messages = 0

    def writes(self, messages: list[StatusRows]) -> Writes:
        """``status_series`` (new series only), ``status_messages`` and ``status_recent`` with their rows."""
        series, message_rows, values = [], [], []
        places = message_places(messages)
        for message in messages:
            self._messages += 1
            key, device_id = self._messages, message.device_id
            message_rows.append(status_message_row(key, message.message_id, places[message.message_id], "stream"))
            for item_index, code, value, dp_id, reported_at in message.items:
                series_id = self._series.get((device_id, code))
                if series_id is None:
                    series_id = self._series[device_id, code] = len(self._series) + 1
                    series.append((series_id, device_id, code))
                values.append((series_id, reported_at, key, item_index, value, dp_id))
        return [(SERIES_WITH_IDS, series), (STATUS_MESSAGES, message_rows), (STATUS_RECENT, values)]


def straight_in(writes: Writes) -> Writes:
    """``writes`` with the status values into ``status_values`` instead of ``status_recent``: as a store that does
    not settle writes them (PostgreSQL's by default), or as a settled history is seeded."""
    return [(STATUS_VALUES if target is STATUS_RECENT else target, rows) for target, rows in writes]


def floor_rows(batches: list[list[Decoded]], time_format: Callable[[datetime], Any]) -> list[Writes]:
    """Per batch, the ``messages`` rows and the history's rows (narrow, keys given): what the floors write."""
    received = time_format(T0)
    keys = HistoryKeys()
    return [
        [
            (MESSAGES, [message_row(item.message, received, time_format, unknown=False) for item in batch]),
            *keys.writes([status_rows(item.records, time_format) for item in batch]),  # type: ignore[arg-type]
        ]
        for batch in batches
    ]


def run_store(engine: Engine, batches: list[list[Decoded]]) -> float:
    store = ArchiveStore(engine, settle_every=settle_every(None, engine.dialect.name))  # as the worker, by default
    start = time.perf_counter()
    for batch in batches:
        store.write_batch(batch, [], received_at=T0)
        store.settle_when_due()
    return time.perf_counter() - start


def _insert_sql(target: Target) -> str:
    """A plain INSERT of the store's columns (the rest take their defaults), with no ON CONFLICT clause; the
    history's times converted as the store's statements convert them."""
    return sqlite_insert(target).removesuffix(f" {target.on_conflict}")


def sqlite_floor(path: Path, rows: list[Writes]) -> float:
    engine = make_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    (page_bytes,) = connection.execute("PRAGMA page_size").fetchone()
    connection.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages(page_bytes)}")
    start = time.perf_counter()
    for writes in rows:
        connection.execute("BEGIN")
        for target, table_rows in writes:
            connection.executemany(_insert_sql(target), table_rows)
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed


COMMIT, SETTLE = "commit", "settle"


class Spent(Counter[str]):
    """Seconds by statement: the table each one writes, COMMIT (a transaction's begin and commit) and SETTLE."""

    @contextmanager
    def timing(self, what: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self[what] += time.perf_counter() - started

    def total(self) -> float:
        return sum(self.values())

    def shares(self) -> str:
        """Each statement's share of the time, the largest first (``device_state 27%, …``), those under 0.5 % left
        out (tables the fleet's reports do not write)."""
        total = self.total() or 1.0
        return ", ".join(
            f"{what} {seconds / total:.0%}" for what, seconds in self.most_common() if seconds / total >= 0.005
        )


def postgres_alone(url: str, prepared: Iterable[tuple[Writes, Writes]], spent: Spent | None = None) -> float:
    """PostgreSQL's share of storing: the store's own statements through its driver (binary COPY into the history
    tables, the stage tables and ON CONFLICT for the latest state) and a commit per batch, on prepared rows (see
    store_writes), the status values straight into ``status_values`` as the PostgreSQL worker writes them by
    default (streams.store.settle.DEFAULT_SETTLE_EVERY); only those are timed (``prepared`` may build each batch as
    it is asked for). As sqlite_alone for SQLite: the store cannot be faster than this. ``spent``: where the time
    went, added to it.
    """
    engine = make_engine(url)
    driver = PostgresDriver()
    timed = Spent()
    try:
        migrate.upgrade(engine)
        raw = engine.raw_connection()
        connection = raw.driver_connection
        for inserts, upserts in prepared:
            with connection.cursor() as cursor:  # type: ignore[union-attr]
                for target, rows in straight_in(inserts):
                    with timed.timing(target.table):
                        driver.insert(cursor, target, rows)
                for target, rows in upserts:
                    with timed.timing(target.table):
                        driver.upsert(cursor, target, rows)
            with timed.timing(COMMIT):
                connection.commit()  # type: ignore[union-attr]
        raw.close()
    finally:
        engine.dispose()
    if spent is not None:
        spent.update(timed)
    return timed.total()


def postgres_floor(url: str, rows: list[Writes]) -> float:
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    try:
        raw = engine.raw_connection()
        driver = raw.driver_connection
        start = time.perf_counter()
        for writes in rows:
            with driver.cursor() as cursor:  # type: ignore[union-attr]
                for target, table_rows in writes:
                    with cursor.copy(postgres_copy(target)) as copy:
                        copy.set_types(postgres_copy_types(target))
                        for row in table_rows:
                            copy.write_row(row)
            driver.commit()  # type: ignore[union-attr]
        elapsed = time.perf_counter() - start
        raw.close()
    finally:
        engine.dispose()
    return elapsed


History = Callable[[list[StatusRows]], Writes]  # a batch's status values into the history's writes


def wide_history(messages: list[StatusRows]) -> Writes:
    """The history as the store wrote it before the narrow format (tests.bench.wide): a row a value."""
    return [(WIDE_STATUS, flat_status(messages))]


def store_writes(batch: list[Decoded], time_format: TimeFormat, history: History) -> tuple[Writes, Writes]:
    """A batch's statements as the store runs them, with their rows (every message new): the inserts, ``messages``
    and the history first, and the latest-state upserts. ``history``: HistoryKeys().writes, one for the whole run
    (its keys go on from batch to batch), or wide_history."""
    rows = record_rows(batch, time_format)
    inserts, upserts = record_writes(rows)
    received = time_format(T0)
    messages = [message_row(item.message, received, time_format, unknown=False) for item in batch]
    return [(MESSAGES, messages), *history(rows.status), *inserts], upserts


def sqlite_statements(
    batches: list[list[Decoded]], history: History | None = None, *, before: bool = False
) -> list[Writes]:
    """Per batch, every statement the store runs on SQLite with its rows (all messages new), built in advance;
    ``history`` as in store_writes (default: the narrow format's, keys from 1). ``before``: the upserts as one
    statement a table, as the store ran them before SQLite's were split (streams.store.drivers.sqlite_upserts)."""
    history = history or HistoryKeys().writes
    prepared = []
    for batch in batches:
        inserts, upserts = store_writes(batch, sqlite_time, history)
        if not before:
            upserts = [split for target, rows in upserts for split in sqlite_upserts(target, rows)]
        prepared.append([(target, table_rows) for target, table_rows in (*inserts, *upserts) if table_rows])
    return prepared


def sqlite_alone(
    path: Path,
    prepared: Iterable[Writes],
    cache_kib: int | None = None,
    tables: MetaData | None = None,
    page_bytes: int | None = None,
    spent: Spent | None = None,
) -> float:
    """The database's share of storing: the store's own SQL and transactions on prepared rows, no Python between.

    A migrated file on the engine's connection set-up (WAL, pragmas; ``cache_kib`` replaces its page cache size,
    ``page_bytes`` the size of its pages), ``executemany`` of each statement and a commit per batch; only those are
    timed (``prepared`` may build each batch as it is asked for). The store cannot be faster than this; the gap to it
    is the store's Python (rows, look-up, dedup). ``tables``: created beside the migrated ones (tests.bench.wide.WIDE
    for the wide format's statements). ``spent``: where the time went, added to it.
    """
    if page_bytes is not None:  # made before the engine sees it, which would make it with its own page size
        made = sqlite3.connect(path)
        made.execute(f"PRAGMA page_size={page_bytes}")
        made.execute("PRAGMA journal_mode=WAL")
        made.close()
    engine = make_engine(f"sqlite:///{path}")
    elapsed = 0.0
    try:
        migrate.upgrade(engine)
        if tables is not None:
            tables.create_all(engine)
        connection = engine.raw_connection()
        cursor = connection.cursor()
        if cache_kib is not None:
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")
        writer = SqliteAlone(cursor, spent)
        for batch in prepared:
            elapsed += writer.write(batch)
        connection.close()
    finally:
        engine.dispose()
    return elapsed


class SqliteAlone:
    """Prepared writes on a sqlite3 cursor as the worker's writer runs them: a transaction a batch, and the settle of
    the recent status values (streams.store.settle) once SETTLE_EVERY of them were written since the last one began,
    a range of series after each transaction; each call returns its seconds, and adds them to ``spent`` by statement
    when given."""

    def __init__(self, cursor: Any, spent: Spent | None = None) -> None:
        self._cursor = cursor
        self._spent = Spent() if spent is None else spent
        self._waiting = 0
        self._next: int | None = None  # the first series of the settle's next range, while one is under way

    def write(self, writes: Writes) -> float:
        elapsed = sqlite_transaction(self._cursor, writes, self._spent)
        self._waiting += sum(len(rows) for target, rows in writes if target is STATUS_RECENT)
        if self._next is None and self._waiting >= SETTLE_EVERY:
            self._next, self._waiting = EVERY_SERIES[0], 0
        if self._next is None:
            return elapsed
        started = time.perf_counter()
        with self._spent.timing(SETTLE):
            self._cursor.execute("BEGIN IMMEDIATE")
            end = range_end(
                *self._cursor.execute(RANGE_END, {"first": self._next, "values": SETTLE_CHUNK_VALUES}).fetchone()
            )
            self._settle((self._next, end))
        self._next = None if end == EVERY_SERIES[1] else end
        return elapsed + time.perf_counter() - started

    def settle(self) -> float:
        """Settle every recent value now, in one transaction."""
        started = time.perf_counter()
        with self._spent.timing(SETTLE):
            self._cursor.execute("BEGIN IMMEDIATE")
            self._settle(EVERY_SERIES)
        self._waiting, self._next = 0, None
        return time.perf_counter() - started

    def _settle(self, series: tuple[int, int]) -> None:
        """Move the range's values and commit the transaction begun."""
        for statement in SQLITE_SETTLE:
            self._cursor.execute(statement, {"first": series[0], "end": series[1]})
        self._cursor.execute("COMMIT")


def sqlite_transaction(cursor: Any, writes: Writes, spent: Spent | None = None) -> float:
    """Seconds one transaction of ``writes`` takes on a sqlite3 cursor: ``executemany`` of each statement between
    ``BEGIN IMMEDIATE`` (the write lock taken at once, as the worker's writer takes it) and ``COMMIT``; added to
    ``spent`` by statement when given (its table's name; the two ends as COMMIT)."""
    spent = Spent() if spent is None else spent
    started = time.perf_counter()
    with spent.timing(COMMIT):
        cursor.execute("BEGIN IMMEDIATE")
    for target, rows in writes:
        with spent.timing(target.table):
            cursor.executemany(sqlite_insert(target), rows)
    with spent.timing(COMMIT):
        cursor.execute("COMMIT")
    return time.perf_counter() - started


def report(name: str, rounds: list[tuple[float, ...]], count: int, note: str) -> None:
    """Best of the rounds for each figure (the machines are shared and noisy); the ratio of the bests."""
    store_s, floor_s, again_s, *alone = (min(times) for times in zip(*rounds, strict=True))
    status_rows = count * len(CODES)
    print(
        f"{name:<10} store {count / store_s:>9,.0f} msg/s {status_rows / store_s:>10,.0f} status rows/s   "
        f"floor {count / floor_s:>9,.0f} msg/s {status_rows / floor_s:>10,.0f} rows/s   "
        f"ratio {store_s / floor_s:4.2f}x  {note}"
    )
    if alone:
        print(
            f"{'':<10} the store's own SQL alone, rows prepared in advance (messages, the history's tables, "
            f"device_state, devices): {count / alone[0]:,.0f} msg/s; the store takes {store_s / alone[0]:.2f}x its time"
        )
    print(f"{'':<10} re-store of the same batches (all duplicates): {count / again_s:,.0f} msg/s")


def sqlite_round(
    batches: list[list[Decoded]], rows: list[Writes], prepared: list[Writes]
) -> tuple[float, float, float, float]:
    """(store, floor, re-store, the store's SQL alone) seconds on fresh files."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/store.db")
        try:
            migrate.upgrade(engine)
            store_s, again_s = run_store(engine, batches), run_store(engine, batches)
        finally:
            engine.dispose()
        floor_s = sqlite_floor(Path(folder) / "floor.db", rows)
        return store_s, floor_s, again_s, sqlite_alone(Path(folder) / "alone.db", prepared)


def postgres_round(
    server_url: str, batches: list[list[Decoded]], rows: list[Writes], prepared: list[tuple[Writes, Writes]]
) -> tuple[float, float, float, float]:
    """(store, floor, re-store, the store's SQL alone) seconds in fresh scratch databases."""
    with (
        scratch_postgres(server_url) as store_url,
        scratch_postgres(server_url) as floor_url,
        scratch_postgres(server_url) as alone_url,
    ):
        engine = make_engine(store_url)
        try:
            migrate.upgrade(engine)
            store_s, again_s = run_store(engine, batches), run_store(engine, batches)
        finally:
            engine.dispose()
        return store_s, postgres_floor(floor_url, rows), again_s, postgres_alone(alone_url, prepared)


def postgres_settings(server_url: str) -> str:
    engine = make_engine(server_url)
    try:
        with engine.connect() as connection:
            names = ("fsync", "synchronous_commit", "server_version")
            return ", ".join(f"{name}={connection.exec_driver_sql(f'SHOW {name}').scalar()}" for name in names)
    finally:
        engine.dispose()


def main() -> None:
    batches = make_batches()
    count = sum(map(len, batches))
    print(
        f"store: {COUNT:,} status reports × {len(CODES)} items, {DEVICES:,} devices, batches of {BATCH:,}; "
        f"best of {ROUNDS} rounds, each on fresh databases"
    )
    rows, prepared = floor_rows(batches, sqlite_time), sqlite_statements(batches)
    settle_heap()  # the garbage collector's policy of `tuya-archiver run` (streams.heap)
    rounds = [sqlite_round(batches, rows, prepared) for _ in range(ROUNDS)]
    report("SQLite", rounds, count, "(WAL, synchronous=NORMAL; floor: sqlite3 executemany)")
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        print("PostgreSQL: skipped (TEST_DATABASE_URL is not set)")
        return
    rows = floor_rows(batches, PostgresDriver.time)
    keys = HistoryKeys()
    prepared_pg = [store_writes(batch, PostgresDriver.time, keys.writes) for batch in batches]
    rounds = [postgres_round(server_url, batches, rows, prepared_pg) for _ in range(ROUNDS)]
    report("PostgreSQL", rounds, count, f"({postgres_settings(server_url)}; floor: psycopg binary COPY)")


if __name__ == "__main__":
    main()
