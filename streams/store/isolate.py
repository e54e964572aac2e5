"""A batch whose rows the database refuses: the message it refuses becomes a dead letter, the rest is stored.

Owns what follows :class:`~streams.errors.RowsRejected` (a constraint, a value out of range, a limit of the
database's own; streams.store.engine says which errors): the batch is stored again in halves, each in its own
transaction with its own rules hook, halving what is refused until one message stands alone. That message is kept as a
``rejected`` dead letter instead, and the rest is stored as usual. Without it one such message stopped every batch it
was in: retried for ever while Tuya deleted the backlog behind it after two hours.

A rejected dead letter keeps the message as decoded (:class:`RejectedMessage`, JSON in the dead letter's payload,
its properties in the row's), not the encrypted envelope, which the writer process never sees; ``replay
--dead-letters`` normalises it again (:func:`stored_message`) once the archive takes it. Pure apart from the store
it is handed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from streams.errors import RowsRejected
from streams.store.prepared import MessageRows, PreparedBatch
from streams.store.replay import StoredDeadLetter, StoredMessage
from streams.store.sql import BatchCounts

if TYPE_CHECKING:
    from models.records import News
    from streams.pipeline import BatchStore, Reactor

__all__ = ["REJECTED", "HookFor", "RejectedMessage", "rules_hooks", "stored_message", "write_isolating"]

log = logging.getLogger(__name__)

#: The ``error_kind`` of a message whose rows the database refused.
REJECTED = "rejected"

Hook = Callable[[Any], None]
#: The rules' hook for the messages of these ids (None: the whole batch's); None when the rules have nothing to do.
HookFor = Callable[[Collection[str] | None], Hook | None]


class RejectedMessage(msgspec.Struct, kw_only=True):
    """A rejected dead letter's payload: its ``messages`` row but the properties (the dead letter's own), times as
    ISO text."""

    message_id: str
    topic: str
    protocol: int
    biz_code: str | None
    device_id: str | None
    encrypt_model: str
    sign_ok: bool
    published_at: str | None
    pushed_at: str
    payload: str


def rules_hooks(reactor: Reactor | None, news: Sequence[News], now: datetime) -> HookFor | None:
    """The rules' hook for a batch whose messages the rules see as ``news``, or for any part of it."""
    if reactor is None:
        return None

    def hook_for(ids: Collection[str] | None) -> Hook | None:
        return reactor.in_transaction(news if ids is None else [item for item in news if item.message_id in ids], now)

    return hook_for


def write_isolating(store: BatchStore, batch: PreparedBatch, hook_for: HookFor | None = None) -> BatchCounts:
    """Store ``batch`` (``hook_for(None)`` in its transaction); if the database refuses its rows, store it in parts
    and keep each message refused alone as a dead letter (see the module docstring). Returns what every part added.

    Raises:
        DatabaseUnavailable: as ``store.write_prepared``; the parts committed before it stay committed, and storing
            the batch again adds nothing twice (the store is idempotent).
        RowsRejected: the batch's own dead letters were refused, or a rejected message's dead letter was.
    """
    try:
        return store.write_prepared(batch, extra=hook_for(None) if hook_for else None)
    except RowsRejected as exc:
        log.warning("%s: storing the batch's %d messages in parts to find those refused", exc, len(batch.messages))
        return _in_parts(store, batch, hook_for, exc)


def _in_parts(store: BatchStore, batch: PreparedBatch, hook_for: HookFor | None, refusal: RowsRejected) -> BatchCounts:
    messages = batch.messages
    if len(messages) <= 1:
        return _reject(store, batch, refusal)
    half = len(messages) // 2
    later = len(messages) - half
    # The batch's dead letters, and the count of its repeated deliveries, go with the first half.
    parts = (
        PreparedBatch(messages[:half], batch.dead_letters, batch.decoded - later, batch.dead),
        PreparedBatch(messages[half:], [], later, 0),
    )
    counts = BatchCounts()
    for part in parts:
        try:
            counts += store.write_prepared(part, extra=_hook(hook_for, part))
        except RowsRejected as exc:
            counts += _in_parts(store, part, hook_for, exc)
    return counts


def _hook(hook_for: HookFor | None, part: PreparedBatch) -> Hook | None:
    return hook_for({rows.message_id for rows in part.messages}) if hook_for else None


def _reject(store: BatchStore, batch: PreparedBatch, refusal: RowsRejected) -> BatchCounts:
    """Store the one message of ``batch`` as a dead letter, with the batch's own dead letters."""
    if not batch.messages:
        raise refusal  # the decoder's dead letters themselves: nothing to keep them as
    rows = batch.messages[0]
    log.error("message %s kept as a dead letter: %s", rows.message_id, refusal)
    letters = [_rejected_letter(rows, str(refusal)), *batch.dead_letters]
    counts = store.write_prepared(PreparedBatch([], letters, batch.decoded - 1, batch.dead + 1))
    return replace(counts, rejected=counts.rejected + 1)


def _rejected_letter(rows: MessageRows, error: str) -> tuple[Any, ...]:
    """The ``dead_letters`` row of a message whose rows were refused, from its ``messages`` row (times in the
    database's form; streams.store.rows.message_row gives the columns)."""
    (
        message_id,
        topic,
        protocol,
        biz_code,
        device_id,
        model,
        sign_ok,
        published,
        pushed,
        received,
        payload,
        properties,
    ) = rows.message
    document = RejectedMessage(
        message_id=message_id,
        topic=topic,
        protocol=protocol,
        biz_code=biz_code,
        device_id=device_id,
        encrypt_model=model,
        sign_ok=sign_ok,
        published_at=None if published is None else _iso(published),
        pushed_at=_iso(pushed),
        payload=payload,
    )
    return (message_id, topic, msgspec.json.encode(document), properties, REJECTED, error, published, received)


def _iso(moment: datetime | str) -> str:
    """A time as a row carries it (PostgreSQL's datetime, SQLite's UTC text) as ISO text."""
    return moment.isoformat() if isinstance(moment, datetime) else moment


def stored_message(letter: StoredDeadLetter) -> StoredMessage:
    """The ``messages`` row a rejected dead letter kept, to normalise again (streams.replay.derive.rederive).

    Raises:
        msgspec.ValidationError: the payload is not a RejectedMessage (msgspec.DecodeError: not JSON).
    """
    document = msgspec.json.decode(letter.payload, type=RejectedMessage)
    return StoredMessage(
        message_id=document.message_id,
        topic=document.topic,
        protocol=document.protocol,
        biz_code=document.biz_code,
        device_id=document.device_id,
        encrypt_model=document.encrypt_model,
        sign_ok=document.sign_ok,
        pushed_at=_time(document.pushed_at),
        published_at=None if document.published_at is None else _time(document.published_at),
        received_at=letter.received_at,
        payload=document.payload,
        properties=letter.properties,
    )


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
