"""Benchmark: the worker end to end (broker → decode → store → commit → ack) into SQLite and PostgreSQL, next to
three consumers measured in the same run on the same backlog.

- floor: a bare ``pulsar-client`` consumer with the worker's consumer settings (Failover, batch receive, individual
  acks) that does nothing with the messages; best of 3 rounds.
- the worker's ``PulsarSource`` alone: the floor plus copying each message into a ``PulsarMessage``.
- SDK-style: what Tuya's official Python SDK does per message (SPEC.md §2): ``receive()`` one message, stdlib JSON
  and base64, a new pycryptodome cipher (``AES.new`` for the ``em`` property's mode), decrypt, ``json.loads`` the
  plaintext, ``acknowledge``. It stores nothing. (The SDK's ECB path leaves the padding on, SPEC.md §2.4, so JSON
  parsing fails; this one strips it by the last byte, as the Go SDK does.)
- the worker as ``tuya-archiver run`` builds it (``streams.wiring.worker``: default settings, so its commits run in
  a writer process, streams.writer), into a fresh SQLite file (WAL, ``synchronous=NORMAL``) and a fresh PostgreSQL
  database on TEST_DATABASE_URL's server (``make bench`` starts it with fsync=off and synchronous_commit=off; the
  line says what the server runs with), each migrated to head first. Skipped for PostgreSQL when TEST_DATABASE_URL
  is not set.
- SQLite alone: the SQL the SQLite worker runs for the same seeded fleet, on rows built batch by batch outside the
  timing (tests.bench.store.sqlite_alone): the ceiling of any worker that stores into SQLite, on this machine. Twice:
  the history in its wide format (tests.bench.wide), committing every 1,000 messages with SQLite's default cache
  (the store before the writer process and the narrow format), and the history's narrow format committing as often
  as the SQLite worker did in this run with the cache it uses: their ratio is what the two saved.
  Each of the two runs twice, alternated, and the best round counts: a single round each, minutes apart, moved the
  ratio by a fifth between runs of the benchmark.
- PostgreSQL's binary COPY of the same messages and history rows (tests.bench.store.postgres_floor), the least any
  PostgreSQL worker must do; and PostgreSQL alone (tests.bench.store.postgres_alone): the SQL the PostgreSQL worker
  runs, latest-state upserts included, committing as often as it did, on rows built outside the timing. Each twice,
  alternated, the best round counting.

Each worker line ends with issue 17's targets, each a ratio to its ceiling (a worker's ratio also split in two: the
rate of its writer's transactions while they ran, from its tuya_commit_seconds, and their share of the run), and the
archive's bytes on disk per status value: as drained, and once its messages are past KEEP_MESSAGES (history_bytes),
with the share of the history's tables (the rest, latest state and devices, does not grow with the history).

Traffic: BENCH_WORKER_MESSAGES (default 200,000) status reports of 5 items from a 10,000-device fleet, half AES-GCM,
half AES-ECB, published unbatched to an embedded pulsar-lite before any timing (see traffic.publish_backlog). The
floor, source and SDK-style consumers read one topic, each from the earliest message on a subscription of its own;
each worker has a topic of its own (its subscription name is fixed by the access id). Every consumer is timed from
connect to close, which includes subscribing and closing (a few ms). CPU is per message: this process (all threads,
pulsar-client's included) with the worker's writer process, and the broker's. For each worker, that CPU is split
by where it ran (its consuming thread, its other threads, its writer process, the broker, the rest of the machine:
PostgreSQL's server) and set against the machine's cores: the rate at which they would all be busy at that cost.
Afterwards the rows in ``messages`` and ``status_values`` are counted.

Run alone with ``python -m tests.bench.worker``; ``make bench`` runs it with the other benchmarks.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pulsar
from Crypto.Cipher import AES
from sqlalchemy import text
from sqlalchemy.engine import Engine

from models.records import PulsarMessage
from streams import wiring
from streams.heap import settle_heap
from streams.metrics import WorkerMetrics
from streams.runner import Runner, RunSummary
from streams.settings import Settings, load_settings
from streams.sim import EmbeddedBroker
from streams.sources.pulsar import PulsarSource, topic_name
from streams.store import migrate
from streams.store.drivers import PostgresDriver
from streams.store.engine import CACHE_KIB, PAGE_BYTES, make_engine
from streams.store.retention import POLICIES, purge_older
from streams.tuya.decoder import Decoded, MessageDecoder
from tests.bench.store import (
    HistoryKeys,
    Spent,
    floor_rows,
    postgres_alone,
    postgres_floor,
    postgres_settings,
    sqlite_alone,
    sqlite_statements,
    store_writes,
    wide_history,
)
from tests.bench.traffic import (
    ACCESS_KEY,
    cpu_seconds,
    fleet_messages,
    fleet_stream,
    machine_cpu_seconds,
    new_access_id,
    publish_backlog,
    pulsar_broker,
)
from tests.bench.wide import WIDE
from tests.unit.store.databases import NARROW, scratch_postgres

COUNT = int(os.environ.get("BENCH_WORKER_MESSAGES", "200000"))
DEVICES = 10_000
ITEMS = 5
FLOOR_ROUNDS = 3
ALONE_ROUNDS = 2  # of each ceiling ("SQLite alone", binary COPY, "PostgreSQL alone"); the best counts
IDLE_S = 30.0  # a consumer gives up after this long without a message (only if messages went missing)
SWEEP_S = 2.0  # the untimed run after a worker's timed one ends after this long without a message
BACKLOG = 10_000 * 6 * 60 * 2  # 10,000 devices reporting every 10 s for 2 hours: 7.2 M messages
# Issue 17's targets, each a ratio to a ceiling measured in the same run.
ALONE_TARGET = 0.8  # worker → SQLite against SQLite alone running the worker's SQL with its commits
SQL_TARGET = 1.3  # SQLite alone with the worker's commits, cache and history format against the store's before
COPY_TARGET = 0.5  # worker → PostgreSQL against binary COPY of its messages and history rows
BACKLOG_TARGET_MIN = 12.0
BYTES_TARGET = 60  # bytes on disk per status value, everything included
# The store's commit policy before the writer process: one transaction per received batch, SQLite's default cache
# and page size (and the history's wide format: tests.bench.wide).
BEFORE_COMMIT = 1_000
BEFORE_CACHE_KIB = 2_000
BEFORE_PAGE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Drain:
    """One consumer draining the backlog: wall seconds from connect to close, and the CPU seconds used meanwhile."""

    name: str
    seconds: float
    handled: int  # messages received and acknowledged
    cpu: float  # this process, every thread, and its writer process
    broker_cpu: float
    thread_cpu: float  # the thread that ran the consumer (a worker's: receive, decode, rows, acks)
    writer_cpu: float  # the processes this one reaped meanwhile: a worker's writer process
    machine_cpu: float  # every core of the machine (for PostgreSQL, its server too)

    @property
    def rate(self) -> float:
        return self.handled / self.seconds

    def cpu_us(self, seconds: float) -> float:
        return seconds / max(self.handled, 1) * 1e6


def measure(name: str, broker: EmbeddedBroker, drain: Callable[[], int]) -> Drain:
    """Time ``drain`` (which returns the number of messages it handled) with this process's and the broker's CPU."""
    pid = broker.pid or 0
    start = _cpu_now(pid)
    wall = time.perf_counter()
    handled = drain()
    seconds = time.perf_counter() - wall
    own, broker_cpu, thread, reaped, machine = (end - begun for end, begun in zip(_cpu_now(pid), start, strict=True))
    return Drain(name, seconds, handled, own, broker_cpu, thread, reaped, machine)


def _cpu_now(broker_pid: int) -> tuple[float, float, float, float, float]:
    """CPU seconds so far: this process with the children it reaped (a worker's writer process, once it ended), the
    broker, this thread, those children alone, and the whole machine."""
    times = os.times()
    reaped = times.children_user + times.children_system
    return (
        times.user + times.system + reaped,
        cpu_seconds(broker_pid),
        time.thread_time(),
        reaped,
        machine_cpu_seconds(),
    )


def worker_settings(access_id: str, pulsar_url: str, database_url: str) -> Settings:
    """The worker's settings for the loopback broker; no ``.env`` is read and no rules are loaded."""
    return load_settings(
        _env_file=None, tuya_access_id=access_id, tuya_access_key=ACCESS_KEY, tuya_pulsar_url=pulsar_url,
        database_url=database_url, rules_file="", metrics_port=0,
    )  # fmt: skip


# --- the consumers next to the worker ---------------------------------------------------------------------------


def _drain_batches(receive: Callable[[], Sequence[Any]], ack: Callable[[Sequence[Any]], None]) -> int:
    received, last_arrival = 0, time.monotonic()
    while received < COUNT:
        batch = receive()
        if batch:
            ack(batch)
            received += len(batch)
            last_arrival = time.monotonic()
        elif time.monotonic() - last_arrival > IDLE_S:
            break
    return received


def bare_consumer(url: str, topic: str, subscription: str, settings: Settings) -> int:
    """The floor: batch receive and individual acks, as the worker's source subscribes, and nothing else."""
    client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        consumer = client.subscribe(
            topic, subscription, consumer_type=pulsar.ConsumerType.Failover,
            initial_position=pulsar.InitialPosition.Earliest,
            receiver_queue_size=max(1000, settings.batch_size * 2),  # as PulsarSource sizes it
            batch_receive_policy=pulsar.ConsumerBatchReceivePolicy(settings.batch_size, -1, settings.batch_timeout_ms),
        )  # fmt: skip

        def ack(batch: Sequence[pulsar.Message]) -> None:
            for message in batch:
                consumer.acknowledge(message)

        return _drain_batches(consumer.batch_receive, ack)
    finally:
        client.close()


def source_only(url: str, topic: str, subscription: str, settings: Settings) -> int:
    """The worker's PulsarSource with nothing behind it: receive into PulsarMessage values, ack."""
    source = PulsarSource(
        url, access_id=settings.tuya_access_id or "", access_key=ACCESS_KEY, topic=topic, subscription=subscription,
        batch_size=settings.batch_size, batch_timeout_ms=settings.batch_timeout_ms,
    )  # fmt: skip
    source.connect()
    try:
        return _drain_batches(source.receive_batch, lambda batch: source.ack([r.handle for r in batch]))
    finally:
        source.close()


def sdk_decode(data: bytes, properties: dict[str, str], access_key: str) -> Any:
    """One message as Tuya's Python SDK decodes it: the key cut from the secret and a new cipher for each message."""
    envelope = json.loads(data.decode("utf-8"))
    raw = base64.b64decode(envelope["data"])
    key = access_key[8:24].encode("utf-8")
    if properties.get("em") == "aes_gcm":
        plaintext = AES.new(key, AES.MODE_GCM, nonce=raw[:12]).decrypt_and_verify(raw[12:-16], raw[-16:])
    else:
        padded = AES.new(key, AES.MODE_ECB).decrypt(raw)
        plaintext = padded[: -padded[-1]]
    return json.loads(plaintext.decode("utf-8"))


def sdk_style(url: str, topic: str, subscription: str) -> int:
    """The SDK's loop: ``receive()`` one message at a time with the client's default queue, decode it, ack it."""
    client = pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    try:
        consumer = client.subscribe(
            topic, subscription, consumer_type=pulsar.ConsumerType.Failover,
            initial_position=pulsar.InitialPosition.Earliest,
        )  # fmt: skip
        received = 0
        while received < COUNT:
            try:
                message = consumer.receive(timeout_millis=int(IDLE_S * 1000))
            except pulsar.Timeout:
                break
            sdk_decode(message.data(), message.properties(), ACCESS_KEY)
            consumer.acknowledge(message)
            received += 1
        return received
    finally:
        client.close()


# --- the worker --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stored:
    """What the timed run's summary says, what a second, untimed run found left over, and the rows afterwards."""

    run: RunSummary  # received counts deliveries, redeliveries included; batches counts commits
    leftover: RunSummary
    messages: int
    status_rows: int
    bytes: int  # the database on disk afterwards, everything included
    history_bytes: int  # the same once the messages are past KEEP_MESSAGES: deleted, and the space given back
    status_bytes: int  # of history_bytes: the history's tables with their indexes (the rest does not grow with it)
    commit_s: float  # the timed run's transactions, as the writer timed them (its tuya_commit_seconds)

    @property
    def commit_size(self) -> int:
        """Messages per transaction in the timed run, on average (the writer commits batches together)."""
        return round(self.run.received / max(self.run.batches, 1))


def run_worker(name: str, broker: EmbeddedBroker, database_url: str, access_id: str) -> tuple[Drain, Stored]:
    """Migrate the database, build the worker as ``tuya-archiver run`` does, time ``run(max_messages=COUNT)``.

    The run stops at COUNT deliveries; a redelivered message would leave another one unread, so a second worker
    then reads whatever is left (until nothing comes for SWEEP_S seconds), untimed.
    """
    settings = worker_settings(access_id, broker.url, database_url)
    setup = make_engine(database_url)
    try:
        migrate.upgrade(setup)
    finally:
        setup.dispose()
    engine = wiring.archive_engine(settings)
    rule_set = wiring.rules(settings)
    runs: list[RunSummary] = []

    def drain(runner: Runner) -> int:
        runs.append(runner.run(max_messages=COUNT, idle_timeout=IDLE_S))
        return runs[0].received

    metrics = WorkerMetrics()
    try:
        runner = wiring.worker(settings, engine, metrics, rule_set)
        settle_heap()  # as `tuya-archiver run` does before its loop
        timed = measure(name, broker, partial(drain, runner))
        runs.append(wiring.worker(settings, engine, WorkerMetrics(), rule_set).run(idle_timeout=SWEEP_S))
        with engine.connect() as connection:
            messages = connection.scalar(text("SELECT count(*) FROM messages")) or 0
            status_rows = connection.scalar(text("SELECT count(*) FROM device_status")) or 0
        size = archive_bytes(engine)
        history_size = history_bytes(engine)
        status_size = table_bytes(engine, *NARROW)
    finally:
        engine.dispose()
    commit_s = metrics.registry.get_sample_value("tuya_commit_seconds_sum") or 0.0
    return timed, Stored(runs[0], runs[1], messages, status_rows, size, history_size, status_size, commit_s)


def archive_bytes(engine: Engine) -> int:
    """The archive's size on disk: SQLite's file (its write-ahead log, up to about 160 MB between checkpoints, moved
    into it first, on a connection of its own: a checkpoint cannot truncate the log under an open read), or
    PostgreSQL's database."""
    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database or "")
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(file.stat().st_size for file in (path, Path(f"{path}-wal")) if file.exists())
    with engine.connect() as connection:
        return connection.scalar(text("SELECT pg_database_size(current_database())")) or 0


