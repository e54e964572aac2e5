"""The worker's watch for gaps: when it last consumed, and whether a pause of consumption lost messages.

Owns the consumption time in memory (every commit, and every empty receive of a quiet stream) and in the archive
(``consumers``, at most every ``heartbeat_s``), so a worker that starts again knows when the last one stopped.
After a pause longer than Tuya keeps messages (streams.backfill.gaps), it records a gap, logs a warning, counts it
(``tuya_gaps_detected``, ``tuya_gaps_open``), and tells ``on_gap`` (the background backfill) once the stream is
consumed a margin past the gap's end. Errors here are logged and never reach the runner: watching must not stop
archiving.

How far the stream is consumed is a push time: the newest message committed, or, once the stream has been quiet
for the margin with every received message stored, the moment of that empty receive. The backfill waits for it too
(streams.backfill.job): the values near a gap's end that Tuya still had are archived first, and the backfill skips
them instead of storing them a second time.
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
from streams.store.engine import write_transaction
from streams.tuya.normalize import utc

__all__ = ["GapWatcher"]

log = logging.getLogger(__name__)


class GapWatcher:
    """``start()`` once, then ``on_connected`` for every connect, ``on_committed`` for every committed batch and
    ``on_idle`` for every empty receive."""

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
        self._pushed: datetime | None = None  # how far the stream is consumed, as a push time
        self._quiet_since: datetime | None = None  # the first of the empty receives since the last commit
        self._heard: datetime | None = None  # the runner's last commit or empty receive
        self._waiting: dict[int, datetime] = {}  # gaps found here: the push time their backfill waits for
        self._saved: datetime | None = None

    def start(self) -> None:
        """Read when the worker last consumed (before this process), and how many gaps are still open."""
        with self._engine.connect() as connection:
            self._consumed = backfill.consumed_at(connection, self._subscription)
            self._metrics.gaps_open.set(backfill.unfilled_gaps(connection))

    def close(self) -> None:
        """Save the last consumption time, so that a restart measures its pause from it."""
        if self._consumed is not None:
            try:
                self._save(self._consumed)
            except Exception as exc:
                log.warning("could not save when the worker last consumed (%s)", exc)

    def on_committed(self, result: BatchResult) -> None:
        # Consumed as far as when the batch was received: a commit that waited hours for the database received
        # nothing meanwhile, and Tuya went on deleting.
        self._heard = self._clock()
        received = result.received_at or self._heard
        oldest = utc(result.oldest_push_ms) if result.oldest_push_ms else None
        if result.newest_push_ms:
            self._reached(utc(result.newest_push_ms))
        self._quiet_since = None
        self._consuming(received, received, oldest)

    def on_connected(self) -> None:
        """Consuming again after nothing was heard for longer than a margin (a broker unreachable for hours, say):
        the empty receives before say nothing of what Tuya kept since, and the quiet starts again. A reconnect in
        the middle of a quiet stream (the watchdog's, even after a failed try) changes nothing."""
        if self._heard is not None and self._clock() - self._heard > self._margin:
            self._quiet_since = None

    def on_idle(self) -> None:
        """An empty receive. A pause is judged once the stream has been quiet for a margin: the first receives after
        a connect may come back empty while Tuya still holds the messages that show it kept more."""
        now = self._heard = self._clock()
        if self._quiet_since is None:
            self._quiet_since = now
        if now - self._quiet_since >= self._margin:
            # Quiet for a margin, every message received stored: nothing pushed before now is left to consume.
            self._reached(now)
            self._consuming(self._quiet_since, now, None)

    def _reached(self, pushed: datetime) -> None:
        self._pushed = pushed if self._pushed is None else max(self._pushed, pushed)

    def _consuming(self, resumed: datetime, now: datetime, oldest_pushed: datetime | None) -> None:
        """Consuming (again) since ``resumed``, consumed up to ``now``."""
        try:
            stretch = lost_stretch(
                self._consumed, resumed, oldest_pushed, retention=self._retention, margin=self._margin
            )
            if stretch is not None:
                self._waiting[self._record(stretch, now)] = stretch.ended_at + self._margin
            self._consumed = now
            passed = [gap for gap, past in self._waiting.items() if self._pushed is not None and self._pushed >= past]
            if passed or self._saved is None or now - self._saved >= self._heartbeat:
                self._save(now)  # before the backfill is told: it reads how far the stream is consumed
            for gap_id in passed:
                del self._waiting[gap_id]
                self._on_gap(gap_id)
        except Exception as exc:  # never the runner's problem: the next batch tries again
            log.warning("gap watch failed (%s): archiving goes on", exc)

    def _save(self, now: datetime) -> None:
        with write_transaction(self._engine) as connection:
            backfill.save_consumed(connection, self._subscription, now, self._pushed)
            opened = backfill.unfilled_gaps(connection)  # the background backfill fills them meanwhile
        self._saved = now
        self._metrics.gaps_open.set(opened)

    def _record(self, stretch: Stretch, now: datetime) -> int:
        with write_transaction(self._engine) as connection:
            gap_id = backfill.record_gap(connection, stretch.started_at, stretch.ended_at, now, origin="detected")
            opened = backfill.unfilled_gaps(connection)
        self._metrics.gaps_detected.inc()
        self._metrics.gaps_open.set(opened)
        log.warning(
            "gap %d in the stream: nothing was consumed from %s to %s (%s), and Tuya deletes what nobody "
            "acknowledged within %s: backfilling it from the device logs (tuya-archiver gaps, tuya-archiver "
            "backfill --gap %d)",
            gap_id, stretch.started_at.isoformat(timespec="seconds"), stretch.ended_at.isoformat(timespec="seconds"),
            format_duration(stretch.length), format_duration(self._retention), gap_id,
        )  # fmt: skip
        return gap_id
