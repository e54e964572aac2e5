"""The worker's PulsarSource against a real Pulsar-protocol broker (pulsar-lite): what a received message carries,
and that its handle acknowledges it. (Its connect frame, Tuya's ``auth1``: test_pulsar_auth_wire.py.)"""

from __future__ import annotations

import pulsar
import pytest

from streams.sources.pulsar import PulsarSource, Received

pytestmark = pytest.mark.integration


def _source(url: str, topic: str) -> PulsarSource:
    return PulsarSource(url, access_id="a", access_key="k", topic=topic, subscription="sub", batch_timeout_ms=300)


def _receive(source: PulsarSource, count: int) -> list[Received]:
    """``count`` distinct messages (by id, first delivery kept), or what came before three empty batches."""
    received: dict[str, Received] = {}
    empty = 0
    while len(received) < count and empty < 3:
        batch = source.receive_batch()
        empty = 0 if batch else empty + 1
        for item in batch:
            received.setdefault(item.message.message_id, item)
    return list(received.values())


def test_received_messages_carry_pulsars_id_as_text_and_their_handles_ack_them(pulsar_broker, broker_topic):
    client = pulsar.Client(pulsar_broker.url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        producer = client.create_producer(broker_topic, batching_enabled=False)
        sent = {
            f"payload {n}".encode(): producer.send(f"payload {n}".encode(), properties={"em": "aes_gcm", "n": str(n)})
            for n in range(3)
        }
    finally:
        client.close()
    source = _source(pulsar_broker.url, broker_topic)
    source.connect()
    try:
        received = _receive(source, len(sent))
        assert sorted(item.message.payload for item in received) == sorted(sent)
        for item in received:
            message, sent_id = item.message, sent[item.message.payload]
            # the archive's message_id: ledger:entry:partition:batch of the id the broker gave the producer
            expected = f"{sent_id.ledger_id()}:{sent_id.entry_id()}:{sent_id.partition()}:{sent_id.batch_index()}"
            assert message.message_id == expected
            assert message.properties == {"em": "aes_gcm", "n": message.payload.decode().split()[-1]}
            assert message.topic.endswith(broker_topic.removeprefix("persistent://"))
            assert message.publish_time_ms > 0
        source.ack([item.handle for item in received])
    finally:
        source.close()
    source.connect()  # the same subscription again: what was acknowledged does not come back
    try:
        assert _receive(source, 1) == []
    finally:
        source.close()
