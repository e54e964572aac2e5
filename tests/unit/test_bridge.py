"""The scale-out parts without a broker: the Kafka record format, device keying, the bridge's batch handler and the
processor's commit policy. End to end with real brokers: tests/integration/test_scale_out.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import signal
import time
from types import SimpleNamespace

import msgspec
import pytest

from models.records import DeadLetter, PulsarMessage, UserEvent
from streams.bridge import KafkaForwarder, SubjectKeyer
from streams.cli import main
from streams.errors import ConfigError, DatabaseUnavailable, TransientError
from streams.faust_app import BatchCommitter, OwnedSubjects, RunBounds, message_from_event
from streams.metrics import WorkerMetrics
from streams.pipeline import BatchResult
from streams.sim import Fleet
from streams.sources.kafka import KafkaRecord, bootstrap_servers, message_from_record, record_from_message
from streams.sources.pulsar import Received
from streams.store.sql import BatchCounts
from streams.tuya.decoder import MessageDecoder
from tests.conftest import load_vectors
from tests.factories import message_from_vector

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
VECTORS = load_vectors()


def make_message(**overrides) -> PulsarMessage:
    fields = {
        "payload": b'{"data":"x"}',
        "properties": {"em": "aes_gcm", "tid": "7f3e"},
        "message_id": "17:42:3:-1",
        "topic": "persistent://abc/out/event-partition-3",
        "publish_time_ms": 1_700_000_000_123,
        "redelivery_count": 2,
    }
    return PulsarMessage(**{**fields, **overrides})


def fleet_messages(count: int, corrupt: float = 0.0) -> list[PulsarMessage]:
    clock = itertools.count(1_700_000_000_000, 10)
    fleet = Fleet(ACCESS_KEY, 30, clock=lambda: next(clock), seed=5)
    return [
        PulsarMessage(payload=sim.payload, properties=sim.properties, message_id=f"1:{index}:0:-1", topic="t")
        for index, sim in enumerate(fleet.messages(count, corrupt=corrupt))
    ]


def test_record_round_trip_rebuilds_the_identical_message():
    message = make_message()
    record = record_from_message(message, "bf1e8a0cd2e4a1b2c3x9kq")
    rebuilt = message_from_record(record.value, record.headers, fallback_id="unused", fallback_topic="unused")
    assert rebuilt == message
    assert record.key == b"bf1e8a0cd2e4a1b2c3x9kq"


def test_record_without_device_id_is_keyed_by_message_id():
    assert record_from_message(make_message(), None).key == b"17:42:3:-1"


@pytest.mark.parametrize("header", [b"\xc2\xb2", b"99999999999999999999", b"-5"])
def test_a_publish_time_header_that_is_no_time_in_ms_reads_as_none(header):
    # "²" passed isdigit() and then int() raised: the processor crashed on the record at every restart
    record = record_from_message(make_message(), None)
    headers = [(name, header if name == "pulsar.publish_time" else value) for name, value in record.headers]
    assert message_from_record(record.value, headers, fallback_id="-", fallback_topic="-").publish_time_ms == 0


def test_property_names_cannot_collide_with_the_bridge_headers():
    message = make_message(properties={"pulsar.message_id": "forged"})
    record = record_from_message(message, None)
    assert message_from_record(record.value, dict(record.headers), fallback_id="-", fallback_topic="-") == message


def test_record_from_elsewhere_gets_its_kafka_coordinates_as_id():
    rebuilt = message_from_record(b"raw", [], fallback_id="kafka:t:1:9", fallback_topic="t")
    assert (rebuilt.message_id, rebuilt.topic, rebuilt.payload, rebuilt.properties) == ("kafka:t:1:9", "t", b"raw", {})


def test_message_from_event_reads_value_headers_and_coordinates():
    record = record_from_message(make_message(), "dev")
    event = SimpleNamespace(
        value=record.value, message=SimpleNamespace(headers=record.headers, topic="k", partition=4, offset=8)
    )
    assert message_from_event(event) == make_message()


@pytest.mark.parametrize(
    ("url", "servers"),
    [
        ("kafka://127.0.0.1:9092", "127.0.0.1:9092"),
        ("kafka://a:1,kafka://b:2", "a:1,b:2"),
        ("a:1;b:2/", "a:1,b:2"),
    ],
)
def test_bootstrap_servers_from_kafka_url(url, servers):
    assert bootstrap_servers(url) == servers


@pytest.mark.parametrize("url", ["", "kafka://nohost", "http://a:1", "kafka://a:port"])
def test_bootstrap_servers_rejects_bad_url_naming_the_variable(url):
    with pytest.raises(ConfigError, match="KAFKA_URL"):
        bootstrap_servers(url)


@pytest.mark.parametrize(
    "url",
    [
        "kafka://user:s3cretpw@127.0.0.1:9092",
        "kafka://127.0.0.1:9092?password=s3cretpw",
        "user:s3cretpw@127.0.0.1:9092",  # no scheme
        "kafka://b1:9092,user:s3cretpw@b2:9092",
    ],
)
def test_credentials_in_kafka_url_are_refused_without_showing_them(url):
    # aiokafka took "user:…@host" for a host name and logged it at every retry; faust ignored the credentials
    with pytest.raises(ConfigError, match=r"KAFKA_URL: .*credentials") as refused:
        bootstrap_servers(url)
    assert "s3cretpw" not in str(refused.value)


def _subject(decoded) -> str | None:
    """Whom the decoder found a message to be about: its device, else the uid of its user event."""
    if isinstance(decoded, DeadLetter):
        return None
    users = [record.uid for record in decoded.records if isinstance(record, UserEvent)]
    return decoded.message.device_id or (users[0] if users else None)


def test_keyer_finds_the_device_or_user_the_decoder_finds_for_every_message():
    keyer, decoder = SubjectKeyer(ACCESS_KEY), MessageDecoder(ACCESS_KEY)
    messages = fleet_messages(1500, corrupt=0.05)
    for message in messages:
        assert keyer.key(message) == _subject(decoder.decode(message)), message.message_id
    assert sum(keyer.key(m) is not None for m in messages) > 1000


@pytest.mark.parametrize("name", [e["name"] for e in VECTORS["envelopes"]])
def test_keyer_keys_each_vector_by_its_device_or_user(name):
    # user events were keyed by message id: one user's events went to several processors, which raced on its rules
    message = message_from_vector(next(e for e in VECTORS["envelopes"] if e["name"] == name))
    key = SubjectKeyer(VECTORS["pulsar_auth"]["access_key"]).key(message)
    assert key == _subject(MessageDecoder(VECTORS["pulsar_auth"]["access_key"]).decode(message))
    assert key is not None


_DEEP = b"[" * 5000 + b"]" * 5000  # deeper than msgspec goes: RecursionError, which stalled the bridge


@pytest.mark.parametrize(
    "payload",
    [b"", b"[]", b'{"data": 5}', b'{"data": "not base64!"}', b'{"data": "AAAA"}', b'{"x": ' + _DEEP + b', "data": 1}'],
)
def test_keyer_returns_none_for_input_it_cannot_open(payload):
    assert SubjectKeyer(ACCESS_KEY).key(make_message(payload=payload, properties={})) is None


class RecordingWriter:
    def __init__(self, failures: int = 0) -> None:
        self.sent: list[KafkaRecord] = []
        self._failures = failures

    def send_all(self, records: list[KafkaRecord]) -> None:
        if self._failures:
            self._failures -= 1
            raise TransientError("kafka down")
        self.sent.extend(records)


def test_forwarder_sends_every_message_keyed_by_device_before_returning():
    writer = RecordingWriter()
    messages = fleet_messages(50)
    result = KafkaForwarder(writer, SubjectKeyer(ACCESS_KEY)).handle(messages)
    assert (result.received, result.decoded) == (50, 50)
    assert [r.value for r in writer.sent] == [m.payload for m in messages]
    decoder = MessageDecoder(ACCESS_KEY)
    assert [r.key.decode() for r in writer.sent] == [
        decoder.decode(m).message.device_id or m.message_id for m in messages
    ]


def test_forwarder_raises_transient_error_while_kafka_does_not_acknowledge():
    with pytest.raises(TransientError):
        KafkaForwarder(RecordingWriter(failures=1), SubjectKeyer(ACCESS_KEY)).handle(fleet_messages(3))


class FlakyPipeline:
    sign_mismatches = 0

    def __init__(self, failures: int) -> None:
        self.calls = 0
        self._failures = failures

    def handle(self, messages):
        self.calls += 1
        if self.calls <= self._failures:
            raise DatabaseUnavailable("database down", retry_after=3.0)
        counts = BatchCounts(messages_inserted=len(messages) - 1, duplicates=1)
        return BatchResult(len(messages), len(messages), {"bad_base64": 0}, None, counts)


def test_committer_retries_a_transient_error_until_the_batch_commits():
    pipeline, slept = FlakyPipeline(failures=2), []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    metrics = WorkerMetrics()
    committer = BatchCommitter(pipeline, metrics, sleep=sleep)  # type: ignore[arg-type]
    result = asyncio.run(committer.commit(fleet_messages(4)))
    assert (pipeline.calls, result.received) == (3, 4)
    assert slept == [3.0, 3.0]  # the larger of the backoff (1 s, 2 s) and the error's retry_after
    assert metrics.registry.get_sample_value("tuya_messages_stored_total") == 3
    assert metrics.registry.get_sample_value("tuya_messages_duplicate_total") == 1


def test_the_processor_does_not_beat_healthz_while_a_batch_waits_for_the_database():
    now = [0.0]
    metrics = WorkerMetrics(stale_after_s=60, clock=lambda: now[0])
    pipeline = FlakyPipeline(failures=2)
    beaten: list[bool] = []

    async def sleep(delay: float) -> None:  # while the batch waits, the health timer fires, a minute apart
        now[0] += 61
        committer.heartbeat()
        beaten.append(metrics.healthy())

    committer = BatchCommitter(pipeline, metrics, sleep=sleep)  # type: ignore[arg-type]
    asyncio.run(committer.commit(fleet_messages(2)))
    assert beaten == [False, False]  # stale, as the single worker is while its database is down
    committer.heartbeat()
    assert metrics.healthy()  # committed: the timer beats again


def test_the_processor_shows_its_lag_and_the_age_of_a_batch_it_retries():
    an_hour_ago_ms = int(time.time() * 1000) - 3_600_000
    metrics = WorkerMetrics()
    gauge = metrics.registry.get_sample_value

    class LatePipeline(FlakyPipeline):  # messages Tuya pushed an hour ago
        def handle(self, messages):
            return dataclasses.replace(super().handle(messages), oldest_push_ms=an_hour_ago_ms)

    ages: list[float | None] = []

    async def sleep(delay: float) -> None:  # while the batch waits for the database
        ages.append(gauge("tuya_oldest_unacked_age_seconds"))

    messages = [msgspec.structs.replace(m, publish_time_ms=an_hour_ago_ms) for m in fleet_messages(2)]
    asyncio.run(BatchCommitter(LatePipeline(failures=1), metrics, sleep=sleep).commit(messages))  # type: ignore[arg-type]
    assert ages[0] is not None and ages[0] >= 3600
    assert gauge("tuya_push_to_commit_lag_seconds") >= 3600 and gauge("tuya_oldest_unacked_age_seconds") == 0


def test_committer_lets_other_errors_through_unacknowledged():
    class BrokenPipeline(FlakyPipeline):
        def handle(self, messages):
            raise RuntimeError("bug")

    committer = BatchCommitter(BrokenPipeline(0), WorkerMetrics())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="bug"):
        asyncio.run(committer.commit(fleet_messages(1)))


def test_bounds_end_a_run_after_max_messages():
    bounds = RunBounds(max_messages=10, clock=lambda: 0.0)
    bounds.count(9)
    assert bounds.reached() is None
    bounds.count(1)
    assert bounds.reached() == "handled 10 messages"


def test_bounds_end_a_run_when_idle():
    now = [0.0]
    bounds = RunBounds(idle_timeout=5.0, clock=lambda: now[0])
    bounds.joined()
    now[0] = 4.0
    bounds.count(1)
    now[0] = 8.9
    assert bounds.reached() is None
    now[0] = 9.0
    assert bounds.reached() == "nothing arrived for 5.0 s"


def test_a_bounded_run_takes_no_more_messages_than_it_may():
    bounds = RunBounds(max_messages=100, clock=lambda: 0.0)
    assert bounds.room(1000) == 100  # a batch of 1,000 taken: 100 handled, the rest left unacknowledged
    bounds.count(100)
    assert (bounds.room(1000), bounds.reached()) == (0, "handled 100 messages")
    assert RunBounds(clock=lambda: 0.0).room(1000) == 1000


def test_a_batch_in_hand_and_joining_the_group_are_not_idleness():
    now = [0.0]
    bounds = RunBounds(idle_timeout=5.0, clock=lambda: now[0])
    now[0] = 30.0
    assert bounds.reached() is None  # still joining: waiting out a killed member's session, say
    bounds.joined()  # the group took 30 s to join
    now[0] = 34.9
    assert bounds.reached() is None
    bounds.begin()  # a batch arrived, and its database is down
    now[0] = 60.0
    assert bounds.reached() is None
    bounds.count(10)
    now[0] = 65.0
    assert bounds.reached() == "nothing arrived for 5.0 s"


class NeverConnects:
    """A Pulsar source whose broker is never there."""

    def connect(self) -> None:
        raise ConnectionError("connection refused")

    def close(self) -> None:
        pass


def run_bridge(monkeypatch: pytest.MonkeyPatch, source: object, *argv: str) -> int:
    """``tuya-archiver bridge`` on ``source`` in place of Pulsar; the signal handlers it sets are put back."""
    for name, value in {"TUYA_ACCESS_ID": "bridgeproject", "TUYA_ACCESS_KEY": ACCESS_KEY,
                        "KAFKA_URL": "kafka://127.0.0.1:1", "METRICS_PORT": "0"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("streams.wiring.pulsar_source", lambda _settings: source)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return main(["bridge", *argv])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def test_a_bounded_bridge_that_never_reaches_pulsar_exits_1_saying_so(monkeypatch, capsys):
    assert run_bridge(monkeypatch, NeverConnects(), "--idle-timeout", "0.5") == 1
    assert "tuya-archiver bridge: the broker could not be reached for 0.5 s" in capsys.readouterr().err


class OneBatch:
    """A Pulsar source that hands out one batch, then nothing; acks recorded."""

    def __init__(self, messages: list[PulsarMessage]) -> None:
        self._batches = [[Received(message, handle=message.message_id) for message in messages]]
        self.acked: list[str] = []

    def connect(self) -> None:
        pass

    def receive_batch(self) -> list[Received]:
        return self._batches.pop(0) if self._batches else []

    def ack(self, handles: list[str]) -> None:
        self.acked.extend(handles)

    def close(self) -> None:
        pass


class ClosingWriter(RecordingWriter):
    def close(self) -> None:
        pass


def test_the_bridge_forwards_a_batch_then_acknowledges_it(monkeypatch):
    # The Runner of `run` drives the forwarder in the pipeline's place: what the Runner asks of a pipeline, the
    # forwarder has (a change to the Runner crashed every bridge at its first batch).
    messages, writer = fleet_messages(3), ClosingWriter()
    source = OneBatch(messages)
    monkeypatch.setattr("streams.bridge.KafkaWriter", lambda *_args, **_kwargs: writer)
    assert run_bridge(monkeypatch, source, "--max-messages", "3") == 0
    assert [record.value for record in writer.sent] == [message.payload for message in messages]
    assert source.acked == [message.message_id for message in messages]


class TickingPipeline:
    sign_mismatches = 0

    def __init__(self) -> None:
        self.ticks = 0
        self.owns: OwnedSubjects | None = None

    def tick(self, owns: OwnedSubjects) -> None:
        self.ticks += 1
        self.owns = owns


def test_a_processor_ticks_only_once_its_backlog_is_read_after_each_assignment():
    # A timer that came due while the processors were away fires only once the backlog, which may hold the value
    # that cancels it, is read: they ticked from their start.
    now, pipeline = [0.0], TickingPipeline()
    committer = BatchCommitter(pipeline, WorkerMetrics(), quiet_s=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    committer.behind(OwnedSubjects([0], lambda _key: 0))  # partitions assigned
    for _ in range(2):  # full takes of old messages: the backlog is being read
        now[0] += 3.0
        committer.took(read_up=False, assignment=committer.assignment)
        asyncio.run(committer.tick())
    assert pipeline.ticks == 0
    committer.took(read_up=True, assignment=committer.assignment)  # a short take, or one of messages just published
    asyncio.run(committer.tick())
    assert pipeline.ticks == 1
    taken_before = committer.assignment
    committer.behind(OwnedSubjects([0, 1], lambda _key: 0))  # a rebalance brings partitions with a backlog of their own
    committer.took(read_up=True, assignment=taken_before)  # a take from before it, committed after it: no news
    now[0] += 4.9
    asyncio.run(committer.tick())
    assert pipeline.ticks == 1
    now[0] += 0.1  # nothing taken for a tick's interval: nothing waits
    asyncio.run(committer.tick())
    assert pipeline.ticks == 2


def test_a_processor_ticks_for_the_subjects_of_its_latest_assignment():
    pipeline = TickingPipeline()
    committer = BatchCommitter(pipeline, WorkerMetrics())  # type: ignore[arg-type]
    for owns in (OwnedSubjects([0], lambda _key: 0), OwnedSubjects([3, 6], lambda _key: 3)):
        committer.behind(owns)
        committer.took(read_up=True, assignment=committer.assignment)
        asyncio.run(committer.tick())
        assert pipeline.owns is owns


def test_a_subject_whose_partition_is_not_known_yet_is_asked_again():
    # A topic missing from the metadata for a moment (a broker restarting) made its subjects nobody's until the
    # next rebalance: their timers never fired.
    answers = iter([None, 3])
    owns = OwnedSubjects([3], lambda _key: next(answers))
    assert (owns("bf1e8a0cd2e4a1b2c3x9kq"), owns("bf1e8a0cd2e4a1b2c3x9kq")) == (False, True)


def test_a_processor_owns_the_subjects_whose_keys_are_placed_on_its_partitions():
    placed: list[bytes] = []

    def place(key: bytes) -> int:  # as Kafka places the bridge's keys: by their UTF-8 bytes
        placed.append(key)
        return {b"bf1e8a0cd2e4a1b2c3x9kq": 3, "Küche".encode(): 7}.get(key, 0)

    owns = OwnedSubjects([3, 7], place)
    assert [owns(subject) for subject in ("bf1e8a0cd2e4a1b2c3x9kq", "Küche", "other", "Küche")] == [
        True, True, False, True,
    ]  # fmt: skip
    assert placed == [b"bf1e8a0cd2e4a1b2c3x9kq", "Küche".encode(), b"other"]  # each subject placed once