def history_bytes(engine: Engine) -> int:
    """The archive's size once its messages are older than KEEP_MESSAGES: deleted as the worker's expiry deletes
    them, then the whole database compacted (SQLite VACUUM, PostgreSQL VACUUM FULL), as a long-running archive is in
    its steady state, where new rows fill the space old ones left. On PostgreSQL that includes the dead versions of
    the latest-state rows the run updated, which autovacuum may or may not have reclaimed by then (25 to 121 MB of
    the 200,000-message run's other tables)."""
    purge_older(engine, POLICIES["messages"], datetime.now(UTC) + timedelta(days=1))
    if engine.dialect.name == "sqlite":
        with contextlib.closing(sqlite3.connect(engine.url.database or "", isolation_level=None)) as connection:
            connection.execute("VACUUM")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM FULL")
    return archive_bytes(engine)


def table_bytes(engine: Engine, *tables: str) -> int:
    """The pages of ``tables`` and of their indexes: SQLite's dbstat, or PostgreSQL's total relation size (TOAST
    included)."""
    query = text(
        "SELECT sum(pgsize) FROM dbstat JOIN sqlite_master m ON m.name = dbstat.name WHERE m.tbl_name = :t"
        if engine.dialect.name == "sqlite"
        else "SELECT pg_total_relation_size(CAST(:t AS regclass))"
    )
    with engine.connect() as connection:
        return sum(connection.scalar(query, {"t": table}) or 0 for table in tables)


