"""streams/fleet/background.py with a fake FleetSync and an injected clock: the worker's sync schedule, its device
queue, its failures and its Catalog refresh (partner: tests/integration/test_sync.py, the FleetSync it runs).

The Catalog is reloaded from the archive after every sync, so each test has a small SQLite file migrated to head.
The thread is followed through the calls it makes on the fake, never by sleeping. The clock is moved only while the
thread is held inside a call of the fake (``hold``/``release``): a device request made before the thread starts is
served after the full sync has scheduled the next one, so once the thread is held in that device sync, the next full
sync's time is fixed, and the thread reads the moved clock first thing after it is released.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from models.points import PointSpec
from streams.backfill.report import API_ERROR, QUOTA, BackfillReport
from streams.fleet.background import BackgroundSync
from streams.fleet.catalog import Catalog, CatalogRef
from streams.fleet.report import SyncReport
from streams.pipeline import BatchResult
from streams.store import backfill, fleet
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from streams.tuya.api_errors import TuyaApiError, TuyaServerError
from streams.tuya.listings import ListedDevice

WAIT_S = 10.0  # bound of every wait for the sync thread; reaching it fails the test
INTERVAL_S = 3600.0
RETRY_S = 300.0
START = 1000.0
DEVICE = "bf1e8a0cd2e4a1b2c3x9kq"
PRODUCT = "keyjup78v54myhan"


class FakeClock:
    """The monotonic clock, moved by the test; counts how often it was read."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


class FakeFleetSync:
    """Stands in for FleetSync and its factory.

    Records every call with the Catalog the worker held at that moment and the thread that made it, waits there if
    the test holds that call (by its number, from 1), then raises the next scripted failure of that kind of call, or
    returns a new SyncReport (after ``on_run`` for a full sync).
    """

    def __init__(self, catalog: CatalogRef) -> None:
        self._catalog = catalog
        self._changed = threading.Condition()
        self.calls: list[tuple[str, list[str]]] = []
        self.catalogs: list[Catalog] = []
        self.threads: list[threading.Thread] = []
        self.reports: list[SyncReport] = []
        self.failures: dict[str, list[Exception]] = {"make": [], "run": [], "sync_devices": []}
        self.on_run: Callable[[], None] = lambda: None
        self._holds: dict[int, threading.Event] = {}

    def make(self) -> FakeFleetSync:
        """The ``make_sync`` factory BackgroundSync calls before every sync."""
        with self._changed:
            error = self.failures["make"].pop(0) if self.failures["make"] else None
        if error is not None:
            raise error
        return self

    def run(self) -> SyncReport:
        return self._answer("run", [])

    def sync_devices(self, device_ids: list[str]) -> SyncReport:
        return self._answer("sync_devices", list(device_ids))

    def _answer(self, kind: str, device_ids: list[str]) -> SyncReport:
        with self._changed:
            self.calls.append((kind, device_ids))
            self.catalogs.append(self._catalog.get())
            self.threads.append(threading.current_thread())
            error = self.failures[kind].pop(0) if self.failures[kind] else None
            number = len(self.calls)
            hold = self._holds.get(number)
            self._changed.notify_all()
        if hold is not None and not hold.wait(WAIT_S):
            raise AssertionError(f"call {number} was held and never released")
        if error is not None:
            raise error
        if kind == "run":
            self.on_run()
        report = SyncReport(family="/v1.3/iot-03/devices", complete=True, devices_listed=len(device_ids), calls=1)
        self.reports.append(report)
        return report

    def hold(self, call: int) -> None:
        """Make the thread wait inside call number ``call`` until :meth:`release`."""
        self._holds[call] = threading.Event()

    def release(self, call: int) -> None:
        self._holds[call].set()

    def wait_for_calls(self, count: int) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout=WAIT_S):
                pytest.fail(f"the sync thread made {self.calls} in {WAIT_S:.0f} s; expected {count} calls")


def batch(*device_ids: str) -> BatchResult:
    """A committed batch whose records want ``device_ids`` synced."""
    return BatchResult(
        received=len(device_ids),
        decoded=len(device_ids),
        dead_letters={},
        oldest_push_ms=None,
        counts=None,
        sync_wanted=frozenset(device_ids),
    )


