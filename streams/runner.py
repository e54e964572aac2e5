"""The single-process runtime: receive a batch, hand it to the pipeline, acknowledge only after it committed.

Owns the loop and its policies: reconnect with exponential backoff (1 s → 60 s) after broker loss, the idle
watchdog, retrying a batch while the database is down (acking nothing), graceful stop on SIGTERM/SIGINT, bounded
runs (``max_messages``, ``idle_timeout``), one INFO line per batch and the metrics. It holds no business logic: that
is :class:`~streams.pipeline.Pipeline`'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from streams.backoff import Backoff, nap
from streams.clock import utcnow
from streams.errors import RowsRejected, TransientError
from streams.pipeline import BatchResult, Pipeline
from streams.urls import hide_password

if TYPE_CHECKING:
    from models.records import PulsarMessage
    from streams.metrics import WorkerMetrics
    from streams.sources.pulsar import Received

__all__ = ["LIVE_S", "Observer", "RunSummary", "Runner", "Source", "live"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class Source(Protocol):
    def connect(self) -> None: ...
    def receive_batch(self) -> list[Received]: ...
    def ack(self, handles: Sequence[Any]) -> None: ...
    def close(self) -> None: ...


class Observer(Protocol):
    """What follows consumption beside the pipeline (the background sync, the gap watch): told of every connect to
    the broker, every committed batch and every empty receive while no batch waits to be committed (the stream is
    quiet, the worker is consuming, and every message received so far is stored). It must not raise."""

    def on_connected(self) -> None: ...
    def on_committed(self, result: BatchResult) -> None: ...
    def on_idle(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RunSummary:
    received: int
    stored: int
    dead_letters: int
    batches: int
    seconds: float
    #: A bounded run ended because the broker could not be reached for its idle timeout.
    unreachable: bool = False


#: How recently the newest message of a batch was published for the batch to be live: the backlog is read.
LIVE_S = 5.0


def live(messages: Sequence[PulsarMessage]) -> bool:
    """Whether the newest of ``messages`` was published within :data:`LIVE_S` of now (Pulsar's publish time)."""
    newest = max((message.publish_time_ms for message in messages), default=0)
    return newest > 0 and time.time() - newest / 1000 < LIVE_S


class Runner:
    def __init__(
        self,
        source: Source,
        pipeline: Pipeline,
        metrics: WorkerMetrics,
        *,
        idle_reconnect_s: float = 600.0,
        tick_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
        observers: Sequence[Observer] = (),
        full_batch: int | None = None,
        wall_clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._source = source
        self._wall = wall_clock  # when a batch was received (BatchResult.received_at)
        # After each connect, the clock's rules wait until a receive gives less than ``full_batch`` messages, or
        # messages published just now (the backlog is read; a busy stream may give only full batches): a message
        # waiting in it may cancel a timer that came due while the worker was away.
        self._full_batch = full_batch
        self._caught_up = False
        self._observers = tuple(observers)
        self._pipeline = pipeline
        self._metrics = metrics
        self._idle_reconnect = idle_reconnect_s
        self._tick_interval = tick_interval_s
        self._next_tick = 0.0
        self._clock = clock
        self._sleep = sleep or self._nap
        self._stopping = False
        self._received = self._stored = self._dead = self._batches = 0
        self._taken = 0  # messages handed on to be committed (the bound of ``max_messages``)
        self._patience: float | None = None  # a bounded run's idle timeout: how long to try to reach the broker
        self._unreachable = False

    def stop(self, *_: object) -> None:
        """Stop intake; the batch in hand is still committed and acknowledged. Safe to call from a signal handler."""
        if not self._stopping:
            log.info("stop requested: finishing the batch in hand")
        self._stopping = True

    def run(self, max_messages: int | None = None, idle_timeout: float | None = None) -> RunSummary:
        """Consume until stopped, or until ``max_messages`` were handled, or nothing came for ``idle_timeout`` s
        (the broker unreachable for that long included)."""
        started = self._clock()
        self._patience = idle_timeout
        self._connect(reason="start")
        last_arrival = watched_since = self._clock()
        try:
            while not self._stopping:
                self._beat()
                self._tick()
                if max_messages is not None and self._taken >= max_messages:
                    break
                batch = self._receive()
                if batch is None:
                    continue
                if not self._caught_up and (
                    self._full_batch is None or len(batch) < self._full_batch or live([r.message for r in batch])
                ):
                    self._caught_up = True
                if not batch:
                    self._idle()
                    idle = self._clock() - last_arrival
                    if idle_timeout is not None and idle >= idle_timeout:
                        log.info("nothing arrived for %.1f s: ending the bounded run", idle)
                        break
                    if self._clock() - watched_since >= self._idle_reconnect:
                        log.warning("watchdog: nothing arrived for %.0f s, reconnecting", idle)
                        self._connect(reason="watchdog")
                        watched_since = self._clock()
                    continue
                last_arrival = watched_since = self._clock()
                if max_messages is not None:
                    # The rest stays unacknowledged and is redelivered to the next consumer.
                    batch = batch[: max_messages - self._taken]
                self._taken += len(batch)
                self._handle(batch)
            self._finish()
        finally:
            self._source.close()
        summary = RunSummary(
            self._received, self._stored, self._dead, self._batches, self._clock() - started, self._unreachable
        )
        log.info(
            "stopped received=%d stored=%d dead_letters=%d batches=%d seconds=%.1f",
            summary.received, summary.stored, summary.dead_letters, summary.batches, summary.seconds,
        )  # fmt: skip
        return summary

    def _beat(self) -> None:
        """Each turn of the loop: /healthz says the worker is alive."""
        self._metrics.heartbeat()

    def _idle(self) -> None:
        """An empty receive, every batch committed: the observers are told the stream is quiet."""
        self._tell_observers(lambda observer: observer.on_idle())

    def _tick(self) -> None:
        """Every ``tick_interval_s`` once the backlog is read: timers that expire between messages (a failure waits
        for the next tick)."""
        if not self._caught_up or self._clock() < self._next_tick:
            return
        self._next_tick = self._clock() + self._tick_interval
        self._on_tick()

    def _on_tick(self) -> None:
        try:
            self._pipeline.tick()
        except (TransientError, RowsRejected) as exc:
            log.warning("clock tick skipped: %s", exc)

    def _finish(self) -> None:
        """After the loop, before the source closes: nothing to do when every batch was committed in turn."""

    def _connect(self, *, reason: str) -> None:
        """Connect, retrying with backoff until it works, the run is stopped, or a bounded run's idle timeout passed
        without a broker (the run then ends as stopped)."""
        backoff = Backoff()
        since = self._clock()
        while True:
            try:
                self._source.connect()
                self._metrics.reconnects.labels(reason=reason).inc()
                self._caught_up = False
                self._tell_observers(lambda observer: observer.on_connected())
                return
            except Exception as exc:
                if self._stopping:
                    return
                if self._patience is not None and self._clock() - since >= self._patience:
                    reason, patience = hide_password(str(exc)), self._patience
                    log.warning("cannot reach the broker (%s) for %.0f s: ending the bounded run", reason, patience)
                    self._stopping = self._unreachable = True
                    return
                delay = backoff.next_delay()
                if self._patience is not None:  # a bounded run: a last try when its idle timeout is up
                    delay = min(delay, since + self._patience - self._clock())
                log.warning("cannot reach the broker (%s): retrying in %.0f s", hide_password(str(exc)), delay)
                self._sleep(delay)
                if self._stopping:
                    return

    def _nap(self, seconds: float) -> None:
        """The default sleep: ``seconds``, or less if the run is stopped meanwhile."""
        nap(seconds, lambda: self._stopping)

    def _receive(self) -> list[Received] | None:
        """A batch (maybe empty); None after a broker error, once reconnected."""
        try:
            return self._source.receive_batch()
        except Exception as exc:
            log.warning("receive failed (%s): reconnecting", exc)
            self._connect(reason="broker_error")
            return None

    def _handle(self, batch: list[Received]) -> None:
        oldest_publish = min((r.message.publish_time_ms for r in batch), default=0)
        received_at = self._wall()
        result = self._commit(batch, oldest_publish)
        if result is None:
            return  # stopping while the database is down: nothing acknowledged, all will be redelivered
        result = replace(result, received_at=received_at)  # not when a retry that waited for the database made it
        self._acknowledge([received.handle for received in batch])
        self._committed(result)

    def _acknowledge(self, handles: Sequence[Any]) -> None:
        try:
            self._source.ack(handles)
        except Exception as exc:  # committed but not acked: redelivery is harmless, the store is idempotent
            log.warning("ack failed after commit (%s): the batch will be redelivered and ignored", exc)
            self._connect(reason="ack_error")

    def _committed(self, result: BatchResult) -> None:
        self._count(result)
        self._tell_observers(lambda observer: observer.on_committed(result))

    def _tell_observers(self, tell: Callable[[Observer], None]) -> None:
        for observer in self._observers:
            try:
                tell(observer)
            except Exception:  # an observer's bug must not stop archiving
                log.exception("%s failed: archiving goes on", type(observer).__name__)

    def _commit(self, batch: list[Received], oldest_publish_ms: int) -> BatchResult | None:
        messages = [r.message for r in batch]

        def attempt() -> BatchResult:
            if oldest_publish_ms:
                self._metrics.oldest_unacked_age.set(max(0.0, time.time() - oldest_publish_ms / 1000))
            started = time.perf_counter()
            result = self._pipeline.handle(messages)
            self._metrics.commit_seconds.observe(time.perf_counter() - started)
            return result

        return self._retried(attempt, len(batch))

    def _retried(self, attempt: Callable[[], _T], count: int) -> _T | None:
        """``attempt()`` again, with backoff, while it raises TransientError (the database down, memory short); None
        when the run is stopped meanwhile: nothing of the batch of ``count`` messages is acknowledged."""
        backoff = Backoff()
        while True:
            try:
                return attempt()
            except TransientError as exc:
                if not self._stopping:
                    delay = max(backoff.next_delay(), exc.retry_after)
                    log.warning("%s: nothing acknowledged, retrying the batch of %d in %.0f s", exc, count, delay)
                    self._sleep(delay)
                if self._stopping:
                    log.warning("stopping while %s: leaving %d messages unacknowledged", exc, count)
                    return None

    def _count(self, result: BatchResult) -> None:
        lag = self._metrics.record_batch(result, self._pipeline.sign_mismatches)
        self._received += result.received
        self._stored += result.stored
        self._dead += result.dead
        self._batches += 1
        log.info(
            "batch received=%d stored=%d duplicates=%d dead_letters=%d lag_s=%.1f",
            result.received, result.stored, result.duplicates, result.dead, lag,
        )  # fmt: skip
