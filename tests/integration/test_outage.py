"""An outage longer than Tuya keeps messages, end to end: simulator → real pulsar-lite → the real ``tuya-archiver
run`` → SQLite, with the OpenAPI emulator's device logs holding everything the simulated devices reported
(partners: test_backfill.py for the backfill alone, tests/unit/backfill/ for the gap rule).

Tuya's retention is set to a few seconds (TUYA_MESSAGE_RETENTION), and the messages published while the worker is
down are acknowledged by another consumer of its subscription, as Tuya deletes them after its retention; the worker
must then find the gap, and its background backfill must fill it from the logs. The messages published just before
the worker is back wait longer than the retention, so the gap's window covers their values too: the backfill must
wait until the stream stored them, and skip them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random

import pulsar
import pytest
from sqlalchemy import create_engine, select

from models.records import DeadLetter, PulsarMessage, StatusReported
from models.tables import DeviceStatus, Gap
from streams.sim import Fleet, SimMessage
from streams.sim.broker import burn_consumer_ids
from streams.sources.pulsar import subscription_name, topic_name
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from streams.tuya.decoder import MessageDecoder
from streams.tuya.emulated_sim import sim_emulated_devices
from streams.tuya.emulator import Emulator
from tests.integration.worker_harness import (
    ACCESS_KEY,
    publish_all,
    run_worker,
    running_worker,
    unique_access_id,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

DEVICES = 8
RETENTION_S = 3


@dataclass
class Project:
    access_id: str
    database_url: str
    broker_url: str
    emulator: Emulator
    fleet: Fleet
    rng: Random

    def env(self, **extra: str) -> dict[str, str]:
        return worker_env(
            self.access_id,
            self.broker_url,
            self.database_url,
            TUYA_OPENAPI_URL=self.emulator.url,
            TUYA_MESSAGE_RETENTION=str(RETENTION_S),
            GAP_MARGIN="0.5",
            TUYA_API_RATE="1000",
            **extra,
        )

    def publish(self, count: int) -> set[tuple[str, str, datetime, object]]:
        """``count`` status reports, published and written into the devices' logs as Tuya would; their values."""
        now, messages = int(time.time() * 1000), []
        for i in range(count):  # a millisecond of its own each: a device never reports twice in one
            device = self.fleet.devices[i % DEVICES]
            messages.append(self.fleet.status(device, device.product.step(device.readings, self.rng), now + i))
        publish_all(self.broker_url, self.access_id, messages)
        return self._log(messages)

    def _log(self, messages: list[SimMessage]) -> set[tuple[str, str, datetime, object]]:
        decoder, values = MessageDecoder(ACCESS_KEY), set()
        for index, sim in enumerate(messages):
            message = PulsarMessage(payload=sim.payload, properties=sim.properties, message_id=str(index), topic="t")
            decoded = decoder.decode(message)
            assert not isinstance(decoded, DeadLetter)
            reports = [r for r in decoded.records if isinstance(r, StatusReported)]
            ms = lambda at: int(at.timestamp() * 1000)  # noqa: E731
            self.emulator.record_reports(reports[0].device_id, [(r.code, r.value, ms(r.reported_at)) for r in reports])
            values.update((r.device_id, r.code, r.reported_at, _hashable(r.value)) for r in reports)
        return values

    def drain(self) -> int:
        """Acknowledge everything waiting on the worker's subscription, as Tuya's deletion after 2 hours does."""
        client = pulsar.Client(self.broker_url)
        try:
            topic = topic_name(self.access_id, "event")
            burn_consumer_ids(client, topic)
            consumer = client.subscribe(
                topic, subscription_name(self.access_id), consumer_type=pulsar.ConsumerType.Failover
            )
            drained = 0
            while True:
                try:
                    message = consumer.receive(timeout_millis=2000)
                except pulsar.Timeout:
                    break
                consumer.acknowledge(message)
                drained += 1
            consumer.close()
            return drained
        finally:
            client.close()

    def archived(self) -> list[tuple[str, str, datetime, object, str]]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    select(
                        DeviceStatus.device_id,
                        DeviceStatus.code,
                        DeviceStatus.reported_at,
                        DeviceStatus.value,
                        DeviceStatus.source,
                    )
                )
                return [(d, c, at.replace(tzinfo=UTC), _hashable(v), s) for d, c, at, v, s in rows]
        finally:
            engine.dispose()

    def gaps(self) -> list[Gap]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return list(connection.execute(select(Gap)))
        finally:
            engine.dispose()


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


@pytest.fixture
def project(pulsar_broker, tmp_path: Path) -> Iterator[Project]:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    fleet = Fleet(ACCESS_KEY, DEVICES, clock=lambda: int(time.time() * 1000), seed=31)
    access_id = unique_access_id()
    with Emulator(access_id, ACCESS_KEY, devices=sim_emulated_devices(fleet.devices, now_s=int(time.time()))) as emu:
        yield Project(access_id, database_url, pulsar_broker.url, emu, fleet, Random(5))


def test_an_outage_longer_than_the_retention_is_found_and_filled_from_the_device_logs(project: Project) -> None:
    before = project.publish(120)
    first = run_worker(project.env(), "--idle-timeout", "2")
    assert first.returncode == 0, first.stderr.decode()
    lost = project.publish(150)  # the worker is down
    assert project.drain() == 150  # … and Tuya deletes them after its retention
    time.sleep(RETENTION_S + 1)  # the outage outlasts the retention
    after = project.publish(100)  # Tuya keeps these longer than its retention says …
    time.sleep(RETENTION_S + 1)  # … so the gap's window holds their times too: they must be stored once, streamed
    with running_worker(project.env(), "--idle-timeout", "120") as worker:
        filled = wait_for(lambda: [gap.status for gap in project.gaps()] == ["filled"], timeout=60)
        worker.terminate()
        assert worker.wait(timeout=30) == 0
    assert filled, project.gaps()
    archived = project.archived()
    keys = [row[:4] for row in archived]
    assert len(keys) == len(set(keys))  # every value once
    assert set(keys) == before | lost | after  # and every value the devices reported
    sources = {row[:4]: row[4] for row in archived}
    assert {sources[key] for key in lost} == {"log"}
    assert {sources[key] for key in before | after} == {"stream"}
    gap = project.gaps()[0]
    assert gap.rows_added == len(lost) and gap.origin == "detected"