def voltage(**overrides: Any) -> PointSpec:
    fields: dict[str, Any] = {"product_id": PRODUCT, "code": "cur_voltage", "type": "Integer", "dp_id": 20, "scale": 1}
    fields.update(overrides)
    return PointSpec(**fields)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def background_factory(archive: Engine) -> Iterator[Callable[..., tuple[BackgroundSync, FakeFleetSync]]]:
    """Builds a BackgroundSync on the archive with a fake FleetSync; every one built is stopped afterwards."""
    built: list[BackgroundSync] = []

    def build(
        clock: FakeClock, catalog: CatalogRef | None = None, on_stop: Callable[[], None] = lambda: None
    ) -> tuple[BackgroundSync, FakeFleetSync]:
        catalog = catalog or CatalogRef()
        fake = FakeFleetSync(catalog)
        background = BackgroundSync(
            fake.make, archive, catalog, interval_s=INTERVAL_S, retry_s=RETRY_S, clock=clock, on_stop=on_stop
        )
        built.append(background)
        return background, fake

    yield build
    for background in built:
        background.stop()


def wait_for_warning(caplog: pytest.LogCaptureFixture, start: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not any(message.startswith(start) for message in warnings_of(caplog)):
        if time.monotonic() > deadline:  # a hang guard
            pytest.fail(f"no warning {start!r} in {WAIT_S:.0f} s: {warnings_of(caplog)}")
        time.sleep(0.01)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "streams.fleet.background" and r.levelno == logging.WARNING
    ]


def test_full_sync_runs_at_start(background_factory):
    background, fake = background_factory(FakeClock())
    background.start()
    fake.wait_for_calls(1)
    background.stop()
    assert fake.calls == [("run", [])]
    assert (background.syncs, background.last_report) == (1, fake.reports[0])


def test_full_sync_runs_again_once_interval_has_passed(background_factory):
    clock = FakeClock()
    background, fake = background_factory(clock)
    fake.hold(2)
    fake.hold(3)
    background.on_committed(batch("d0"))
    background.start()
    fake.wait_for_calls(2)
    clock.now = START + INTERVAL_S - 1
    background.on_committed(batch("d1"))
    fake.release(2)
    fake.wait_for_calls(3)
    clock.now = START + INTERVAL_S
    background.on_committed(batch("d2"))
    fake.release(3)
    fake.wait_for_calls(5)
    background.stop()
    assert fake.calls == [
        ("run", []),
        ("sync_devices", ["d0"]),
        ("sync_devices", ["d1"]),
        ("run", []),
        ("sync_devices", ["d2"]),
    ]
    assert background.syncs == 5


def test_failed_full_sync_is_logged_and_retried_after_retry_s(background_factory, caplog):
    caplog.set_level(logging.WARNING, logger="streams.fleet.background")
    clock = FakeClock()
    background, fake = background_factory(clock)
    fake.failures["run"] = [RuntimeError("tuya down")]
    fake.hold(2)
    fake.hold(3)
    background.on_committed(batch("d0"))
    background.start()
    fake.wait_for_calls(2)
    clock.now = START + RETRY_S - 1
    background.on_committed(batch("d1"))
    fake.release(2)
    fake.wait_for_calls(3)
    clock.now = START + RETRY_S
    background.on_committed(batch("d2"))
    fake.release(3)
    fake.wait_for_calls(5)
    background.stop()
    assert fake.calls == [
        ("run", []),
        ("sync_devices", ["d0"]),
        ("sync_devices", ["d1"]),
        ("run", []),
        ("sync_devices", ["d2"]),
    ]
    assert warnings_of(caplog) == ["sync of fleet failed (tuya down): trying again in 300 s"]
    assert (background.syncs, background.last_report) == (4, fake.reports[-1])


def test_failed_syncs_never_reach_archiving_and_keep_catalog(background_factory, caplog):
    caplog.set_level(logging.WARNING, logger="streams.fleet.background")
    initial = Catalog([voltage()], {DEVICE: PRODUCT}, synced=[DEVICE])
    catalog = CatalogRef(initial)
    background, fake = background_factory(FakeClock(), catalog)
    fake.failures["run"] = [RuntimeError("tuya down")]
    fake.failures["sync_devices"] = [TuyaApiError(2010, "device not exist"), RuntimeError("still down")]
    background.start()
    fake.wait_for_calls(1)
    assert background.on_committed(batch("d1")) is None
    fake.wait_for_calls(2)
    assert background.on_committed(batch("d2")) is None
    fake.wait_for_calls(3)
    background.stop()
    assert fake.calls == [("run", []), ("sync_devices", ["d1"]), ("sync_devices", ["d2"])]
    assert (background.syncs, background.last_report, catalog.get()) == (0, None, initial)
    assert warnings_of(caplog) == [
        "sync of fleet failed (tuya down): trying again in 300 s",
        "sync of 1 device(s) the stream showed failed"
        " (Tuya OpenAPI error 2010 'device not exist' (tid none)): asked for again when the stream shows them after"
        " 300 s",
        "sync of 1 device(s) the stream showed failed (still down): asked for again when the stream shows them after"
        " 300 s",
    ]