# --- the run ------------------------------------------------------------------------------------------------------


def decoded_batches(size: int, count: int = COUNT) -> Iterator[list[Decoded]]:
    """The backlog's first ``count`` messages decoded, ``size`` at a time (made as they are asked for, outside any
    timing)."""
    messages = fleet_stream(count, devices=DEVICES, items=ITEMS, mix={"status": 1.0})
    decoder = MessageDecoder(ACCESS_KEY)
    for start in range(0, count, size):
        pulled = enumerate(itertools.islice(messages, size), start)
        decoded = [
            decoder.decode(PulsarMessage(payload=m.payload, properties=m.properties, message_id=f"1:{n}:-1:-1",
                                         topic="bench"))
            for n, m in pulled
        ]  # fmt: skip
        yield [item for item in decoded if isinstance(item, Decoded)]


def sqlite_ceiling(
    folder: str, commit: int, cache_kib: int, name: str, *, wide: bool = False, spent: Spent | None = None
) -> float:
    """Seconds SQLite alone takes to run the worker's SQL for the backlog, ``commit`` messages a transaction with a
    page cache of ``cache_kib``: the same seeded fleet, turned into rows batch by batch outside the timing
    (tests.bench.store.sqlite_alone). No SQLite worker committing so can be faster. ``wide``: the history in the
    format before the narrow one (tests.bench.wide), with the store's statements and SQLite's page size of that time."""
    history = wide_history if wide else HistoryKeys().writes
    batches = (
        writes for batch in decoded_batches(commit) for writes in sqlite_statements([batch], history, before=wide)
    )
    tables = WIDE if wide else None
    page_bytes = BEFORE_PAGE_BYTES if wide else None
    return sqlite_alone(Path(folder) / f"alone-{name}.db", batches, cache_kib, tables, page_bytes, spent)


