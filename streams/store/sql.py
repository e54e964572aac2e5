"""The batch store: one call writes a batch of decoded messages and dead letters in one transaction, idempotently.

Owns the order of a batch's writes and the idempotency rule (DESIGN.md §7): a message whose id is already in
``messages`` contributes nothing, so storing a batch twice, or batches that overlap, leaves the rows of storing each
message once. Latest-state tables are "newer wins" upserts (streams.store.statements), so a late, older report
updates history but not ``device_state`` or ``devices``. The caller's ``extra`` hook (rule state, command outbox)
runs in the same transaction, before the batch's own writes: it sees which messages are new and the latest values
as they were before the batch, and what it writes commits (or rolls back) with the batch.

Errors: the database being unreachable, locked past the busy timeout, or refusing the commit raises
:class:`~streams.errors.DatabaseUnavailable` (retry the batch later; nothing was written); the database refusing
rows for what they hold raises :class:`~streams.errors.RowsRejected` (nothing was written; streams.store.isolate
finds the message); anything else propagates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection, Engine

from models.records import DeadLetter
from streams.errors import RowsRejected
from streams.store.drivers import Driver, KeyConflict, PostgresDriver, SqliteDriver, TextRejected, time_format
from streams.store.engine import ensure_at_head, rejected_on_failure, unavailable_on_failure, write_transaction
from streams.store.history import SeriesKeys, insert_status
from streams.store.prepared import PreparedBatch, RecordRows, merge, prepare_batch
from streams.store.rows import TimeFormat
from streams.store.settle import Settler
from streams.store.statements import (
    DEAD_LETTERS,
    DEVICE_EVENTS,
    DEVICE_STATE,
    DEVICES,
    MESSAGES,
    STATUS_RECENT,
    STATUS_VALUES,
    USER_EVENTS,
    USERS,
    Target,
)

if TYPE_CHECKING:  # the writer process builds no Decoded and needs no ciphers
    from streams.tuya.decoder import Decoded

__all__ = ["ArchiveStore", "BatchCounts", "Hook", "Writes", "record_writes"]

log = logging.getLogger(__name__)

#: What a batch's transaction runs first (the rules): it returns the ids of the messages it took as new, if any, and
#: the store checks that it archived each of them itself.
Hook = Callable[[Connection], Collection[str] | None]


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """What one batch added. ``duplicates``: decoded messages already stored (or repeated within the batch).
    ``rejected``: decoded messages kept as dead letters instead, their rows refused (streams.store.isolate); their
    dead letters are counted in ``dead_letters``."""

    messages_inserted: int = 0
    duplicates: int = 0
    status_rows: int = 0
    device_events: int = 0
    user_events: int = 0
    dead_letters: int = 0
    dead_letter_duplicates: int = 0
    rejected: int = 0

    def __add__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(*(mine + theirs for mine, theirs in zip(astuple(self), astuple(other), strict=True)))


class ArchiveStore:
    """Writes batches into the archive on ``engine`` (SQLite or PostgreSQL, schema at head)."""

    def __init__(self, engine: Engine, *, settle_every: int | None = None) -> None:
        """``settle_every``: new status values wait in ``status_recent`` and :meth:`settle_when_due` settles them
        once that many wait (streams.store.settle); None: they go straight into ``status_values``, and the first
        :meth:`settle_when_due` settles what an earlier store left waiting."""
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._series = SeriesKeys()
        self._settler = Settler(engine, settle_every)
        self._values = STATUS_RECENT if settle_every is not None else STATUS_VALUES

    def write_batch(
        self,
        decoded: Sequence[Decoded],
        dead_letters: Sequence[DeadLetter],
        *,
        received_at: datetime,
        extra: Hook | None = None,
    ) -> BatchCounts:
        """Run ``extra``, then store the batch, in one transaction; returns once committed.

        ``extra`` may run more than once (each time in a new transaction, the earlier one rolled back) when a
        PostgreSQL batch has to be retried with a fallback (rows stored meanwhile by another writer, NUL text).

        Raises:
            DatabaseUnavailable: the database cannot be reached or refused the commit; nothing was stored.
            RowsRejected: the database refused rows for what they hold; nothing was stored.
            ConfigError: the database refused rows and its schema is not at this code's head revision.
        """
        if not decoded and not dead_letters and extra is None:
            return BatchCounts()
        return self.write_prepared(prepare_batch(decoded, dead_letters, received_at, self.time), extra=extra)

    @property
    def time(self) -> TimeFormat:
        """How this database's rows carry times (what :func:`~streams.store.prepared.prepare_batch` needs)."""
        return time_format(self._engine.dialect.name)

    def write_prepared(self, batch: PreparedBatch, *, extra: Hook | None = None) -> BatchCounts:
        """:meth:`write_batch` for rows prepared in advance (perhaps in another process), times in :attr:`time`."""
        try:
            return self._write_prepared(batch, extra)
        except RowsRejected:
            # A newer schema refuses what this worker writes (a new constraint, a column it does not fill): stop,
            # rather than take every message for one the archive refuses.
            ensure_at_head(self._engine)
            raise

    def _write_prepared(self, batch: PreparedBatch, extra: Hook | None) -> BatchCounts:
        with unavailable_on_failure("storing a batch"), rejected_on_failure("storing a batch"):
            if not self._postgres:
                return self._transaction(SqliteDriver(), batch, extra)
            driver = PostgresDriver()
            # Each retry switches a fallback on; a KeyConflict again (the rules reacted to messages another writer
            # archived meanwhile) ends once that writer committed: the next attempt reads them as stored.
            while True:
                try:
                    return self._transaction(driver, batch, extra)
                except KeyConflict as exc:
                    log.info("batch overlaps rows stored meanwhile (%s): storing it again with ON CONFLICT", exc)
                    driver = PostgresDriver(tolerant=True, clean_text=driver.clean_text)
                except TextRejected as exc:
                    log.warning("text refused (%s): storing the batch again with NUL characters replaced", exc)
                    driver = PostgresDriver(tolerant=driver.tolerant, clean_text=True)

    def _transaction(self, driver: Driver, batch: PreparedBatch, extra: Hook | None) -> BatchCounts:
        try:
            with write_transaction(self._engine) as connection:
                # First: it sees the archive as it was before this batch.
                reacted = extra(connection) if extra is not None else None
                cursor = connection.connection.driver_connection.cursor()
                try:
                    counts = _write(driver, cursor, batch, self._series, self._values, reacted)
                finally:
                    cursor.close()
        except BaseException:
            self._series.rolled_back()
            raise
        self._series.committed()
        self._settler.wrote(counts.status_rows)
        return counts

    def settle_when_due(self) -> int:
        """Settle the next range of recent status values into the history if a settle is due or under way, in a
        transaction of its own (streams.store.settle); returns how many were added. Called between batches, outside
        their transactions (the writer process after it reported the commit), so a failed range leaves its values
        where they were."""
        return self._settler.when_due()