def test_devices_whose_sync_failed_are_asked_for_again_after_retry_s(background_factory, caplog):
    # They were stamped as asked for, so the stream's requests went unheard for a whole interval.
    caplog.set_level(logging.WARNING, logger="streams.fleet.background")
    clock = FakeClock()
    background, fake = background_factory(clock)
    fake.failures["sync_devices"] = [RuntimeError("timed out")]
    background.start()
    fake.wait_for_calls(1)
    background.on_committed(batch("d1"))
    fake.wait_for_calls(2)
    wait_for_warning(caplog, "sync of 1 device(s) the stream showed failed (timed out)")  # the failure handled
    clock.now = START + RETRY_S - 1
    background.on_committed(batch("d1"))
    clock.now = START + RETRY_S
    background.on_committed(batch("d1"))
    fake.wait_for_calls(3)
    background.stop()
    assert fake.calls == [("run", []), ("sync_devices", ["d1"]), ("sync_devices", ["d1"])]


def test_failing_sync_factory_is_logged_like_a_failed_sync(background_factory, caplog):
    caplog.set_level(logging.WARNING, logger="streams.fleet.background")
    background, fake = background_factory(FakeClock())
    fake.failures["make"] = [ValueError("TUYA_ACCESS_ID is not set")]
    background.on_committed(batch("d1"))
    background.start()
    fake.wait_for_calls(1)
    background.stop()
    assert fake.calls == [("sync_devices", ["d1"])]
    assert warnings_of(caplog) == ["sync of fleet failed (TUYA_ACCESS_ID is not set): trying again in 300 s"]


def test_device_requests_are_deduplicated_and_not_repeated_within_interval(background_factory):
    clock = FakeClock()
    background, fake = background_factory(clock)
    fake.hold(2)
    fake.hold(3)
    background.on_committed(batch("a", "b"))
    background.on_committed(batch("b", "c"))
    background.start()
    fake.wait_for_calls(2)
    clock.now = START + INTERVAL_S - 1
    background.on_committed(batch("a", "d"))
    fake.release(2)
    fake.wait_for_calls(3)
    clock.now = START + INTERVAL_S
    background.on_committed(batch("a", "d"))
    fake.release(3)
    fake.wait_for_calls(5)
    background.stop()
    assert fake.calls == [
        ("run", []),
        ("sync_devices", ["a", "b", "c"]),
        ("sync_devices", ["d"]),
        ("run", []),
        ("sync_devices", ["a"]),
    ]


def test_device_request_within_interval_asks_nothing(background_factory):
    clock = FakeClock()
    background, fake = background_factory(clock)
    background.on_committed(batch("a"))
    background.start()
    fake.wait_for_calls(2)
    clock.now = START + 1
    background.on_committed(batch("a"))
    background.on_committed(batch("b"))
    fake.wait_for_calls(3)
    background.stop()
    assert fake.calls == [("run", []), ("sync_devices", ["a"]), ("sync_devices", ["b"])]


def test_devices_asked_for_before_a_full_sync_are_not_looked_up_again_after_it(background_factory):
    clock = FakeClock()
    background, fake = background_factory(clock)
    background.on_committed(batch("asked_before"))
    clock.now = START + 1  # the full sync starts after the request: it looks every device up anyway
    fake.hold(1)
    background.start()
    fake.wait_for_calls(1)
    background.on_committed(batch("asked_during"))
    fake.release(1)
    fake.wait_for_calls(2)
    background.stop()
    assert fake.calls == [("run", []), ("sync_devices", ["asked_during"])]


def test_on_committed_without_sync_wanted_does_nothing(background_factory):
    clock = FakeClock()
    background, fake = background_factory(clock)
    background.on_committed(batch())
    assert clock.reads == 0
    background.on_committed(batch("z"))
    background.start()
    fake.wait_for_calls(2)
    background.stop()
    assert fake.calls == [("run", []), ("sync_devices", ["z"])]


