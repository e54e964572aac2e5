"""Settling recent status values into the history: ``status_recent`` moved into ``status_values`` in bulk.

Owns how many values the worker lets wait (HISTORY_SETTLE_VALUES, by database), and when and how the values its
store wrote to ``status_recent`` (models.tables.StatusRecent) join the history. One transaction moves them all, in
``status_values``' key order, so each series' page is written once for many batches' values instead of once a
batch; a settle that fails or is killed leaves every value where it was. The values are read through
``device_status`` wherever they are, so a settle changes nothing a query sees.

PostgreSQL moves them with one statement (``DELETE … RETURNING`` feeding the ``INSERT``), so a value another
worker commits meanwhile is neither moved nor deleted; SQLite's write lock keeps other writers out of the
transaction.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from models.tables import StatusRecent
from streams.errors import TransientError
from streams.store.engine import WRITE_LOCK, unavailable_on_failure

__all__ = [
    "DEFAULT_SETTLE_EVERY",
    "POSTGRES_SETTLE",
    "SQLITE_SETTLE",
    "Settler",
    "recent_values",
    "settle",
    "settle_all",
    "settle_every",
]

log = logging.getLogger(__name__)

#: HISTORY_SETTLE_VALUES unset: how many values wait before a settle, by database; 0 writes them straight into
#: status_values. On PostgreSQL settling cost more than it saved up to 3 M messages (README, Benchmarks).
DEFAULT_SETTLE_EVERY = {"sqlite": 250_000, "postgresql": 0}

_COLUMNS = "series_id, reported_at, message_key, item_index, value, dp_id"
_KEY_ORDER = "ORDER BY series_id, reported_at, message_key, item_index"
_INTO_HISTORY = f"INSERT INTO status_values ({_COLUMNS}) SELECT {_COLUMNS} FROM {{source}} {_KEY_ORDER}"

#: SQLite's settle, in a transaction holding the write lock. WHERE true: SQLite would read ``ON CONFLICT`` after a
#: bare FROM as a join's ON.
SQLITE_SETTLE = (
    _INTO_HISTORY.format(source="status_recent WHERE true") + " ON CONFLICT DO NOTHING",
    "DELETE FROM status_recent",
)
#: PostgreSQL's settle: one statement.
POSTGRES_SETTLE = (
    f"WITH moved AS (DELETE FROM status_recent RETURNING {_COLUMNS}) "
    + _INTO_HISTORY.format(source="moved")
    + " ON CONFLICT DO NOTHING"
)


def settle(connection: Connection) -> int:
    """Move every recent value into ``status_values``, in the caller's transaction; returns how many were added
    (a value already there, which nothing writes, is dropped from ``status_recent`` all the same)."""
    if connection.dialect.name == "postgresql":
        return connection.exec_driver_sql(POSTGRES_SETTLE).rowcount
    copy, empty = SQLITE_SETTLE
    added = connection.exec_driver_sql(copy).rowcount
    connection.exec_driver_sql(empty)
    return added


def settle_all(engine: Engine) -> int:
    """:func:`settle` in a transaction of its own, holding the write lock from its start; returns how many values
    were added."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK: True})
        with connection.begin():
            return settle(connection)


def settle_every(setting: int | None, dialect: str) -> int | None:
    """How many values the worker lets wait before it settles them: HISTORY_SETTLE_VALUES, or the database's
    default when it is unset; None: none wait, they go straight into ``status_values``."""
    every = DEFAULT_SETTLE_EVERY[dialect] if setting is None else setting
    return every or None


def recent_values(connection: Connection) -> int:
    """How many values wait in ``status_recent``."""
    return connection.scalar(select(func.count()).select_from(StatusRecent)) or 0


class Settler:
    """Settles once ``every`` values wait in ``status_recent``: counted as the store writes them, from what waited
    when the first check read the table (what a worker stopped before settling left).

    ``every`` None: the store writes straight into ``status_values``, and only what an earlier run left waiting
    (HISTORY_SETTLE_VALUES turned off since) is settled, at the first check.
    """

    def __init__(self, engine: Engine, every: int | None) -> None:
        self._engine = engine
        self._counting = every is not None
        # Nothing counted: the first check settles whatever waits, and no later one finds any waiting.
        self._every = 1 if every is None else every
        self._waiting: int | None = None

    def wrote(self, values: int) -> None:
        """A committed transaction offered ``values`` values (a duplicate skipped by its key counts too)."""
        if self._waiting is not None and self._counting:
            self._waiting += values

    def when_due(self) -> int:
        """Settle in a transaction of its own if due; returns how many values were added to the history. The
        database being unavailable is logged and leaves the values where they are, for the next check."""
        try:
            with unavailable_on_failure("settling recent status values"):
                if self._waiting is None:
                    with self._engine.connect() as connection:
                        self._waiting = recent_values(connection)
                if self._waiting < self._every:
                    return 0
                started = time.perf_counter()
                added = settle_all(self._engine)
        except TransientError as exc:
            log.warning("recent status values left unsettled for now: %s", exc)
            return 0
        self._waiting = 0
        log.info("settled %d recent status values into the history in %.2f s", added, time.perf_counter() - started)
        return added
