"""Scale-out end to end: simulator → pulsar-lite → ``tuya-archiver bridge`` → Kafka (Tansu) → ``tuya-archiver process``
workers → PostgreSQL, with the real console script in subprocesses and ``kill -9`` where a crash is the point.

Expectations come from the topic itself: a reader reads back every published message with its Pulsar id, and the
decoder says which must land in ``messages`` and which in ``dead_letters``. Exactly once then means the archived ids
equal those sets (primary keys forbid doubles). Unit tests of the parts: tests/unit/test_bridge.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pulsar
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy import text

from models.records import DeadLetter, DeviceEvent, PulsarMessage
from streams.sim import EmbeddedBroker, Fleet, PublishReport, free_port, publish
from streams.sources.kafka import bootstrap_servers
from streams.store import migrate
from streams.store.engine import make_engine
from streams.tuya.decoder import MessageDecoder
from tests.fixtures.kafka import KafkaNames
from tests.unit.store.databases import scratch_postgres

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "tuya-archiver"
RULES = """\
rules:
  - id: online_seen
    triggers:
      - trigger: device_event
        event: online
    actions:
      - action: log
        message: "{{ trigger.device_id }} is online"
"""
_SYNCED = re.compile(r"Successfully synced group \S+ with generation (\d+)")
_ASSIGNED = re.compile(r"partitions \[([\d, ]*)\] assigned")
_SILENCE_FIRED = re.compile(r"rule fired rule=silent action=log device=(\S+)")
SILENCE_RULES = """\
rules:
  - id: silent
    triggers:
      - trigger: device_silent
        for: 1s
    actions:
      - action: log
        message: "{{ trigger.device_id }} is silent"
"""


@dataclass(frozen=True)
class Expected:
    """What the topic holds, by Pulsar message id."""

    stored: frozenset[str]
    dead: frozenset[str]
    online: frozenset[str]  # messages that are a device's "online" event: each must fire the rule once


class Deployment:
    """The bridge and processors of one test, as subprocesses with logs; all of them are killed at the end."""

    def __init__(self, env: dict[str, str], logs: Path, kafka: KafkaNames) -> None:
        self.env = env
        self.logs = logs
        self.topic, self.group = kafka.topic, kafka.group
        self._topic = ["--topic", kafka.topic]
        self._group = ["--group", kafka.group]
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        command = [str(CLI), *args]
        if shutil.which("setpriv"):  # a crashed test run must not leave workers behind
            command = ["setpriv", "--pdeathsig", "KILL", "--", *command]
        with (self.logs / f"{name}.log").open("ab") as log:
            self._processes[name] = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def processor(self, name: str) -> None:
        self.start(name, "process", *self._topic, *self._group, "--web-port", str(free_port()))

    def bridge(self, name: str = "bridge") -> None:
        self.start(name, "bridge", *self._topic)

    def wait(self, name: str, timeout: float = 60) -> int:
        return self._processes[name].wait(timeout)

    def kill(self, name: str) -> None:
        process = self._processes[name]
        process.kill()
        process.wait()

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def batches(self, name: str) -> int:
        return self.log(name).count("batch received=")

    def owns(self, name: str) -> list[int]:
        """The partitions this processor was last assigned, from its log."""
        return [int(p) for p in _ASSIGNED.findall(self.log(name))[-1].split(",") if p]

    def generation(self, name: str) -> int | None:
        """The consumer-group generation this processor last synced, from its log."""
        synced = _SYNCED.findall(self.log(name))
        return int(synced[-1]) if synced else None

    def stop_all(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def database(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database at the schema's head, dropped afterwards."""
    with scratch_postgres(pg_url) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture
