"""The Runner with its commits in a writer process: batches in flight, acknowledged as the writer reports them.

Owns the worker's side of the two-process pipeline: prepare a batch (decode, rows), send it to the writer, and go on
receiving while it commits, with at most ``in_flight`` batches unacknowledged; acknowledge each batch once the writer
reported it committed (several at once after a group commit), then count and tell the observers as the Runner does.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from streams.metrics import WorkerMetrics
from streams.pipeline import BatchResult, Pipeline, committed_result
from streams.runner import Runner, Source
from streams.sources.pulsar import Received
from streams.writer.frames import Committed
from streams.writer.process import WriterProcess

__all__ = ["PipelinedRunner"]

log = logging.getLogger(__name__)

_POLL_S = 1.0  # while waiting for the writer: how often the heartbeat and the stop flag are looked at


class PipelinedRunner(Runner):
    def __init__(
        self,
        source: Source,
        pipeline: Pipeline,
        writer: WriterProcess,
        metrics: WorkerMetrics,
        *,
        in_flight: int,
        catalog_generation: Callable[[], int] = lambda: 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(source, pipeline, metrics, **kwargs)
        self._prepare = pipeline.prepare
        self._now = pipeline.now
        self._writer = writer
        self._limit = in_flight
        self._generation = catalog_generation
        # Each batch in flight: its messages' handles for the ack, what its result will say (its messages, rows and
        # records are the writer's now), and when it was sent (monotonic).
        self._in_flight: deque[tuple[list[Any], BatchResult, float]] = deque()

    def stop(self, *args: object) -> None:
        super().stop(*args)
        self._writer.stopping()  # a writer that dies now is not replaced: its batches stay unacknowledged

    def run(self, max_messages: int | None = None, idle_timeout: float | None = None) -> Any:
        self._writer.start()
        try:
            return super().run(max_messages, idle_timeout)
        finally:
            self._writer.close()

    def _handle(self, batch: list[Received]) -> None:
        messages = [received.message for received in batch]
        prepared = self._retried(lambda: self._prepare(messages), len(batch))  # memory short while decoding, say
        if prepared is None:
            return  # stopping: nothing of it acknowledged
        self._writer.write(prepared.rows, prepared.news, prepared.now, self._generation())
        self._in_flight.append(([received.handle for received in batch], prepared.result(None), time.monotonic()))
        self._settle(until=self._limit - 1)

    def _beat(self) -> None:
        """The loop's heartbeat, held back once the writer has kept a batch for longer than /healthz's window (a
        database down, a lock): with fewer batches in flight than the limit the loop goes on turning, and would hide
        it."""
        if not self._in_flight or time.monotonic() - self._in_flight[0][2] < self._metrics.stale_after_s:
            super()._beat()

    def _idle(self) -> None:
        """A quiet stream is told only once the batches in flight are committed: the gap watch must see their push
        times before it takes the quiet for a stream consumed up to now."""
        if not self._in_flight:
            super()._idle()

    def _tick(self) -> None:
        super()._tick()
        self._settle(until=len(self._in_flight))

    def _on_tick(self) -> None:
        self._writer.tick(self._now(), self._generation())

    def _finish(self) -> None:
        for report in self._writer.stop():
            self._acknowledge_report(report)
        if self._in_flight:
            left = sum(len(handles) for handles, _, _ in self._in_flight)
            log.warning("stopping with %d messages not reported committed: leaving them unacknowledged", left)

    def _settle(self, *, until: int) -> None:
        """Acknowledge what the writer committed; wait while more than ``until`` batches are in flight. No heartbeat
        while waiting: a writer stuck (a database down, a lock) for 60 s makes /healthz say so, as one process does
        (and :meth:`_beat` when fewer wait). The oldest unacknowledged message's age is the oldest batch's in flight."""
        for report in self._writer.committed(timeout=0):
            self._acknowledge_report(report)
        while len(self._in_flight) > until and not self._stopping:
            self._metrics.oldest_unacked_age.set(_age_s(self._in_flight[0][1]))
            for report in self._writer.committed(timeout=_POLL_S):
                self._acknowledge_report(report)
        self._metrics.oldest_unacked_age.set(_age_s(self._in_flight[0][1]) if self._in_flight else 0.0)

    def _acknowledge_report(self, report: Committed) -> None:
        done = [self._in_flight.popleft() for _ in range(report.batches)]
        for handles, _, _ in done:
            self._acknowledge(handles)
        self._metrics.commit_seconds.observe(report.seconds)
        self._committed(committed_result([pending for _, pending, _ in done], report.counts))


def _age_s(pending: BatchResult) -> float:
    return max(0.0, time.time() - pending.oldest_push_ms / 1000) if pending.oldest_push_ms else 0.0