def test_stop_closes_the_client_while_a_sync_is_under_way_then_joins_the_thread(background_factory, caplog):
    # A full sync or a gap's backfill is a thousand calls or more at the API's rate: the stop waited minutes for it.
    # Closed, the client fails the sync's next call.
    caplog.set_level(logging.INFO, logger="streams.fleet.background")
    holder: list[FakeFleetSync] = []
    background, fake = background_factory(FakeClock(), on_stop=lambda: holder[0].release(1))
    holder.append(fake)
    fake.failures["run"] = [RuntimeError("Cannot send a request, as the client has been closed.")]
    fake.hold(1)
    background.start()
    fake.wait_for_calls(1)
    background.stop()
    assert not fake.threads[0].is_alive()
    assert [r.getMessage() for r in caplog.records if r.name == "streams.fleet.background"] == [
        "sync of fleet stopped (Cannot send a request, as the client has been closed.)"
    ]


def test_stop_before_start_calls_on_stop(background_factory):
    stops: list[str] = []
    background, fake = background_factory(FakeClock(), on_stop=lambda: stops.append("stopped"))
    background.stop()
    assert (stops, fake.calls) == (["stopped"], [])


def test_catalog_is_replaced_after_each_sync(archive, background_factory):
    initial = Catalog([voltage(product_id="otherproduct0000")], {"bf000": "otherproduct0000"}, synced=["bf000"])
    catalog = CatalogRef(initial)
    background, fake = background_factory(FakeClock(), catalog)
    at = datetime(2026, 12, 1, tzinfo=UTC)

    def learn_device() -> None:
        with archive.begin() as connection:
            fleet.save_devices(connection, [ListedDevice(device_id=DEVICE, product_id=PRODUCT)], at)
            fleet.save_points(connection, [voltage()], {"cur_voltage": {"unit": "V", "scale": 1}}, at)

    fake.on_run = learn_device
    background.on_committed(batch(DEVICE))
    background.start()
    fake.wait_for_calls(2)
    background.stop()
    during_run, after_run = fake.catalogs
    assert during_run is initial
    assert after_run is not initial
    assert after_run.point(DEVICE, "cur_voltage") == voltage()
    assert (after_run.synced, after_run.products()) == (frozenset({DEVICE}), {PRODUCT})
    assert catalog.get() is not after_run
    assert catalog.get().code_of(DEVICE, 20) == "cur_voltage"


class FakeBackfill:
    """Stands in for Backfill and its factory: each fill of a gap gives the next of ``statuses`` (the gap row too;
    "open" is a stop by the quota, "error" one by an OpenAPI error, "unread" devices a server error left unread, all
    leaving the gap open; "waiting" a gap whose end the stream has not passed). ``takes``: the seconds a gap's fill
    moves ``clock`` on (a fleet's worth of logs)."""

    def __init__(
        self,
        archive: Engine,
        *statuses: str | Exception,
        clock: FakeClock | None = None,
        takes: dict[int, float] | None = None,
    ) -> None:
        self._archive = archive
        self._statuses = list(statuses)
        self._clock = clock
        self._takes = takes or {}
        self._changed = threading.Condition()
        self.fills: list[int] = []

    def make(self) -> FakeBackfill:
        return self

    def fill(self, gap_id: int) -> BackfillReport:
        status = self._statuses.pop(0)
        if self._clock is not None:
            self._clock.now += self._takes.get(gap_id, 0.0)
        if status == "waiting":  # for the stream to pass the gap's end: nothing done
            with self._changed:
                self.fills.append(gap_id)
                self._changed.notify_all()
            return BackfillReport(gap_id, GAP_AT, GAP_AT, waiting=True)
        if isinstance(status, Exception):
            with self._changed:
                self.fills.append(gap_id)
                self._changed.notify_all()
            raise status
        stopped = {"open": QUOTA, "error": API_ERROR}.get(status)
        unanswered = int(status == "unread")
        status = "open" if stopped or unanswered else status
        with self._archive.begin() as connection:
            backfill.update_gap(connection, gap_id, GAP_AT, status=status)
        with self._changed:
            self.fills.append(gap_id)
            self._changed.notify_all()
        return BackfillReport(gap_id, GAP_AT, GAP_AT, status=status, stopped=stopped, unanswered=unanswered)

    def wait_for_fills(self, count: int) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.fills) >= count, timeout=WAIT_S):
                pytest.fail(f"the sync thread made fills {self.fills} in {WAIT_S:.0f} s; expected {count}")


GAP_AT = datetime(2026, 12, 6, tzinfo=UTC)


