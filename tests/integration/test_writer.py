"""The writer process (streams/writer): group commits, restarts, and every guarantee of one process kept with two.

Two levels: the worker's end of the writer (``WriterProcess``) driven directly against a real SQLite archive, where
the test chooses the exact moment of a crash; and ``tuya-archiver run`` on the real broker, where the writer and the
worker are killed with real signals.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, select

from models.records import PulsarMessage
from models.tables import Command, DeadLetter, Message, StatusRecent, StatusValue
from streams.errors import ConfigError
from streams.metrics import WorkerMetrics
from streams.pipeline import Pipeline
from streams.rules import RuleSet, load_rules
from streams.sim import Fleet
from streams.sources.pulsar import Received
from streams.store.engine import make_engine
from streams.store.sql import ArchiveStore
from streams.tuya import decoder as decoder_module
from streams.tuya.decoder import MessageDecoder
from streams.writer.child import Writer, WriterConfig
from streams.writer.frames import Stop, Write, encode
from streams.writer.process import WriterProcess
from streams.writer.runner import PipelinedRunner
from tests.integration.worker_harness import (
    ACCESS_KEY,
    ROOT,
    alive,
    archived,
    assert_exactly_once,
    child_pids,
    cli,
    fleet_messages,
    publish_all,
    run_worker,
    running_worker,
    unique_access_id,
    upgrade,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

OVERLOAD_RULE = """\
rules:
  - id: plug_off_when_overloaded
    triggers:
      - trigger: numeric_state
        device: {plug}
        code: cur_power
        above: 30000
    actions:
      - action: tuya.send_command
        commands: [{{code: switch_1, value: false}}]
"""


class Batches:
    """Prepared batches of one simulated plug's power reports, numbered like Pulsar message ids."""

    def __init__(self, database_url: str) -> None:
        self.fleet = Fleet(ACCESS_KEY, 1, clock=lambda: int(time.time() * 1000), seed=3)
        self._engine = make_engine(database_url)
        self._pipeline = Pipeline(MessageDecoder(ACCESS_KEY), ArchiveStore(self._engine))
        self._next = 0
        self._start_ms = int(time.time() * 1000)

    @property
    def plug(self) -> str:
        return self.fleet.devices[0].device_id

    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    def power(self, *watts_x10: int):
        """One prepared batch of :meth:`messages`."""
        return self._pipeline.prepare(self.messages(*watts_x10))

    def messages(self, *watts_x10: int) -> list[PulsarMessage]:
        """A report of ``cur_power`` per value, one millisecond apart, a second after the batch before (batches made
        within the same millisecond would interleave their reports by time)."""
        start = self._start_ms
        self._start_ms += 1000
        messages = []
        for offset, value in enumerate(watts_x10):
            sim = self.fleet.status(0, {"cur_power": value}, start + offset)
            message = PulsarMessage(payload=sim.payload, properties=sim.properties, message_id=self._id(), topic="t")
            messages.append(message)
        return messages

    def _id(self) -> str:
        self._next += 1
        return f"1:{self._next}:0:-1"

    def close(self) -> None:
        self._engine.dispose()


@pytest.fixture
def batches(sqlite_url) -> Iterator[Batches]:
    made = Batches(sqlite_url)
    yield made
    made.close()


def _config(
    database_url: str,
    rules_file: Path | None = None,
    commit_max: int = 5000,
    wait_s: float = 0.0,
    in_flight: int = 3,
    settle_every: int = 250_000,
) -> WriterConfig:
    rules = load_rules(rules_file) if rules_file else RuleSet()
    return WriterConfig(database_url, rules, commit_max, wait_s, in_flight, settle_every)


def _writer(database_url: str, *args: Any, **options: Any) -> WriterProcess:
    """A writer process not started yet (``_config``'s arguments)."""
    return WriterProcess(_config(database_url, *args, **options))


