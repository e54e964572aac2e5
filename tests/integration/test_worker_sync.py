"""The worker's background sync end to end: simulator → real pulsar-lite → the real ``tuya-archiver run`` → SQLite,
with the OpenAPI emulator serving the simulated fleet over loopback HTTP (partners: tests/unit/fleet/
test_background.py for the schedule, tests/integration/test_sync.py for the sync itself).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from models.tables import DataPoint, Device
from streams.sim import Fleet, SimMessage
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from streams.tuya.emulated_sim import sim_emulated_devices
from streams.tuya.emulator import Emulator
from tests.integration.worker_harness import (
    ACCESS_KEY,
    archived,
    publish_all,
    run_worker,
    running_worker,
    unique_access_id,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

DEVICES = 12


@dataclass
class Project:
    access_id: str
    database_url: str
    broker_url: str
    emulator: Emulator
    fleet: Fleet

    def env(self, **extra: str) -> dict[str, str]:
        return worker_env(
            self.access_id, self.broker_url, self.database_url, TUYA_OPENAPI_URL=self.emulator.url, **extra
        )

    def publish(self, messages: list[SimMessage]) -> int:
        return publish_all(self.broker_url, self.access_id, messages).valid

    def devices(self, *where: object) -> dict[str, Device]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return {row.device_id: row for row in connection.execute(select(Device).where(*where))}
        finally:
            engine.dispose()

    def detail_calls(self, device_id: str) -> int:
        return sum(1 for call in self.emulator.calls if call.path.startswith(f"/v1.0/iot-03/devices/{device_id}"))


def _status(fleet: Fleet, count: int, devices: range | None = None) -> list[SimMessage]:
    now = int(time.time() * 1000)
    picked = list(devices if devices is not None else range(DEVICES))
    return [fleet.status(picked[i % len(picked)], {"switch_1": i % 2 == 0}, now + i) for i in range(count)]


@pytest.fixture
def project(pulsar_broker, tmp_path: Path) -> Iterator[Project]:
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = make_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    fleet = Fleet(ACCESS_KEY, DEVICES, clock=lambda: int(time.time() * 1000), seed=21)
    access_id = unique_access_id()
    # The last device joins the project later (a test adds it): the API does not know it at first.
    known = sim_emulated_devices(fleet.devices[:-1], now_s=int(time.time()))
    with Emulator(access_id, ACCESS_KEY, devices=known) as emulator:
        yield Project(access_id, database_url, pulsar_broker.url, emulator, fleet)


def test_the_worker_syncs_the_fleet_at_start_without_making_consumption_wait(project: Project) -> None:
    delay = 6.0
    project.emulator.delay_next(1, delay, path_prefix="/v1.3/iot-03/devices")  # a slow device list
    valid = project.publish(_status(project.fleet, 200, range(DEVICES - 1)))
    with running_worker(project.env(), "--idle-timeout", "60") as worker:
        assert wait_for(lambda: len(project.devices(Device.synced_at.is_not(None))) == DEVICES - 1, timeout=60)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr.decode()
    assert archived(project.database_url).messages == valid
    synced = project.devices(Device.synced_at.is_not(None))
    assert all(row.category for row in synced.values())
    listed = next(call for call in project.emulator.calls if call.path.startswith("/v1.3/iot-03/devices"))
    answered_at = listed.at_ms / 1000 + delay
    # Everything was archived while the device list was still on its way.
    assert _last_received(project.database_url).timestamp() < answered_at
    engine = create_engine(project.database_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(DataPoint)) > 0
    finally:
        engine.dispose()


def _last_received(database_url: str):  # type: ignore[no-untyped-def]
    from models.tables import Message

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.max(Message.received_at)))
    finally:
        engine.dispose()


def test_a_device_the_archive_does_not_know_is_synced_when_the_stream_shows_it(project: Project) -> None:
    newcomer = project.fleet.devices[-1]
    with running_worker(project.env(), "--idle-timeout", "60") as worker:
        assert wait_for(lambda: len(project.devices(Device.synced_at.is_not(None))) == DEVICES - 1, timeout=30)
        project.emulator.add_device(sim_emulated_devices([newcomer], now_s=int(time.time()))[0])
        project.publish(_status(project.fleet, 3, range(DEVICES - 1, DEVICES)))
        assert wait_for(lambda: project.devices(Device.category.is_not(None)).get(newcomer.device_id), timeout=30)
        worker.terminate()
        assert worker.wait(timeout=30) == 0
    row = project.devices()[newcomer.device_id]
    assert (row.name, row.product_key) == (newcomer.name, newcomer.product_key)
    assert project.detail_calls(newcomer.device_id) == 1


def test_a_rename_in_the_stream_syncs_that_device(project: Project) -> None:
    renamed = project.fleet.devices[2]
    with running_worker(project.env(), "--idle-timeout", "60") as worker:
        assert wait_for(lambda: len(project.devices(Device.synced_at.is_not(None))) == DEVICES - 1, timeout=30)
        assert project.detail_calls(renamed.device_id) == 0
        project.publish([project.fleet.event(2, "nameUpdate", name="Renamed in the app")])
        assert wait_for(lambda: project.detail_calls(renamed.device_id) == 1, timeout=30)
        worker.terminate()
        assert worker.wait(timeout=30) == 0


def test_a_failing_openapi_never_stops_archiving(project: Project) -> None:
    project.emulator.fail_next(10_000, http_status=500)
    valid = project.publish(_status(project.fleet, 300))
    result = run_worker(project.env(), "--idle-timeout", "2")
    assert result.returncode == 0, result.stderr.decode()
    assert archived(project.database_url).messages == valid
    assert project.devices(Device.synced_at.is_not(None)) == {}
    assert project.emulator.calls  # the sync was tried (and failed, or retried until the stop ended it)


def test_a_stop_during_a_sync_ends_it_at_its_next_call(project: Project) -> None:
    # A full sync is a thousand calls or more at the API's rate for a large fleet: SIGTERM waited for all of them,
    # then logged the sync done. Here the rate (one call every 5 s) keeps the sync under way when the signal comes.
    with running_worker(project.env(TUYA_API_RATE="0.2")) as worker:
        assert wait_for(lambda: len(project.emulator.calls) >= 2, 60), "the sync under way"
        calls_at_signal = len(project.emulator.calls)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=300)  # a hang guard
    assert worker.returncode == 0, stderr.decode()
    assert b"sync of fleet stopped" in stderr
    assert b"synced fleet" not in stderr
    assert len(project.emulator.calls) <= calls_at_signal + 1  # the call waiting for its turn then was not sent
