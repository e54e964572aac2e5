"""The scale-out processor: a faust-streaming app whose one agent feeds the bridge's Kafka topic to the pipeline.

Owns the Kafka runtime only (STYLE.md P2): batches of events in, :meth:`~streams.pipeline.Pipeline.handle` (the
same object the single-process worker calls) in a thread, offsets acknowledged only after it returned, that is
after the batch committed. Kafka's consumer group gives each processor whole partitions; the bridge keys by device
id, so every message of a device, and the rule state that depends on their order, stays with one processor.

Acknowledgement: the agent iterates ``stream.noack_take(n, within=s)``, which never acknowledges by itself (plain
``take()`` acknowledges a batch in a ``finally``, so a cancelled or failed batch would be committed unprocessed). A
batch whose commit raises TransientError is retried in place with backoff and nothing is acknowledged meanwhile;
any other error crashes the worker (CrashingSupervisor) without acknowledging, as the single-process runner does,
and Kafka redelivers the batch to whoever owns the partitions next. Duplicates are harmless: storage is idempotent.

A timer calls :meth:`~streams.pipeline.Pipeline.tick` as the runner does (rule timers that expire between messages);
a lock keeps it and the batches from using the pipeline at the same time. As the runner's, the ticks wait after a
start or a rebalance until the processor has read its partitions' backlog (a take shorter than a full batch, or none
for a tick's interval), which may hold the value that cancels a timer. Each processor's ticks act only for the
devices and users whose messages its partitions receive (:class:`OwnedSubjects`): another's may still be in the
backlog of the processor that owns it. A command a tick fires is keyed like any other, so two processors holding a
subject for a moment in a rebalance still write it once.

No work at import: :func:`build_app` makes the app from :class:`ProcessorOptions`. Imports faust; never SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from mode import CrashingSupervisor

from models.records import PulsarMessage
from streams.backoff import Backoff
from streams.errors import RowsRejected, TransientError
from streams.metrics import WorkerMetrics
from streams.pipeline import BatchResult, Pipeline
from streams.runner import live
from streams.sources.kafka import DEFAULT_PARTITIONS, DEFAULT_TOPIC, bootstrap_servers, message_from_record

__all__ = [
    "BatchCommitter",
    "OwnedSubjects",
    "ProcessorOptions",
    "RunBounds",
    "build_app",
    "message_from_event",
    "run_worker",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessorOptions:
    """How a processor reaches Kafka and batches its work. ``group`` is faust's app id and the consumer group."""

    kafka_url: str
    data_dir: Path
    topic: str = DEFAULT_TOPIC
    partitions: int = DEFAULT_PARTITIONS
    group: str = "tuya-archiver"
    batch_size: int = 1000
    batch_timeout_s: float = 0.2
    web_port: int = 6066
    session_timeout_s: float = 10.0
    tick_interval_s: float = 5.0


