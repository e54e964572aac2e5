"""The one pipeline: a batch of messages → decode → normalise → (rules) → store in one transaction.

Owns the order of the steps (STYLE.md P2). Knows neither Pulsar nor Kafka: runtimes hand it
:class:`~models.records.PulsarMessage` values and acknowledge only after :meth:`Pipeline.handle` returned, because
its return means the batch is committed. Transient failures (database down) propagate as
:class:`~streams.errors.TransientError` for the runtime to retry the same batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from models.records import DeadLetter, PulsarMessage, Record, StatusReported
from streams.fleet.catalog import Catalog, devices_to_sync
from streams.tuya.decoder import Decoded, MessageDecoder

if TYPE_CHECKING:
    from streams.store.sql import BatchCounts

__all__ = ["BatchResult", "BatchStore", "Pipeline", "Reactor", "resolve_codes"]


class BatchStore(Protocol):
    def write_batch(
        self,
        decoded: Sequence[Decoded],
        dead_letters: Sequence[DeadLetter],
        *,
        received_at: datetime,
        extra: Callable[[Any], None] | None = None,
    ) -> BatchCounts: ...


class Reactor(Protocol):
    """What reacts to a stored batch inside its transaction (the rules engine's outbox writer)."""

    def in_transaction(self, decoded: Sequence[Decoded], now: datetime) -> Callable[[Any], None] | None: ...

    def on_tick(self, now: datetime) -> Callable[[Any], None] | None: ...


@dataclass(frozen=True, slots=True)
class BatchResult:
    received: int
    decoded: int
    dead_letters: dict[str, int]
    oldest_push_ms: int | None
    counts: BatchCounts | None  # None from a handler that forwards instead of storing (the bridge)
    sync_wanted: frozenset[str] = frozenset()  # devices ``sync`` should look up (unknown, or a lifecycle event)
    newest_push_ms: int | None = None

    @property
    def stored(self) -> int:
        """Messages new to the archive; for a handler that forwards instead (the bridge), every decoded one."""
        return self.counts.messages_inserted if self.counts is not None else self.decoded

    @property
    def duplicates(self) -> int:
        return max(0, self.decoded - self.stored)

    @property
    def dead(self) -> int:
        return sum(self.dead_letters.values())


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
        clock: Callable[[], datetime] = _utcnow,
        catalog: Callable[[], Catalog] = _no_catalog,
    ) -> None:
        self._decoder = decoder
        self._store = store
        self._reactor = reactor
        self._clock = clock
        self._catalog = catalog

    def handle(self, messages: Sequence[PulsarMessage]) -> BatchResult:
        """Decode every message and store the batch in one transaction; returns once committed."""
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
        extra = self._reactor.in_transaction(decoded, now) if self._reactor else None
        counts = self._store.write_batch(decoded, dead, received_at=now, extra=extra)
        kinds: dict[str, int] = {}
        for letter in dead:
            kinds[letter.error_kind] = kinds.get(letter.error_kind, 0) + 1
        pushed = [int(d.message.pushed_at.timestamp() * 1000) for d in decoded]
        wanted = devices_to_sync((record for item in decoded for record in item.records), catalog)
        return BatchResult(
            len(messages),
            len(decoded),
            kinds,
            min(pushed) if pushed else None,
            counts,
            frozenset(wanted),
            max(pushed) if pushed else None,
        )

    def tick(self) -> None:
        """Let the reactor fire what the clock alone made due (``for:`` timers, silent devices), in a transaction."""
        if self._reactor is None:
            return
        now = self._clock()
        hook = self._reactor.on_tick(now)
        if hook is not None:
            self._store.write_batch([], [], received_at=now, extra=hook)

    @property
    def sign_mismatches(self) -> int:
        return self._decoder.sign_mismatches