def copy_floor(server_url: str) -> float:
    """Seconds psycopg's binary COPY takes to write the backlog's messages and history rows (batches of 1,000, a
    commit each) into a fresh database with the archive's tables: the least any PostgreSQL worker must do."""
    rows = floor_rows(list(decoded_batches(BEFORE_COMMIT)), PostgresDriver.time)
    with scratch_postgres(server_url) as url:
        return postgres_floor(url, rows)


def postgres_ceiling(server_url: str, commit: int, spent: Spent | None = None) -> float:
    """Seconds PostgreSQL alone takes to run the worker's SQL for the backlog, ``commit`` messages a transaction, in a
    fresh database (tests.bench.store.postgres_alone): COPY of the history plus the latest state's upserts, which
    the COPY floor leaves out. No PostgreSQL worker committing so can be faster."""
    history = HistoryKeys().writes
    batches = (store_writes(batch, PostgresDriver.time, history) for batch in decoded_batches(commit))
    with scratch_postgres(server_url) as url:
        return postgres_alone(url, batches, spent)


@dataclass
class Results:
    floors: list[Drain]
    others: list[Drain]
    stored: dict[str, Stored]
    postgres_note: str | None = None
    # "before" and "now" (see BEFORE_COMMIT and sqlite_ceiling): seconds of each round
    sqlite_alone_s: dict[str, list[float]] | None = None
    copy_s: list[float] | None = None  # binary COPY, each round
    postgres_alone_s: list[float] | None = None  # PostgreSQL alone committing as the worker did, each round
    # where SQLite alone's and PostgreSQL alone's time went, committing as the worker did (every round's)
    sqlite_spent: Spent = field(default_factory=Spent)
    postgres_spent: Spent = field(default_factory=Spent)

    @property
    def floor(self) -> Drain:
        return min(self.floors, key=lambda drain: drain.seconds)

    def by_name(self, name: str) -> Drain | None:
        return next((drain for drain in self.others if drain.name == name), None)