@contextlib.contextmanager
def _running(database_url: str, *args: Any, **options: Any) -> Iterator[WriterProcess]:
    """A started writer (``_config``'s arguments), closed on the way out."""
    writer = _writer(database_url, *args, **options)
    writer.start()
    try:
        yield writer
    finally:
        writer.close()


def _count(database_url: str, table) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(table)) or 0
    finally:
        engine.dispose()


def _send(writer: WriterProcess, prepared) -> None:
    writer.write(prepared.rows, prepared.news, prepared.now, 0)


def _reports(writer: WriterProcess, batches: int) -> list:
    reports: list = []
    deadline = time.monotonic() + 60
    while sum(report.batches for report in reports) < batches and time.monotonic() < deadline:
        reports += writer.committed(timeout=1.0)
    return reports


def test_batches_waiting_together_are_committed_in_one_transaction_up_to_the_limit(sqlite_url, batches):
    prepared = [batches.power(100, 200) for _ in range(3)]
    with _running(sqlite_url, commit_max=4) as writer:
        os.kill(writer.pid, signal.SIGSTOP)  # all three are waiting when it goes on
        for batch in prepared:
            _send(writer, batch)
        os.kill(writer.pid, signal.SIGCONT)
        reports = _reports(writer, 3)
    assert sorted(report.batches for report in reports) == [1, 2]  # 4 messages at most per transaction
    assert sorted(report.counts.messages_inserted for report in reports) == [2, 4]
    assert _count(sqlite_url, Message) == 6


def test_batches_arriving_within_the_commit_wait_are_committed_together_up_to_the_worker_s_in_flight(
    sqlite_url, batches
):
    """The group waits for more batches (an hour here) but not for batches the worker cannot send before this
    commit: it ends once it holds WRITER_IN_FLIGHT batches."""
    with _running(sqlite_url, wait_s=3600, in_flight=3) as writer:
        for _ in range(3):
            _send(writer, batches.power(100, 200))
        started = _reports(writer, 3)  # three waiting while the writer started up
        for _ in range(3):
            _send(writer, batches.power(100, 200))
            time.sleep(0.2)  # each arrives on its own, after the writer started waiting
        reports = _reports(writer, 3)
    assert [report.batches for report in started + reports] == [3, 3]
    assert _count(sqlite_url, Message) == 12


def test_the_commit_wait_ends_the_group_when_no_more_batches_come(sqlite_url, batches):
    with _running(sqlite_url, wait_s=0.3, in_flight=10) as writer:
        _send(writer, batches.power(100, 200))
        first = _reports(writer, 1)  # committed without the nine batches the worker may still send
        _send(writer, batches.power(300))
        second = _reports(writer, 1)
    assert [report.batches for report in first + second] == [1, 1]
    assert _count(sqlite_url, Message) == 3


def test_the_writer_settles_the_recent_values_once_enough_wait(sqlite_url, batches):
    with _running(sqlite_url, settle_every=5) as writer:
        _send(writer, batches.power(100, 200, 300))
        _reports(writer, 1)
        _send(writer, batches.power(400, 500))
        _reports(writer, 1)
        assert wait_for(lambda: _count(sqlite_url, StatusValue) == 5)  # settled after its reply
        _send(writer, batches.power(600))
        _reports(writer, 1)
    assert (_count(sqlite_url, StatusRecent), _count(sqlite_url, StatusValue)) == (1, 5)


def test_the_writer_commits_a_group_with_the_collector_paused_and_runs_it_again_after(sqlite_url, batches):
    """In this process, on a real archive: the collector's state seen as each transaction commits (streams.heap)."""
    worker_end, writer_end = (Connection(end.detach()) for end in socket.socketpair())
    for _ in range(2):
        prepared = batches.power(100, 200)
        worker_end.send_bytes(encode(Write(prepared.rows, None, prepared.now, 0)))
    worker_end.send_bytes(encode(Stop()))
    engine = make_engine(sqlite_url)
    collecting: list[bool] = []
    event.listen(engine, "commit", lambda connection: collecting.append(gc.isenabled()))
    try:
        Writer(writer_end, ArchiveStore(engine), engine, _config(sqlite_url)).run()
    finally:
        engine.dispose()
        worker_end.close()
        writer_end.close()
    assert collecting == [False]  # both batches in one transaction
    assert gc.isenabled()
    assert _count(sqlite_url, Message) == 4


