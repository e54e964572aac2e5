"""Settling recent status values into the history: ``status_recent`` moved into ``status_values`` in bulk.

Owns how many values the worker lets wait (HISTORY_SETTLE_VALUES, by database), and when and how the values its
store wrote to ``status_recent`` (models.tables.StatusRecent) join the history. They move in ``status_values``' key
order, so each series' page is written once for many batches' values instead of once a batch. The worker's store
moves them a range of series at a time (:data:`SETTLE_CHUNK_VALUES` values, each range in a transaction of its own,
one range after each commit), so that no settle holds the writer for longer than the worker can go on decoding;
a range that fails or is killed leaves its values where they were. The values are read through ``device_status``
wherever they are, so a settle changes nothing a query sees.

PostgreSQL moves them with one statement (``DELETE … RETURNING`` feeding the ``INSERT``), so a value another
worker commits meanwhile is neither moved nor deleted; SQLite's write lock keeps other writers out of the
transaction.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from models.tables import StatusRecent
from streams.errors import TransientError
from streams.store.engine import unavailable_on_failure, write_transaction

__all__ = [
    "DEFAULT_SETTLE_EVERY",
    "EVERY_SERIES",
    "POSTGRES_SETTLE",
    "RANGE_END",
    "SETTLE_CHUNK_VALUES",
    "SQLITE_SETTLE",
    "Settler",
    "range_end",
    "recent_values",
    "settle",
    "settle_all",
    "settle_every",
    "settle_range",
]

log = logging.getLogger(__name__)

#: HISTORY_SETTLE_VALUES unset: how many values wait before a settle, by database; 0 writes them straight into
#: status_values. On PostgreSQL settling cost more than it saved up to 3 M messages (docs/benchmarks.md).
DEFAULT_SETTLE_EVERY = {"sqlite": 250_000, "postgresql": 0}

#: How many values a settle moves in one transaction, at most (a series' values always move together, whatever
#: their number): the worker's store moves the next range of series after each commit. One transaction for all of
#: a settle's 250,000 values took 0.96 s on average as the archive grew from 7.5 to 10 M values (1.6 s at the
#: longest), longer than the batches in flight let the worker go on decoding; ranges took 0.14 s (0.6 at the
#: longest) and 18 % less in all. See "Settling in ranges" in docs/benchmarks.md.
SETTLE_CHUNK_VALUES = 50_000

#: The whole range of series ids (32-bit integers on both databases).
EVERY_SERIES = (-(2**31), 2**31)

_COLUMNS = "series_id, reported_at, message_key, item_index, value, dp_id"
_KEY_ORDER = "ORDER BY series_id, reported_at, message_key, item_index"
_INTO_HISTORY = f"INSERT INTO status_values ({_COLUMNS}) SELECT {_COLUMNS} FROM {{source}} {_KEY_ORDER}"
_IN_RANGE = "series_id >= :first AND series_id < :end"

#: SQLite's settle of the series from :first up to :end, in a transaction holding the write lock.
SQLITE_SETTLE = (
    _INTO_HISTORY.format(source=f"status_recent WHERE {_IN_RANGE}") + " ON CONFLICT DO NOTHING",
    f"DELETE FROM status_recent WHERE {_IN_RANGE}",
)
#: PostgreSQL's settle of the same range: one statement.
POSTGRES_SETTLE = (
    f"WITH moved AS (DELETE FROM status_recent WHERE {_IN_RANGE} RETURNING {_COLUMNS}) "
    + _INTO_HISTORY.format(source="moved")
    + " ON CONFLICT DO NOTHING"
)
#: From :first on, the first series with values waiting, and the series of the value :values places further on
#: (see range_end).
RANGE_END = (
    "SELECT (SELECT min(series_id) FROM status_recent WHERE series_id >= :first), "
    "(SELECT series_id FROM status_recent WHERE series_id >= :first ORDER BY series_id LIMIT 1 OFFSET :values)"
)


def settle(connection: Connection, series: tuple[int, int] = EVERY_SERIES) -> int:
    """Move the recent values of the ``series`` (first, end: the ids from first up to end, every series by default)
    into ``status_values``, in the caller's transaction; returns how many were added (a value already there, which
    nothing writes, is dropped from ``status_recent`` all the same)."""
    bounds = {"first": series[0], "end": series[1]}
    if connection.dialect.name == "postgresql":
        return connection.execute(text(POSTGRES_SETTLE), bounds).rowcount
    copy, empty = SQLITE_SETTLE
    added = connection.execute(text(copy), bounds).rowcount
    connection.execute(text(empty), bounds)
    return added


def settle_range(connection: Connection, first: int, values: int) -> tuple[int, int]:
    """:func:`settle` for the series from ``first`` on whose recent values number at most ``values`` (at least one
    series: all of its values, however many); returns how many were added and where the range ended (the first
    series left; ``EVERY_SERIES[1]`` when it went to the last)."""
    head, found = connection.execute(text(RANGE_END), {"first": first, "values": values}).one()
    end = range_end(head, found)
    return settle(connection, (first, end)), end


def range_end(head: int | None, found: int | None) -> int:
    """Where a range ends, from what RANGE_END found: the range's first series (``head``) and the series ``values``
    places on (``found``). None: fewer values wait, so the range goes past the last series. A range holds one
    series at least, whatever its number of values."""
    return EVERY_SERIES[1] if found is None or head is None else max(found, head + 1)


def settle_all(engine: Engine) -> int:
    """:func:`settle` in a transaction of its own, holding the write lock from its start; returns how many values
    were added."""
    with write_transaction(engine) as connection:
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
    """Settles once ``every`` values were written since the last settle began (at the first check: once that many
    wait in ``status_recent``, what a worker stopped before settling left), a range of series (``chunk`` values) a
    check until it reached the last series.

    ``every`` None: the store writes straight into ``status_values``, and only what an earlier run left waiting
    (HISTORY_SETTLE_VALUES turned off since) is settled, from the first check on.
    """

    def __init__(self, engine: Engine, every: int | None, chunk: int = SETTLE_CHUNK_VALUES) -> None:
        self._engine = engine
        self._counting = every is not None
        # Nothing counted: the first check settles whatever waits, and no later one finds any waiting.
        self._every = 1 if every is None else every
        self._chunk = chunk
        self._waiting: int | None = None
        self._next: int | None = None  # the first series of the next range, while a settle is under way
        self._added = 0
        self._seconds = 0.0

    def wrote(self, values: int) -> None:
        """A committed transaction offered ``values`` values (a duplicate skipped by its key counts too)."""
        if self._waiting is not None and self._counting:
            self._waiting += values

    def when_due(self) -> int:
        """Settle the next range of series in a transaction of its own if a settle is due or under way; returns how
        many values were added to the history. The database being unavailable is logged and leaves the range's
        values where they are, for the next check."""
        try:
            with unavailable_on_failure("settling recent status values"):
                if self._next is None:
                    if self._waiting is None:
                        with self._engine.connect() as connection:
                            self._waiting = recent_values(connection)
                    if self._waiting < self._every:
                        return 0
                    self._next, self._waiting, self._added, self._seconds = EVERY_SERIES[0], 0, 0, 0.0
                started = time.perf_counter()
                with write_transaction(self._engine) as connection:
                    added, end = settle_range(connection, self._next, self._chunk)
        except TransientError as exc:
            log.warning("recent status values left unsettled for now: %s", exc)
            return 0
        self._added += added
        self._seconds += time.perf_counter() - started
        self._next = None if end == EVERY_SERIES[1] else end
        if self._next is None:
            log.info("settled %d recent status values into the history in %.2f s", self._added, self._seconds)
        return added
