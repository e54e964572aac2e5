"""A large archive for the query benchmarks: 10 M status rows of a simulated fleet over 7 days, SQLite or PostgreSQL.

2,000 devices of the simulator's three products (their specifications in ``data_points``, so the views scale and
name units) report five values every ten minutes or so, in time order across devices as a worker would store
them; one of them, "Greenhouse sensor", reports its temperature every 10 s (60,480 points in 7 days), the chart
and the README's query of the benchmarks. The rows go into the history's narrow tables (``status_series``,
``status_messages``, ``status_values``, keys given as tests.bench.store's HistoryKeys hands them out; the
benchmarks read them through the ``device_status`` view) by the drivers' fastest paths, sqlite3 executemany with
the journal off and psycopg binary COPY, with the tables' indexes dropped and built again at the end (on SQLite,
status_values' rows are sorted into its primary key's order first: see _fill_sqlite). SQLite gets no planner
statistics, as an archive the worker writes has none; PostgreSQL's are gathered (its autovacuum would). The SQLite
file is kept between runs (the build takes minutes) next to the other benchmark data, and built again when it is
not at the newest migration; PostgreSQL is built in a scratch database each run.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from models.points import normalize_unit
from models.tables import DataPoint, Device
from streams.sim.products import PRODUCTS
from streams.store import migrate
from streams.store.drivers import PostgresDriver
from streams.store.engine import PAGE_BYTES, make_engine
from streams.store.rows import grouped_status, json_text, sqlite_time
from streams.store.sql import Writes
from streams.store.statements import STATUS_VALUES, postgres_copy, postgres_copy_types
from tests.bench.store import HistoryKeys, _insert_sql, straight_in
from tests.unit.store.databases import scratch_postgres

__all__ = [
    "DATA",
    "END",
    "ROWS",
    "SENSOR_ID",
    "SENSOR_NAME",
    "BenchArchive",
    "on_each_database",
    "postgres_archive",
    "sqlite_archive",
]

#: Where the SQLite archive is kept between runs.
DATA = Path(__file__).resolve().parents[2] / ".services" / "bench"

ROWS = 10_000_000
DEVICES = 2_000
DAYS = 7
SENSOR_NAME = "Greenhouse sensor"
SENSOR_ID = "bfbenchgreenhouse0001"
SENSOR_EVERY_S = 10
END = datetime(2026, 12, 1, tzinfo=UTC)
_CHUNK = 200_000
#: The history's tables: filled with their indexes dropped (on PostgreSQL their keys too), built again at the end.
_HISTORY = ("status_series", "status_messages", "status_values")


@dataclass(frozen=True, slots=True)
class BenchArchive:
    url: str
    rows: int
    sensor_points: int
    seconds_to_build: float

    @property
    def start(self) -> datetime:
        return END - timedelta(days=DAYS)


def _devices(rng: Random) -> list[tuple[str, str, str]]:
    """(device_id, name, product_key): the greenhouse sensor first."""
    fleet = [(SENSOR_ID, SENSOR_NAME, PRODUCTS[1].product_key)]
    for n in range(1, DEVICES):
        product = PRODUCTS[n % len(PRODUCTS)]
        fleet.append((f"bfbench{n:015d}", f"{product.label} {n:04d}", product.product_key))
    rng.shuffle(fleet)
    return fleet


def _rows(total: int) -> Iterator[tuple[object, ...]]:
    """Status rows in time order: the fleet's reports interleaved with the sensor's every-10-s temperature."""
    rng = Random(7)
    fleet = _devices(rng)
    products = {product.product_key: product for product in PRODUCTS}
    span_s = DAYS * 86_400
    sensor_points = span_s // SENSOR_EVERY_S
    reports = (total - sensor_points) // 5
    step = span_s / reports
    next_sensor, message = 0, 0
    for n in range(reports):
        at_s = n * step
        while next_sensor * SENSOR_EVERY_S <= at_s and next_sensor < sensor_points:
            message += 1
            when = END - timedelta(seconds=span_s - next_sensor * SENSOR_EVERY_S)
            yield (f"{message // 1000 + 1}:{message % 1000}:0:-1", 0, SENSOR_ID, "temp_current", "215", 1, when, None)
            next_sensor += 1
        message += 1
        device_id, _name, product_key = fleet[n % len(fleet)]
        product = products[product_key]
        when = END - timedelta(seconds=span_s - at_s)
        message_id = f"{message // 1000 + 1}:{message % 1000}:0:-1"
        for index, (code, dp_id) in enumerate(product.dp_ids.items()):
            yield (message_id, index, device_id, code, json_text(rng.randrange(0, 3000)), dp_id, when, None)


def _seed_fleet(engine: Engine) -> None:
    rng = Random(7)
    now = END
    with engine.begin() as connection:
        connection.execute(
            insert(Device),
            [
                {"device_id": d, "name": name, "product_key": p, "first_seen_at": now, "last_seen_at": now}
                for d, name, p in _devices(rng)
            ],
        )
        connection.execute(insert(DataPoint), _points())


def _points() -> list[dict[str, object]]:
    """The simulator's products' data points, as ``sync`` stores them."""
    return [
        {
            "product_id": product.product_key,
            "code": code,
            "dp_id": product.dp_ids.get(code),
            "name": None,
            "type": point.type,
            "unit": normalize_unit(point.unit),
            "scale": point.scale,
            "min": point.min,
            "max": point.max,
            "step": point.step,
            "range": list(point.range) or None,
            "reported": point.reported,
            "commandable": point.commandable,
            "spec": {},
            "synced_at": END,
        }
        for product in PRODUCTS
        for code, point in product.points.items()
    ]


def sqlite_archive(directory: Path, rows: int = ROWS) -> BenchArchive:
    """The SQLite archive in ``directory`` (built on first use, then reused while its schema and page size are
    today's: one built at an older revision, or with pages of another size, is built again, as migrating it would
    leave it in another layout than a fresh build)."""
    path = directory / f"archive-{rows}.db"
    url = f"sqlite:///{path}"
    sensor_points = DAYS * 86_400 // SENSOR_EVERY_S
    if path.exists():
        if _layout(path) == (migrate.head_revision(), PAGE_BYTES):
            _without_statistics(path)
            return BenchArchive(url, rows, sensor_points, 0.0)
        path.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{partial}")
    try:
        migrate.upgrade(engine)
        _seed_fleet(engine)
    finally:
        engine.dispose()
    _fill_sqlite(partial, rows)
    partial.rename(path)
    return BenchArchive(url, rows, sensor_points, time.perf_counter() - started)


def _layout(path: Path) -> tuple[str, int] | None:
    """The alembic revision the file is at and its page size (None: not a migrated archive, e.g. one cut short)."""
    connection = sqlite3.connect(path)
    try:
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        return revision, connection.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def _without_statistics(path: Path) -> None:
    """No planner statistics, as in an archive the worker wrote (nobody runs ANALYZE on it); an earlier build of
    this file had them."""
    connection = sqlite3.connect(path)
    try:
        for table in ("sqlite_stat1", "sqlite_stat4"):
            connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.commit()
    finally:
        connection.close()


def _history(rows: int, time_format: Callable[[datetime], object]) -> Iterator[Writes]:
    """The history's writes (``status_series``, ``status_messages``, ``status_values``: a week's history, settled),
    keys given, in chunks of about _CHUNK status rows that never split a message (its rows share its key)."""
    keys = HistoryKeys()
    chunk: list[tuple[object, ...]] = []
    for row in _rows(rows):
        if len(chunk) >= _CHUNK and row[0] != chunk[-1][0]:
            yield straight_in(keys.writes(grouped_status(chunk)))
            chunk = []
        chunk.append((*row[:6], time_format(row[6]), row[7]))  # type: ignore[arg-type]
    if chunk:
        yield straight_in(keys.writes(grouped_status(chunk)))


def _fill_sqlite(path: Path, rows: int) -> None:
    """The history through sqlite3 executemany, journal off, in one transaction, the secondary indexes built after.

    status_values is WITHOUT ROWID: its rows live in its primary key's B-tree, which rows in key order (series,
    time) fill page after page, while rows in time order across the fleet land on ~10,000 pages at once. Its rows
    are therefore kept and sorted in Python (2 GB at the peak) and inserted last. Measured on 10 M rows, one build
    after another on a busy 2-core machine: 142 s a build this way; 193 s inserting them in time order (244 s with
    SQLite's default 2 MB page cache); 177 s (201 s) through a scratch rowid table moved over with INSERT … SELECT
    … ORDER BY series_id, reported_at, message_key, item_index. The file is the same size every way.
    """
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        marks = ", ".join("?" * len(_HISTORY))
        indexes = connection.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ({marks}) AND sql IS NOT NULL",
            _HISTORY,
        ).fetchall()
        for name, _sql in indexes:
            connection.execute(f"DROP INDEX {name}")
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("BEGIN")
        values: list[tuple[object, ...]] = []
        for writes in _history(rows, sqlite_time):
            for target, table_rows in writes:
                if target is STATUS_VALUES:
                    values.extend(table_rows)
                else:
                    connection.executemany(_insert_sql(target), table_rows)
        values.sort()  # the primary key's order: (series_id, reported_at, message_key, item_index)
        connection.executemany(_insert_sql(STATUS_VALUES), values)
        del values
        connection.execute("COMMIT")
        for _name, sql in indexes:
            connection.execute(sql)
    finally:
        connection.close()


def postgres_archive(url: str, rows: int = ROWS) -> BenchArchive:
    """The archive in the (empty) PostgreSQL database at ``url``: binary COPY into the history's tables with their
    keys and indexes dropped, all built again after, ANALYZE.

    The primary keys go too: status_values' is not in the rows' (time) order, and COPY into it took 111 s of a
    10 M-row build where COPY without it and building it after took 48 + 15 s.
    """
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        _seed_fleet(engine)
        with engine.begin() as connection:
            cursor = connection.connection.driver_connection.cursor()
            tables = list(_HISTORY)
            constraints = cursor.execute(
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('p', 'u')",
                (tables,),
            ).fetchall()
            indexes = cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND NOT indexname = ANY(%s)",
                (tables, [name for _table, name, _sql in constraints]),
            ).fetchall()
            for name, _sql in indexes:
                cursor.execute(f"DROP INDEX {name}")
            for table, name, _sql in constraints:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            for writes in _history(rows, PostgresDriver.time):
                for target, table_rows in writes:
                    with cursor.copy(postgres_copy(target)) as copy:
                        # JSON as text: the server's json input reads the JSON text as is (as the store sends it)
                        copy.set_types(postgres_copy_types(target))
                        for row in table_rows:
                            copy.write_row(row)
            for table, name, sql in constraints:
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {sql}")
            for _name, sql in indexes:
                cursor.execute(sql)
            # The keys were given: the sequences go on after them, as if the store had handed them out.
            for table, column in (("status_series", "series_id"), ("status_messages", "message_key")):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), MAX({column})) FROM {table}"
                )
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    return BenchArchive(url, rows, DAYS * 86_400 // SENSOR_EVERY_S, time.perf_counter() - started)


def on_each_database(measure: Callable[[BenchArchive, str], None]) -> None:
    """``measure`` the SQLite archive (kept in DATA), then one built in a scratch database on TEST_DATABASE_URL's
    PostgreSQL (skipped, saying so, when it is not set)."""
    measure(sqlite_archive(DATA), "SQLite")
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        print("  PostgreSQL: skipped (TEST_DATABASE_URL is not set)")
        return
    with scratch_postgres(url) as scratch:
        measure(postgres_archive(scratch), "PostgreSQL")