class RunBounds:
    """When a bounded run ends: ``max_messages`` handled, or nothing arrived for ``idle_timeout`` seconds. Time with a
    batch in hand (retried while the database is down) or spent joining the consumer group is not idleness."""

    def __init__(
        self,
        max_messages: int | None = None,
        idle_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_messages
        self._idle = idle_timeout
        self._clock = clock
        self._handled = 0
        self._busy = False
        self._last_arrival = clock()
        self._joined = False  # idleness counts once partitions were assigned
        self._ended = False

    def room(self, arrived: int) -> int:
        """How many of ``arrived`` messages the run may still handle (the rest stay unacknowledged for the next)."""
        return arrived if self._max is None else max(0, min(arrived, self._max - self._handled))

    def begin(self) -> None:
        """A batch arrived: the run is busy until :meth:`count`."""
        self._busy = True
        self._last_arrival = self._clock()

    def count(self, handled: int) -> None:
        self._handled += handled
        self._busy = False
        self._last_arrival = self._clock()

    def joined(self) -> None:
        """Partitions were assigned: idleness is counted from now."""
        self._joined = True
        self._last_arrival = self._clock()

    def reached(self) -> str | None:
        """Why the run should end now, or None."""
        if self._max is not None and self._handled >= self._max:
            return f"handled {self._handled} messages"
        idle = self._clock() - self._last_arrival
        if self._idle is not None and self._joined and not self._busy and idle >= self._idle:
            return f"nothing arrived for {idle:.1f} s"
        return None

    def end_if_reached(self) -> None:
        """SIGTERM this process once, when a bound is reached: the worker's own graceful stop, as an operator's."""
        reason = self.reached()
        if reason is not None and not self._ended:
            self._ended = True
            log.info("%s: ending the bounded run", reason)
            os.kill(os.getpid(), signal.SIGTERM)


class OwnedSubjects:
    """Whether a device or user is this processor's: the bridge keys its messages by its id (streams.bridge), and its
    producer places a key as Kafka's default partitioner does (murmur2 of the key's bytes, among the topic's
    partitions). ``place`` does the same: faust's ``Consumer.key_partition``, from the topic's metadata as the broker
    gave it (not the ``--partitions`` of a topic made elsewhere). The subject is ours when that partition is one of
    ``partitions``, those assigned to us."""

    def __init__(self, partitions: Iterable[int], place: Callable[[bytes], int | None]) -> None:
        self._partitions = frozenset(partitions)
        self._place = place
        self._placed: dict[str, bool] = {}  # a tick asks for every device with a rule state: each hashed once

    def __call__(self, subject: str) -> bool:
        owned = self._placed.get(subject)
        if owned is None:
            partition = self._place(subject.encode())
            if partition is None:  # the topic's metadata is missing for a moment: not ours now, asked again later
                return False
            owned = self._placed[subject] = partition in self._partitions
        return owned


class BatchCommitter:
    """Runs the pipeline on a batch in a worker thread until it committed; retries TransientError with backoff.
    Ticks the rules' clock once the processor has read its backlog (:meth:`behind`, :meth:`took`), for the subjects
    its partitions receive."""

    def __init__(
        self,
        pipeline: Pipeline,
        metrics: WorkerMetrics,
        *,
        quiet_s: float = 5.0,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._sleep = sleep
        self._clock = clock
        self._lock = asyncio.Lock()  # the pipeline is not thread-safe: one batch or tick at a time
        self._retrying = False  # a batch waits for the database: the processor is not turning
        self._quiet = quiet_s  # no take for this long (a tick's interval) since joining: no backlog waits
        self._caught_up = False
        self._assignment = 0
        self._since = clock()
        self._owns = OwnedSubjects((), lambda _key: None)  # nothing before partitions are assigned

    def behind(self, owns: OwnedSubjects) -> None:
        """Partitions were assigned (a start, a rebalance), whose subjects ``owns`` tells: their backlog is to be read
        before the clock ticks."""
        self._caught_up = False
        self._assignment += 1
        self._since = self._clock()
        self._owns = owns

    @property
    def assignment(self) -> int:
        """How many times partitions were assigned: a take counts for the assignment it was taken in."""
        return self._assignment

    def took(self, *, read_up: bool, assignment: int) -> None:
        """A take was handled, taken in ``assignment``; ``read_up``: it read the backlog (a take short of a full
        batch, or of messages published just now: a busy stream gives only full takes). A take of an earlier
        assignment, committed after a rebalance, says nothing of the partitions assigned since."""
        if assignment != self._assignment:
            return
        self._since = self._clock()
        if read_up:
            self._caught_up = True

    def heartbeat(self) -> None:
        """The event loop is alive (``/healthz``); called by a timer, since an idle stream yields nothing. Not while a
        batch is retried: a database down for 60 s makes /healthz say so, as the single worker's does."""
        if not self._retrying:
            self._metrics.heartbeat()

    async def commit(self, messages: Sequence[PulsarMessage]) -> BatchResult:
        """Return once ``messages`` are committed; meanwhile retry TransientError (nothing is acknowledged)."""
        backoff = Backoff()
        oldest_publish_ms = min((message.publish_time_ms for message in messages), default=0)
        while True:
            if oldest_publish_ms:  # as the single worker's: how long its oldest message has waited (Tuya keeps 2 h)
                self._metrics.oldest_unacked_age.set(max(0.0, time.time() - oldest_publish_ms / 1000))
            started = time.perf_counter()
            try:
                async with self._lock:
                    result = await asyncio.to_thread(self._pipeline.handle, messages)
            except TransientError as exc:
                self._retrying = True
                delay = max(backoff.next_delay(), exc.retry_after)
                log.warning("%s: nothing acknowledged, retrying the batch of %d in %.0f s", exc, len(messages), delay)
                await self._sleep(delay)
                continue
            self._retrying = False
            self._metrics.commit_seconds.observe(time.perf_counter() - started)
            self._count(result)
            return result

    async def tick(self) -> None:
        """Let the rules fire what came due between messages, once the backlog was read; a failure waits for the
        next tick."""
        if not self._caught_up:
            if self._retrying or self._clock() - self._since < self._quiet:
                return
            self._caught_up = True  # nothing was taken for a while: nothing is waiting
        try:
            async with self._lock:
                await asyncio.to_thread(self._pipeline.tick, self._owns)
        except (TransientError, RowsRejected) as exc:
            log.warning("clock tick skipped: %s", exc)

    def _count(self, result: BatchResult) -> None:
        lag = self._metrics.record_batch(result, self._pipeline.sign_mismatches)
        log.info(
            "batch received=%d stored=%d duplicates=%d dead_letters=%d lag_s=%.1f",
            result.received, result.stored, result.duplicates, result.dead, lag,
        )  # fmt: skip


def message_from_event(event: Any) -> PulsarMessage:
    """The PulsarMessage a faust event carries (see streams.sources.kafka for the record format)."""
    message = event.message
    return message_from_record(
        event.value,
        message.headers or (),
        fallback_id=f"kafka:{message.topic}:{message.partition}:{message.offset}",
        fallback_topic=message.topic,
    )


def build_app(options: ProcessorOptions, committer: BatchCommitter, bounds: RunBounds) -> faust.App:
    """The faust app: one agent on the bridge's topic, a timer for the rules' clock and one that ends bounded runs."""
    app = _app(options)
    topic = app.topic(
        options.topic,
        partitions=options.partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,  # faust creates it (with ``partitions``) before subscribing, else the broker's default count
    )

    @app.agent(topic, name="tuya-archiver.process", supervisor_strategy=CrashingSupervisor)
    async def process(stream: faust.StreamT) -> None:
        async for taken in stream.noack_take(options.batch_size, within=options.batch_timeout_s):
            assignment = committer.assignment
            events = taken[: bounds.room(len(taken))]  # a bounded run handles no more than it may
            bounds.begin()
            messages = [message_from_event(event) for event in events]
            if events:
                await committer.commit(messages)
                for event in events:
                    await stream.ack(event)
            bounds.count(len(events))
            committer.took(read_up=len(taken) < options.batch_size or live(messages), assignment=assignment)
            bounds.end_if_reached()

    @app.on_partitions_assigned.connect
    async def joined(_app: faust.App, assigned: Any, **_kwargs: Any) -> None:
        ours = sorted(tp.partition for tp in assigned if tp.topic == options.topic)
        log.info("partitions %s assigned: the rules' clock ticks for their devices and users", ours)
        bounds.joined()
        committer.behind(OwnedSubjects(ours, functools.partial(_key_partition, app, options.topic)))

    @app.timer(interval=options.tick_interval_s, name="tuya-archiver.tick")
    async def tick() -> None:
        await committer.tick()

    @app.timer(interval=0.5, name="tuya-archiver.bounds")
    async def end_bounded_run() -> None:
        committer.heartbeat()
        bounds.end_if_reached()

    return app


def _key_partition(app: faust.App, topic: str, key: bytes) -> int | None:
    """Where Kafka places ``key`` in ``topic``; None while the consumer cannot say (its metadata, or a stop)."""
    try:
        return app.consumer.key_partition(topic, key)
    except ConsumerNotStarted:
        return None


def _app(options: ProcessorOptions) -> faust.App:
    return faust.App(
        options.group,
        broker=[f"kafka://{server}" for server in bootstrap_servers(options.kafka_url).split(",")],
        store="memory://",  # no Tables: rule state is in SQL, written in the batch's transaction
        autodiscover=False,
        datadir=str(options.data_dir),
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
        web_port=options.web_port,
        topic_partitions=options.partitions,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_max_batch_size=64,  # Tansu's high-watermark bug (harmless here: nothing produced)
        broker_session_timeout=options.session_timeout_s,
        broker_heartbeat_interval=max(1.0, options.session_timeout_s / 10),
        # A stop or a rebalance does not wait for the batch in hand (retried while the database is down, or beyond
        # a bounded run's messages): it is not acknowledged, and whoever reads it next stores it once.
        stream_wait_empty=False,
    )


def run_worker(app: faust.App, *, loglevel: str = "info") -> int:
    """Run the faust worker in this process until SIGTERM/SIGINT or a crash; returns the exit status."""
    worker = faust.Worker(app, loglevel=loglevel, override_logging=False, redirect_stdouts=False, quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
