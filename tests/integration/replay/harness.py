"""Shared by the replay tests (test_dead_letters.py, test_messages.py): an archive on SQLite or
PostgreSQL, the replay command, and traffic sealed with one key and decoded with another (a worker with the wrong
Access Secret)."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from models.records import PulsarMessage
from models.tables import DeadLetter as DeadLetterRow
from streams.pipeline import BatchResult, Pipeline
from streams.sim import Fleet, SimMessage
from streams.store.settle import settle_all
from streams.store.sql import ArchiveStore
from streams.tuya.decoder import Decoded, MessageDecoder
from tests.unit.store.databases import archive_tables

GOOD = "0123456789abcdef0123456789abcdef"
WRONG = "fedcba9876543210fedcba9876543210"
ACCESS_ID = "replayproject001"
TOPIC = f"persistent://{ACCESS_ID}/out/event"
#: The tables a replay writes besides ``dead_letters`` and ``commands``.
DERIVED = ("device_status", "device_events", "user_events", "device_state", "devices", "users")


@dataclass
class Archive:
    url: str
    engine: Engine

    def store(self, messages: Sequence[PulsarMessage], *, key: str = GOOD, at: datetime | None = None) -> BatchResult:
        """Store ``messages`` as a worker whose Access Secret is ``key`` does (received ``at``, default now)."""
        clock = (lambda: at) if at is not None else (lambda: datetime.now(UTC))
        # Values wait in status_recent, as the SQLite worker leaves them, until a test settles them.
        store = ArchiveStore(self.engine, settle_every=1_000_000)
        return Pipeline(MessageDecoder(key), store, clock=clock).handle(messages)

    def snapshot(self, *tables: str, without: Sequence[str] = ()) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of ``tables`` (default: all) in key order, without the columns named ``table.column``."""
        archive = archive_tables()
        with self.engine.connect() as connection:
            snapshot = {}
            for name in tables or tuple(archive):
                table = archive[name]
                columns = [c for c in table.c if f"{name}.{c.name}" not in without]
                query = select(*columns).order_by(*table.primary_key.columns)
                snapshot[name] = [tuple(row) for row in connection.execute(query)]
            return snapshot

    def rows(self, model: Any) -> list[Any]:
        table = model.__table__
        with self.engine.connect() as connection:
            return list(connection.execute(select(table).order_by(*table.primary_key.columns)))

    def count(self, model: Any) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(model.__table__)) or 0

    def settle(self) -> None:
        """The recent status values moved into ``status_values``, as the worker does now and then."""
        settle_all(self.engine)

    def execute(self, *statements: Any) -> None:
        with self.engine.begin() as connection:
            for statement in statements:
                connection.execute(statement)


Replay = Callable[..., tuple[int, str]]


def pulsar(sim: SimMessage, n: int, *, ledger: int = 100) -> PulsarMessage:
    return PulsarMessage(
        payload=sim.payload,
        properties=sim.properties,
        message_id=f"{ledger}:{n}:0:-1",
        topic=TOPIC,
        publish_time_ms=1_700_000_000_000 + n,
    )


def traffic(count: int, *, seed: int = 4, ledger: int = 100, corrupt: float = 0.0) -> list[PulsarMessage]:
    """``count`` messages of a simulated fleet's traffic mix (reports, events, user events), sealed with GOOD."""
    clock = itertools.count(1_700_000_000_000 + ledger * 10_000_000, 1000)
    fleet = Fleet(GOOD, 6, clock=lambda: next(clock), seed=seed)
    return [pulsar(sim, n, ledger=ledger) for n, sim in enumerate(fleet.messages(count, corrupt=corrupt))]


def decoded(messages: Sequence[PulsarMessage]) -> list[Decoded]:
    decoder = MessageDecoder(GOOD)
    items = [decoder.decode(message) for message in messages]
    assert all(isinstance(item, Decoded) for item in items)
    return items  # type: ignore[return-value]


_COUNTS = re.compile(r"^(\w+): (?:would insert )?([\d,]+)(?: inserted)?, (?:update )?([\d,]+)(?: updated)?, "
                     r"(?:delete )?([\d,]+)(?: deleted)?$", re.MULTILINE)  # fmt: skip


def table_counts(out: str) -> dict[str, tuple[int, int, int]]:
    """(inserted, updated, deleted) per table from a ``replay --messages`` summary, dry run or not."""
    return {m[1]: tuple(int(n.replace(",", "")) for n in m.groups()[1:]) for m in _COUNTS.finditer(out)}  # type: ignore[misc]


def resolutions(archive: Archive) -> Counter[str | None]:
    return Counter(row.resolution for row in archive.rows(DeadLetterRow))


# --- replay --dead-letters --------------------------------------------------------------------------------------------
