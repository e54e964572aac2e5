"""Scratch databases for the store's integration tests: a fresh PostgreSQL database (dropped afterwards) or a
SQLite file, each migrated to head. The shared server of ``make test`` is never used directly.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Table
from sqlalchemy.engine import Engine, make_url

from models.tables import Base, DeviceStatus
from streams.store import migrate
from streams.store.engine import make_engine

__all__ = [
    "DIALECTS",
    "NARROW",
    "archive_tables",
    "migrated_engine",
    "scratch_database",
    "scratch_postgres",
    "truncate_all",
]

DIALECTS = ("sqlite", "postgresql")

#: The history's narrow tables: their keys depend on the order of storing, so tests compare the history through the
#: ``device_status`` view instead.
NARROW = ("status_series", "status_messages", "status_values", "status_recent")


def archive_tables() -> dict[str, Table]:
    """The archive as users see it: every table but the narrow ones, and the ``device_status`` view (keyed by
    message id and item index)."""
    tables = {name: table for name, table in Base.metadata.tables.items() if name not in NARROW}
    return tables | {"device_status": DeviceStatus.__table__}


@contextlib.contextmanager
def scratch_postgres(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database ``t_<random>`` on the server of ``server_url``; dropped on exit."""
    name = f"t_{secrets.token_hex(6)}"
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {name}")
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()


@contextlib.contextmanager
def scratch_database(request: pytest.FixtureRequest, folder: Path) -> Iterator[str]:
    """A new, empty database of the dialect ``request.param`` (one of DIALECTS): a SQLite file in ``folder``, or a
    scratch database on the PostgreSQL of the ``pg_url`` fixture (which skips, or fails in CI, without it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{folder / 'archive.db'}"
        return
    with scratch_postgres(request.getfixturevalue("pg_url")) as url:
        yield url


@contextlib.contextmanager
def migrated_engine(url: str) -> Iterator[Engine]:
    """An engine on ``url`` with the schema migrated to head; disposed afterwards."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def truncate_all(engine: Engine) -> None:
    """Empty every table (the schema stays at head)."""
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.exec_driver_sql(f"DELETE FROM {table.name}")
