"""streams/backfill/watch.py against a real archive of each dialect: when a gap found by the worker is handed to
the backfill, and how far the stream is consumed as the backfill reads it (partners: test_outage.py end to end,
tests/unit/backfill/test_gaps.py for the gap rule).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from streams.backfill.watch import GapWatcher
from streams.metrics import WorkerMetrics
from streams.pipeline import BatchResult
from streams.store import backfill
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from tests.unit.store.databases import DIALECTS, scratch_database

pytestmark = pytest.mark.integration

SUBSCRIPTION = "project-sub"
RETENTION, MARGIN = timedelta(hours=2), timedelta(minutes=5)
STOPPED = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)  # the last worker consumed then
BACK = STOPPED + timedelta(hours=3)  # and this one starts: Tuya deleted an hour of messages


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Watch:
    """A watcher on the archive, with the gaps it hands on and how far the stream was consumed as each was."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock = Clock(BACK)
        self.told: list[tuple[int, datetime | None]] = []
        self.metrics = WorkerMetrics()
        self.watcher = GapWatcher(
            engine, SUBSCRIPTION, self.metrics, retention=RETENTION, margin=MARGIN, on_gap=self._told,
            clock=self.clock,
        )  # fmt: skip

    def _told(self, gap_id: int) -> None:
        self.told.append((gap_id, self.pushed()))

    def pushed(self) -> datetime | None:
        with self.engine.connect() as connection:
            return backfill.stream_pushed(connection)

    def gap_end(self) -> datetime:
        with self.engine.connect() as connection:
            (gap,) = backfill.gaps(connection)
        return gap.ended_at

    def committed(self, at: datetime, oldest: datetime, newest: datetime, received_at: datetime | None = None) -> None:
        """A batch committed ``at``, received then unless ``received_at`` says otherwise."""
        self.clock.now = at
        ms = lambda moment: int(moment.timestamp() * 1000)  # noqa: E731
        result = BatchResult(10, 10, {}, ms(oldest), None, newest_push_ms=ms(newest), received_at=received_at)
        self.watcher.on_committed(result)

    def gaps(self) -> list[tuple[datetime, datetime]]:
        with self.engine.connect() as connection:
            return [(gap.started_at, gap.ended_at) for gap in backfill.gaps(connection)]

    def idle(self, at: datetime) -> None:
        self.clock.now = at
        self.watcher.on_idle()


@pytest.fixture(params=DIALECTS)
def watch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Watch]:
    with scratch_database(request, tmp_path) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            with engine.begin() as connection:
                backfill.save_consumed(connection, SUBSCRIPTION, STOPPED, STOPPED - timedelta(seconds=1))
            made = Watch(engine)
            made.watcher.start()
            yield made
        finally:
            engine.dispose()


def test_a_save_without_a_push_time_keeps_the_one_stored(watch: Watch) -> None:
    with watch.engine.begin() as connection:
        backfill.save_consumed(connection, SUBSCRIPTION, BACK, None)
    assert watch.pushed() == STOPPED - timedelta(seconds=1)


def test_a_gap_is_handed_on_once_a_commit_passes_its_end_by_the_margin(watch: Watch) -> None:
    oldest = BACK - RETENTION + timedelta(minutes=1)  # Tuya kept a minute more than its retention
    watch.committed(BACK, oldest, oldest + timedelta(minutes=2))
    end = watch.gap_end()
    assert end == BACK - RETENTION  # the gap ends where Tuya deleted
    assert watch.told == []  # the stream is not yet a margin past it
    watch.committed(BACK + timedelta(seconds=5), oldest, end + MARGIN - timedelta(milliseconds=1))
    assert watch.told == []
    watch.committed(BACK + timedelta(seconds=10), oldest, end + MARGIN)
    assert watch.told == [(1, end + MARGIN)]  # saved before the backfill was told
    watch.committed(BACK + timedelta(seconds=15), oldest, end + MARGIN + timedelta(seconds=1))
    assert len(watch.told) == 1  # told once


def test_a_stream_quiet_for_the_margin_counts_as_consumed_up_to_then(watch: Watch) -> None:
    watch.idle(BACK)  # a restart into a quiet stream
    watch.idle(BACK + MARGIN - timedelta(seconds=1))
    assert watch.gaps() == []  # the first receives may come back empty while Tuya holds a backlog
    assert watch.told == []
    watch.idle(BACK + MARGIN)  # none came: what was pushed before Tuya's retention of the first receive is gone
    assert watch.gap_end() == BACK - RETENTION
    assert watch.told == [(1, BACK + MARGIN)]


def test_an_empty_first_receive_is_no_gap_when_the_backlog_then_shows_tuya_kept_everything(watch: Watch) -> None:
    watch.idle(BACK)
    watch.committed(BACK + timedelta(seconds=1), STOPPED + timedelta(seconds=1), BACK)
    watch.idle(BACK + timedelta(seconds=2))
    watch.idle(BACK + timedelta(seconds=2) + MARGIN)
    assert watch.gaps() == []


