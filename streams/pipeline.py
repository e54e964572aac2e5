"""The one pipeline: a batch of messages → decode → normalise → (rules) → store in one transaction.

Owns the order of the steps (STYLE.md P2). Knows neither Pulsar nor Kafka: runtimes hand it
:class:`~models.records.PulsarMessage` values and acknowledge only after :meth:`Pipeline.handle` returned, because
its return means the batch is committed. Transient failures (database down) propagate as
:class:`~streams.errors.TransientError` for the runtime to retry the same batch. Its two halves,
:meth:`~Pipeline.prepare` (decode, build rows: no database) and :meth:`~Pipeline.commit`, may run in two processes
(:mod:`streams.writer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from models.records import DeadLetter, News, PulsarMessage, Record, StatusReported
from streams.clock import utcnow
from streams.fleet.catalog import Catalog, devices_to_sync
from streams.store.isolate import REJECTED, rules_hooks, write_isolating
from streams.store.prepared import PreparedBatch, distinct, no_rows, prepare_batch
from streams.store.rows import TimeFormat
from streams.store.sql import Hook
from streams.tuya.decoder import Decoded, MessageDecoder

if TYPE_CHECKING:
    from streams.store.sql import BatchCounts

__all__ = ["BatchResult", "BatchStore", "Pipeline", "Prepared", "Reactor", "committed_result", "resolve_codes"]


class BatchStore(Protocol):
    @property
    def time(self) -> TimeFormat: ...

    def write_prepared(self, batch: PreparedBatch, *, extra: Hook | None = None) -> BatchCounts: ...

    def settle_when_due(self) -> int: ...


class Reactor(Protocol):
    """What reacts to a stored batch inside its transaction (the rules engine's outbox writer)."""

    def in_transaction(self, news: Sequence[News], now: datetime) -> Callable[[Any], None] | None: ...

    def on_tick(self, now: datetime, owns: Callable[[str], bool] | None = None) -> Callable[[Any], None] | None: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    received: int
    decoded: int
    dead_letters: dict[str, int]
    oldest_push_ms: int | None
    counts: BatchCounts | None  # None from a handler that forwards instead of storing (the bridge)
    sync_wanted: frozenset[str] = frozenset()  # devices ``sync`` should look up (unknown, or a lifecycle event)
    newest_push_ms: int | None = None
    # When its messages were taken from the stream (the runner's wall clock, or the pipeline's as it prepared them):
    # how far consumption had come, for the gap watch, however long the commit then waited for the database.
    received_at: datetime | None = None

    @property
    def stored(self) -> int:
        """Messages new to the archive; for a handler that forwards instead (the bridge), every decoded one."""
        return self.counts.messages_inserted if self.counts is not None else self.decoded

    @property
    def duplicates(self) -> int:
        rejected = self.counts.rejected if self.counts is not None else 0
        return max(0, self.decoded - self.stored - rejected)

    @property
    def dead(self) -> int:
        return sum(self.dead_letters.values())


@dataclass(frozen=True, slots=True)
class Prepared:
    """A batch decoded and turned into rows, not stored yet: what committing it needs, and what its result says."""

    news: list[News]  # each message once, for the rules
    rows: PreparedBatch
    received: int
    dead_letters: dict[str, int]
    oldest_push_ms: int | None
    newest_push_ms: int | None
    sync_wanted: frozenset[str]
    now: datetime

    def result(self, counts: BatchCounts | None) -> BatchResult:
        """What the batch's commit returns (``counts`` None: not committed yet)."""
        return BatchResult(
            self.received,
            self.rows.decoded,
            _with_rejected(self.dead_letters, counts),
            self.oldest_push_ms,
            counts,
            self.sync_wanted,
            self.newest_push_ms,
            self.now,
        )


def committed_result(batches: Sequence[BatchResult], counts: BatchCounts) -> BatchResult:
    """One result for ``batches`` (not committed yet when made), committed in one transaction that counted
    ``counts``."""
    kinds: dict[str, int] = {}
    for batch in batches:
        for kind, n in batch.dead_letters.items():
            kinds[kind] = kinds.get(kind, 0) + n
    oldest = [batch.oldest_push_ms for batch in batches if batch.oldest_push_ms is not None]
    newest = [batch.newest_push_ms for batch in batches if batch.newest_push_ms is not None]
    received = [batch.received_at for batch in batches if batch.received_at is not None]
    return BatchResult(
        sum(batch.received for batch in batches),
        sum(batch.decoded for batch in batches),
        _with_rejected(kinds, counts),
        min(oldest, default=None),
        counts,
        frozenset().union(*(batch.sync_wanted for batch in batches)),
        max(newest, default=None),
        max(received, default=None),
    )


def _with_rejected(kinds: dict[str, int], counts: BatchCounts | None) -> dict[str, int]:
    """The dead letters by kind, with the messages the database refused (counted by the commit, not the decoder)."""
    if counts is None or not counts.rejected:
        return kinds
    return {**kinds, REJECTED: kinds.get(REJECTED, 0) + counts.rejected}


def _no_catalog() -> Catalog:
    return Catalog()


def resolve_codes(item: Decoded, catalog: Catalog) -> Decoded:
    """``item`` with the code of each status record that carried only a DP id, where the catalog names it."""
    records: list[Record] = []
    changed = False
    for record in item.records:
        if type(record) is StatusReported and record.code is None and record.dp_id is not None:
            code = catalog.code_of(record.device_id, record.dp_id, record.product_key)
            if code is not None:
                record = msgspec.structs.replace(record, code=code)
                changed = True
        records.append(record)
    return Decoded(item.message, records) if changed else item


class Pipeline:
    def __init__(
        self,
        decoder: MessageDecoder,
        store: BatchStore,
        reactor: Reactor | None = None,
        clock: Callable[[], datetime] = utcnow,
        catalog: Callable[[], Catalog] = _no_catalog,
    ) -> None:
        self._decoder = decoder
        self._store = store
        self._reactor = reactor
        self._clock = clock
        self._catalog = catalog

    def handle(self, messages: Sequence[PulsarMessage]) -> BatchResult:
        """Decode every message and store the batch in one transaction; returns once committed."""
        return self.commit(self.prepare(messages))

    def prepare(self, messages: Sequence[PulsarMessage]) -> Prepared:
        """Decode every message, name DP ids from the catalog and build the batch's rows: no database needed."""
        decoded: list[Decoded] = []
        dead: list[DeadLetter] = []
        catalog = self._catalog()
        for message in messages:
            result = self._decoder.decode(message)
            if isinstance(result, DeadLetter):
                dead.append(result)
            else:
                decoded.append(resolve_codes(result, catalog) if result.unresolved else result)
        now = self._clock()
        kinds: dict[str, int] = {}
        for letter in dead:
            kinds[letter.error_kind] = kinds.get(letter.error_kind, 0) + 1
        # Dead letters are consumed too, as of Pulsar's publish time: a batch of them only (a wrong key) still says
        # how far the stream is consumed and how late (tuya_push_to_commit_lag_seconds).
        pushed = [int(d.message.pushed_at.timestamp() * 1000) for d in decoded]
        pushed += [int(letter.published_at.timestamp() * 1000) for letter in dead if letter.published_at is not None]
        wanted = devices_to_sync((record for item in decoded for record in item.records), catalog)
        return Prepared(
            [item.news for item in distinct(decoded)],
            prepare_batch(decoded, dead, now, self._store.time),
            len(messages),
            kinds,
            min(pushed) if pushed else None,
            max(pushed) if pushed else None,
            frozenset(wanted),
            now,
        )

    def commit(self, prepared: Prepared) -> BatchResult:
        """Store a prepared batch in one transaction, the rules reacting inside it; returns once committed (and the
        recent status values settled, when the store's turn for that has come: streams.store.settle). A message whose
        rows the database refuses is kept as a dead letter instead, the rest stored in parts (streams.store.isolate).
        """
        hooks = rules_hooks(self._reactor, prepared.news, prepared.now)
        result = prepared.result(write_isolating(self._store, prepared.rows, hooks))
        self._store.settle_when_due()
        return result

    def now(self) -> datetime:
        """The pipeline's clock: the time of a batch it prepares, and of a clock tick."""
        return self._clock()

    def tick(self, owns: Callable[[str], bool] | None = None) -> None:
        """Let the reactor fire what the clock alone made due (``for:`` timers, silent devices), in a transaction;
        ``owns``: only for the devices and users it says are this processor's (scale-out), None: for all."""
        if self._reactor is None:
            return
        now = self.now()
        hook = self._reactor.on_tick(now, owns)
        if hook is not None:
            self._store.write_prepared(no_rows(), extra=hook)

    @property
    def sign_mismatches(self) -> int:
        return self._decoder.sign_mismatches