def publish_topics(broker: EmbeddedBroker, postgres: bool) -> dict[str, str]:
    """Access ids by use (reference, sqlite, postgresql), each topic holding the same COUNT messages.

    The messages are built here and freed once published: kept alive, their million objects would be scanned by
    every full garbage collection of the workers timed next (about 7 % of their time), which a deployed worker
    does not carry.
    """
    messages = fleet_messages(COUNT, devices=DEVICES, items=ITEMS, mix={"status": 1.0})
    mq_env = worker_settings("x", broker.url, "sqlite://").tuya_mq_env
    access_ids = {use: new_access_id() for use in ("reference", "sqlite", "postgresql")[: 3 if postgres else 2]}
    for access_id in access_ids.values():
        publish_backlog(broker.url, topic_name(access_id, mq_env), messages)
    return access_ids


def run_all(server_url: str | None) -> Results:
    """Every measurement on one broker; the floor's rounds spread over the run (the machines are noisy)."""
    results = Results([], [], {})
    with pulsar_broker() as broker, tempfile.TemporaryDirectory(prefix="bench-worker-") as folder:
        access_ids = publish_topics(broker, postgres=server_url is not None)
        reference = worker_settings(access_ids["reference"], broker.url, "sqlite://")
        topic = topic_name(access_ids["reference"], reference.tuya_mq_env)

        def floor_round(n: int) -> None:
            results.floors.append(
                measure("floor", broker, partial(bare_consumer, broker.url, topic, f"f{n}", reference))
            )

        floor_round(1)
        results.others.append(measure("source", broker, partial(source_only, broker.url, topic, "source", reference)))
        results.others.append(measure("sdk", broker, partial(sdk_style, broker.url, topic, "sdk")))
        floor_round(2)
        sqlite_url = f"sqlite:///{folder}/archive.db"
        drain, results.stored["sqlite"] = run_worker("sqlite", broker, sqlite_url, access_ids["sqlite"])
        results.others.append(drain)
        if server_url is not None:
            results.postgres_note = postgres_settings(server_url)
            with scratch_postgres(server_url) as url:
                drain, results.stored["postgresql"] = run_worker("postgresql", broker, url, access_ids["postgresql"])
            results.others.append(drain)
        for n in range(3, FLOOR_ROUNDS + 1):
            floor_round(n)
        commit = results.stored["sqlite"].commit_size
        results.sqlite_alone_s = {"before": [], "now": []}
        for n in range(ALONE_ROUNDS):  # alternated, so that a slow minute of the machine does not decide a ratio
            results.sqlite_alone_s["before"].append(
                sqlite_ceiling(folder, BEFORE_COMMIT, BEFORE_CACHE_KIB, f"before-{n}", wide=True)
            )
            results.sqlite_alone_s["now"].append(
                sqlite_ceiling(folder, commit, CACHE_KIB, f"now-{n}", spent=results.sqlite_spent)
            )
        if server_url is not None and "postgresql" in results.stored:
            commit = results.stored["postgresql"].commit_size
            results.copy_s, results.postgres_alone_s = [], []
            for _ in range(ALONE_ROUNDS):  # alternated, as SQLite's
                results.copy_s.append(copy_floor(server_url))
                results.postgres_alone_s.append(postgres_ceiling(server_url, commit, results.postgres_spent))
    return results