def record_gaps(archive: Engine, count: int) -> list[int]:
    """``count`` detected gaps, an hour apart (one stretch records one gap), oldest first."""
    with archive.begin() as connection:
        starts = [GAP_AT + timedelta(hours=n) for n in range(count)]
        return [backfill.record_gap(connection, start, start, GAP_AT, origin="detected") for start in starts]


def backfilling(
    archive: Engine, clock: FakeClock, job: FakeBackfill, wall: datetime = GAP_AT + timedelta(hours=12)
) -> tuple[BackgroundSync, FakeFleetSync]:
    """A background sync whose backfills are ``job``'s, on ``clock`` (``wall``: the UTC time meanwhile, noon), and
    its fake fleet sync."""
    catalog = CatalogRef()
    fake = FakeFleetSync(catalog)
    background = BackgroundSync(
        fake.make, archive, catalog, interval_s=INTERVAL_S, retry_s=RETRY_S, clock=clock, make_backfill=job.make,
        wall=lambda: wall,
    )  # fmt: skip
    return background, fake


def backfill_if_due(background: BackgroundSync) -> bool:
    """One step of the sync thread's backfill, driven by the test (no thread): run it when it is due."""
    due = background._take_backfill()
    if due:
        background._backfill()
    return due


def fill_twice(archive: Engine, first: str | Exception, later_s: float) -> FakeFleetSync:
    """A gap whose first fill ends ``first`` and whose second, ``later_s`` on, fills it; returns the fake sync."""
    (gap_id,) = record_gaps(archive, 1)
    clock, job = FakeClock(), FakeBackfill(archive, first, "filled")
    background, fake = backfilling(archive, clock, job)
    try:
        background.start()
        job.wait_for_fills(1)
        clock.now = START + later_s
        background.on_committed(batch("d0"))  # wakes the thread, as the worker's batches do
        job.wait_for_fills(2)
    finally:
        background.stop()
    with archive.connect() as connection:
        assert (job.fills, backfill.open_gaps(connection)) == ([gap_id, gap_id], [])
    return fake


def test_a_gap_the_quota_left_open_is_resumed_after_the_next_full_sync(archive):
    fake = fill_twice(archive, "open", INTERVAL_S)  # the quota, then the next day
    assert [kind for kind, _ids in fake.calls].count("run") == 2


def test_a_backfill_an_openapi_error_stopped_is_tried_again_after_retry_s(archive):
    # Wrong credentials or no answer: the gap stays open, and nothing else would bring the backfill back.
    fake = fill_twice(archive, "error", RETRY_S)
    assert fake.calls == [("run", []), ("sync_devices", ["d0"])]


def test_a_gap_with_devices_left_unread_by_server_errors_is_tried_again_after_retry_s(archive, caplog):
    fake = fill_twice(archive, "unread", RETRY_S)
    assert fake.calls == [("run", []), ("sync_devices", ["d0"])]
    assert "backfill failed" not in caplog.text  # a fill that ended, not one that raised


def test_a_gap_with_unread_devices_waits_retry_s_while_another_waits_for_the_stream(archive):
    older, newer = record_gaps(archive, 2)
    clock = FakeClock()
    job = FakeBackfill(archive, "unread", "waiting", "filled", "filled")
    background, _ = backfilling(archive, clock, job)
    try:
        background.start()
        job.wait_for_fills(2)
        clock.now = START + 20  # the waiting gap's turn, not the one whose device did not answer
        background.on_committed(batch("d0"))
        job.wait_for_fills(3)
        clock.now = START + RETRY_S
        background.on_committed(batch("d1"))
        job.wait_for_fills(4)
    finally:
        background.stop()
    assert job.fills == [older, newer, newer, older]


def test_a_gap_whose_devices_keep_not_answering_waits_twice_as_long_each_time_up_to_the_interval(archive):
    # A device whose log is broken for good was asked every retry_s until its window was older than the logs.
    (gap_id,) = record_gaps(archive, 1)
    clock = FakeClock()
    job = FakeBackfill(archive, *["unread"] * 7)
    background, _ = backfilling(archive, clock, job)
    background.backfill_gap(gap_id)
    assert backfill_if_due(background)
    waits = []
    for _ in range(6):
        started = clock.now
        while not backfill_if_due(background):
            clock.now += 100
        waits.append(clock.now - started)
    assert waits == [300, 600, 1200, 2400, 3600, 3600]  # RETRY_S doubled, up to INTERVAL_S
    assert job.fills == [gap_id] * 7
    background._unanswered_runs[gap_id] = 5_000  # a device of a long log retention, broken for weeks
    background._unanswered(gap_id, 1)
    assert background._gap_not_before[gap_id] == clock.now + INTERVAL_S  # 2 ** 5000 was no float