def deployment(pulsar_broker, kafka_broker, kafka_names, database, tmp_path) -> Iterator[Deployment]:
    access_id = f"s{uuid.uuid4().hex[:15]}"  # topic and subscription derive from it (pulsar-lite deletes no topic)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUYA_", "RULES_", "KAFKA_", "DATABASE_"))}
    env.update(
        TUYA_ACCESS_ID=access_id,
        TUYA_ACCESS_KEY=ACCESS_KEY,
        TUYA_PULSAR_URL=pulsar_broker.url,
        KAFKA_URL=kafka_broker.url,
        DATABASE_URL=database,
        METRICS_PORT="0",
        RULES_FILE="",
        BATCH_SIZE="500",
        SCALE_TEST_RULES=str(rules),
    )
    deployed = Deployment(env, tmp_path, kafka_names)
    try:
        yield deployed
    finally:
        deployed.stop_all()


def _messages(count: int) -> list:
    clock = itertools.count(1_700_000_000_000, 10)
    fleet = Fleet(ACCESS_KEY, 60, clock=lambda: next(clock), seed=23)
    return list(fleet.messages(count, corrupt=0.01))


def _topic(deployed: Deployment) -> str:
    return f"persistent://{deployed.env['TUYA_ACCESS_ID']}/out/event"


@contextlib.contextmanager
def publishing(deployed: Deployment, count: int, rate: float | None = None) -> Iterator[Callable[[], PublishReport]]:
    """Publish ``count`` messages in a background thread (paced by ``rate``); yields a function that waits for it.

    Unbatched: pulsar-lite gives messages of large producer batches colliding ids (same ledger, entry and batch
    index), which no archive keyed by message id could store apart.
    """
    reports: list[PublishReport] = []
    url = deployed.env["TUYA_PULSAR_URL"]
    thread = threading.Thread(
        target=lambda: reports.append(publish(url, _topic(deployed), _messages(count), rate=rate, batching=False))
    )
    thread.start()

    def finished() -> PublishReport:
        thread.join()
        assert reports and reports[0].failed == 0 and reports[0].count == count, reports
        return reports[0]

    try:
        yield finished
    finally:
        thread.join()


def expected(deployed: Deployment, count: int) -> Expected:
    """Read the topic back (a non-durable reader) and decode each message under its real Pulsar id.

    Reads until ``count`` distinct ids: pulsar-lite may hand a reader some messages twice while the topic is being
    consumed (streams/sim/broker.py), and a repeat must not stand in for the messages at the end of the topic.
    """
    client = pulsar.Client(deployed.env["TUYA_PULSAR_URL"], logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn))
    decoder = MessageDecoder(ACCESS_KEY)
    stored, dead, online = set(), set(), set()
    try:
        reader = client.create_reader(_topic(deployed), pulsar.MessageId.earliest)
        while len(stored) + len(dead) < count:
            msg = reader.read_next(timeout_millis=10_000)
            mid = msg.message_id()
            message_id = f"{mid.ledger_id()}:{mid.entry_id()}:{mid.partition()}:{mid.batch_index()}"
            message = PulsarMessage(
                payload=msg.data(), properties=msg.properties(), message_id=message_id, topic=msg.topic_name()
            )
            result = decoder.decode(message)
            if isinstance(result, DeadLetter):
                dead.add(message_id)
                continue
            stored.add(message_id)
            if any(isinstance(r, DeviceEvent) and r.event == "online" for r in result.records):
                online.add(message_id)
    finally:
        client.close()
    return Expected(frozenset(stored), frozenset(dead), frozenset(online))


def _ids(database: str, query: str) -> list[str]:
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            return list(connection.scalars(text(query)))
    finally:
        engine.dispose()


def archived(database: str) -> int:
    return len(_ids(database, "select message_id from messages union all select message_id from dead_letters"))


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:  # a hang guard, not a speed check
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def assert_exactly_once(deployed: Deployment, want: Expected) -> None:
    total = len(want.stored) + len(want.dead)
    wait_until(lambda: archived(deployed.env["DATABASE_URL"]) >= total, 60, f"{total} archived messages")
    time.sleep(1.0)  # anything doubled or extra would have arrived by now
    stored = _ids(deployed.env["DATABASE_URL"], "select message_id from messages")
    dead = _ids(deployed.env["DATABASE_URL"], "select message_id from dead_letters")
    assert len(stored) == len(set(stored)) and set(stored) == want.stored
    assert len(dead) == len(set(dead)) and set(dead) == want.dead