LABELS = {
    "floor": f"floor: bare pulsar-client, batch receive + ack (best of {FLOOR_ROUNDS})",
    "source": "worker's PulsarSource alone (receive, PulsarMessage, ack)",
    "sdk": "SDK-style: receive, AES.new per message, json.loads, ack",
    "sqlite": "worker → SQLite (WAL, synchronous=NORMAL)",
    "postgresql": "worker → PostgreSQL (settings below)",
}
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def print_table(results: Results) -> None:
    floor = results.floor
    print(f"  {'consumer':<60}{'msg/s':>9}{'time/floor':>12}   CPU µs/msg: ours  broker")
    for drain in [floor, *results.others]:
        print(
            f"  {LABELS[drain.name]:<60}{drain.rate:>9,.0f}{drain.seconds / floor.seconds:>11.2f}x"
            f"{drain.cpu_us(drain.cpu):>18.1f}{drain.cpu_us(drain.broker_cpu):>8.1f}"
        )
    print(f"  floor rounds: {_rates([drain.rate for drain in results.floors])} msg/s")
    source = results.by_name("source")
    workers = [drain for drain in results.others if drain.name in NAMES]
    if source is not None and workers:
        beyond = (f"{NAMES[w.name]} {w.cpu_us(w.cpu) - source.cpu_us(source.cpu):,.0f}" for w in workers)
        print(f"  worker CPU µs/msg beyond the source alone (decode, store, commit): {', '.join(beyond)}")
    for worker in workers:
        print_cpu_budget(worker)
    if results.postgres_note is None:
        print("  PostgreSQL: skipped (TEST_DATABASE_URL is not set; make bench starts it)")
    else:
        print(f"  PostgreSQL server: {results.postgres_note}")


def print_cpu_budget(drain: Drain) -> None:
    """Where a worker's CPU went, a message at a time, and the most the machine's cores allow at that cost: the
    rate at which CPU, not waiting, would be the limit (every core busy the whole run)."""
    others = drain.cpu - drain.thread_cpu - drain.writer_cpu
    rest = drain.machine_cpu - drain.cpu - drain.broker_cpu
    server = " (PostgreSQL's server)" if drain.name == "postgresql" else ""
    total = drain.cpu_us(drain.machine_cpu)
    cores = os.cpu_count() or 1
    ceiling = cores * 1e6 / total
    busy = drain.machine_cpu / drain.seconds
    print(
        f"  {NAMES[drain.name]} worker's CPU a message: its consuming thread {drain.cpu_us(drain.thread_cpu):.0f} "
        f"(receive, decode, rows, acks), its other threads {drain.cpu_us(others):.0f} (pulsar-client's, mostly), "
        f"its writer process {drain.cpu_us(drain.writer_cpu):.0f}, the broker {drain.cpu_us(drain.broker_cpu):.0f}, "
        f"the rest of the machine {drain.cpu_us(rest):.0f}{server}\n    = {total:.0f} µs; {cores} cores fully busy "
        f"would do {ceiling:,.0f} msg/s at that cost, the run did {drain.rate:,.0f} ({drain.rate / ceiling:.2f}x: "
        f"{busy:.2f} of {cores} cores busy)"
    )