def test_a_message_the_archive_refuses_is_a_dead_letter_and_the_rules_run_for_the_rest(sqlite_url, batches, tmp_path):
    """One transaction for the group, halved until the refused message stands alone (streams.store.isolate): it
    becomes a dead letter, fires nothing, and every other message is stored with its rules."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(OVERLOAD_RULE.format(plug=batches.plug))
    prepared = [batches.power(100, 200), batches.power(40_000, 300), batches.power(100, 50_000)]
    refused, fired = "1:3:0:-1", "1:6:0:-1"  # each crosses the rule's threshold
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.message_id = '{refused}' "
            "BEGIN SELECT RAISE(ABORT, 'refused by a test'); END"
        )
    try:
        with _running(sqlite_url, rules, in_flight=3) as writer:
            os.kill(writer.pid, signal.SIGSTOP)  # all three in one group
            for batch in prepared:
                _send(writer, batch)
            os.kill(writer.pid, signal.SIGCONT)
            reports = _reports(writer, 3)
        with engine.connect() as connection:
            letters = connection.execute(select(DeadLetter.message_id, DeadLetter.error_kind)).all()
            commands = connection.scalars(select(Command.message_id)).all()
    finally:
        engine.dispose()
    assert [report.batches for report in reports] == [3]
    [counts] = [report.counts for report in reports]
    assert (counts.messages_inserted, counts.rejected, counts.dead_letters) == (5, 1, 1)
    assert letters == [(refused, "rejected")]
    assert commands == [fired]
    assert _count(sqlite_url, Message) == 5


def test_stop_does_not_wait_out_the_commit_wait(sqlite_url, batches):
    writer = _writer(sqlite_url, wait_s=3600, in_flight=10)
    writer.start()
    _send(writer, batches.power(100, 200))
    reports: list = []
    stopping = threading.Thread(target=lambda: reports.extend(writer.stop()))
    stopping.start()
    stopping.join(60)  # the hour's wait would still be running
    assert not stopping.is_alive()
    assert [report.batches for report in reports] == [1]
    assert _count(sqlite_url, Message) == 2


def test_stop_sent_right_behind_a_batch_ends_the_writer_while_the_database_is_down(tmp_path, batches):
    # The writer reads the Stop ahead while it gathers its group; its retries must still see it.
    writer = _writer(f"sqlite:///{tmp_path}/no/such/folder/archive.db", wait_s=1.0, in_flight=10)
    writer.start()
    _send(writer, batches.power(100, 200))
    reports: list = []
    stopping = threading.Thread(target=lambda: reports.extend(writer.stop()))
    stopping.start()
    stopping.join(60)  # without the fix, it waited for a database that would never come back
    assert not stopping.is_alive() and reports == []


class OneBatch:
    """A source with one batch, handed out once the test releases it, then nothing: a quiet stream."""

    def __init__(self, messages: list[PulsarMessage]) -> None:
        self.released = threading.Event()
        self.empty_receives = 0
        self._batch = [Received(message, index) for index, message in enumerate(messages)]

    def connect(self) -> None:
        pass

    def receive_batch(self) -> list[Received]:
        self.released.wait()
        batch, self._batch = self._batch, []
        if not batch:
            self.empty_receives += 1
            time.sleep(0.01)
        return batch

    def ack(self, handles: Any) -> None:
        pass

    def close(self) -> None:
        pass


class Told:
    """An observer of the runner: what it was told, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_connected(self) -> None:
        pass  # not what these tests follow

    def on_committed(self, result: Any) -> None:
        self.events.append("committed")

    def on_idle(self) -> None:
        self.events.append("idle")