def test_a_gap_the_quota_stopped_is_not_run_again_while_another_waits_for_the_stream(archive):
    older, newer = record_gaps(archive, 2)
    clock = FakeClock()
    job = FakeBackfill(archive, "waiting", "open", "filled", "filled")
    background, _ = backfilling(archive, clock, job)
    background._next_full = START + INTERVAL_S  # as the thread's first full sync leaves it
    background.backfill_gap(newer)
    assert backfill_if_due(background)
    assert job.fills == [older, newer]
    clock.now = START + 20  # the waiting gap's 15 s are over, but neither can be filled before the quota is new
    assert not background._take_backfill()
    clock.now = START + INTERVAL_S  # the next full sync asks for the backfill again
    background.backfill_gap(newer)
    assert backfill_if_due(background)
    assert job.fills == [older, newer, older, newer]


def test_a_gap_the_quota_stopped_is_run_again_on_a_new_utc_day_before_the_next_full_sync(archive):
    (gap_id,) = record_gaps(archive, 1)
    clock = FakeClock()
    job = FakeBackfill(archive, "open", "filled")
    half_past_eleven = GAP_AT + timedelta(hours=23, minutes=30)
    background, _ = backfilling(archive, clock, job, wall=half_past_eleven)
    background._next_full = START + INTERVAL_S
    background.backfill_gap(gap_id)
    assert backfill_if_due(background)
    clock.now = START + 1_799  # the quota is still the day's
    assert not background._take_backfill()
    clock.now = START + 1_800  # midnight UTC: a new day's quota, half an hour before the next sync
    assert backfill_if_due(background)
    assert job.fills == [gap_id, gap_id]


@pytest.mark.parametrize("fails", ["error", TuyaServerError(500, "internal error")])
def test_a_gap_whose_turn_came_and_failed_waits_retry_s(archive, fails):
    # Driven step by step, no thread: after a failure, nothing is due before retry_s (it was due at once, and the
    # thread asked Tuya again and again).
    (gap_id,) = record_gaps(archive, 1)
    clock = FakeClock()
    background, _ = backfilling(archive, clock, FakeBackfill(archive, "waiting", fails))
    background.backfill_gap(gap_id)
    assert backfill_if_due(background)  # waiting: its turn again in 15 s
    clock.now = START + 20
    assert backfill_if_due(background)  # fails
    assert not background._take_backfill()
    clock.now = START + 20 + RETRY_S
    assert background._take_backfill()


def test_a_gap_whose_devices_did_not_answer_in_a_long_run_is_tried_again(archive):
    (gap_id,) = record_gaps(archive, 1)
    clock = FakeClock()
    job = FakeBackfill(archive, "unread", clock=clock, takes={gap_id: RETRY_S + 1})  # longer than retry_s
    background, _ = backfilling(archive, clock, job)
    background.backfill_gap(gap_id)
    assert backfill_if_due(background)
    clock.now += RETRY_S
    assert background._take_backfill()  # not left to the next full sync, hours away


def test_after_a_long_run_that_failed_nothing_is_due_before_retry_s_nor_for_a_new_gap(archive):
    first, second = record_gaps(archive, 2)
    clock = FakeClock()
    job = FakeBackfill(archive, "filled", "error", "error", clock=clock, takes={first: 400})
    background, _ = backfilling(archive, clock, job)
    background.backfill_gap(first)
    assert backfill_if_due(background)  # the first gap filled in 400 s, then the second failed
    assert not background._take_backfill()  # not at once: retry_s from the failure, not from the run's start
    background.backfill_gap(second)  # a new reason for a backfill, within the failure's retry
    assert backfill_if_due(background)
    assert job.fills == [first, second]  # held
    clock.now = START + 400 + RETRY_S
    assert backfill_if_due(background)
    assert job.fills == [first, second, second]


def test_a_failed_backfill_is_tried_again_after_retry_s_without_a_full_sync(archive):
    # A full sync is about a thousand calls: one after each failure of a gap's backfill spent the day's quota.
    fake = fill_twice(archive, TuyaServerError(500, "internal error"), RETRY_S)
    assert fake.calls == [("run", []), ("sync_devices", ["d0"])]
