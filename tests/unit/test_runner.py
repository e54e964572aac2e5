"""streams/runner.py with a scripted source and store: ack only after commit, retries, stop, bounds, watchdog.

The real broker and databases are exercised in tests/integration/test_worker.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from models.records import PulsarMessage
from streams.backoff import Backoff
from streams.errors import DatabaseUnavailable
from streams.metrics import WorkerMetrics
from streams.pipeline import Pipeline
from streams.runner import Runner
from streams.sources.pulsar import Received
from streams.store.rows import sqlite_time
from streams.store.sql import BatchCounts
from streams.tuya.decoder import MessageDecoder
from tests.factories import message_from_vector


class ScriptedSource:
    """Hands out scripted batches (an Exception entry raises), records connects and acks in a shared log."""

    def __init__(self, batches: list, log: list) -> None:
        self.batches = list(batches)
        self.log = log

    def connect(self) -> None:
        self.log.append(("connect",))

    def receive_batch(self) -> list[Received]:
        item = self.batches.pop(0) if self.batches else []
        if isinstance(item, Exception):
            raise item
        if callable(item):
            return item()
        return item

    def ack(self, handles: Sequence[Any]) -> None:
        self.log.append(("ack", list(handles)))

    def close(self) -> None:
        self.log.append(("close",))


class Unreachable(ScriptedSource):
    """A ScriptedSource whose connects fail while ``down(attempt)`` says so (attempts counted from 1)."""

    def __init__(self, batches: list, log: list, down: Callable[[int], bool]) -> None:
        super().__init__(batches, log)
        self.attempts = 0
        self._down = down

    def connect(self) -> None:
        self.attempts += 1
        if self._down(self.attempts):
            raise ConnectionError("broker unreachable")
        super().connect()


class ScriptedStore:
    def __init__(self, log: list, failures: int = 0) -> None:
        self.log = log
        self.failures = failures

    time = staticmethod(sqlite_time)

    def write_prepared(self, batch, *, extra=None):
        if self.failures:
            self.failures -= 1
            self.log.append(("commit_failed",))
            raise DatabaseUnavailable("database is down", retry_after=0.5)
        ids = [m.message_id for m in batch.messages] + [letter[0] for letter in batch.dead_letters]
        self.log.append(("commit", ids))
        return BatchCounts(messages_inserted=len(batch.messages), dead_letters=len(batch.dead_letters))

    def settle_when_due(self) -> int:
        return 0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _received(vectors, index: int, message_id: str) -> Received:
    return Received(message_from_vector(vectors["envelopes"][index], message_id=message_id), handle=message_id)


def _bad(message_id: str) -> Received:
    msg = PulsarMessage(payload=b"{not json", properties={}, message_id=message_id, topic="t")
    return Received(msg, handle=msg.message_id)


def _runner(vectors, source, store, clock=None, **kwargs) -> Runner:
    clock = clock or FakeClock()
    pipeline = Pipeline(MessageDecoder(vectors["pulsar_auth"]["access_key"]), store, clock=lambda: datetime.now(UTC))
    return Runner(source, pipeline, WorkerMetrics(clock=clock), clock=clock, sleep=clock.sleep, **kwargs)


def test_batch_is_acked_individually_only_after_commit(vectors):
    log: list = []
    source = ScriptedSource([[_received(vectors, 0, "1:0:0:-1"), _bad("1:1:0:-1")]], log)
    _runner(vectors, source, ScriptedStore(log)).run(max_messages=2)
    assert log == [
        ("connect",),
        ("commit", ["1:0:0:-1", "1:1:0:-1"]),
        ("ack", ["1:0:0:-1", "1:1:0:-1"]),
        ("close",),
    ]


def test_database_down_acks_nothing_and_retries_same_batch_with_backoff(vectors):
    log: list = []
    clock = FakeClock()
    source = ScriptedSource([[_received(vectors, 0, "1:0:0:-1")]], log)
    _runner(vectors, source, ScriptedStore(log, failures=3), clock).run(max_messages=1)
    assert [e[0] for e in log] == [
        "connect",
        "commit_failed",
        "commit_failed",
        "commit_failed",
        "commit",
        "ack",
        "close",
    ]
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_a_batch_committed_after_retries_tells_observers_when_it_was_received(vectors):
    # The gap watch measures a pause from there: while the database was down nothing more was received, and Tuya
    # went on deleting what nobody acknowledged.
    log: list = []
    clock = FakeClock()
    wall = [datetime(2026, 12, 6, 6, 0, tzinfo=UTC)]

    class Outage(ScriptedStore):
        def write_prepared(self, batch, *, extra=None):
            wall[0] += timedelta(hours=1)  # each failed try, an hour later
            return super().write_prepared(batch, extra=extra)

    class Observer:
        def __init__(self) -> None:
            self.received_at: list[datetime | None] = []

        def on_connected(self) -> None:
            pass

        def on_committed(self, result) -> None:
            self.received_at.append(result.received_at)

        def on_idle(self) -> None:
            pass

    observer = Observer()
    source = ScriptedSource([[_received(vectors, 0, "1:0:0:-1")]], log)
    pipeline = Pipeline(MessageDecoder(vectors["pulsar_auth"]["access_key"]), Outage(log, failures=3))
    runner = Runner(
        source, pipeline, WorkerMetrics(clock=clock), clock=clock, sleep=clock.sleep, observers=[observer],
        wall_clock=lambda: wall[0],
    )  # fmt: skip
    runner.run(max_messages=1)
    assert observer.received_at == [datetime(2026, 12, 6, 6, 0, tzinfo=UTC)]


def test_observers_are_told_of_every_connect(vectors):
    # The gap watch starts its quiet again there: the empty receives before a broker outage say nothing of it.
    log: list = []

    class Told:
        def __init__(self) -> None:
            self.events: list[str] = []

        def on_connected(self) -> None:
            self.events.append("connected")

        def on_committed(self, result) -> None:
            self.events.append("committed")

        def on_idle(self) -> None:
            self.events.append("idle")

    told = Told()
    source = ScriptedSource([[], ConnectionError("broker gone"), [_received(vectors, 0, "1:0:0:-1")]], log)
    _runner(vectors, source, ScriptedStore(log), observers=[told]).run(max_messages=1)
    assert told.events == ["connected", "idle", "connected", "committed"]

    # The watchdog's reconnects too, at once or after a failed try: the gap watch tells them apart by its clock.
    clock, told = FakeClock(), Told()

    def two_seconds_of_nothing() -> list[Received]:
        clock.now += 2.0
        return []

    quiet = [two_seconds_of_nothing, two_seconds_of_nothing, [_received(vectors, 0, "1:0:0:-1")]]
    source = Unreachable(quiet, log, down=lambda attempt: attempt == 3)  # the second watchdog's first try fails
    _runner(vectors, source, ScriptedStore(log), clock, observers=[told], idle_reconnect_s=1.0).run(max_messages=1)
    assert told.events == ["connected", "idle", "connected", "idle", "connected", "committed"]


def test_stop_during_batch_commits_and_acks_it_then_exits(vectors):
    log: list = []
    runner_box: list[Runner] = []

    def batch_then_stop() -> list[Received]:
        runner_box[0].stop()
        return [_received(vectors, 2, "1:2:0:-1")]

    source = ScriptedSource([batch_then_stop, [_received(vectors, 3, "1:3:0:-1")]], log)
    runner = _runner(vectors, source, ScriptedStore(log))
    runner_box.append(runner)
    summary = runner.run()
    assert ("ack", ["1:2:0:-1"]) in log
    assert all("1:3:0:-1" not in str(entry) for entry in log)
    assert summary.received == 1 and log[-1] == ("close",)


def test_stop_while_database_down_leaves_batch_unacked(vectors):
    log: list = []
    runner_box: list[Runner] = []

    class StopOnFailure(ScriptedStore):
        def write_prepared(self, *args, **kwargs):
            runner_box[0].stop()
            return super().write_prepared(*args, **kwargs)

    source = ScriptedSource([[_received(vectors, 0, "1:0:0:-1")]], log)
    runner = _runner(vectors, source, StopOnFailure(log, failures=5))
    runner_box.append(runner)
    runner.run()
    assert not [e for e in log if e[0] == "ack"]


def test_max_messages_leaves_the_rest_of_a_batch_unacked(vectors):
    log: list = []
    batch = [_received(vectors, i, f"1:{i}:0:-1") for i in range(4)]
    summary = _runner(vectors, ScriptedSource([batch], log), ScriptedStore(log)).run(max_messages=3)
    assert ("ack", ["1:0:0:-1", "1:1:0:-1", "1:2:0:-1"]) in log
    assert summary.received == 3


def test_idle_timeout_ends_a_bounded_run(vectors):
    log: list = []
    clock = FakeClock()

    def empty() -> list[Received]:
        clock.now += 0.5
        return []

    summary = _runner(vectors, ScriptedSource([empty] * 10, log), ScriptedStore(log), clock).run(idle_timeout=2.0)
    assert summary.received == 0
    assert clock.now == pytest.approx(2.0)


def test_a_bounded_run_ends_when_the_broker_stays_unreachable_for_its_idle_timeout(vectors):
    log: list = []
    clock = FakeClock()

    source = Unreachable([], log, down=lambda _attempt: True)
    summary = _runner(vectors, source, ScriptedStore(log), clock).run(idle_timeout=5.0)
    assert (summary.unreachable, summary.received) == (True, 0)
    assert clock.sleeps == [1.0, 2.0, 2.0]  # the last try when the 5 s are up


def test_a_stop_ends_the_wait_for_the_broker_without_another_try(vectors):
    log: list = []
    first_try = threading.Event()
    source = Unreachable([], log, down=lambda attempt: first_try.set() or True)
    pipeline = Pipeline(MessageDecoder(vectors["pulsar_auth"]["access_key"]), ScriptedStore(log))
    runner = Runner(source, pipeline, WorkerMetrics())  # the real sleep: a backoff of 1 s, then 2, 4, … 60
    running = threading.Thread(target=runner.run)
    running.start()
    assert first_try.wait(10)
    runner.stop()  # as SIGTERM does
    running.join(30)
    assert not running.is_alive() and source.attempts == 1


def test_the_default_sleep_ends_when_the_run_is_stopped(vectors):
    pipeline = Pipeline(MessageDecoder(vectors["pulsar_auth"]["access_key"]), ScriptedStore([]))
    runner = Runner(ScriptedSource([], []), pipeline, WorkerMetrics())
    napping = threading.Thread(target=runner._sleep, args=(3600.0,))  # a backoff as long as an hour
    napping.start()
    runner.stop()
    napping.join(30)  # a hang guard: the sleep looks at the stop twice a second
    assert not napping.is_alive()


def test_an_unbounded_run_keeps_trying_to_reach_the_broker(vectors):
    log: list = []
    clock = FakeClock()
    source = Unreachable([[_received(vectors, 0, "1:0:0:-1")]], log, down=lambda attempt: attempt <= 8)
    summary = _runner(vectors, source, ScriptedStore(log), clock).run(max_messages=1)
    assert (summary.unreachable, summary.received) == (False, 1)
    assert clock.sleeps == [1, 2, 4, 8, 16, 32, 60, 60]


class TickingPipeline(Pipeline):
    """A pipeline whose clock ticks (``for:`` timers, silent devices) are logged, not run."""

    def __init__(self, vectors, store, log: list) -> None:
        super().__init__(MessageDecoder(vectors["pulsar_auth"]["access_key"]), store, clock=lambda: datetime.now(UTC))
        self._log = log

    def tick(self) -> None:
        self._log.append(("tick",))


@pytest.mark.parametrize(("full_batch", "ticked_after"), [(2, 2), (3, 1)])
def test_the_clock_waits_until_a_receive_gives_less_than_a_full_batch(vectors, full_batch, ticked_after):
    # A timer that came due while the worker was away must not fire before the backlog that may cancel it is read.
    log: list = []
    full = [_received(vectors, 0, "1:0:0:-1"), _received(vectors, 1, "1:1:0:-1")]
    source = ScriptedSource([full, [_received(vectors, 2, "1:2:0:-1")]], log)
    clock = FakeClock()
    runner = Runner(
        source, TickingPipeline(vectors, ScriptedStore(log), log), WorkerMetrics(clock=clock), clock=clock,
        sleep=clock.sleep, full_batch=full_batch,
    )  # fmt: skip
    runner.run(max_messages=3)
    kinds = [entry[0] for entry in log]
    assert kinds[: kinds.index("tick")].count("commit") == ticked_after


def test_a_full_batch_of_messages_published_just_now_reads_as_caught_up(vectors):
    # a busy stream may give nothing but full batches: the clock waited for ever, and no timer fired
    log: list = []
    now_ms = int(time.time() * 1000)
    full = [_received(vectors, i, f"1:{i}:0:-1") for i in range(2)]
    live = [Received(msgspec.structs.replace(r.message, publish_time_ms=now_ms), handle=r.handle) for r in full]
    source = ScriptedSource([live, [_received(vectors, 2, "1:2:0:-1")]], log)
    clock = FakeClock()
    runner = Runner(
        source, TickingPipeline(vectors, ScriptedStore(log), log), WorkerMetrics(clock=clock), clock=clock,
        sleep=clock.sleep, full_batch=2,
    )  # fmt: skip
    runner.run(max_messages=3)
    kinds = [entry[0] for entry in log]
    assert kinds[: kinds.index("tick")].count("commit") == 1


def test_watchdog_reconnects_after_idle_reconnect_seconds(vectors):
    log: list = []
    clock = FakeClock()

    def empty() -> list[Received]:
        clock.now += 10
        return []

    runner = _runner(vectors, ScriptedSource([empty] * 7, log), ScriptedStore(log), clock, idle_reconnect_s=30)
    runner.run(idle_timeout=70)
    assert clock.now == 70
    assert [e[0] for e in log].count("connect") == 3  # start, after 30 s, after 60 s


def test_broker_error_reconnects_with_exponential_backoff(vectors):
    log: list = []
    clock = FakeClock()
    batches = [ConnectionError("lost"), [_received(vectors, 0, "1:0:0:-1")]]
    source = Unreachable(batches, log, down=lambda attempt: 1 < attempt <= 4)
    summary = _runner(vectors, source, ScriptedStore(log), clock).run(max_messages=1)
    assert summary.received == 1
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_backoff_doubles_to_sixty_seconds_and_resets():
    backoff = Backoff()
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_a_batch_of_dead_letters_only_shows_its_lag(vectors):
    # A wrong key makes every message a dead letter: the lag must not read as caught up meanwhile.
    log: list = []
    clock = FakeClock()
    metrics = WorkerMetrics(clock=clock)
    pipeline = Pipeline(MessageDecoder(vectors["pulsar_auth"]["access_key"]), ScriptedStore(log))
    hour_ago_ms = int(time.time() * 1000) - 3_600_000
    late = PulsarMessage(
        payload=b"{not json", properties={}, message_id="1:0:0:-1", topic="t", publish_time_ms=hour_ago_ms
    )
    source = ScriptedSource([[Received(late, handle=late.message_id)]], log)
    Runner(source, pipeline, metrics, clock=clock, sleep=clock.sleep).run(max_messages=1)
    lag = metrics.registry.get_sample_value("tuya_push_to_commit_lag_seconds")
    assert lag is not None and lag >= 3_600  # an hour late, not 0


def test_dead_letters_are_counted_by_kind(vectors):
    log: list = []
    clock = FakeClock()
    metrics = WorkerMetrics(clock=clock)
    pipeline = Pipeline(MessageDecoder(vectors["pulsar_auth"]["access_key"]), ScriptedStore(log))
    source = ScriptedSource([[_bad("1:0:0:-1"), _received(vectors, 1, "1:1:0:-1")]], log)
    Runner(source, pipeline, metrics, clock=clock, sleep=clock.sleep).run(max_messages=2)
    value = metrics.registry.get_sample_value("tuya_dead_letters_total", {"error_kind": "bad_envelope_json"})
    assert value == 1
    assert metrics.registry.get_sample_value("tuya_messages_received_total") == 2