def test_a_quiet_stream_is_told_only_once_the_batches_in_flight_are_committed(sqlite_url, batches):
    """The gap watch takes a quiet stream for one consumed up to now: a batch still in flight would belie it."""
    source, told = OneBatch(batches.messages(100, 200)), Told()
    writer = _writer(sqlite_url)
    runner = PipelinedRunner(source, batches.pipeline, writer, WorkerMetrics(), in_flight=3, observers=[told])
    running = threading.Thread(target=runner.run, kwargs={"idle_timeout": 60})
    running.start()
    assert wait_for(lambda: writer.pid is not None)
    pid = writer.pid
    try:
        os.kill(pid, signal.SIGSTOP)  # the batch stays in flight
        source.released.set()
        assert wait_for(lambda: source.empty_receives >= 20)
        assert told.events == []
        os.kill(pid, signal.SIGCONT)
        assert wait_for(lambda: "idle" in told.events)
        assert told.events[0] == "committed"
    finally:
        os.kill(pid, signal.SIGCONT)
        source.released.set()
        runner.stop()
        running.join(60)
    assert _count(sqlite_url, Message) == 2


@pytest.mark.parametrize("in_flight", [1, 15])
def test_healthz_and_the_unacked_age_show_a_stuck_writer_and_recover_with_it(sqlite_url, batches, in_flight):
    # With one batch of 15 in flight the loop went on turning: /healthz said 200 and the age 0 for as long as the
    # database was down, past Tuya's two hours on a quiet stream.
    source, metrics = OneBatch(batches.messages(100, 200)), WorkerMetrics(stale_after_s=1.0)
    writer = _writer(sqlite_url)
    runner = PipelinedRunner(source, batches.pipeline, writer, metrics, in_flight=in_flight)
    running = threading.Thread(target=runner.run, kwargs={"idle_timeout": 60})
    running.start()
    assert wait_for(lambda: writer.pid is not None)
    pid = writer.pid
    try:
        os.kill(pid, signal.SIGSTOP)  # stuck, as on a lock or a database that does not answer
        source.released.set()
        assert wait_for(lambda: not metrics.healthy(), timeout=30)
        assert _gauge(metrics, "tuya_oldest_unacked_age_seconds") > 0
        os.kill(pid, signal.SIGCONT)
        assert wait_for(metrics.healthy, timeout=30)
        assert wait_for(lambda: _gauge(metrics, "tuya_oldest_unacked_age_seconds") == 0, timeout=30)
    finally:
        os.kill(pid, signal.SIGCONT)
        runner.stop()
        running.join(60)
    assert _count(sqlite_url, Message) == 2


