"""Benchmark: the README's query on the views, on an archive of 10 M status rows, SQLite and PostgreSQL.

``SELECT reported_at, value FROM status_history WHERE device_name = '…' AND code = '…'`` took 8.8 s on SQLite with
the first revision's schema, where nothing let the planner start from the device's name, so it scanned every status
row. The reference line runs that same query on the first revision's view with ``devices.name`` unindexed again (in
the same archive, restored afterwards), so both are timed in the same run; the view reads today's ``device_status``,
whose scan of every value now also joins each to its series and message. Each figure is the best of 3 runs; the
plan the database chose for today's view is printed. Then one device's history over one day, as ``tuya-archiver
history`` queries it: the figure any change to the history tables must keep.

Run alone with ``python -m tests.bench.views`` (PostgreSQL from TEST_DATABASE_URL, skipped when unset; ``make
bench`` sets it).
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.engine import Engine

from streams.store.engine import make_engine
from streams.store.query import HistoryQuery, status_history_rows
from tests.bench.archive import END, ROWS, SENSOR_ID, SENSOR_NAME, BenchArchive, on_each_database

QUERY = "SELECT reported_at, value FROM {view} WHERE device_name = :name AND code = 'temp_current' ORDER BY reported_at"
# The first revision's view (migrations/versions/2026_11_28_initial_schema.py): the reference.
BEFORE = """
CREATE VIEW status_history_before AS
SELECT s.reported_at, s.device_id, d.name AS device_name, d.product_key, s.code, s.value, s.dp_id,
       s.message_id, s.item_index
FROM device_status s
LEFT JOIN devices d ON d.device_id = s.device_id
"""
ROUNDS = 3


def _best(engine: Engine, view: str) -> tuple[float, int]:
    best, count = float("inf"), 0
    for _ in range(ROUNDS):
        with engine.connect() as connection:
            started = time.perf_counter()
            count = len(connection.execute(text(QUERY.format(view=view)), {"name": SENSOR_NAME}).all())
            best = min(best, time.perf_counter() - started)
    return best, count


def _day_of_history(engine: Engine) -> tuple[float, int]:
    """``tuya-archiver history`` of the sensor over its last day (8,640 values): the query it runs, best of 3."""
    query = HistoryQuery(SENSOR_ID, since=END - timedelta(days=1), until=END)
    best, count = float("inf"), 0
    for _ in range(ROUNDS):
        with engine.connect() as connection:
            started = time.perf_counter()
            count = len(status_history_rows(connection, query))
            best = min(best, time.perf_counter() - started)
    return best, count


def measure(archive: BenchArchive, label: str) -> None:
    engine = make_engine(archive.url)
    try:
        day, day_rows = _day_of_history(engine)
        now, rows = _best(engine, "status_history")
        plan = _plan(engine)
        with engine.begin() as connection:  # the first revision's schema: its view, and no index on devices.name
            connection.exec_driver_sql("DROP VIEW IF EXISTS status_history_before")
            connection.exec_driver_sql(BEFORE)
            connection.exec_driver_sql("DROP INDEX ix_devices_name")
        try:
            before, rows_before = _best(engine, "status_history_before")
        finally:
            with engine.begin() as connection:
                connection.exec_driver_sql("CREATE INDEX ix_devices_name ON devices (name)")
                connection.exec_driver_sql("DROP VIEW status_history_before")
    finally:
        engine.dispose()
    built = f", built in {archive.seconds_to_build:.0f} s" if archive.seconds_to_build else ""
    print(f"  {label} ({archive.rows:,} status rows{built}):")
    print(f"    status_history by device name and code: {now * 1000:,.0f} ms for {rows:,} rows")
    print(f"    the first revision's schema, same query: {before * 1000:,.0f} ms for {rows_before:,} rows")
    print(f"    today's view takes {now / before:.2f}× the first revision's time; plan: {plan}")
    print(
        f"    one device's history over one day (the `history` command's query): {day * 1000:,.0f} ms "
        f"for {day_rows:,} rows"
    )


def _plan(engine: Engine) -> str:
    query = QUERY.format(view="status_history")
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            steps = connection.execute(text(f"EXPLAIN QUERY PLAN {query}"), {"name": SENSOR_NAME}).all()
            return " → ".join(step[-1] for step in steps)
        lines = connection.execute(text(f"EXPLAIN {query}"), {"name": SENSOR_NAME}).scalars().all()
        return " → ".join(line.strip() for line in lines if "Scan" in line)


def main() -> None:
    print(f"Views: the README's status_history query on {ROWS:,} status rows (best of {ROUNDS})")
    on_each_database(measure)


if __name__ == "__main__":
    main()
