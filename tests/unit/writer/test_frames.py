"""What crosses the pipe to the writer process (streams/writer/frames.py) and how batches join into one transaction
(streams/store/prepared.combine, streams/pipeline.committed_result). The processes themselves are exercised in
tests/integration/test_writer.py."""

from __future__ import annotations

import pickle

import pytest

from streams.pipeline import BatchResult, committed_result
from streams.store.drivers import time_format
from streams.store.prepared import PreparedBatch, combine, prepare_batch
from streams.store.sql import BatchCounts
from streams.writer.frames import Committed, Crashed, Stop, Tick, Write, decode_reply, decode_request, encode
from tests.unit.store import factories as f


def _batch(dialect: str, *numbers: int, dead: tuple[int, ...] = ()) -> PreparedBatch:
    decoded = [f.status_report(n, {"temp": 215 + n, "switch": n % 2 == 0, "mode": "eco"}) for n in numbers]
    decoded.append(f.device_event(numbers[0], "online") if numbers else f.user_event(99, "register"))
    return prepare_batch(decoded, [f.dead_letter(n) for n in dead], f.at(1000), time_format(dialect))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_write_frame_carries_every_row_unchanged(dialect):
    rows = _batch(dialect, 1, 2, 3, dead=(7,))
    news = [item.news for item in [f.status_report(1, {"temp": 216})]]
    frame = decode_request(encode(Write(rows, pickle.dumps(news), f.at(1000), 3)))
    assert isinstance(frame, Write)
    assert frame.rows == rows  # times (text for SQLite, datetimes for PostgreSQL), JSON text, booleans, None
    assert pickle.loads(frame.news) == news
    assert (frame.now, frame.catalog) == (f.at(1000), 3)


def test_requests_and_replies_keep_their_kind():
    counts = BatchCounts(messages_inserted=3, duplicates=1, status_rows=9)
    assert decode_request(encode(Tick(f.at(5), 2))) == Tick(f.at(5), 2)
    assert decode_request(encode(Stop())) == Stop()
    assert decode_reply(encode(Committed(2, counts, 0.25))) == Committed(2, counts, 0.25)
    assert decode_reply(encode(Crashed("boom"))) == Crashed("boom")


def test_batches_combined_keep_each_message_and_dead_letter_once_and_add_their_counts():
    first = _batch("sqlite", 1, 2, dead=(7,))
    second = _batch("sqlite", 2, 3, dead=(7, 8))  # message 2 and dead letter 7 delivered again
    joined = combine([first, second])
    assert [rows.message_id for rows in joined.messages] == [f.message_id(n) for n in (1, 2, 3)]
    assert [row[0] for row in joined.dead_letters] == [f.message_id(7), f.message_id(8)]
    assert (joined.decoded, joined.dead) == (first.decoded + second.decoded, 3)
    assert combine([first]) is first


def test_one_result_for_the_batches_of_one_transaction():
    def pending(received: int, kinds: dict[str, int], oldest: int | None, newest: int | None, wanted: set[str]):
        decoded = received - sum(kinds.values())
        return BatchResult(received, decoded, kinds, oldest, None, frozenset(wanted), newest)

    counts = BatchCounts(messages_inserted=5)
    batches = [
        pending(4, {"bad_base64": 1}, 2000, 5000, {"a"}),
        pending(3, {"bad_base64": 1, "bad_payload": 1}, 1000, 3000, {"b"}),
        pending(2, {}, None, None, set()),
    ]
    result = committed_result(batches, counts)
    assert (result.received, result.decoded, result.counts) == (9, 6, counts)
    assert result.dead_letters == {"bad_base64": 2, "bad_payload": 1}
    assert (result.oldest_push_ms, result.newest_push_ms) == (1000, 5000)
    assert result.sync_wanted == {"a", "b"}
