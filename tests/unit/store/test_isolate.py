"""Finding the messages whose rows the database refuses (streams/store/isolate.py), against a store that refuses
chosen message ids; the real refusals, on SQLite and PostgreSQL, are in tests/integration/replay/test_rejected.py
and tests/integration/test_writer.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from models.records import News
from streams.errors import RowsRejected
from streams.store.drivers import time_format
from streams.store.isolate import (
    ONE_BY_ONE,
    REJECTED,
    rules_hooks,
    stored_message,
    write_isolating,
)
from streams.store.prepared import PreparedBatch, prepare_batch
from streams.store.replay import StoredDeadLetter
from streams.store.sql import BatchCounts
from tests.unit.store import factories as f


@dataclass
class RefusingStore:
    """Commits (records) every batch holding none of ``refused``'s message ids, and raises RowsRejected for the
    rest, as the archive does: nothing of a refused batch is kept."""

    refused: set[str]
    refuse_letters: bool = False
    committed: list[tuple[list[str], list[Any], Any]] = field(default_factory=list)
    attempts: int = 0

    def write_prepared(self, batch: PreparedBatch, *, extra: Callable[[Any], None] | None = None) -> BatchCounts:
        self.attempts += 1
        ids = [rows.message_id for rows in batch.messages]
        if self.refused & set(ids) or (self.refuse_letters and batch.dead_letters):
            raise RowsRejected("the database refused rows while storing a batch: refused")
        if extra is not None:
            extra("connection")
        self.committed.append((ids, batch.dead_letters, extra))
        return BatchCounts(
            messages_inserted=len(ids),
            duplicates=batch.decoded - len(ids),
            dead_letters=len(batch.dead_letters),
            dead_letter_duplicates=batch.dead - len(batch.dead_letters),
        )


def batch(
    count: int, *, letters: int = 0, repeated: int = 0, time: Callable[[Any], Any] | None = None
) -> PreparedBatch:
    """``count`` reports (the first ``repeated`` delivered twice) and ``letters`` dead letters."""
    reports = [f.status_report(n, {"cur_power": n}) for n in range(count)]
    dead = [f.dead_letter(1000 + n) for n in range(letters)]
    return prepare_batch(reports + reports[:repeated], dead, f.at(0), time or time_format("sqlite"))


def ids(*numbers: int) -> set[str]:
    return {f.message_id(n) for n in numbers}


def test_a_batch_the_database_takes_is_stored_whole_in_one_transaction() -> None:
    store = RefusingStore(set())
    counts = write_isolating(store, batch(8, letters=2))
    assert [len(message_ids) for message_ids, _, _ in store.committed] == [8]
    assert (counts.messages_inserted, counts.rejected, counts.dead_letters) == (8, 0, 2)


def test_the_refused_messages_become_dead_letters_and_every_other_one_is_stored_once() -> None:
    store = RefusingStore(ids(3, 6))
    counts = write_isolating(store, batch(8, letters=2, repeated=1))
    stored = [message_id for message_ids, _, _ in store.committed for message_id in message_ids]
    assert sorted(stored) == sorted(ids(0, 1, 2, 4, 5, 7))
    letters = [letter for _, dead, _ in store.committed for letter in dead]
    assert sorted(letter[0] for letter in letters if letter[4] == REJECTED) == sorted(ids(3, 6))
    assert len(letters) == 4  # the batch's own two, once
    assert counts == BatchCounts(messages_inserted=6, duplicates=1, dead_letters=4, rejected=2)


def test_each_part_runs_the_rules_for_its_own_messages_and_a_refused_one_runs_none() -> None:
    seen: list[set[str]] = []

    class Reactor:
        def in_transaction(self, news: list[News], now: Any) -> Callable[[Any], None] | None:
            return lambda connection: seen.append({item.message_id for item in news}) if news else None

        def on_tick(self, now: Any) -> None:
            return None

    made = [f.status_report(n, {"cur_power": n}) for n in range(8)]
    store = RefusingStore(ids(5))
    write_isolating(store, batch(8), rules_hooks(Reactor(), [item.news for item in made], f.at(0)))
    assert seen == [set(message_ids) for message_ids, _, extra in store.committed if extra]
    assert set().union(*seen) == ids(0, 1, 2, 3, 4, 6, 7)


def test_the_refused_messages_dead_letters_are_written_in_one_transaction_after_the_rest() -> None:
    store = RefusingStore(ids(2, 5, 11))
    write_isolating(store, batch(12))
    *stored, (last_ids, letters, extra) = store.committed
    assert (last_ids, extra, sorted(letter[0] for letter in letters)) == ([], None, sorted(ids(2, 5, 11)))
    assert all(message_ids for message_ids, _, _ in stored)


def test_finding_one_refused_message_takes_about_twice_log2_of_the_batch_transactions() -> None:
    store = RefusingStore(ids(617))
    counts = write_isolating(store, batch(1000))
    assert (counts.messages_inserted, counts.rejected) == (999, 1)
    assert store.attempts <= 2 * 8 + ONE_BY_ONE + 2  # halving down to four messages, then one by one, then the letter


@pytest.mark.parametrize("count", [2, 3, 40])
def test_a_batch_refused_message_by_message_is_the_database_s_refusal_and_nothing_is_kept(count: int) -> None:
    """A constraint every row breaks is not the messages' fault: dead-lettering them all and acknowledging them
    would empty the history while looking healthy."""
    store = RefusingStore(ids(*range(count)))
    with pytest.raises(RowsRejected):
        write_isolating(store, batch(count, letters=1))
    assert store.committed == []


def test_refused_messages_ahead_of_good_ones_do_not_stop_the_search() -> None:
    """Searched in order, the first eight refused alone with nothing stored yet: the rest is still tried."""
    store = RefusingStore(ids(*range(8)))
    counts = write_isolating(store, batch(16))
    assert (counts.messages_inserted, counts.rejected) == (8, 8)


def test_a_lone_message_refused_is_kept_as_a_dead_letter() -> None:
    store = RefusingStore(ids(0))
    counts = write_isolating(store, batch(1))
    assert (counts.messages_inserted, counts.rejected, counts.dead_letters) == (0, 1, 1)


def test_dead_letters_refused_themselves_are_not_hidden() -> None:
    with pytest.raises(RowsRejected):
        write_isolating(RefusingStore(set(), refuse_letters=True), batch(2, letters=1))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_rejected_dead_letter_keeps_the_message_as_decoded(dialect: str) -> None:
    store = RefusingStore(ids(1))
    write_isolating(store, batch(2, time=time_format(dialect)))
    [letter] = [row for _, dead, _ in store.committed for row in dead]
    message_id, topic, payload, properties, kind, error, published, received = letter
    assert (message_id, kind, error) == (
        f.message_id(1),
        REJECTED,
        "the database refused rows while storing a batch: refused",
    )
    again = stored_message(StoredDeadLetter(message_id, topic, payload, {"em": "aes_gcm"}, kind, None, f.at(5)))
    original = f.status_report(1, {"cur_power": 1}).message
    assert (again.message_id, again.topic, again.protocol, again.device_id, again.payload) == (
        original.message_id,
        original.topic,
        original.protocol,
        original.device_id,
        original.payload,
    )
    assert (again.pushed_at, again.published_at, again.received_at) == (
        original.pushed_at,
        original.published_at,
        f.at(5),
    )
    assert properties == '{"em":"aes_gcm"}'
    time = time_format(dialect)  # the dead letter's own times, as its columns take them
    assert (published, received) == (time(original.published_at), time(f.at(0)))
