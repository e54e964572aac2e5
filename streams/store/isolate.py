"""A batch whose rows the database refuses: the message it refuses becomes a dead letter, the rest is stored.

Owns what follows :class:`~streams.errors.RowsRejected` (a constraint, a value out of range, a limit of the
database's own; streams.store.engine says which errors): the batch is stored again in halves, each in its own
transaction with its own rules hook, halving what is refused (a part of ONE_BY_ONE messages or fewer: one message at
a time) until each refused message stands alone. Those are kept as ``rejected`` dead letters, written together at the
end, and the rest is stored as usual. Without it one such message stopped every batch it was in: retried for ever
while Tuya deleted the backlog behind it after two hours. A refusal of every message of a batch (of two or more) is
the database's, not theirs (a constraint every row breaks): it is raised, and nothing is acknowledged. That search
costs two transactions a message; a newer schema's refusal, the likely one, is told apart at once (ArchiveStore
checks the revision on every refusal).

A rejected dead letter keeps the message as decoded (its ``messages`` row as JSON in the dead letter's payload,
its properties in the row's), not the encrypted envelope, which the writer process never sees; ``replay
--dead-letters`` normalises it again (:func:`stored_message`) once the archive takes it. Pure apart from the store
it is handed.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from streams.errors import RowsRejected
from streams.store.prepared import MessageRows, PreparedBatch
from streams.store.replay import StoredDeadLetter, StoredMessage
from streams.store.rows import MESSAGE_COLUMNS
from streams.store.sql import BatchCounts, Hook

if TYPE_CHECKING:
    from models.records import News
    from streams.pipeline import BatchStore, Reactor

__all__ = ["REJECTED", "HookFor", "rules_hooks", "stored_message", "write_isolating"]

log = logging.getLogger(__name__)

#: The ``error_kind`` of a message whose rows the database refused.
REJECTED = "rejected"
#: A refused part of at most this many messages is stored a message at a time instead of halved.
ONE_BY_ONE = 4
#: What a rejected dead letter's payload keeps of the message's ``messages`` row: all but its receive time and
#: properties, which are the dead letter's own columns; its times as ISO text.
_KEPT = tuple(column for column in MESSAGE_COLUMNS if column not in ("received_at", "properties"))
_TIMES = ("published_at", "pushed_at")

#: The rules' hook for the messages of these ids (None: the whole batch's); None when the rules have nothing to do.
HookFor = Callable[[Sequence[str] | None], Hook | None]


def rules_hooks(reactor: Reactor | None, news: Sequence[News], now: datetime) -> HookFor | None:
    """The rules' hook for a batch whose messages the rules see as ``news``, or for any part of it."""
    if reactor is None:
        return None
    by_id: dict[str, News] = {}  # made for the first part: a batch stored whole needs none

    def hook_for(ids: Sequence[str] | None) -> Hook | None:
        if ids is None:
            return reactor.in_transaction(news, now)
        if not by_id:
            by_id.update((item.message_id, item) for item in news)
        return reactor.in_transaction([by_id[i] for i in ids if i in by_id], now)

    return hook_for


def write_isolating(store: BatchStore, batch: PreparedBatch, hook_for: HookFor | None = None) -> BatchCounts:
    """Store ``batch`` (``hook_for(None)`` in its transaction); if the database refuses its rows, store it in parts
    and keep each message refused alone as a dead letter (see the module docstring). Returns what every part added.

    Raises:
        DatabaseUnavailable: as ``store.write_prepared``; the parts committed before it stay committed, and storing
            the batch again adds nothing twice (the store is idempotent).
        RowsRejected: the refusal is the database's, not the messages': every message (two or more) was refused
            alone, or the batch's own dead letters were refused. Nothing is kept as a dead letter then.
        ConfigError: the database is at a newer schema than this worker's (ArchiveStore checks on a refusal).
    """
    try:
        return store.write_prepared(batch, extra=hook_for(None) if hook_for else None)
    except RowsRejected as exc:
        log.warning("%s: storing the batch's %d messages in parts to find those refused", exc, len(batch.messages))
        search = _Search(store, hook_for, len(batch.messages))
        search.refused_part(batch, exc)
        return search.finish()


