"""The scale-out bridge: Tuya's Pulsar messages, still encrypted, into a Kafka topic keyed by device (or user).

Owns the bridge's batch handler, :class:`KafkaForwarder`, which takes the place of the pipeline in the same
:class:`~streams.runner.Runner` that ``run`` uses (so reconnects, the watchdog, bounded runs and SIGTERM behave
alike): it keys each message by its device id (a user event by its uid), produces the batch with ``acks=all`` and
returns only once Kafka acknowledged every record; the Runner acknowledges Tuya after that. A crash anywhere leaves
the batch unacknowledged in Pulsar, which redelivers it: Kafka may then hold a record twice, and the processors'
idempotent store makes that harmless.

Keying: Tuya's topic has no documented partition key (SPEC.md §1.2, U6), and the device id is inside the encrypted
payload, so the bridge decrypts just enough to read it (:class:`SubjectKeyer`): about 6 µs a message, against 13 µs
for a full payload parse and about 130 µs of CPU the bridge spends per message in all (tests/bench/scale.py). A
message it cannot open is keyed by its message id and still forwarded: the processor dead-letters it.
Imports aiokafka; never imports SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

from models.records import PulsarMessage
from streams.errors import TransientError
from streams.pipeline import BatchResult
from streams.sources.kafka import KafkaRecord, record_from_message
from streams.tuya.crypto import Cipherbox
from streams.tuya.envelope import GCM
from streams.tuya.normalize import device_id_of, user_id_of

__all__ = ["KafkaForwarder", "KafkaWriter", "SubjectKeyer"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_REQUEST_TIMEOUT_MS = 30_000


class _Envelope(msgspec.Struct):
    data: Any = None
    encryptPayload: Any = None  # the Smart Business Platform's name for ``data`` (SPEC.md §2.1)


class _SubjectFields(msgspec.Struct):
    devId: Any = None
    uid: Any = None
    bizData: Any = None


class SubjectKeyer:
    """Finds whom an encrypted Tuya message is about: its device id, else a user event's uid (one user's events keep
    their order and go to one processor, as a device's do); None when the message cannot be opened or names neither.

    Reads only what the key needs: the envelope's ``data``, the cipher chosen by ``em`` as the decoder chooses it,
    and ``devId`` or ``uid`` (top level or in ``bizData``, where :func:`~streams.tuya.normalize.device_id_of` and
    :func:`~streams.tuya.normalize.user_id_of` look for them); the rest of the payload is skipped by msgspec, not
    parsed. Not thread-safe (the ECB context is stateful).
    """

    def __init__(self, access_key: str) -> None:
        self._box = Cipherbox(access_key)
        self._envelope = msgspec.json.Decoder(_Envelope)
        self._fields = msgspec.json.Decoder(_SubjectFields)

    def key(self, message: PulsarMessage) -> str | None:
        try:
            envelope = self._envelope.decode(message.payload)
            data = envelope.data if isinstance(envelope.data, str) else envelope.encryptPayload
            if not isinstance(data, str):
                return None
            blob = binascii.a2b_base64(data, strict_mode=True)
            gcm = message.properties.get("em") == GCM
            plaintext = self._box.decrypt_gcm(blob) if gcm else self._box.decrypt_ecb(blob)
            fields = self._fields.decode(plaintext)
        except MemoryError as exc:  # the machine's: keyed by its id instead, it would lose its device's order
            raise TransientError(f"out of memory reading the key of message {message.message_id}") from exc
        except Exception:  # whatever stops the key (nesting too deep for msgspec, say): the message is keyed by its
            return None  # id and forwarded for the processor to dead-letter, never left to stall the bridge
        found = {"devId": fields.devId, "uid": fields.uid, "bizData": fields.bizData}
        return device_id_of(found) or user_id_of(found)


class KafkaWriter:
    """An aiokafka producer (``acks=all``) on an event loop of its own thread, driven from synchronous code.

    The producer starts on first use and is rebuilt after a failure, so a Kafka that is down at start or goes
    away later makes :meth:`send_all` raise TransientError (the Runner retries the batch with backoff) instead of
    stopping the bridge. The topic is created with ``partitions`` partitions when it does not exist.

    Batching stays on (aiokafka's 16 KiB batches): Tansu's wrong high watermark with batched produce only affects
    ``end_offsets`` (ListOffsets), which faust reads to recover Tables; the processors have none, and fetching is
    exact (Tansu's known bug; measured in tests/bench/scale.py: 64-byte batches cap the bridge near 2k msg/s).
    """

    def __init__(self, bootstrap: str, topic: str, *, partitions: int) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._partitions = partitions
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kafka-producer", daemon=True)
        self._thread.start()

    def send_all(self, records: Sequence[KafkaRecord]) -> None:
        """Produce ``records`` and wait until Kafka acknowledged each one. Raises TransientError."""
        try:
            self._call(self._send_all(records), timeout=_REQUEST_TIMEOUT_MS / 1000 * 2 + 10)
        except (KafkaError, OSError, concurrent.futures.TimeoutError) as exc:
            self._call(self._discard_producer(), timeout=_REQUEST_TIMEOUT_MS / 1000)
            raise TransientError(f"Kafka did not acknowledge the batch: {exc!r}", retry_after=1.0) from exc

    def close(self) -> None:
        """Flush and stop the producer, then the loop thread."""
        try:
            self._call(self._discard_producer(), timeout=_REQUEST_TIMEOUT_MS / 1000)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def _call(self, coro: Awaitable[T], *, timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    async def _send_all(self, records: Sequence[KafkaRecord]) -> None:
        # One batch per partition through send_batch(): half the CPU of a send() per record (tests/bench/scale.py),
        # with the partition chosen as send() would choose it (murmur2 of the key), so placement is the same.
        producer = self._producer or await self._start()
        partitions = sorted(await producer.partitions_for(self._topic))
        batches: dict[int, Any] = {}
        sent = []
        for record in records:
            partition = self._partitioner(record.key, partitions, partitions)
            batch = batches.get(partition) or batches.setdefault(partition, producer.create_batch())
            if batch.append(key=record.key, value=record.value, timestamp=None, headers=record.headers) is None:
                sent.append(await producer.send_batch(batch, self._topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=record.key, value=record.value, timestamp=None, headers=record.headers)
        for partition, batch in batches.items():
            sent.append(await producer.send_batch(batch, self._topic, partition=partition))
        await asyncio.gather(*sent)

    async def _start(self) -> AIOKafkaProducer:
        await self._ensure_topic()
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", request_timeout_ms=_REQUEST_TIMEOUT_MS
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        log.info("producing to kafka topic=%s bootstrap=%s", self._topic, self._bootstrap)
        self._producer = producer
        return producer

    async def _ensure_topic(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, request_timeout_ms=_REQUEST_TIMEOUT_MS)
        await admin.start()
        try:
            response = await admin.create_topics([NewTopic(self._topic, self._partitions, 1)])
        except TopicAlreadyExistsError:
            return
        finally:
            await admin.close()
        # aiokafka returns the topic's error in the answer, not as an exception: (topic, code[, message]).
        code = next((error[1] for error in response.topic_errors if error[0] == self._topic), 0)
        if code == 0:
            log.info("created kafka topic %s with %d partitions", self._topic, self._partitions)
        elif code != TopicAlreadyExistsError.errno:
            log.warning("kafka topic %s not created (Kafka error %d): producing to it as it is", self._topic, code)

    async def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:  # stopping a producer whose broker is gone fails; the next start is clean
                log.debug("ignoring error while stopping the producer: %r", exc)


class KafkaForwarder:
    """The bridge's batch handler for :class:`~streams.runner.Runner`: key, produce, return once Kafka acked."""

    #: The Runner reports this gauge; the bridge checks no signatures (the processors do).
    sign_mismatches = 0

    def __init__(self, writer: KafkaWriter, keyer: SubjectKeyer) -> None:
        self._writer = writer
        self._keyer = keyer

    def handle(self, messages: Sequence[PulsarMessage]) -> BatchResult:
        """Forward the batch; raises TransientError while Kafka does not acknowledge it (nothing may be acked)."""
        key = self._keyer.key
        records = [record_from_message(message, key(message)) for message in messages]
        self._writer.send_all(records)
        published = [m.publish_time_ms for m in messages if m.publish_time_ms]
        return BatchResult(len(messages), len(messages), {}, min(published) if published else None, None)

    def tick(self) -> None:
        """The Runner's clock tick: rule timers are the processors' business, the bridge has none."""
