"""What a kept row becomes with today's code, and how that differs from what the archive holds: the pure part of
``tuya-archiver replay``.

Owns rebuilding the Pulsar message of a dead letter and the decoded message of a ``messages`` row, normalising a
stored payload again (naming DP ids through the catalog, as the pipeline does), and the comparisons: history rows to
insert, update and delete; which latest values came from a history row that changed; the ``devices`` rows of a
re-derivation, which never count a report again; before/after counts; messages without the records a backfill
had taken from the device log. Pure: no I/O, no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import compress
from typing import TYPE_CHECKING, Any

import msgspec

from models.records import DecodedMessage, PulsarMessage, Record
from streams.fleet.catalog import Catalog
from streams.pipeline import resolve_codes
from streams.store.facts import DEVICE_COLUMNS
from streams.tuya.decoder import Decoded
from streams.tuya.envelope import decode_payload
from streams.tuya.normalize import normalize

if TYPE_CHECKING:
    from streams.store.replay import StoredDeadLetter, StoredMessage

__all__ = [
    "RowDiff",
    "TableChanges",
    "changed_values",
    "device_fact_rows",
    "diff_rows",
    "epoch_ms",
    "pulsar_message",
    "rederive",
    "snapshot_changes",
    "stale_keys",
    "without_copies",
]

Row = tuple[Any, ...]
Key = tuple[Any, ...]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PRODUCT_KEY = DEVICE_COLUMNS.index("product_key")
_REPORT_COUNT = DEVICE_COLUMNS.index("report_count")


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a time the decoder made from milliseconds (exact: no float on the way)."""
    delta = moment - _EPOCH
    microseconds = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return (microseconds + 500) // 1000


def pulsar_message(letter: StoredDeadLetter) -> PulsarMessage:
    """The message as the broker delivered it, from what its dead letter kept."""
    published = letter.published_at
    return PulsarMessage(
        payload=letter.payload,
        properties=dict(letter.properties),
        message_id=letter.message_id,
        topic=letter.topic,
        publish_time_ms=0 if published is None else epoch_ms(published),
    )


def without_copies(
    decoded: Sequence[Decoded], copies_of: Callable[[list[Record]], Sequence[bool]]
) -> tuple[list[Decoded], int]:
    """``decoded`` without the records ``copies_of`` marks (given every record, in order, a flag each:
    streams.store.backfill's logged_copies), and how many went; a message keeps its own row all the same."""
    copies = copies_of([record for item in decoded for record in item.records])
    kept: list[Decoded] = []
    start = 0
    for item in decoded:
        flags = copies[start : start + len(item.records)]
        start += len(item.records)
        if any(flags):
            item = msgspec.structs.replace(item, records=list(compress(item.records, [not flag for flag in flags])))
        kept.append(item)
    return kept, sum(copies)


def rederive(stored: StoredMessage, catalog: Catalog) -> Decoded:
    """The records today's normalisation makes of a stored message, DP ids named where the catalog can.

    Raises:
        DecodeError: the payload (no longer) makes records; its ``kind`` says why.
    """
    payload = decode_payload(stored.payload.encode())
    message = DecodedMessage(
        message_id=stored.message_id,
        topic=stored.topic,
        protocol=stored.protocol,
        biz_code=stored.biz_code,
        device_id=stored.device_id,
        encrypt_model=stored.encrypt_model,  # type: ignore[arg-type]
        sign_ok=stored.sign_ok,
        pushed_at=stored.pushed_at,
        published_at=stored.published_at,
        payload=stored.payload,
        properties=stored.properties,
    )
    # The decoder normalised with the push time it then stored as pushed_at (streams.tuya.decoder).
    item = Decoded(message, normalize(stored.message_id, stored.protocol, payload, epoch_ms(stored.pushed_at)))
    return resolve_codes(item, catalog) if item.unresolved else item


@dataclass(frozen=True, slots=True)
class TableChanges:
    """Rows of one table a replay inserted, updated and deleted (or would have, in a dry run)."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    def __add__(self, other: TableChanges) -> TableChanges:
        return TableChanges(self.inserted + other.inserted, self.updated + other.updated, self.deleted + other.deleted)

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.deleted


@dataclass(frozen=True, slots=True)
class RowDiff:
    """How a table's stored rows differ from the derived ones: rows to add, (stored, derived) pairs whose content
    differs, stored rows nothing derives any more."""

    inserts: list[Row] = field(default_factory=list)
    updates: list[tuple[Row, Row]] = field(default_factory=list)
    deletes: list[Row] = field(default_factory=list)

    @property
    def changes(self) -> TableChanges:
        return TableChanges(len(self.inserts), len(self.updates), len(self.deletes))

    @property
    def removed(self) -> list[Row]:
        """The stored rows that go: those deleted, and the old versions of those updated."""
        return [*self.deletes, *(old for old, _new in self.updates)]

    @property
    def written(self) -> list[Row]:
        """The rows that are written: those inserted, and the new versions of those updated."""
        return [*self.inserts, *(new for _old, new in self.updates)]


def diff_rows(stored: Iterable[Row], derived: Iterable[Row], key: Callable[[Row], Key]) -> RowDiff:
    """Compare rows by ``key``; both sides must be in the same form (see streams.store.rederive)."""
    before = {key(row): row for row in stored}
    diff = RowDiff()
    for row in derived:
        old = before.pop(key(row), None)
        if old is None:
            diff.inserts.append(row)
        elif old != row:
            diff.updates.append((old, row))
    diff.deletes.extend(before.values())
    return diff


def changed_values(status: RowDiff) -> set[tuple[str, str, str]]:
    """(device, code, message id) of every named status value that was replaced or removed, old and new versions
    alike (rows in streams.store.rows.STATUS_COLUMNS order)."""
    rows = [*status.removed, *(new for _old, new in status.updates)]
    return {(row[2], row[3], row[0]) for row in rows if row[3] is not None}


def stale_keys(current: Mapping[Key, Row], changed: set[tuple[str, str, str]]) -> list[Key]:
    """The ``device_state`` keys whose stored latest value came from a status value that changed (rows in
    DEVICE_STATE_COLUMNS order): their latest value must be found again in the history."""
    return sorted(key for key, row in current.items() if (row[0], row[1], row[5]) in changed)


def device_fact_rows(rows: Sequence[Row], stored: Mapping[Key, Row]) -> list[Row]:
    """``devices`` rows of re-derived messages for the store's upsert: no report counted again (the stream counted
    each message once, when it stored it), and a product key only where the archive has none (the upsert takes any
    product key it is given, and an old message's may have been replaced since)."""
    prepared = []
    for row in rows:
        values = list(row)
        values[_REPORT_COUNT] = 0
        known = stored.get((row[0],))
        if known is not None and known[_PRODUCT_KEY] is not None:
            values[_PRODUCT_KEY] = None
        prepared.append(tuple(values))
    return prepared


def snapshot_changes(before: Mapping[Key, Row], after: Mapping[Key, Row]) -> TableChanges:
    """What changed between two snapshots of the same keys."""
    inserted = sum(1 for key in after if key not in before)
    updated = sum(1 for key, row in after.items() if key in before and before[key] != row)
    deleted = sum(1 for key in before if key not in after)
    return TableChanges(inserted, updated, deleted)
