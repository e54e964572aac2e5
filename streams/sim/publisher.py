"""Publish simulated messages to a Pulsar-protocol broker, checking every send's result.

Owns the producer settings that keep a fast publisher lossless (measured: with pulsar-client's defaults,
``send_async`` drops every message past 1,000 pending with a ``ProducerQueueIsFull`` result that is easy to ignore;
so the queue blocks instead, is larger, and every callback's result is counted), the partition key (the device id,
so a device stays on one partition, as SPEC.md §7.1 assumes for per-device order), rate limiting and the report.
Imports pulsar-client; no worker code.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pulsar

from streams.sim.fleet import SimMessage

__all__ = ["PublishReport", "publish"]

_SEND_TIMEOUT_MS = 30_000


@dataclass(frozen=True, slots=True)
class PublishReport:
    """The outcome of one :func:`publish`: ``count`` messages acknowledged by the broker, ``failed`` not."""

    count: int
    failed: int
    seconds: float
    errors: dict[str, int] = field(default_factory=dict)  # pulsar result name → messages that failed with it

    @property
    def rate(self) -> float:
        """Acknowledged messages per second."""
        return self.count / self.seconds if self.seconds > 0 else 0.0


class _Tally:
    """The send callback: counts each result; ``wait`` returns once every sent message has one."""

    def __init__(self) -> None:
        self._done = threading.Condition()
        self.ok = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()

    def __call__(self, result: Any, _message_id: Any) -> None:
        # Runs on the client's I/O thread.
        with self._done:
            if result == pulsar.Result.Ok:
                self.ok += 1
            else:
                self.failed += 1
                self.errors[str(result)] += 1
            self._done.notify_all()

    def wait(self, sent: int, timeout: float) -> None:
        with self._done:
            if not self._done.wait_for(lambda: self.ok + self.failed >= sent, timeout):
                missing = sent - self.ok - self.failed
                self.failed += missing
                self.errors["NoCallback"] += missing


def publish(
    url: str,
    topic: str,
    messages: Iterable[SimMessage],
    *,
    rate: float | None = None,
    batching: bool = True,
    max_pending: int = 10_000,
) -> PublishReport:
    """Send ``messages`` to ``topic`` with one producer; at most ``rate`` messages per second when given.

    Returns once every message has been acknowledged or has failed; ``seconds`` covers sending and draining.
    """
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (or None for as fast as possible)")
    client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn), operation_timeout_seconds=30)
    try:
        producer = client.create_producer(
            topic,
            block_if_queue_full=True,
            max_pending_messages=max_pending,
            batching_enabled=batching,
            batching_max_messages=1000,
            batching_max_publish_delay_ms=10,
            send_timeout_millis=_SEND_TIMEOUT_MS,
        )
        tally = _Tally()
        start = time.perf_counter()
        sent = _send_all(producer, messages, tally, rate, start)
        producer.flush()
        tally.wait(sent, timeout=_SEND_TIMEOUT_MS / 1000 + 5)
        seconds = time.perf_counter() - start
        producer.close()
    finally:
        client.close()
    return PublishReport(count=tally.ok, failed=tally.failed, seconds=seconds, errors=dict(tally.errors))


def _send_all(producer: Any, messages: Iterable[SimMessage], tally: _Tally, rate: float | None, start: float) -> int:
    sent = 0
    for message in messages:
        if rate is not None:
            delay = start + sent / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        producer.send_async(message.payload, tally, properties=message.properties, partition_key=message.device_id)
        sent += 1
    return sent
