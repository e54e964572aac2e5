"""The simulator against a real Pulsar-protocol broker (pulsar-lite): publish, consume, decode; broker lifecycle.

Unit tests of the messages themselves: tests/unit/sim/test_fleet.py and test_seal.py.
"""

from __future__ import annotations

import argparse
import itertools
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pulsar
import pytest

from models.records import DeadLetter, PulsarMessage
from streams.cli import sim as simulate
from streams.settings import load_settings
from streams.sim.broker import (
    WRITE_BUFFER_HIGH_BYTES,
    BrokerError,
    EmbeddedBroker,
    broker_binary,
    burn_consumer_ids,
)
from streams.sim.fleet import Fleet, SimMessage
from streams.sim.publisher import publish
from streams.tuya.decoder import Decoded, MessageDecoder
from tests.conftest import load_vectors
from tests.fixtures.broker import require_broker_binary

pytestmark = pytest.mark.integration

ACCESS_KEY = load_vectors()["pulsar_auth"]["access_key"]


def _fleet(size: int = 20, seed: int = 11) -> Fleet:
    return Fleet(ACCESS_KEY, size, clock=itertools.count(1_700_000_000_000, 10).__next__, seed=seed)


@contextmanager
def _client(url: str) -> Iterator[pulsar.Client]:
    client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn), operation_timeout_seconds=10)
    try:
        yield client
    finally:
        client.close()


def _subscribe(client: pulsar.Client, topic: str, name: str = "test-sub") -> pulsar.Consumer:
    return client.subscribe(
        topic, name, consumer_type=pulsar.ConsumerType.Failover, initial_position=pulsar.InitialPosition.Earliest
    )