def _gauge(metrics: WorkerMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def test_a_killed_writer_is_replaced_and_gets_every_batch_it_had_not_reported(sqlite_url, batches, tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(OVERLOAD_RULE.format(plug=batches.plug), encoding="utf-8")
    with _running(sqlite_url, rules_file) as writer:
        first = writer.pid
        os.kill(first, signal.SIGSTOP)  # it cannot commit: the two batches stay unreported
        _send(writer, batches.power(100, 31000))
        _send(writer, batches.power(100, 32000))
        os.kill(first, signal.SIGKILL)
        reports = _reports(writer, 2)
        assert writer.pid != first
    assert sum(r.batches for r in reports) == 2
    assert sum(r.counts.messages_inserted for r in reports) == 4
    assert _count(sqlite_url, Command) == 2  # one per edge


def test_the_writer_logs_to_the_file_the_worker_logs_to(sqlite_url, batches, tmp_path):
    rules_file, log_file = tmp_path / "rules.yaml", tmp_path / "demo.log"
    rules_file.write_text(OVERLOAD_RULE.format(plug=batches.plug), encoding="utf-8")
    config = dataclasses.replace(_config(sqlite_url, rules_file), log_file=str(log_file))
    writer = WriterProcess(config)
    writer.start()
    _send(writer, batches.power(100, 31000))
    assert sum(report.batches for report in writer.stop()) == 1
    assert "rule fired" in log_file.read_text(encoding="utf-8")  # the reactor runs in the writer process


class ReplacementDiesOnce(WriterProcess):
    """The first writer started again is killed at once (the out-of-memory killer striking twice)."""

    def __init__(self, config: WriterConfig) -> None:
        super().__init__(config)
        self.started = 0

    def start(self) -> None:
        super().start()
        self.started += 1
        if self.started == 2:
            os.kill(self.pid, signal.SIGKILL)
            self._process.wait()


def test_a_replacement_writer_that_dies_too_is_replaced_again_with_every_batch(sqlite_url, batches):
    writer = ReplacementDiesOnce(_config(sqlite_url))
    writer.start()
    try:
        first = writer.pid
        os.kill(first, signal.SIGSTOP)
        _send(writer, batches.power(100, 200))
        _send(writer, batches.power(100, 300))
        os.kill(first, signal.SIGKILL)
        reports = _reports(writer, 2)  # the re-send to the second writer broke its pipe: a third gets them
    finally:
        writer.close()
    assert (writer.started, sum(r.batches for r in reports)) == (3, 2)
    assert _count(sqlite_url, Message) == 4


class EveryReplacementDies(WriterProcess):
    """Every writer started again is killed at once, until ``spare`` is set (an out-of-memory killer that persists)."""

    def __init__(self, config: WriterConfig) -> None:
        super().__init__(config)
        self.started = 0
        self.spare = threading.Event()

    def start(self) -> None:
        super().start()
        self.started += 1
        if self.started > 1 and not self.spare.is_set():
            os.kill(self.pid, signal.SIGKILL)
            self._process.wait()


def test_a_stop_while_the_writer_is_being_replaced_ends_the_run_leaving_its_batches_unacknowledged(sqlite_url, batches):
    # The restart's backoff slept through a SIGTERM for as long as the writers kept dying, past a platform's 30 s.
    writer, acked = EveryReplacementDies(_config(sqlite_url)), []
    source = OneBatch(batches.messages(100, 200))
    source.ack = acked.extend  # type: ignore[method-assign]
    runner = PipelinedRunner(source, batches.pipeline, writer, WorkerMetrics(), in_flight=3)
    running = threading.Thread(target=runner.run, kwargs={"idle_timeout": 120})
    running.start()
    try:
        assert wait_for(lambda: writer.pid is not None)
        os.kill(writer.pid, signal.SIGKILL)  # before it commits: every replacement dies too
        source.released.set()
        assert wait_for(lambda: writer.started >= 3, timeout=30)
        runner.stop()
        running.join(60)  # a hang guard: the restarts went on, 4, 8, 16 … s apart, for as long as writers died
        assert not running.is_alive()
    finally:
        writer.spare.set()
        runner.stop()
        running.join(60)
    assert acked == []
    assert writer.pid is None


def test_memory_short_while_decoding_retries_the_batch_instead_of_ending_the_worker(sqlite_url, batches, monkeypatch):
    # the decoder's TransientError ended run(): one process retried it, two did not
    real, failures = decoder_module.normalize, []

    def short_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise MemoryError
        return real(*args, **kwargs)

    monkeypatch.setattr(decoder_module, "normalize", short_once)
    source, writer, acked = OneBatch(batches.messages(100, 200)), _writer(sqlite_url), []
    source.ack = acked.extend  # type: ignore[method-assign]
    runner = PipelinedRunner(source, batches.pipeline, writer, WorkerMetrics(), in_flight=3)
    running = threading.Thread(target=runner.run, kwargs={"idle_timeout": 120})
    running.start()
    try:
        source.released.set()
        assert wait_for(lambda: len(acked) == 2, timeout=30)
    finally:
        runner.stop()
        running.join(60)
    assert failures == [1] and _count(sqlite_url, Message) == 2


def _newer_schema(database_url: str) -> None:
    """A later migration ran: a revision this code does not know, and a constraint it does not fill."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffffffff'")
        connection.exec_driver_sql(
            "CREATE TRIGGER new_column BEFORE INSERT ON messages "
            "BEGIN SELECT RAISE(ABORT, 'NOT NULL constraint failed: messages.new_column'); END"
        )
    engine.dispose()


class Stream:
    """A source giving a batch of two reports every receive: a steady stream."""

    def __init__(self, batches: Batches) -> None:
        self._batches = batches
        self.acked: list[Any] = []

    def connect(self) -> None:
        pass

    def receive_batch(self) -> list[Received]:
        time.sleep(0.05)
        return [Received(message, message.message_id) for message in self._batches.messages(100, 200)]

    def ack(self, handles: Any) -> None:
        self.acked.extend(handles)

    def close(self) -> None:
        pass


def test_stop_reads_what_a_writer_that_died_reported_before_it_died(sqlite_url, batches):
    writer = _writer(sqlite_url)
    writer.start()
    try:
        _send(writer, batches.power(100, 200))
        assert wait_for(lambda: _count(sqlite_url, Message) == 2)  # committed, its report not read yet
        pid = writer.pid
        os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: not alive(pid))
        reports = writer.stop()
    finally:
        writer.close()
    assert sum(report.batches for report in reports) == 1  # dropped with the pipe: the batch was redelivered


def test_a_newer_schema_stops_the_worker_as_one_process_does_without_replacing_its_writer(sqlite_url, batches, caplog):
    # The writer's report of it was lost when the next batch found it gone, and a new writer, failing alike, was
    # started over and over (minutes with 15 batches in flight); then it stopped the worker as a bug, not saying
    # to upgrade.
    _newer_schema(sqlite_url)
    writer, source = _writer(sqlite_url), Stream(batches)
    runner = PipelinedRunner(source, batches.pipeline, writer, WorkerMetrics(), in_flight=15)
    with pytest.raises(ConfigError, match=r"database is at revision ffffffffffff, which this version .* does not know"):
        runner.run()
    assert source.acked == []
    assert "starting a new one" not in caplog.text


def test_a_batch_committed_before_the_writer_died_is_ignored_when_sent_again(sqlite_url, batches, tmp_path):
    """What the worker does after a writer died between its commit and its report: the same batch to a new writer."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(OVERLOAD_RULE.format(plug=batches.plug), encoding="utf-8")
    batch = batches.power(100, 31000)
    reports = []
    for _ in range(2):
        with _running(sqlite_url, rules_file) as writer:
            _send(writer, batch)
            reports += _reports(writer, 1)
    assert [(r.counts.messages_inserted, r.counts.duplicates) for r in reports] == [(2, 0), (0, 2)]
    assert _count(sqlite_url, Command) == 1


def test_stop_lets_the_writer_commit_what_it_was_sent_then_it_exits(sqlite_url, batches):
    writer = _writer(sqlite_url)
    writer.start()
    pid = writer.pid
    for _ in range(3):
        _send(writer, batches.power(100, 200, 300))
    reports = writer.stop()
    assert sum(report.batches for report in reports) == 3
    assert _count(sqlite_url, Message) == 9
    assert not alive(pid)


def test_stop_ends_a_writer_that_cannot_finish_within_its_wait_and_reports_nothing_of_it(sqlite_url, batches):
    writer = WriterProcess(_config(sqlite_url), stop_wait_s=1.0)
    writer.start()
    pid = writer.pid
    os.kill(pid, signal.SIGSTOP)  # its transaction held, as by a lock in the database
    _send(writer, batches.power(100, 200, 300))
    assert writer.stop() == []  # not left waiting: the batch is not reported, so nothing of it is acknowledged
    assert not alive(pid)
    assert _count(sqlite_url, Message) == 0


def test_the_writer_of_a_sqlite_archive_loads_no_library_it_does_not_use(sqlite_url, batches):
    """Each library is memory in a second process: pulsar-client (the worker's), cryptography (decoding is the
    worker's) and psycopg with libpq (PostgreSQL's) are not loaded by the writer of a SQLite archive."""
    with _running(sqlite_url) as writer:
        _send(writer, batches.power(100, 200))
        assert sum(report.batches for report in _reports(writer, 1)) == 1
        assert writer.pid is not None
        maps = Path(f"/proc/{writer.pid}/maps").read_text()
    assert "_sqlite3" in maps  # what it does use, so the look-up itself works
    for library in ("_pulsar", "cryptography", "psycopg", "libpq"):
        assert library not in maps


# --- the real worker on the real broker ------------------------------------------------------------------------------


def _writer_of(worker: subprocess.Popen[bytes]) -> int:
    """The worker's writer process (not one it killed and has not reaped yet)."""

    def running() -> list[int]:
        return [pid for pid in child_pids(worker.pid) if alive(pid)]

    assert wait_for(lambda: bool(running()), timeout=30)
    return running()[0]


def test_the_writer_killed_at_random_points_loses_nothing_and_stores_nothing_twice(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(20000, corrupt=0.005))
    # Settles every 5,000 values or so (about a thousand messages): kills land during settles too.
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, BATCH_SIZE="200", HISTORY_SETTLE_VALUES="5000")
    killed: list[int] = []
    with running_worker(env, "--idle-timeout", "5") as worker:
        for _ in range(3):  # each time the writer of the moment, once it committed something more
            stored = archived(sqlite_url).messages
            assert wait_for(lambda n=stored: archived(sqlite_url).messages > n, timeout=90)
            killed.append(_writer_of(worker))
            os.kill(killed[-1], signal.SIGKILL)
        _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert stderr.count(b"writer process ended (exit code -9)") == 3, stderr.decode()[-3000:]
    assert_exactly_once(sqlite_url, published)
    assert _count(sqlite_url, StatusValue) > 0  # settled, in between


def test_kill_9_of_the_worker_ends_its_writer(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    publish_all(pulsar_broker.url, access_id, fleet_messages(20000))
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, BATCH_SIZE="200")
    with running_worker(env, "--idle-timeout", "30") as worker:
        assert wait_for(lambda: archived(sqlite_url).messages > 0, timeout=60)
        writer = _writer_of(worker)
        worker.kill()
        worker.wait(timeout=10)
    assert wait_for(lambda: not alive(writer), timeout=30)


def test_ctrl_c_to_the_process_group_drains_the_writer_and_exits_zero(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(15000))
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, BATCH_SIZE="200")
    worker = subprocess.Popen(
        cli("run", "--idle-timeout", "30"), env=env, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert wait_for(lambda: archived(sqlite_url).messages > 0, timeout=60)
        writer = _writer_of(worker)
        os.killpg(worker.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the worker and its writer get it
        _, stderr = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert not alive(writer)
    assert b"writer process ended" not in stderr
    assert archived(sqlite_url).messages < published.valid
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert_exactly_once(sqlite_url, published)


def test_sigterm_while_postgres_is_down_exits_promptly_and_acknowledges_nothing_in_hand(
    pulsar_broker, private_postgres
):
    access_id = unique_access_id()
    url = private_postgres.url
    upgrade(url)
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(12000))
    env = worker_env(access_id, pulsar_broker.url, url, BATCH_SIZE="200")
    with running_worker(env, "--idle-timeout", "30") as worker:
        assert wait_for(lambda: archived(url).messages > 0, timeout=60)
        private_postgres.stop()
        time.sleep(3)  # the writer retries its transaction with backoff
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    private_postgres.start()
    assert worker.returncode == 0, stderr.decode()[-2000:]
    assert b"stopping while the database is down" in stderr
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert_exactly_once(url, published)


def test_without_the_writer_process_one_process_stores_each_once(pulsar_broker, sqlite_url):
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(3000, corrupt=0.01))
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, WRITER_PROCESS="false")
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"writer process started" not in result.stderr
    assert_exactly_once(sqlite_url, published)
