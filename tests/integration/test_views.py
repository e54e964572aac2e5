"""The views of migrations/versions/2026_12_05_fleet_sync.py on SQLite and PostgreSQL: physical units through the
device's product, and query plans that reach the history's values through their key (series, time) when filtered by
name or id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Engine

from models.tables import DataPoint, EpochMillis, latest_status, status_history
from streams.store import migrate
from streams.store.engine import make_engine
from streams.store.sql import ArchiveStore
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, scratch_database

pytestmark = pytest.mark.integration

#: How each database reaches the values by series (and time), settled (status_values) and recent (status_recent):
#: their primary key (rows clustered in it on SQLite).
VALUES_BY_KEY = {
    "sqlite": ["SEARCH v USING PRIMARY KEY (series_id=?", "SEARCH r USING PRIMARY KEY (series_id=?"],
    "postgresql": ["pk_status_values", "pk_status_recent", "(series_id = s"],  # s, or s_1 in a union
}
#: What no plan may read whole: the values, their series and their messages.
NOT_SCANNED = {
    "sqlite": ["SCAN v", "SCAN r", "SCAN s ", "SCAN m"],
    "postgresql": ["Seq Scan on status_"],
}


def _reads_by_key(plan: str, dialect: str) -> None:
    assert all(step in plan for step in VALUES_BY_KEY[dialect]), plan
    assert not any(step in plan + " " for step in NOT_SCANNED[dialect]), plan


def _point(code: str, type_: str, scale: int = 0, unit: str | None = None) -> dict[str, object]:
    return {
        "product_id": f.PRODUCT,
        "code": code,
        "type": type_,
        "dp_id": None,
        "unit": unit,
        "scale": scale,
        "min": None,
        "max": None,
        "step": None,
        "range": None,
        "reported": True,
        "commandable": False,
        "spec": {},
        "synced_at": f.at(0),
    }


@pytest.fixture(scope="module", params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_database(request, tmp_path_factory.mktemp("views")) as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            values = {"temp": 261, "neg": -175, "milli": 12345, "flag": True, "mode": "eco", "raw": 7, "bare": 5}
            batch = [f.device_event(1, "name_updated", {"name": "Greenhouse"}), f.status_report(2, values)]
            ArchiveStore(engine).write_batch(batch, [], received_at=f.at(3))
            points = [
                _point("temp", "Integer", 1, "°C"),
                _point("neg", "Integer", 1, "°C"),
                _point("milli", "Integer", 3, "kWh"),
                _point("flag", "Boolean"),
                _point("mode", "Enum"),
                _point("raw", "Integer", 0, "%"),
            ]
            with engine.begin() as connection:
                connection.execute(insert(DataPoint), points)
            yield engine
        finally:
            engine.dispose()


@pytest.mark.parametrize("view", [status_history, latest_status], ids=["status_history", "latest_status"])
def test_values_are_scaled_by_the_products_data_points(engine: Engine, view: Table) -> None:
    query = select(view.c.code, view.c.value, view.c.value_scaled, view.c.unit)
    with engine.connect() as connection:
        scaled = {row.code: (row.value, row.value_scaled, row.unit) for row in connection.execute(query)}
    assert scaled == {
        "bare": (5, 5, None),  # no data point: the value itself
        "flag": (True, True, None),
        "milli": (12345, 12.345, "kWh"),
        "mode": ("eco", "eco", None),
        "neg": (-175, -17.5, "°C"),
        "raw": (7, 7, "%"),
        "temp": (261, 26.1, "°C"),
    }


def test_sqlite_keeps_scaled_numbers_as_numbers(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's value_scaled holds numbers as numbers (PostgreSQL's is json)")
    query = "SELECT typeof(value_scaled) FROM status_history WHERE code IN ('temp', 'raw', 'mode') ORDER BY code"
    with engine.connect() as connection:
        assert connection.exec_driver_sql(query).scalars().all() == ["text", "integer", "real"]


def _plan(connection: Connection, query: str) -> str:
    if connection.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
    connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: ask whether the index *can* be used
    return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {query}"))


#: A time bound as users write it on each database: reported_key is milliseconds on SQLite, a time on PostgreSQL.
SINCE = {"sqlite": "strftime('%s', '2026-11-01') * 1000", "postgresql": "'2026-11-01+00'"}
UNTIL = {"sqlite": "strftime('%s', '2026-11-02') * 1000", "postgresql": "'2026-11-02+00'"}

QUERIES = {
    "by name and code": (
        "SELECT reported_at, value FROM status_history WHERE device_name = 'Greenhouse' AND code = 'temp'"
    ),
    "by name and time": (
        "SELECT reported_at, value FROM status_history WHERE device_name = 'Greenhouse' "
        "AND reported_key >= {since} ORDER BY reported_at DESC LIMIT 5"
    ),
    "by id and time": (
        f"SELECT reported_at, value FROM status_history WHERE device_id = '{f.DEVICE}' "
        "AND reported_key >= {since} AND reported_key < {until}"
    ),
}
#: The time bound inside the search of each values table's key (the key's column is reported_at in both tables).
TIME_IN_KEY = {"sqlite": ["(series_id=? AND reported_at>?"], "postgresql": ["(reported_at >= "]}


@pytest.mark.parametrize("query", list(QUERIES), ids=list(QUERIES))
def test_a_filter_by_device_reaches_the_values_through_their_key(engine: Engine, query: str) -> None:
    dialect = engine.dialect.name
    with engine.connect() as connection:
        plan = _plan(connection, QUERIES[query].format(since=SINCE[dialect], until=UNTIL[dialect]))
    _reads_by_key(plan, dialect)
    if "time" in query:
        assert all(plan.count(step) == 2 for step in TIME_IN_KEY[dialect]), plan  # settled and recent


@pytest.mark.parametrize(("bound", "found"), [("2026-11-01 12:00:02", 7), ("2026-11-01 12:00:02.001", 0)])
def test_reported_at_and_reported_key_find_the_same_values(engine: Engine, bound: str, found: int) -> None:
    """SQLite's reported_at is the text made from the milliseconds it keeps: the same values as reported_key finds,
    in the text form users compared before (the report is at 12:00:02 exactly)."""
    millis = EpochMillis().process_bind_param(datetime.fromisoformat(bound), sqlite.dialect())
    key = {"sqlite": str(millis), "postgresql": f"'{bound}+00'"}[engine.dialect.name]
    query = "SELECT message_id, item_index, reported_at FROM device_status WHERE {condition}"
    with engine.connect() as connection:
        by_text = connection.exec_driver_sql(query.format(condition=f"reported_at >= '{bound}'")).all()
        by_key = connection.exec_driver_sql(query.format(condition=f"reported_key >= {key}")).all()
    assert sorted(by_text) == sorted(by_key)
    assert len(by_text) == found


def test_a_filter_by_message_reaches_the_values_through_their_key(engine: Engine) -> None:
    """replay --messages reads a message's values so: its device's series, then the values between its times."""
    with engine.connect() as connection:
        message_id = connection.exec_driver_sql("SELECT message_id FROM status_messages").scalar()
        plan = _plan(connection, f"SELECT code, value FROM device_status WHERE message_id = '{message_id}'")
    _reads_by_key(plan, engine.dialect.name)
