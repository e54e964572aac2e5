"""The batch store's driver on a caller's transaction: how ``replay --messages``, ``backfill`` and seeded archives
write rows with the worker's statements and ON CONFLICT rules, without the worker's runtime. Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.engine import Connection

from streams.store.drivers import Driver, PostgresDriver, SqliteDriver
from streams.store.history import SeriesKeys, insert_status
from streams.store.rederive import STATUS_VIEW
from streams.store.rows import grouped_status
from streams.store.statements import Target

__all__ = ["RowWriter"]

Row = tuple[Any, ...]


class RowWriter:
    """The batch store's driver on the caller's transaction: inserts that skip rows whose key exists, and the
    "newer wins" upserts. On PostgreSQL rows always go through the stage tables (another writer may have stored
    a row meanwhile) and NUL characters become U+FFFD, as the store's fallbacks do.

    One write per table and transaction: a PostgreSQL stage table keeps its rows until the commit, so a second
    write would move the first one's rows again.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._postgres = connection.dialect.name == "postgresql"
        self._driver: Driver = PostgresDriver(tolerant=True, clean_text=True) if self._postgres else SqliteDriver()
        self._written: set[str] = set()

    def as_stored(self, row: Row) -> Row:
        """``row`` as this database keeps it: PostgreSQL text cannot hold NUL (the driver writes U+FFFD)."""
        if not self._postgres:
            return row
        return tuple(value.replace("\x00", "\ufffd") if isinstance(value, str) else value for value in row)

    def insert(self, target: Target, rows: Sequence[Row]) -> None:
        if target is STATUS_VIEW:
            self.insert_status(rows, stored="add")
        else:
            self._run(self._driver.insert, target, rows)

    def insert_status(self, rows: Sequence[Row], *, stored: Literal["skip", "add"], source: str = "stream") -> None:
        """Status rows (:data:`~streams.store.rows.STATUS_COLUMNS`) into the history's tables; see
        :func:`~streams.store.history.insert_status` for ``stored``."""

        def write(cursor: Any, _target: Target, prepared: Sequence[Row]) -> None:
            insert_status(self._driver, cursor, grouped_status(prepared), SeriesKeys(), stored=stored, source=source)

        self._run(write, STATUS_VIEW, rows)

    def upsert(self, target: Target, rows: Sequence[Row]) -> None:
        self._run(self._driver.upsert, target, rows)

    def _run(self, write: Any, target: Target, rows: Sequence[Row]) -> None:
        if not rows:
            return
        if target.table in self._written:
            raise RuntimeError(f"{target.table} written twice in one transaction (see RowWriter)")
        self._written.add(target.table)
        time = self._driver.time
        prepared = [tuple(time(v) if isinstance(v, datetime) else v for v in row) for row in rows]
        cursor = self._connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            write(cursor, target, prepared)
        finally:
            cursor.close()
