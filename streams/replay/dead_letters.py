"""``replay --dead-letters``: decode kept dead letters again with today's key and code, and store what now decodes
exactly as the worker would have.

Owns the replay of a page of unresolved dead letters: decode each again, name DP ids through the catalog (as the
pipeline does), then one :class:`~streams.store.sql.ArchiveStore` batch, so ``devices``, ``device_state`` and the
history follow the store's usual rules. Its ``extra`` hook runs the rules when asked (as the worker's reactor does:
only messages new to the archive can fire) and marks each decoded dead letter resolved in the same transaction:
``replayed: stored`` when its message was new to the archive, ``replayed: already stored`` when its id was in
``messages`` already. A dead letter that still fails is left as it is, unresolved; a resolved one is never read again,
so replaying twice stores nothing twice and changes nothing. Nor does a replay after a backfill of the same window:
the values and events a backfill stored from the device log meanwhile are left out (the rules by which the backfill
leaves out what the stream stored), from the history and from the rules alike: the log made them history, not news. A
dry run decodes and looks message ids up, and writes nothing. Builds no adapter (the CLI hands them in) and never
imports pulsar or httpx.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
from sqlalchemy.engine import Connection, Engine

from models.records import DeadLetter, DeviceEvent, StatusReported, UserEvent
from streams.clock import utcnow
from streams.errors import DecodeError, RowsRejected
from streams.fleet.catalog import Catalog
from streams.outbox.reactor import RulesReactor
from streams.outbox.sql import new_message_ids
from streams.pipeline import resolve_codes
from streams.replay.derive import pulsar_message, rederive, without_copies
from streams.replay.paging import pages, retrying
from streams.replay.report import DeadLetterReport
from streams.store.backfill import logged_copies
from streams.store.engine import unavailable_on_failure
from streams.store.isolate import REJECTED, stored_message
from streams.store.replay import Position, StoredDeadLetter, Window, dead_letter_page, mark_resolved
from streams.store.sql import ArchiveStore, BatchCounts
from streams.tuya.decoder import Decoded, MessageDecoder

__all__ = ["ALREADY_STORED", "PAGE_SIZE", "STORED", "DeadLetterReplay"]

STORED = "replayed: stored"
ALREADY_STORED = "replayed: already stored"
#: Dead letters per page: each page that decodes is one short transaction.
PAGE_SIZE = 200


def _position(letter: StoredDeadLetter) -> tuple[datetime, str]:
    return (letter.received_at, letter.message_id)


@dataclass
class _Attempt:
    """What the last (committed) attempt of a page's transaction did inside its hook."""

    fired: int = 0