def _receive(consumer: pulsar.Consumer, n: int, *, timeout_ms: int = 5000) -> list[pulsar.Message]:
    """Up to ``n`` distinct messages (by message id, first delivery kept), each acknowledged.

    pulsar-lite delivers some messages more than once to a Failover consumer that is attached while the topic is
    being written to (see streams/sim/broker.py), so the tests count distinct messages, as the worker must.
    """
    distinct: dict[str, pulsar.Message] = {}
    while len(distinct) < n:
        try:
            message = consumer.receive(timeout_ms)
        except pulsar.Timeout:
            break
        distinct.setdefault(str(message.message_id()), message)
        consumer.acknowledge(message)
    return list(distinct.values())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test alone, for tests that restart, kill or reconfigure it."""
    require_broker_binary()
    with EmbeddedBroker(tmp_path / "pulsar") as broker:
        yield broker


def test_published_messages_all_arrive_and_decode(pulsar_broker, broker_topic):
    messages = list(_fleet().messages(2000, items=5, corrupt=0.01))
    with _client(pulsar_broker.url) as client:
        consumer = _subscribe(client, broker_topic)
        report = publish(pulsar_broker.url, broker_topic, messages)
        received = _receive(consumer, len(messages))
    assert (report.count, report.failed) == (2000, 0)
    assert Counter(m.data() for m in received) == Counter(m.payload for m in messages)
    decoder = MessageDecoder(ACCESS_KEY)
    sent = {m.payload: m for m in messages}
    for message in received:
        original = sent[message.data()]
        assert message.properties() == original.properties
        assert message.partition_key() == (original.device_id or "")
        result = decoder.decode(
            PulsarMessage(payload=message.data(), properties=message.properties(), message_id="m", topic=broker_topic)
        )
        assert isinstance(result, DeadLetter if original.kind.startswith("corrupt:") else Decoded), original.kind


def test_rate_limits_publishing(pulsar_broker, broker_topic):
    report = publish(pulsar_broker.url, broker_topic, _fleet().messages(60), rate=300)
    assert report.count == 60
    assert report.seconds >= 59 / 300


def _simulate(argv: list[str]) -> int:
    # The subcommand alone: parse with its own parser, then call its handler as streams.cli.main does.
    parser = argparse.ArgumentParser()
    simulate.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", *argv])
    return args.handler(args, load_settings())


def test_simulate_command_publishes_to_the_topic(pulsar_broker, broker_topic, monkeypatch, capsys):
    monkeypatch.setenv("TUYA_ACCESS_KEY", ACCESS_KEY)
    with _client(pulsar_broker.url) as client:
        consumer = _subscribe(client, broker_topic)
        argv = ["--url", pulsar_broker.url, "--topic", broker_topic, "--devices", "5", "--count", "50"]
        status = _simulate([*argv, "--corrupt", "0.1", "--items", "2", "--seed", "3"])
        received = _receive(consumer, 50)
    assert status == 0
    assert len(received) == 50
    assert "published 50 of 50 messages" in capsys.readouterr().out


def test_broker_restart_keeps_unacked_messages(own_broker):
    # pulsar-lite persists acks lazily, so some acknowledged messages may come again after the restart (at least
    # once); every unacknowledged one must. Unbatched, so that each ack covers one entry.
    topic = "persistent://testaccessid0000/out/event"
    payloads = [m.payload for m in _fleet().messages(200)]
    with _client(own_broker.url) as client:
        consumer = _subscribe(client, topic)
        report = publish(own_broker.url, topic, [SimMessage(p, {}, "status", None) for p in payloads], batching=False)
        assert report.count == 200
        acked = {m.data() for m in _receive(consumer, 50)}
    assert acked == set(payloads[:50])
    port = own_broker.port
    own_broker.restart()
    assert own_broker.port == port
    with _client(own_broker.url) as client:
        again = {m.data() for m in _receive(_subscribe(client, topic), 200, timeout_ms=2000)}
    assert set(payloads[50:]) <= again <= set(payloads)


def test_broker_kill_keeps_published_messages(own_broker):
    topic = "persistent://testaccessid0000/out/event"
    with _client(own_broker.url) as client:
        _subscribe(client, topic).close()
        assert publish(own_broker.url, topic, _fleet().messages(100)).count == 100
    pid = own_broker.pid
    own_broker.kill()
    assert pid is not None and _gone(pid)
    own_broker.start()
    with _client(own_broker.url) as client:
        assert len(_receive(_subscribe(client, topic), 100)) == 100


def test_embedded_broker_leaves_no_process_behind(tmp_path):
    require_broker_binary()
    broker = EmbeddedBroker(tmp_path / "pulsar", log_path=Path(os.devnull))
    with pytest.raises(RuntimeError, match="boom"), broker:
        pid = broker.pid
        raise RuntimeError("boom")
    assert pid is not None and _gone(pid)
    assert broker.pid is None and not broker.running


def test_broker_is_killed_when_its_parent_dies(tmp_path):
    require_broker_binary()
    script = (
        "import sys, time; from pathlib import Path; from streams.sim.broker import EmbeddedBroker; "
        "broker = EmbeddedBroker(Path(sys.argv[1])).start(); print(broker.pid, flush=True); time.sleep(60)"
    )
    with subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "pulsar")], stdout=subprocess.PIPE) as parent:
        try:
            assert parent.stdout is not None
            pid = int(parent.stdout.readline())
            assert not _gone(pid)
        finally:
            parent.kill()
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def test_start_on_a_port_in_use_fails(tmp_path):
    require_broker_binary()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        broker = EmbeddedBroker(tmp_path / "pulsar", port=taken.getsockname()[1])
        with pytest.raises(BrokerError, match="in use"):
            broker.start()
    assert not broker.running


def test_metrics_are_served_on_loopback_only(own_broker):
    config = (own_broker.data_dir / "pulsar-lite.toml").read_text(encoding="utf-8")
    assert f'addr = "127.0.0.1:{own_broker.metrics_port}"' in config
    with urllib.request.urlopen(f"http://127.0.0.1:{own_broker.metrics_port}/metrics", timeout=5) as response:
        assert response.status == 200


def test_broker_runs_with_write_buffer_marks_its_binary_knows(own_broker):
    """pulsar-lite ignores a key it does not know, so the marks that keep its dispatch from stalling for good
    (streams.sim.broker) must be spelled as the installed binary's own settings."""
    config = tomllib.loads((own_broker.data_dir / "pulsar-lite.toml").read_text(encoding="utf-8"))
    marks = {
        "pulsar_channel_write_buffer_high_water_mark_bytes": WRITE_BUFFER_HIGH_BYTES,
        "pulsar_channel_write_buffer_low_water_mark_bytes": WRITE_BUFFER_HIGH_BYTES // 2,
    }
    assert {key: config.get(key) for key in marks} == marks
    binary = Path(broker_binary()).read_bytes()
    assert all(key.encode() in binary for key in marks)


def test_second_client_joins_a_subscription_after_burning_consumer_ids(pulsar_broker, broker_topic):
    with _client(pulsar_broker.url) as first, _client(pulsar_broker.url) as second:
        _subscribe(first, broker_topic, "shared-name")
        burn_consumer_ids(second, broker_topic, 4)
        standby = _subscribe(second, broker_topic, "shared-name")
        assert standby.subscription_name() == "shared-name"


def test_partitioned_topic_keeps_each_device_on_one_partition(tmp_path):
    require_broker_binary()
    topic = "persistent://testaccessid0000/out/event"
    messages = list(_fleet(size=12).messages(300))
    with EmbeddedBroker(tmp_path / "pulsar", partitions=3) as broker, _client(broker.url) as client:
        consumer = _subscribe(client, topic)
        assert publish(broker.url, topic, messages).count == 300
        received = _receive(consumer, 300)
        assert len(client.get_topic_partitions(topic)) == 3
    partitions = defaultdict(set)
    for message in received:
        if message.partition_key():
            partitions[message.partition_key()].add(message.topic_name())
    assert len(received) == 300
    assert len(partitions) == 12
    assert all(len(topics) == 1 for topics in partitions.values())