def test_a_broker_unreachable_on_a_quiet_stream_records_its_gap(watch: Watch) -> None:
    # The empty receives before the outage do not count towards the quiet after it: they said nothing of what Tuya
    # deleted while the worker could not reach it.
    oldest = BACK - RETENTION + timedelta(minutes=1)
    watch.committed(BACK, oldest, oldest)
    watch.idle(BACK + timedelta(seconds=1))  # then the broker went away for three hours
    resumed = BACK + timedelta(hours=3)
    watch.clock.now = resumed
    watch.watcher.on_connected()
    watch.idle(resumed)
    watch.idle(resumed + MARGIN)
    assert (BACK - MARGIN, resumed - RETENTION) in watch.gaps()  # beside the gap of the restart at BACK


@pytest.mark.parametrize("every", [timedelta(seconds=1), timedelta(seconds=10)])
def test_a_quiet_stream_counts_as_consumed_whatever_the_receive_timeout(watch: Watch, every: timedelta) -> None:
    # Empty receives come a receive timeout apart (BATCH_TIMEOUT_MS), which may exceed a short GAP_MARGIN.
    watcher = GapWatcher(
        watch.engine, SUBSCRIPTION, watch.metrics, retention=RETENTION, margin=timedelta(seconds=0.5),
        clock=watch.clock,
    )  # fmt: skip
    watcher.start()
    watcher.on_connected()
    for n in range(5):
        watch.clock.now = BACK + n * every
        watcher.on_idle()
    watcher.close()
    with watch.engine.connect() as connection:
        assert backfill.consumed_at(connection, SUBSCRIPTION) == BACK + 4 * every
    assert watch.gaps() != []  # the restart's, found once quiet for the margin


def test_the_watchdog_s_reconnects_of_a_quiet_stream_keep_it_consumed(watch: Watch) -> None:
    # Every TUYA_IDLE_RECONNECT (here 2 min, under the margin of 5) the runner reconnects a quiet stream, at once or
    # after a failed try a second long: that is no outage, and the quiet goes on counting.
    watch.idle(BACK)  # the restart's gap, once quiet for the margin
    for second in range(1, 3 * 3600):
        if second % 120 == 0:
            watch.clock.now = BACK + timedelta(seconds=second)
            watch.watcher.on_connected()
        watch.idle(BACK + timedelta(seconds=second))
    gaps = watch.gaps()
    watch.watcher.close()
    with watch.engine.connect() as connection:
        assert backfill.consumed_at(connection, SUBSCRIPTION) == BACK + timedelta(seconds=3 * 3600 - 1)
    assert len(gaps) == 1  # the restart's only


def test_a_commit_that_waited_for_the_database_counts_as_consumed_when_its_batch_was_received(watch: Watch) -> None:
    # Received just after the last consumption, committed once the database came back three hours later: nothing
    # more was received meanwhile, and Tuya deleted what was pushed in the first hour of it.
    received = STOPPED + timedelta(seconds=10)
    watch.committed(STOPPED + timedelta(hours=3), STOPPED, received, received_at=received)
    assert watch.gaps() == []
    next_oldest = STOPPED + timedelta(hours=1)  # the oldest Tuya still had
    watch.committed(STOPPED + timedelta(hours=3, seconds=1), next_oldest, next_oldest + timedelta(minutes=1))
    assert watch.gaps() == [(received - MARGIN, next_oldest)]


def test_a_commit_starts_the_quiet_again(watch: Watch) -> None:
    watch.idle(BACK)
    oldest = BACK - RETENTION + timedelta(minutes=1)  # messages Tuya kept a minute more, delivered late
    watch.committed(BACK + timedelta(minutes=4), oldest, oldest)
    watch.idle(BACK + timedelta(minutes=5))
    watch.idle(BACK + timedelta(minutes=9, seconds=59))
    assert watch.told == []  # quiet for 5 min 59 s in all, but not a margin since the commit
    watch.idle(BACK + timedelta(minutes=10))
    assert watch.told == [(1, BACK + timedelta(minutes=10))]


def test_the_open_gaps_gauge_falls_once_the_backfill_filled_the_gap(watch: Watch) -> None:
    oldest = BACK - RETENTION + timedelta(minutes=1)
    watch.committed(BACK, oldest, oldest + timedelta(minutes=2))
    assert watch.metrics.registry.get_sample_value("tuya_gaps_open") == 1
    with watch.engine.begin() as connection:  # the background backfill could read some devices only
        backfill.update_gap(connection, 1, BACK, status="partly_filled")
    watch.committed(BACK + timedelta(minutes=30), oldest, BACK)  # the next save, a heartbeat later
    assert watch.metrics.registry.get_sample_value("tuya_gaps_open") == 1  # not filled: still worth an alert
    with watch.engine.begin() as connection:  # a person's `backfill --gap 1` filled it
        backfill.update_gap(connection, 1, BACK, status="filled")
    watch.committed(BACK + timedelta(hours=1), oldest, BACK)
    assert watch.metrics.registry.get_sample_value("tuya_gaps_open") == 0