class _Search:
    """Halves a refused batch until each refused message stands alone, storing what the database takes; the refused
    messages' dead letters are written together at the end."""

    def __init__(self, store: BatchStore, hook_for: HookFor | None, messages: int) -> None:
        self._store = store
        self._hook_for = hook_for
        self._messages = messages
        self._counts = BatchCounts()
        self._stored = False  # some part of the batch was taken
        self._refused: list[tuple[MessageRows, RowsRejected]] = []
        self._letters: list[tuple[Any, ...]] = []  # the decoder's, of the parts refused
        self._repeats = 0  # deliveries of the refused messages after their first
        self._dead = 0  # the decoder's dead letters of the refused parts, as received

    def refused_part(self, batch: PreparedBatch, refusal: RowsRejected) -> None:
        messages = batch.messages
        if not messages:
            raise refusal  # the decoder's dead letters themselves: nothing to keep them as
        if len(messages) == 1:
            self._refuse(batch, refusal)
            return
        count = len(messages)
        cuts = list(range(count + 1)) if count <= ONE_BY_ONE else [0, count // 2, count]  # one by one, or halves
        # The batch's dead letters, and the count of its repeated deliveries, go with the first part.
        repeats = batch.decoded - len(messages)
        for index, (start, end) in enumerate(itertools.pairwise(cuts)):
            first = index == 0
            part = PreparedBatch(
                messages[start:end],
                batch.dead_letters if first else [],
                end - start + (repeats if first else 0),
                batch.dead if first else 0,
            )
            self._try(part)

    def _try(self, part: PreparedBatch) -> None:
        ids = [rows.message_id for rows in part.messages]
        try:
            self._counts += self._store.write_prepared(part, extra=self._hook_for(ids) if self._hook_for else None)
        except RowsRejected as exc:
            self.refused_part(part, exc)
            return
        self._stored = True

    def _refuse(self, part: PreparedBatch, refusal: RowsRejected) -> None:
        self._refused.append((part.messages[0], refusal))
        self._letters.extend(part.dead_letters)
        self._repeats += part.decoded - 1
        self._dead += part.dead
        if not self._stored and len(self._refused) == self._messages > 1:
            log.error("each of the batch's %d messages was refused: the database refuses them all", self._messages)
            raise refusal

    def finish(self) -> BatchCounts:
        for rows, refusal in self._refused:
            log.error("message %s kept as a dead letter: %s", rows.message_id, refusal)
        letters = [_rejected_letter(rows, str(refusal)) for rows, refusal in self._refused]
        batch = PreparedBatch([], [*letters, *self._letters], self._repeats, len(letters) + self._dead)
        counts = self._store.write_prepared(batch) if batch.dead_letters else BatchCounts()
        return self._counts + replace(counts, rejected=len(letters))


def _rejected_letter(rows: MessageRows, error: str) -> tuple[Any, ...]:
    """The ``dead_letters`` row of a message whose rows were refused, from its ``messages`` row (times in the
    database's form; streams.store.rows.message_row gives the columns)."""
    row = dict(zip(MESSAGE_COLUMNS, rows.message, strict=True))
    document = {column: _iso(row[column]) if column in _TIMES else row[column] for column in _KEPT}
    message_id, published = row["message_id"], row["published_at"]
    return (message_id, row["topic"], msgspec.json.encode(document), row["properties"], REJECTED, error, published,
            row["received_at"])  # fmt: skip


def _iso(moment: datetime | str | None) -> str | None:
    """A time as a row carries it (PostgreSQL's datetime, SQLite's UTC text) as ISO text."""
    return moment.isoformat() if isinstance(moment, datetime) else moment


def stored_message(letter: StoredDeadLetter) -> StoredMessage:
    """The ``messages`` row a rejected dead letter kept, to normalise again (streams.replay.derive.rederive).

    Raises:
        msgspec.DecodeError: the payload is not what a rejected dead letter keeps (not JSON, or other fields).
    """
    document = msgspec.json.decode(letter.payload, type=dict[str, Any])
    try:
        times = {column: None if document.get(column) is None else _time(document[column]) for column in _TIMES}
        fields = {**document, **times, "received_at": letter.received_at, "properties": letter.properties}
        return msgspec.convert(fields, StoredMessage)
    except (TypeError, ValueError) as exc:  # msgspec's ValidationError is a ValueError
        raise msgspec.ValidationError(f"not a rejected message: {exc}") from exc


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