Writes = list[tuple[Target, list[tuple[Any, ...]]]]  # statements, each with the rows it runs on


def record_writes(rows: RecordRows) -> tuple[Writes, Writes]:
    """The event inserts and the latest-state upserts of a batch's record rows, in the order the store runs them
    (after the ``messages`` rows and the status values, :func:`~streams.store.history.insert_status`)."""
    inserts = [(DEVICE_EVENTS, rows.device_events), (USER_EVENTS, rows.user_events)]
    upserts = [(DEVICE_STATE, rows.device_state), (DEVICES, rows.devices), (USERS, rows.users)]
    return inserts, upserts


def _write(
    driver: Driver,
    cursor: Any,
    batch: PreparedBatch,
    series: SeriesKeys,
    values: Target,
    reacted: Collection[str] | None = None,
) -> BatchCounts:
    stored = driver.existing(cursor, "messages", [rows.message_id for rows in batch.messages])
    new = [rows for rows in batch.messages if rows.message_id not in stored]
    inserted = driver.insert_returning(cursor, MESSAGES, [rows.message for rows in new], "message_id")
    if inserted is not None:
        new = [rows for rows in new if rows.message_id in inserted]
    if reacted and not set(reacted) <= {rows.message_id for rows in new}:
        # Another writer archived messages after the rules read them as new (during a rebalance two processors can
        # hold one device's messages): what they decided rests on an archive that has moved on. Roll back, decide
        # again on what was committed.
        raise KeyConflict("messages the rules reacted to were stored meanwhile by another writer")
    merged = merge(new)
    status_rows = insert_status(driver, cursor, merged.status, series, stored="skip", into=values)
    inserts, upserts = record_writes(merged)
    for target, table_rows in inserts:
        driver.insert(cursor, target, table_rows)
    for target, table_rows in upserts:
        driver.upsert(cursor, target, table_rows)
    stored_letters = driver.existing(cursor, "dead_letters", [row[0] for row in batch.dead_letters])
    new_letters = [row for row in batch.dead_letters if row[0] not in stored_letters]
    driver.insert(cursor, DEAD_LETTERS, new_letters)
    return BatchCounts(
        messages_inserted=len(new),
        duplicates=batch.decoded - len(new),
        status_rows=status_rows,
        device_events=len(merged.device_events),
        user_events=len(merged.user_events),
        dead_letters=len(new_letters),
        dead_letter_duplicates=batch.dead - len(new_letters),
    )
