"""The worker's OpenAPI work in one thread (the client is used by one thread at a time): it syncs the fleet at
start and every ``SYNC_INTERVAL``, single devices when the stream shows one the archive does not know (or a bind,
rename or delete), and fills the gaps the worker finds (or an interrupted backfill left) from the device logs.

Owns the schedule, the queue of devices asked for, and the refresh of the worker's Catalog after every sync. A
failed full sync or backfill is logged and tried again after ``retry_s`` (the backfill alone: a full sync costs
about a thousand calls), and devices whose sync failed may be asked for again after ``retry_s``; a gap whose devices
keep not answering waits twice as long each time, up to the sync interval, and one the day's quota stopped waits for
the next full sync or a new UTC day. Nothing here can stop archiving, and consumption never waits for it. A device
asked for is not asked again within the interval, so a device the OpenAPI does not know costs one call per interval,
not one per message. A stop closes the OpenAPI client first, so a sync or backfill under way ends at its next call
instead of minutes later.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time

from sqlalchemy.engine import Engine

from streams.backfill.job import Backfill
from streams.backfill.report import API_ERROR, QUOTA
from streams.clock import utcnow
from streams.fleet.catalog import CatalogRef
from streams.fleet.report import SyncReport
from streams.fleet.sync import FleetSync
from streams.pipeline import BatchResult
from streams.store import backfill
from streams.store.engine import unavailable_on_failure
from streams.store.fleet import load_catalog

__all__ = ["BackgroundSync"]

log = logging.getLogger(__name__)

_STREAM_WAIT_S = 15.0  # how often a gap whose end the stream has not passed yet is looked at again


class BackgroundSync:
    """``start()``, feed it committed batches with :meth:`on_committed`, ``stop()``."""

    def __init__(
        self,
        make_sync: Callable[[], FleetSync],
        engine: Engine,
        catalog: CatalogRef,
        *,
        interval_s: float,
        retry_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        on_stop: Callable[[], None] = lambda: None,
        make_backfill: Callable[[], Backfill] | None = None,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self._make_sync = make_sync
        self._make_backfill = make_backfill
        self._backfill_due = False
        self._backfill_again_at: float | None = None  # the next backfill without a new reason for one
        # Gaps not to be filled again before a time: one waiting for the stream to pass its end (every
        # _STREAM_WAIT_S), one with devices whose log did not answer (retry_s, doubled each time in a row, up to the
        # interval: a broken device is not asked every few minutes until its logs expire), each at its own pace.
        self._gap_not_before: dict[int, float] = {}
        self._unanswered_runs: dict[int, int] = {}  # by gap: its fills in a row that left devices unread
        self._held_until = -math.inf  # after a failed backfill, none before its retry
        self._on_stop = on_stop
        self._engine = engine
        self._catalog = catalog
        self._interval = interval_s
        self._retry = min(retry_s, interval_s)
        self._clock = clock
        self._wall = wall  # the UTC day, by which the quota is counted
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._wanted: set[str] = set()
        self._asked: dict[str, float] = {}
        self._next_full = 0.0
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fleet-sync", daemon=True)
        #: Syncs finished (full and of single devices), and the last one's report (for the demo and tests).
        self.syncs = 0
        self.backfills = 0
        self.last_report: SyncReport | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread: ``on_stop`` (closing the client) first, so that the sync or backfill under way fails at
        its next OpenAPI call (a backfill page is stored only once its calls are made), then join."""
        self._stopping.set()
        self._wake.set()
        self._on_stop()
        if self._thread.is_alive():
            self._thread.join()

    def wait_for_sync(self, timeout: float) -> bool:
        """Wait until a sync has finished (the first full one, when it succeeds); False after ``timeout`` seconds."""
        return self._synced.wait(timeout)

    def on_committed(self, result: BatchResult) -> None:
        """Ask for the devices a committed batch wants synced (cheap; called on the worker's thread)."""
        if result.sync_wanted:
            self.request(result.sync_wanted)

    def on_connected(self) -> None:
        """A connect is nothing to sync (the runner's Observer protocol)."""

    def on_idle(self) -> None:
        """A quiet stream is nothing to sync (the runner's Observer protocol)."""

    def backfill_gap(self, _gap_id: int) -> None:
        """A gap was found: fill it (and any other open one) soon, after what is already queued."""
        with self._lock:
            self._backfill_due = True
        self._wake.set()

    def request(self, device_ids: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            fresh = {d for d in device_ids if now - self._asked.get(d, -self._interval) >= self._interval}
            if not fresh:
                return
            self._asked.update(dict.fromkeys(fresh, now))
            self._wanted |= fresh
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            if self._clock() >= self._next_full:
                started = self._clock()
                done = self._sync("fleet", lambda sync: sync.run())
                self._next_full = self._clock() + (self._interval if done else self._retry)
                if done:
                    self._forget_asked_before(started)
                    self._backfill_due = self._make_backfill is not None  # also what an earlier run left open
                continue
            devices = self._take()
            if devices:
                what, started = f"{len(devices)} device(s) the stream showed", self._clock()
                self._sync(
                    what,
                    lambda sync, ids=devices: sync.sync_devices(ids),
                    again=f"asked for again when the stream shows them after {self._retry:.0f} s",
                    failed=lambda ids=devices, at=started: self._ask_again(ids, at),
                )
                continue
            if self._take_backfill():
                self._backfill()
                continue
            wake_at = min(self._next_full, self._backfill_again_at or self._next_full)
            self._wake.wait(max(0.0, wake_at - self._clock()))
            self._wake.clear()

    def _take_backfill(self) -> bool:
        with self._lock:
            again = self._backfill_again_at is not None and self._clock() >= self._backfill_again_at
            due, self._backfill_due = self._backfill_due or again, False
            if again:
                self._backfill_again_at = None
        return due and self._make_backfill is not None

    def _backfill(self) -> None:
        """Fill every open gap, oldest first; a failure is tried again at ``retry_s``."""
        assert self._make_backfill is not None
        if self._clock() < self._held_until:  # a failure's retry, or the quota's: not sooner for a new gap either
            self._again_at(self._held_until)
            return
        try:
            with self._engine.connect() as connection:
                gaps = backfill.open_gaps(connection)
            self._gap_not_before = {gap: at for gap, at in self._gap_not_before.items() if gap in gaps}
            self._unanswered_runs = {gap: runs for gap, runs in self._unanswered_runs.items() if gap in gaps}
            job = self._make_backfill()
            for gap_id in gaps:
                if self._stopping.is_set():
                    return
                if self._clock() < self._gap_not_before.get(gap_id, -math.inf):
                    continue
                report = job.fill(gap_id)
                if report.waiting:
                    self._gap_not_before[gap_id] = self._clock() + _STREAM_WAIT_S
                    continue
                self.backfills += 1
                if report.stopped == API_ERROR:  # the next gap would fail alike: all of them again later
                    self._hold()
                    log.warning("backfill: %s; trying again in %.0f s", "; ".join(report.summary_lines()), self._retry)
                    return
                if report.stopped == QUOTA:  # so would every gap, until a new UTC day (or the next sync: it says)
                    now = self._wall()
                    day_ends = datetime.combine(now.date() + timedelta(days=1), clock_time(), UTC)
                    self._hold(until=min(self._next_full, self._clock() + (day_ends - now).total_seconds()))
                    log.info("backfill: %s", "; ".join(report.summary_lines()))
                    return
                self._unanswered(gap_id, report.unanswered)
                log.info("backfill: %s", "; ".join(report.summary_lines()))
        except Exception as exc:  # a failed backfill must never stop archiving
            if self._stopping.is_set():
                log.info("backfill stopped (%s)", exc)
                return
            self._hold()
            log.warning("backfill failed (%s): trying again in %.0f s", exc, self._retry)
        finally:  # the gaps waiting their turn: at their time, or at once if it passed (but not within a hold)
            floor = max(self._clock(), self._held_until)
            for at in self._gap_not_before.values():
                self._again_at(max(at, floor))

    def _hold(self, until: float | None = None) -> None:
        """After a failure: no backfill before ``retry_s`` from now (or ``until``), whatever asks for one."""
        self._held_until = self._clock() + self._retry if until is None else until
        self._again_at(self._held_until)

    def _unanswered(self, gap_id: int, devices: int) -> None:
        """A gap filled but for ``devices`` whose log did not answer: it is tried again after ``retry_s``, twice as
        long each fill in a row that leaves some unread, up to the interval."""
        if not devices:
            self._unanswered_runs.pop(gap_id, None)
            self._gap_not_before.pop(gap_id, None)
            return
        runs = self._unanswered_runs[gap_id] = self._unanswered_runs.get(gap_id, 0) + 1
        self._gap_not_before[gap_id] = self._clock() + min(self._retry * 2 ** min(runs - 1, 30), self._interval)

    def _again_at(self, moment: float) -> None:
        """Backfill again at ``moment`` at the latest."""
        with self._lock:
            later = self._backfill_again_at
            self._backfill_again_at = moment if later is None else min(later, moment)

    def _ask_again(self, devices: Iterable[str], tried_at: float) -> None:
        """Devices whose sync, tried at ``tried_at``, failed: the stream's next request for them ``retry_s`` after
        that is taken."""
        with self._lock:
            self._asked.update(dict.fromkeys(devices, tried_at - self._interval + self._retry))

    def _forget_asked_before(self, moment: float) -> None:
        """Devices asked for before a full sync started: that sync has just looked every device up."""
        with self._lock:
            self._wanted = {device for device in self._wanted if self._asked.get(device, moment) >= moment}

    def _take(self) -> list[str]:
        with self._lock:
            wanted, self._wanted = sorted(self._wanted), set()
        return wanted

    def _sync(
        self,
        what: str,
        step: Callable[[FleetSync], SyncReport],
        *,
        again: str | None = None,
        failed: Callable[[], None] = lambda: None,
    ) -> bool:
        """One sync, then a fresh Catalog; False when it failed (``failed()`` run, then logged with ``again``: when it
        is tried again)."""
        try:
            report = step(self._make_sync())
            with unavailable_on_failure("reloading the data-point catalog"), self._engine.connect() as connection:
                self._catalog.set(load_catalog(connection))
        except Exception as exc:  # a failed sync must never stop archiving
            if self._stopping.is_set():
                log.info("sync of %s stopped (%s)", what, exc)
            else:
                failed()
                log.warning("sync of %s failed (%s): %s", what, exc, again or f"trying again in {self._retry:.0f} s")
            return False
        self.syncs += 1
        self.last_report = report
        self._synced.set()
        log.info("synced %s: %s", what, "; ".join(report.summary_lines()))
        return True
