"""The worker's watch for gaps: when it last consumed, and whether a pause of consumption lost messages.

Owns the consumption time in memory (every commit, and every empty receive of a quiet stream) and in the archive
(``consumers``, at most every ``heartbeat_s``), so a worker that starts again knows when the last one stopped.
After a pause longer than Tuya keeps messages (streams.backfill.gaps), it records a gap, logs a warning, counts it
(``tuya_gaps_detected``, ``tuya_gaps_open``) and tells ``on_gap`` (the background backfill). Errors here are
logged and never reach the runner: watching must not stop archiving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from streams.backfill.gaps import Stretch, lost_stretch
from streams.clock import utcnow
from streams.durations import format_duration
from streams.metrics import WorkerMetrics
from streams.pipeline import BatchResult
from streams.store import backfill
from streams.store.engine import WRITE_LOCK
from streams.tuya.normalize import utc

__all__ = ["GapWatcher"]

log = logging.getLogger(__name__)


class GapWatcher:
    """``start()`` once, then ``on_committed`` for every committed batch and ``on_idle`` for every empty receive."""

    def __init__(
        self,
        engine: Engine,
        subscription: str,
        metrics: WorkerMetrics,
        *,
        retention: timedelta,
        margin: timedelta,
        on_gap: Callable[[int], None] = lambda _gap_id: None,
        heartbeat_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._subscription = subscription
        self._metrics = metrics
        self._retention = retention
        self._margin = margin
        self._on_gap = on_gap
        self._heartbeat = timedelta(seconds=heartbeat_s)
        self._clock = clock
        self._consumed: datetime | None = None
        self._pushed: datetime | None = None
        self._saved: datetime | None = None

    def start(self) -> None:
        """Read when the worker last consumed (before this process), and how many gaps are still open."""
        with self._engine.connect() as connection:
            self._consumed = backfill.consumed_at(connection, self._subscription)
            self._metrics.gaps_open.set(len(backfill.open_gaps(connection)))

    def close(self) -> None:
        """Save the last consumption time, so that a restart measures its pause from it."""
        if self._consumed is not None:
            try:
                self._save(self._consumed)
            except Exception as exc:
                log.warning("could not save when the worker last consumed (%s)", exc)

    def on_committed(self, result: BatchResult) -> None:
        oldest = utc(result.oldest_push_ms) if result.oldest_push_ms else None
        if result.newest_push_ms:
            newest = utc(result.newest_push_ms)
            self._pushed = newest if self._pushed is None else max(self._pushed, newest)
        self._consuming(oldest)

    def on_idle(self) -> None:
        self._consuming(None)

    def _consuming(self, oldest_pushed: datetime | None) -> None:
        now = self._clock()
        try:
            stretch = lost_stretch(self._consumed, now, oldest_pushed, retention=self._retention, margin=self._margin)
            if stretch is not None:
                self._record(stretch, now)
            self._consumed = now
            if self._saved is None or now - self._saved >= self._heartbeat:
                self._save(now)
        except Exception as exc:  # never the runner's problem: the next batch tries again
            log.warning("gap watch failed (%s): archiving goes on", exc)

    def _save(self, now: datetime) -> None:
        with self._engine.connect() as connection:
            connection.execution_options(**{WRITE_LOCK: True})
            with connection.begin():
                backfill.save_consumed(connection, self._subscription, now, self._pushed)
        self._saved = now

    def _record(self, stretch: Stretch, now: datetime) -> None:
        with self._engine.connect() as connection:
            connection.execution_options(**{WRITE_LOCK: True})
            with connection.begin():
                gap_id = backfill.record_gap(connection, stretch.started_at, stretch.ended_at, now, origin="detected")
                opened = len(backfill.open_gaps(connection))
        self._metrics.gaps_detected.inc()
        self._metrics.gaps_open.set(opened)
        log.warning(
            "gap %d in the stream: nothing was consumed from %s to %s (%s), and Tuya deletes what nobody "
            "acknowledged within %s: backfilling it from the device logs (tuya-archiver gaps, tuya-archiver "
            "backfill --gap %d)",
            gap_id, stretch.started_at.isoformat(timespec="seconds"), stretch.ended_at.isoformat(timespec="seconds"),
            format_duration(stretch.length), format_duration(self._retention), gap_id,
        )  # fmt: skip
        self._on_gap(gap_id)