class DeadLetterReplay:
    """Replays the unresolved dead letters of a window, page by page (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        decoder: MessageDecoder,
        store: ArchiveStore,
        *,
        catalog: Callable[[], Catalog] = Catalog,
        reactor: RulesReactor | None = None,
        page_size: int = PAGE_SIZE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._decoder = decoder
        self._store = store
        self._catalog = catalog
        self._reactor = reactor
        self._page_size = page_size
        self._clock = clock

    def run(
        self, window: Window, report: DeadLetterReport, on_progress: Callable[[DeadLetterReport], None] | None = None
    ) -> DeadLetterReport:
        """Replay every unresolved dead letter of ``window``, counting into ``report`` (kept up to date even when a
        database error stops the replay part-way: the pages before it are committed).

        Raises:
            DatabaseUnavailable: the archive could not be read, or a page not stored after a few tries.
        """
        for page in pages(lambda after: self._read(window, after), _position):
            self._replay(page, report)
            if on_progress is not None:
                on_progress(report)
        return report

    def _read(self, window: Window, after: Position) -> list[StoredDeadLetter]:
        with unavailable_on_failure("reading dead letters"), self._engine.connect() as connection:
            return dead_letter_page(connection, window, after, self._page_size)

    def _replay(self, page: Sequence[StoredDeadLetter], report: DeadLetterReport) -> None:
        decoded = self._decode(page, report)
        if not decoded:
            return
        decoded = self._without_logged(decoded, report)
        if report.dry_run:
            self._count_new(decoded, report)
            return
        self._write(decoded, report)

    def _write(self, decoded: Sequence[Decoded], report: DeadLetterReport) -> None:
        attempt = _Attempt()
        try:
            counts = retrying(lambda: self._store_page(decoded, attempt))
        except RowsRejected:  # the archive still refuses one: store them one at a time, and leave it unresolved
            if len(decoded) == 1:
                report.failing[REJECTED] += 1
                return
            for item in decoded:
                self._write([item], report)
            return
        report.stored += counts.messages_inserted
        report.already_stored += len(decoded) - counts.messages_inserted
        report.status_rows += counts.status_rows
        report.device_events += counts.device_events
        report.user_events += counts.user_events
        report.fired += attempt.fired

    def _without_logged(self, decoded: list[Decoded], report: DeadLetterReport) -> list[Decoded]:
        """The messages without the records a backfill stored from the device log meanwhile (their stream copies
        would be second ones)."""
        with unavailable_on_failure("looking up backfilled values"), self._engine.connect() as connection:
            kept, dropped = without_copies(decoded, lambda records: logged_copies(connection, records))
        report.from_log += dropped
        return kept

    def _decode(self, page: Sequence[StoredDeadLetter], report: DeadLetterReport) -> list[Decoded]:
        catalog = self._catalog()
        decoded: list[Decoded] = []
        for letter in page:
            again = self._again(letter, catalog)
            if isinstance(again, str):
                report.failing[again] += 1
            else:
                decoded.append(again)
        report.read += len(page)
        return decoded

    def _again(self, letter: StoredDeadLetter, catalog: Catalog) -> Decoded | str:
        """The dead letter decoded with today's key and code, or the kind of error it still fails with. A rejected
        one kept its message as decoded (streams.store.isolate), which is normalised again."""
        if letter.error_kind == REJECTED:
            try:
                return rederive(stored_message(letter), catalog)
            except DecodeError as exc:
                return exc.kind
            except msgspec.DecodeError:  # not what a rejected dead letter keeps
                return REJECTED
        result = self._decoder.decode(pulsar_message(letter))
        if isinstance(result, DeadLetter):
            return result.error_kind
        return resolve_codes(result, catalog) if result.unresolved else result

    def _store_page(self, decoded: Sequence[Decoded], attempt: _Attempt) -> BatchCounts:
        now = self._clock()
        ids = [item.message.message_id for item in decoded]
        news = [item.news for item in decoded]
        rules = self._reactor.in_transaction(news, now) if self._reactor is not None else None

        def hook(connection: Connection) -> set[str]:
            # First in the batch's transaction: ``messages`` is as it was before this page. What it takes as new the
            # store checks it stored itself (another writer's meanwhile: all is decided again).
            fresh = new_message_ids(connection, ids)
            if rules is not None:
                assert self._reactor is not None
                fired = self._reactor.fired
                rules(connection)
                attempt.fired = self._reactor.fired - fired
            mark_resolved(connection, {i: STORED if i in fresh else ALREADY_STORED for i in ids}, now)
            return fresh

        return self._store.write_batch(decoded, [], received_at=now, extra=hook)

    def _count_new(self, decoded: Sequence[Decoded], report: DeadLetterReport) -> None:
        with unavailable_on_failure("looking up stored messages"), self._engine.connect() as connection:
            fresh = new_message_ids(connection, [item.message.message_id for item in decoded])
        new = [item for item in decoded if item.message.message_id in fresh]
        records = [record for item in new for record in item.records]
        report.stored += len(new)
        report.already_stored += len(decoded) - len(new)
        report.status_rows += sum(1 for record in records if isinstance(record, StatusReported))
        report.device_events += sum(1 for record in records if isinstance(record, DeviceEvent))
        report.user_events += sum(1 for record in records if isinstance(record, UserEvent))