def start_two_processors(deployed: Deployment) -> None:
    """Start p1 and p2 and wait until both joined one generation of the group, so that each owns partitions."""
    deployed.processor("p1")
    deployed.processor("p2")

    def joined() -> bool:
        generations = {deployed.generation("p1"), deployed.generation("p2")}
        return None not in generations and len(generations) == 1

    wait_until(joined, 60, "both processors in one group generation")


def test_two_processors_store_every_message_exactly_once(deployment):
    with publishing(deployment, 4000) as published:
        published()
    want = expected(deployment, 4000)
    assert want.dead, "the traffic should include corrupt messages"
    start_two_processors(deployment)
    deployment.bridge()
    assert_exactly_once(deployment, want)
    assert deployment.batches("p1") > 0 and deployment.batches("p2") > 0, "both processors should have had work"


def test_each_processor_s_clock_fires_the_rules_of_the_devices_its_partitions_receive(deployment):
    # A processor that caught up first fired the timers and silences of devices another was still reading the
    # backlog of. The topic has 6 partitions, made beforehand, not the processors' 12: ownership is the topic's.
    rules = Path(deployment.env["SCALE_TEST_RULES"]).with_name("silence.yaml")
    rules.write_text(SILENCE_RULES, encoding="utf-8")
    deployment.env["RULES_FILE"] = str(rules)
    asyncio.run(_create_topic(deployment, 6))  # as the README says to on a cluster, beforehand
    start_two_processors(deployment)
    deployment.bridge()
    with publishing(deployment, 2000) as published:
        published()
    assert_exactly_once(deployment, expected(deployment, 2000))
    devices = set(_ids(deployment.env["DATABASE_URL"], "select device_id from devices"))
    owners = {name: deployment.owns(name) for name in ("p1", "p2")}
    assert sorted(p for partitions in owners.values() for p in partitions) == list(range(6))

    def fired() -> dict[str, list[str]]:
        """Device → the processors that fired its silence (the fleet's clocks stopped in 2023: silent once stored)."""
        by: dict[str, list[str]] = {}
        for name in owners:
            for device in _SILENCE_FIRED.findall(deployment.log(name)):
                by.setdefault(device, []).append(name)
        return by

    wait_until(lambda: set(fired()) >= devices, 60, "every device's silence fired")
    placed = asyncio.run(_placed(deployment, devices))
    assert {device: names for device, names in fired().items() if len(names) > 1} == {}
    wrong = {device: names[0] for device, names in fired().items() if placed[device] not in owners[names[0]]}
    assert wrong == {}


async def _create_topic(deployed: Deployment, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(deployed.env["KAFKA_URL"]))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(deployed.topic, partitions, 1)])
    finally:
        await admin.close()


