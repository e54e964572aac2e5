"""``replay --messages``: re-derive the history and latest state of stored messages with today's normalisation (after
a normalisation fix), without storing anything twice and without counting any report again.

Owns the re-derivation of a page of ``messages`` rows in one short transaction:

- history (``device_status``, ``device_events``, ``user_events``): a row the message now derives and the archive
  lacks is inserted, one whose content changed is replaced, one of the message (source ``stream`` only) that it no
  longer derives is deleted. Rows of Tuya's device logs (source ``log``) are never touched, and a value or event a
  backfill took from the log (as streams.store.backfill's logged_copies matches them) is not derived a second time.
- ``device_state``: a latest value that came from a history value that changed is found again in the history (the
  newest value left, of any source; none left: the row goes); then the page's newest values go through the store's
  "newer wins" upsert.
- ``devices`` and ``users``: the store's "newer wins" upserts of the page's facts, with no report counted again
  (``devices.report_count`` never grows) and a device's product key set only where the archive has none.
- ``messages.unknown``: true for a message that derives no kind now (retention keeps its row, its only record),
  NULL again for one that does.

A message whose payload no longer normalises is counted by error kind and its rows are left as they are. A second
run finds nothing to change. A dry run does the same work, a page at a time in a transaction it rolls back: a later
page does not see an earlier one's writes, so reports out of order across pages may count an update the real run
does not make.
The SQL is streams.store.rederive's; never imports pulsar, httpx or the rules.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Engine

from models.records import Record, StatusReported, UnknownMessage
from streams.errors import DecodeError
from streams.fleet.catalog import Catalog
from streams.replay.derive import (
    RowDiff,
    TableChanges,
    changed_values,
    device_fact_rows,
    diff_rows,
    rederive,
    snapshot_changes,
    stale_keys,
    without_copies,
)
from streams.replay.paging import pages, retrying
from streams.replay.report import MessageReport
from streams.store.backfill import logged_copies
from streams.store.engine import unavailable_on_failure, write_transaction
from streams.store.prepared import RecordRows, record_rows
from streams.store.rederive import (
    HISTORIES,
    LATEST,
    History,
    delete_history,
    delete_latest,
    mark_unknown,
    newest_status,
    stored_history,
    stored_latest,
)
from streams.store.replay import Position, StoredMessage, Window, message_page
from streams.store.row_writer import RowWriter
from streams.store.rows import flat_status
from streams.tuya.decoder import Decoded

__all__ = ["PAGE_SIZE", "MessageReplay"]

log = logging.getLogger(__name__)

#: Messages per page: one short transaction each, so a worker storing beside the replay waits a moment at most.
PAGE_SIZE = 250

Row = tuple[object, ...]


def _position(message: StoredMessage) -> tuple[datetime, str]:
    return (message.received_at, message.message_id)


def _as_is(moment: datetime) -> datetime:
    return moment  # rows compared as datetimes; RowWriter formats them for the database


class MessageReplay:
    """Re-derives the messages of a window, page by page (see the module docstring)."""

    def __init__(self, engine: Engine, *, catalog: Callable[[], Catalog] = Catalog, page_size: int = PAGE_SIZE) -> None:
        self._engine = engine
        self._catalog = catalog
        self._page_size = page_size

    def run(
        self, window: Window, report: MessageReport, on_progress: Callable[[MessageReport], None] | None = None
    ) -> MessageReport:
        """Re-derive every message of ``window``, counting into ``report`` (kept up to date even when a database
        error stops the replay part-way: the pages before it are committed).

        Raises:
            DatabaseUnavailable: the archive could not be read, or a page not written after a few tries.
        """
        for page in pages(lambda after: self._read(window, after), _position):
            decoded = self._rederive(page, report)
            if decoded:
                report.add(retrying(functools.partial(self._write, decoded, dry_run=report.dry_run)))
            if on_progress is not None:
                on_progress(report)
        return report

    def _read(self, window: Window, after: Position) -> list[StoredMessage]:
        with unavailable_on_failure("reading messages"), self._engine.connect() as connection:
            return message_page(connection, window, after, self._page_size)

    def _rederive(self, page: Sequence[StoredMessage], report: MessageReport) -> list[Decoded]:
        catalog = self._catalog()
        decoded: list[Decoded] = []
        for stored in page:
            try:
                decoded.append(rederive(stored, catalog))
            except DecodeError as exc:
                report.failing[exc.kind] += 1
            except Exception:  # a bug must not stop the replay: leave the message's rows and say so
                log.exception("unexpected error normalising stored message %s", stored.message_id)
                report.failing["internal_error"] += 1
        report.read += len(page)
        return decoded

    def _write(self, decoded: Sequence[Decoded], *, dry_run: bool) -> dict[str, TableChanges]:
        with unavailable_on_failure("re-deriving history"), write_transaction(self._engine) as connection:
            changes = _rederive_page(connection, decoded)
            if dry_run:
                connection.rollback()
        return changes


def _rederive_page(connection: Connection, decoded: Sequence[Decoded]) -> dict[str, TableChanges]:
    """Bring the rows of ``decoded``'s messages to what they derive now; in the caller's transaction."""
    writer = RowWriter(connection)
    ids = [item.message.message_id for item in decoded]
    stored = {name: stored_history(connection, history, ids) for name, history in HISTORIES.items()}
    decoded = _without_logged(connection, decoded, stored)
    derived = record_rows(decoded, _as_is)
    history = {
        "device_status": flat_status(derived.status),
        "device_events": derived.device_events,
        "user_events": derived.user_events,
    }
    diffs = {name: _rewrite(connection, writer, HISTORIES[name], stored[name], rows) for name, rows in history.items()}
    changes = {name: diff.changes for name, diff in diffs.items()}
    changes["device_state"] = _latest_state(connection, writer, derived, diffs["device_status"])
    changes["devices"] = _facts(connection, writer, "devices", derived.devices, prepare=device_fact_rows)
    changes["users"] = _facts(connection, writer, "users", derived.users)
    unknown = {item.message.message_id for item in decoded if any(type(r) is UnknownMessage for r in item.records)}
    mark_unknown(connection, sorted(unknown), [message_id for message_id in ids if message_id not in unknown])
    return changes


def _without_logged(connection: Connection, decoded: Sequence[Decoded], stored: dict[str, list[Row]]) -> list[Decoded]:
    """``decoded`` without the records a backfill took from the device log that their message has no row of yet (a
    row the message has, stored beside a log copy before this rule, stays: the replay deletes no stream row for it)."""
    held = {key for name in ("device_status", "device_events") for key in map(HISTORIES[name].key_of, stored[name])}

    def new_copies(records: list[Record]) -> list[bool]:
        copies = logged_copies(connection, records)
        return [copy and _history_key(r) not in held for r, copy in zip(records, copies, strict=True)]

    return without_copies(decoded, new_copies)[0]


def _history_key(record: Record) -> tuple[Any, ...]:
    """The key of ``record``'s history row (HISTORIES' ``key_of``): message and item, or message."""
    return (record.message_id, record.item_index) if type(record) is StatusReported else (record.message_id,)


def _rewrite(
    connection: Connection, writer: RowWriter, history: History, stored: list[Row], rows: list[Row]
) -> RowDiff:
    """Replace, add and delete the history rows ``stored`` (a page of messages' own) so that they are ``rows``."""
    diff = diff_rows(stored, [writer.as_stored(row) for row in rows], history.key_of)
    delete_history(connection, history, [history.key_of(row) for row in diff.removed])
    writer.insert(history.target, diff.written)
    return diff


def _latest_state(connection: Connection, writer: RowWriter, derived: RecordRows, status: RowDiff) -> TableChanges:
    latest = LATEST["device_state"]
    changed = changed_values(status)
    keys = {latest.key_of(row) for row in derived.device_state} | {(d, c) for d, c, _m in changed}
    before = stored_latest(connection, latest, keys, lock=True)
    stale = stale_keys(before, changed)
    delete_latest(connection, latest, stale)
    # A stale key's newest history value (this page's writes included) replaces it; the others: newer wins.
    found = {key: newest_status(connection, *key) for key in stale}
    rows = [row for row in found.values() if row is not None]
    rows.extend(row for row in derived.device_state if latest.key_of(row) not in found)
    writer.upsert(latest.target, rows)
    return snapshot_changes(before, stored_latest(connection, latest, keys))


def _facts(
    connection: Connection,
    writer: RowWriter,
    table: str,
    rows: list[Row],
    prepare: Callable[[list[Row], dict[tuple[object, ...], Row]], list[Row]] | None = None,
) -> TableChanges:
    """Upsert a latest-facts table with the store's rules, counting the rows whose content changed."""
    latest = LATEST[table]
    keys = {latest.key_of(row) for row in rows}
    before = stored_latest(connection, latest, keys, lock=True)
    writer.upsert(latest.target, prepare(rows, before) if prepare is not None else rows)
    return snapshot_changes(before, stored_latest(connection, latest, keys))