def print_checks(results: Results) -> None:
    """Stored rows against the messages published (every id distinct: unbatched), and any consumer that fell short."""
    for drain in [*results.floors, *results.others]:
        if drain.handled != COUNT:
            print(f"  WARNING: {LABELS[drain.name]} handled {drain.handled:,} of {COUNT:,} messages")
    for name, stored in results.stored.items():
        line = f"{stored.messages:,} messages, {stored.status_rows:,} status rows"
        if (stored.messages, stored.status_rows) == (COUNT, COUNT * ITEMS):
            print(f"  stored by the {NAMES[name]} worker: {line} (all {COUNT:,} published, {ITEMS} items each)")
        else:
            print(f"  WARNING: the {NAMES[name]} worker stored {line}; published {COUNT:,} × {ITEMS} items")
        run, leftover = stored.run, stored.leftover
        if run.stored != run.received or run.dead_letters or leftover.received:
            print(
                f"  WARNING: the timed {NAMES[name]} run had {run.received:,} deliveries: {run.stored:,} new, "
                f"{run.dead_letters:,} dead letters, {run.received - run.stored - run.dead_letters:,} already stored; "
                f"{leftover.received:,} more came after it ({leftover.stored:,} new)"
            )


def _rates(rates: list[float]) -> str:
    return " / ".join(f"{rate:,.0f}" for rate in rates)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_targets(results: Results) -> None:
    """Issue 17's targets, each against the ceiling it is measured by, measured in this run."""
    sdk, sqlite, postgres = results.by_name("sdk"), results.by_name("sqlite"), results.by_name("postgresql")
    for drain in (sqlite, postgres):
        if drain is not None and sdk is not None:
            speedup = drain.rate / sdk.rate
            print(
                f"  {NAMES[drain.name]:<10} end to end {drain.rate:>9,.0f} msg/s = {speedup:4.2f}x "
                "the SDK-style consumer"
            )
    stored = results.stored.get("sqlite")
    now = None  # SQLite alone committing as the worker did
    if results.sqlite_alone_s is not None and stored is not None:
        rounds = {key: [COUNT / seconds for seconds in each] for key, each in results.sqlite_alone_s.items()}
        before, now = max(rounds["before"]), max(rounds["now"])
        print(
            f"  SQLite alone, the worker's SQL for the same fleet on rows prepared in advance (the most any SQLite "
            f"worker committing so can do here; best of {ALONE_ROUNDS} rounds, alternated):\n"
            f"    {before:>9,.0f} msg/s committing every {BEFORE_COMMIT:,} messages with SQLite's default 2 MB cache "
            f"and {BEFORE_PAGE_BYTES // 1024} KiB pages, and the history's wide format (the store before the writer "
            f"process and the narrow format; rounds "
            f"{_rates(rounds['before'])})\n"
            f"    {now:>9,.0f} msg/s committing every {stored.commit_size:,} messages (the worker's average "
            f"transaction in this run) with a {CACHE_KIB // 1024} MB cache, {PAGE_BYTES // 1024} KiB pages and the "
            f"narrow format (rounds "
            f"{_rates(rounds['now'])})"
        )
        print(f"      where its time went, by statement: {results.sqlite_spent.shares()}")
        _target("SQL per message", now / before, SQL_TARGET, "the store before the writer process and narrow format")
        if sqlite is not None:
            _target("worker → SQLite", sqlite.rate / now, ALONE_TARGET, "SQLite alone committing as it does")
            print_writer_share(sqlite, stored, now, "SQLite alone")
    pg_stored = results.stored.get("postgresql")
    if postgres is not None and pg_stored is not None and results.copy_s and results.postgres_alone_s:
        print_postgres_targets(postgres, pg_stored, results.copy_s, results.postgres_alone_s)
        print(f"    where PostgreSQL alone's time went, by statement: {results.postgres_spent.shares()}")
    if sqlite is not None:
        minutes = BACKLOG / sqlite.rate / 60
        judged = verdict(minutes <= BACKLOG_TARGET_MIN)
        print(
            f"  a backlog of {BACKLOG / 1e6:.1f} M messages (10,000 devices every 10 s for 2 h) drains in "
            f"{minutes:.1f} min at the SQLite rate (target <= {BACKLOG_TARGET_MIN:.0f} min: {judged})"
        )
        if now is not None:
            print(f"    at SQLite alone's rate, its ceiling, it would take {BACKLOG / now / 60:.1f} min")
    for name, kept in results.stored.items():
        values = max(kept.status_rows, 1)
        per_value = kept.bytes / values
        judged = verdict(per_value <= BYTES_TARGET)
        print(
            f"  {NAMES[name]:<10} on disk: {kept.bytes / 1e6:,.0f} MB for {kept.status_rows:,} status values = "
            f"{per_value:,.0f} bytes a value, everything included (target <= {BYTES_TARGET}: {judged})"
        )
        per_value = kept.history_bytes / values
        judged = verdict(per_value <= BYTES_TARGET)
        print(
            f"  {'':<10}   once its messages are past KEEP_MESSAGES (14 days; deleted, space given back): "
            f"{kept.history_bytes / 1e6:,.0f} MB = {per_value:,.0f} bytes a value (target <= {BYTES_TARGET}: {judged})"
        )
        rest = kept.history_bytes - kept.status_bytes
        print(
            f"  {'':<10}   of which the history's tables and their indexes {kept.status_bytes / values:,.0f} "
            f"bytes a value; the other tables and the catalog {rest / 1e6:,.0f} MB, most of it not growing with the "
            "history (latest state, devices)"
        )


