"""A large archive for the query benchmarks: 10 M status rows of a simulated fleet over 7 days, SQLite or PostgreSQL.

2,000 devices of the simulator's three products (their specifications in ``data_points``, so the views scale and
name units) report five values every ten minutes or so, in time order across devices as a worker would store
them; one of them, "Greenhouse sensor", reports its temperature every 10 s (60,480 points in 7 days), the chart
and the README's query of the benchmarks. Rows go in through the drivers' fastest paths with the indexes dropped
and built again at the end. SQLite gets no planner statistics, as an archive the worker writes has none;
PostgreSQL's are gathered (its autovacuum would). The SQLite file is kept between runs (the
build takes minutes) next to the other benchmark data; PostgreSQL is built in a scratch database each run.
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
from streams.store.engine import make_engine
from streams.store.rows import json_text, sqlite_time
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
_STATUS = "INSERT INTO device_status (message_id, item_index, device_id, code, value, dp_id, reported_at, data_id)"
_CHUNK = 200_000


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
    """The SQLite archive in ``directory`` (built on first use, then reused)."""
    path = directory / f"archive-{rows}.db"
    url = f"sqlite:///{path}"
    sensor_points = DAYS * 86_400 // SENSOR_EVERY_S
    if path.exists():
        _without_statistics(path)
        _at_head(url)
        return BenchArchive(url, rows, sensor_points, 0.0)
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


def _at_head(url: str) -> None:
    """A file built by an older tree gets today's schema (the migrations since add columns: no table copy)."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


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


def _fill_sqlite(path: Path, rows: int) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'device_status' AND sql IS NOT NULL"
        ).fetchall()
        for name, _sql in indexes:
            connection.execute(f"DROP INDEX {name}")
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        statement = f"{_STATUS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        batch: list[tuple[object, ...]] = []
        for row in _rows(rows):
            batch.append((*row[:6], sqlite_time(row[6]), row[7]))  # type: ignore[arg-type]
            if len(batch) >= _CHUNK:
                connection.executemany(statement, batch)
                batch.clear()
        connection.executemany(statement, batch)
        for _name, sql in indexes:
            connection.execute(sql)
    finally:
        connection.close()


def postgres_archive(url: str, rows: int = ROWS) -> BenchArchive:
    """The archive in the (empty) PostgreSQL database at ``url``: binary COPY, indexes after, ANALYZE."""
    started = time.perf_counter()
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        _seed_fleet(engine)
        with engine.begin() as connection:
            cursor = connection.connection.driver_connection.cursor()
            indexes = cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'device_status' "
                "AND indexname NOT LIKE 'pk_%'"
            ).fetchall()
            for name, _sql in indexes:
                cursor.execute(f"DROP INDEX {name}")
            columns = "message_id, item_index, device_id, code, value, dp_id, reported_at, data_id"
            with cursor.copy(f"COPY device_status ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                # JSON as text: the server's json input reads the JSON text as is (as the store sends it)
                copy.set_types(["text", "int4", "text", "text", "text", "int4", "timestamptz", "text"])
                for row in _rows(rows):
                    copy.write_row(row)
            for _name, sql in indexes:
                cursor.execute(sql)
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