async def _placed(deployed: Deployment, keys: set[str]) -> dict[str, int]:
    """The partition of the bridge's topic each of ``keys`` was placed on."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(deployed.env["KAFKA_URL"]), enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(deployed.topic, p) for p in sorted(consumer.partitions_for_topic(deployed.topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        placed: dict[str, int] = {}
        while not keys <= placed.keys():
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), timeout=60)  # a hang guard
            placed.update((r.key.decode(), r.partition) for records in batches.values() for r in records)
        return placed
    finally:
        await consumer.stop()


def _kill_one_processor_mid_run(deployed: Deployment, count: int) -> Expected:
    start_two_processors(deployed)
    deployed.bridge()
    with publishing(deployed, count, rate=800) as published:
        wait_until(lambda: deployed.batches("p1") > 0 and deployed.batches("p2") > 0, 60, "both processors working")
        deployed.kill("p1")
        killed_at = archived(deployed.env["DATABASE_URL"])
        published()
    assert killed_at < count, "the kill should land mid-run"
    return expected(deployed, count)


def test_a_killed_processors_partitions_move_to_the_other_exactly_once(deployment):
    assert_exactly_once(deployment, _kill_one_processor_mid_run(deployment, 6000))


def test_a_killed_bridge_restarts_without_losing_a_message(deployment, tmp_path):
    with EmbeddedBroker(tmp_path / "pulsar", log_path=tmp_path / "pulsar.log") as broker:
        deployment.env["TUYA_PULSAR_URL"] = broker.url
        with publishing(deployment, 20000) as published:
            published()
        deployment.processor("p1")
        wait_until(lambda: deployment.generation("p1") is not None, 60, "the processor in its group")
        deployment.bridge("bridge")
        wait_until(lambda: deployment.batches("bridge") >= 2, 60, "the bridge forwarding")
        deployment.kill("bridge")
        # pulsar-lite, unlike Pulsar, keeps the consumer of a connection that the SIGKILL reset, with the messages it
        # had in flight, and refuses the next "consumer 0" (a known pulsar-lite bug): a restart makes it forget them.
        broker.restart()
        deployment.bridge("bridge-restarted")
        assert_exactly_once(deployment, expected(deployment, 20000))
    assert deployment.batches("bridge") < 40, "the kill should land mid-run"
    assert deployment.batches("bridge-restarted") > 0
    # The processor created the topic before the bridge started: the bridge said it had, at every start.
    assert "created kafka topic" not in deployment.log("bridge") + deployment.log("bridge-restarted")


def test_a_processor_error_that_is_not_transient_stops_it_without_acknowledging(deployment):
    with publishing(deployment, 6000) as published:
        published()
    deployment.processor("p1")
    deployment.bridge()
    wait_until(lambda: archived(deployment.env["DATABASE_URL"]) >= 1000, 60, "a sixth of the traffic")
    engine = make_engine(deployment.env["DATABASE_URL"])
    try:
        with engine.begin() as connection:  # a store that fails in a way no retry mends (a bug, a wrong schema)
            for table in ("status_values", "status_recent"):
                connection.execute(text(f"alter table {table} rename to {table}_elsewhere"))
        assert deployment.wait("p1") != 0
        with engine.begin() as connection:
            for table in ("status_values", "status_recent"):
                connection.execute(text(f"alter table {table}_elsewhere rename to {table}"))
    finally:
        engine.dispose()
    assert "Crashed reason=UndefinedTable" in deployment.log("p1")
    deployment.processor("p1-restarted")
    assert_exactly_once(deployment, expected(deployment, 6000))


def test_rules_fire_once_per_triggering_message_across_workers(deployment):
    deployment.env["RULES_FILE"] = deployment.env["SCALE_TEST_RULES"]
    want = _kill_one_processor_mid_run(deployment, 5000)
    assert want.online, "the traffic should include online events"
    assert_exactly_once(deployment, want)
    fired = _ids(deployment.env["DATABASE_URL"], "select message_id from commands where rule_id = 'online_seen'")
    assert len(fired) == len(set(fired)) and set(fired) == want.online
    resent = _ids(deployment.env["DATABASE_URL"], "select idempotency_key from commands where attempts > 1")
    assert resent == []


def test_a_bounded_processor_handles_its_messages_and_leaves_the_rest_to_the_next(deployment):
    with publishing(deployment, 2000) as published:
        published()
    want = expected(deployment, 2000)
    deployment.bridge()

    def forwarded() -> int:
        return sum(int(n) for n in re.findall(r"batch received=(\d+)", deployment.log("bridge")))

    wait_until(lambda: forwarded() >= 2000, 60, "the bridge forwarding every message")
    # its first batch holds up to BATCH_SIZE (500) messages: it handles 100 of them, and acknowledges no more
    deployment.start("p1", "process", "--topic", deployment.topic, "--group", deployment.group,
                     "--web-port", str(free_port()), "--max-messages", "100")  # fmt: skip
    assert deployment.wait("p1", 120) == 0
    assert archived(deployment.env["DATABASE_URL"]) == 100
    assert "handled 100 messages: ending the bounded run" in deployment.log("p1")
    deployment.processor("p2")  # the same group: it starts after the last acknowledged message
    assert_exactly_once(deployment, want)