def print_postgres_targets(drain: Drain, stored: Stored, copy_s: list[float], alone_s: list[float]) -> None:
    """Target 3 against binary COPY, and against the ceiling of the worker's own SQL: COPY leaves out the latest
    state's upserts, which every PostgreSQL worker runs too."""
    copies, alones = [COUNT / seconds for seconds in copy_s], [COUNT / seconds for seconds in alone_s]
    copy, alone = max(copies), max(alones)
    print(
        f"  PostgreSQL binary COPY of the messages and status rows alone: {copy:,.0f} msg/s (best of {ALONE_ROUNDS} "
        f"rounds, alternated with the next line's: {_rates(copies)})\n"
        f"  PostgreSQL alone, the worker's SQL for the same fleet on rows prepared in advance, committing every "
        f"{stored.commit_size:,} messages\n    (the most any PostgreSQL worker committing so can do here): "
        f"{alone:,.0f} msg/s = {alone / copy:.2f}x binary COPY (rounds {_rates(alones)})"
    )
    _target("worker → PostgreSQL", drain.rate / copy, COPY_TARGET, "binary COPY")
    print_writer_share(drain, stored, copy, "binary COPY")
    print(
        f"    against its own SQL's ceiling: {drain.rate / alone:.2f}x PostgreSQL alone; the target asks for "
        f"{COPY_TARGET * copy / alone:.2f}x of it"
    )


def print_writer_share(drain: Drain, stored: Stored, ceiling: float, against: str) -> None:
    """A worker's ratio to its ceiling as the product of two: how fast its writer's transactions ran beside the
    worker and the broker (the machine's two cores shared by three processes), and how much of the run the writer
    spent in them (the rest it waited for batches, or the run was connecting and closing)."""
    if not stored.commit_s:
        return  # no transaction timed (the run failed before one)
    committing = COUNT / stored.commit_s
    busy = stored.commit_s / drain.seconds
    print(
        f"    = the writer's transactions at {committing:,.0f} msg/s while they ran ({committing / ceiling:.2f}x "
        f"{against}; the store's SQL and merge, with the worker and the broker running beside them) "
        f"× {busy:.2f}, their share of the run ({stored.commit_s:.1f} of {drain.seconds:.1f} s)"
    )


def _target(what: str, ratio: float, target: float, against: str) -> None:
    print(f"  target: {what} >= {target}x {against}: {ratio:.2f}x, {verdict(ratio >= target)}")


def main() -> None:
    server_url = os.environ.get("TEST_DATABASE_URL")
    settings = worker_settings("x", "pulsar://127.0.0.1:1", "sqlite://")
    print(
        f"worker end to end: {COUNT:,} status reports × {ITEMS} items, {DEVICES:,} devices, half GCM / half ECB, "
        f"published unbatched\n  to pulsar-lite {version('pulsar-lite')} on loopback before timing; each consumer "
        f"drains a subscription of its own, timed from connect\n  to close; worker batches of {settings.batch_size:,} "
        f"messages or {settings.batch_timeout_ms} ms,\n  commits in a writer process "
        f"({settings.writer_in_flight} batches in flight; the batches waiting and those arriving within "
        f"{settings.commit_wait_ms:,} ms\n  committed together, up to {settings.commit_max_messages:,} messages)"
    )
    results = run_all(server_url)
    print_table(results)
    print_checks(results)
    print_targets(results)


if __name__ == "__main__":
    main()
