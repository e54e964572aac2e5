"""streams/backfill/job.py against the OpenAPI emulator's device logs over real loopback HTTP, into SQLite and
PostgreSQL archives (partners: tests/unit/backfill/ for the pure parts; test_outage.py for the worker end to end).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from models.tables import (
    ApiPath,
    BackfillProgress,
    DataPoint,
    Device,
    DeviceEvent,
    DeviceState,
    DeviceStatus,
    Gap,
)
from streams.backfill.job import Backfill
from streams.fleet.sync import FleetSync
from streams.store import backfill as store
from streams.store import migrate
from streams.store.api_usage import calls_on as store_calls_on
from streams.store.api_usage import remember_path
from streams.store.engine import make_engine
from streams.store.sql import ArchiveStore
from streams.tuya.api_errors import ClientClosed
from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulator import Emulator
from streams.tuya.openapi import OpenApiClient
from streams.tuya.ratelimit import DailyCallCounter, TokenBucket
from tests.integration.worker_harness import ROOT, cli, wait_for
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, scratch_database

pytestmark = pytest.mark.integration

ACCESS_ID, ACCESS_KEY = "backfillproject1", "0123456789abcdef0123456789abcdef"
NOW = datetime.now(UTC).replace(microsecond=0)
GAP_START, GAP_END = NOW - timedelta(hours=5), NOW - timedelta(hours=2)


@dataclass
class Project:
    emulator: Emulator
    engine: Engine
    fleet: EmulatedFleet
    url: str
    clients: list[OpenApiClient] = field(default_factory=list)

    def client(self, quota: int = 500_000) -> OpenApiClient:
        client = OpenApiClient(
            self.emulator.url, ACCESS_ID, ACCESS_KEY, limiter=TokenBucket(10_000.0, burst=1_000.0),
            quota=DailyCallCounter(quota),
        )  # fmt: skip
        self.clients.append(client)
        return client

    def backfill(self, quota: int = 500_000, **options: object) -> Backfill:
        return Backfill(self.engine, self.client(quota), **options)  # type: ignore[arg-type]

    def gap(self, started: datetime = GAP_START, ended: datetime = GAP_END) -> int:
        with self.engine.begin() as connection:
            return store.record_gap(connection, started, ended, NOW, origin="detected")

    def rows(self, *where: object) -> list[DeviceStatus]:
        with self.engine.connect() as connection:
            return list(connection.execute(select(DeviceStatus).where(*where)))

    def count(self, table: type, *where: object) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _reported(fleet: EmulatedFleet, device_index: int, minutes: range) -> list[tuple[str, object, int]]:
    """What device ``device_index`` reported every minute of ``minutes`` after the gap's start: its first Integer
    point counting up, and its Boolean point flipping."""
    device = fleet.devices[device_index]
    product = next(p for p in fleet.products if p.product_id == device.product_id)
    points = {point.type: point.code for point in (*product.reported, *product.functions)}
    reports = []
    for minute in minutes:
        at = _ms(GAP_START + timedelta(minutes=minute))
        reports.append((points["Integer"], 100 + minute, at))
        if "Boolean" in points:
            reports.append((points["Boolean"], minute % 2 == 0, at))
    return reports


def _open(url: str, fleet: EmulatedFleet, **options: object) -> Iterator[Project]:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with Emulator(ACCESS_ID, ACCESS_KEY, devices=fleet.devices, **options) as emulator:  # type: ignore[arg-type]
            project = Project(emulator, engine, fleet, url)
            FleetSync(engine, project.client()).run()  # the devices and their data points, as the worker has them
            try:
                yield project
            finally:
                for client in project.clients:
                    client.close()
    finally:
        engine.dispose()


@pytest.fixture
def fleet() -> EmulatedFleet:
    """Each test its own (emulated devices keep their logs)."""
    return emulated_fleet(6, products=3, users=2, seed=5, now_s=int(NOW.timestamp()))


@pytest.fixture(params=DIALECTS)
def project(request: pytest.FixtureRequest, tmp_path: Path, fleet: EmulatedFleet) -> Iterator[Project]:
    with scratch_database(request, tmp_path) as url:
        yield from _open(url, fleet)


@pytest.fixture
def sqlite_project(tmp_path: Path, fleet: EmulatedFleet) -> Iterator[Project]:
    yield from _open(f"sqlite:///{tmp_path / 'archive.db'}", fleet)


def _feed(project: Project, minutes: range = range(0, 180, 1)) -> int:
    """Every device reports through the gap (every minute): what the emulator's logs hold. Returns the value count."""
    total = 0
    for index, device in enumerate(project.fleet.devices):
        reports = _reported(project.fleet, index, minutes)
        project.emulator.record_reports(device.device_id, reports)
        total += len(reports)
    return total


def test_a_gap_is_filled_with_typed_values_marked_from_the_log(project: Project) -> None:
    expected = _feed(project)
    gap_id = project.gap()
    report = project.backfill().fill(gap_id)
    assert (report.status, report.rows_added, report.devices_done) == ("filled", expected, 6)
    rows = project.rows()
    assert len(rows) == expected and {row.source for row in rows} == {"log"}
    sample = project.fleet.devices[0]
    integer_code = _reported(project.fleet, 0, range(1))[0][0]
    values = sorted(row.value for row in rows if row.device_id == sample.device_id and row.code == integer_code)
    assert values == list(range(100, 280))  # "100"… in the log, integers in the archive
    booleans = {type(row.value) for row in rows if row.code != integer_code and row.device_id == sample.device_id}
    assert booleans <= {bool}
    with project.engine.connect() as connection:
        gap = connection.execute(select(Gap).where(Gap.id == gap_id)).one()
    assert (gap.status, gap.rows_added, gap.reason) == ("filled", expected, None)
    assert gap.calls == report.calls > 6  # as the quota counts them: a page each, and the token


def test_a_device_the_stream_showed_but_sync_never_listed_is_read_too(sqlite_project: Project) -> None:
    project = sqlite_project
    expected = _feed(project)
    newcomer = project.fleet.devices[0].device_id
    with project.engine.begin() as connection:  # paired after the last sync: known from its reports only
        connection.execute(
            update(Device).where(Device.device_id == newcomer).values(synced_at=None, last_seen_at=GAP_START)
        )
    report = project.backfill().fill(project.gap())
    assert (report.status, report.devices, report.rows_added) == ("filled", 6, expected)
    assert project.rows(DeviceStatus.device_id == newcomer)


def test_a_device_heard_of_long_before_the_gap_and_never_listed_is_left_out(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    departed = project.fleet.devices[0].device_id
    with project.engine.begin() as connection:  # reported a month ago, never listed: it may have left the project
        connection.execute(
            update(Device)
            .where(Device.device_id == departed)
            .values(synced_at=None, last_seen_at=GAP_START - timedelta(days=30))
        )
    report = project.backfill().fill(project.gap())
    assert (report.status, report.devices) == ("filled", 5)
    assert not project.rows(DeviceStatus.device_id == departed)


def test_without_a_specification_a_log_value_takes_the_type_the_stream_sent(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    device = project.fleet.devices[0]
    code = _reported(project.fleet, 0, range(1))[0][0]  # an Integer point, counting up from 100
    with project.engine.begin() as connection:  # no specification known, and the stream sent this code as text
        connection.execute(delete(DataPoint).where(DataPoint.product_id == device.product_id))
        connection.execute(delete(DeviceState).where(DeviceState.device_id == device.device_id))  # sync's, from the API
        connection.execute(
            insert(DeviceState).values(
                device_id=device.device_id, code=code, value="100", dp_id=None, source="stream",
                reported_at=GAP_START - timedelta(days=1), message_id="100:1:0:-1",
            )
        )  # fmt: skip
    project.backfill().fill(project.gap())
    values = [row.value for row in project.rows(DeviceStatus.device_id == device.device_id, DeviceStatus.code == code)]
    assert values and all(type(value) is str for value in values)  # "101", as the stream would send it


def test_a_backfill_of_an_archive_that_knows_no_device_says_so(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project, range(0, 10))
    with project.engine.begin() as connection:
        connection.execute(delete(Device))
    report = project.backfill().fill(project.gap())
    assert (report.status, report.devices) == ("partly_filled", 0)
    assert report.reasons == ["no device is known to the archive: run `tuya-archiver sync`, then this again"]


def test_a_second_backfill_adds_nothing(project: Project) -> None:
    _feed(project)
    gap_id = project.gap()
    first = project.backfill().fill(gap_id)
    again = project.backfill().fill(gap_id)
    assert (first.rows_added, again.rows_added) == (len(project.rows()), 0)


def test_values_the_stream_archived_are_not_stored_again(project: Project) -> None:
    _feed(project, range(0, 10))
    device = project.fleet.devices[0]
    code, value, at_ms = _reported(project.fleet, 0, range(3, 4))[0]
    at = datetime.fromtimestamp(at_ms / 1000, UTC)
    ArchiveStore(project.engine).write_batch(
        [f.status_report(1, {code: value}, device=device.device_id, when=at)], [], received_at=at
    )
    project.backfill().fill(project.gap())
    mine = project.rows(DeviceStatus.device_id == device.device_id, DeviceStatus.code == code)
    assert Counter(row.reported_at for row in mine)[at] == 1
    assert [row.source for row in mine if row.reported_at == at] == ["stream"]


def test_a_device_the_archive_does_not_know_leaves_the_gap_partly_filled_naming_it(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project, range(0, 10))
    known = project.fleet.devices[0].device_id
    report = project.backfill().fill(project.gap(), [known, "bfnosuchdevice0000000"])
    assert (report.status, report.devices, report.devices_done) == ("partly_filled", 1, 1)
    assert report.reasons == [
        "device bfnosuchdevice0000000: not in the archive, or deleted before the window "
        "(`tuya-archiver sync --device` adds it)"
    ]


def test_a_backfill_of_some_devices_leaves_the_gap_partly_filled_for_the_others(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project, range(0, 10))
    gap_id = project.gap()
    report = project.backfill().fill(gap_id, [project.fleet.devices[0].device_id])
    assert (report.status, report.devices_done, report.done_as_asked) == ("partly_filled", 1, True)
    assert report.summary_lines()[-1] == (
        f"note: only the 1 device(s) asked for were read (`tuya-archiver backfill --gap {gap_id}` reads every device)"
    )
    with project.engine.connect() as connection:
        gap = connection.execute(select(Gap).where(Gap.id == gap_id)).one()
        assert store.open_gaps(connection) == []  # the worker does not read every device of it by itself
    assert gap.reason is not None and gap.reason.startswith("only the 1 device(s) asked for were read")


def test_backfills_of_each_device_in_turn_fill_the_gap_and_one_more_leaves_it_filled(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project, range(0, 10))
    gap_id = project.gap()
    reports = [project.backfill().fill(gap_id, [device.device_id]) for device in project.fleet.devices]
    assert [report.status for report in reports] == ["partly_filled"] * 5 + ["filled"]  # the last device read
    again = project.backfill().fill(gap_id, [project.fleet.devices[0].device_id])
    assert (again.status, again.scope, again.rows_added) == ("filled", None, 0)


def test_a_backfill_of_some_devices_the_quota_stopped_is_not_left_to_the_worker(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project, range(0, 180))
    gap_id = project.gap()
    with project.engine.connect() as connection:
        from streams.store.api_usage import calls_on

        used = calls_on(connection, datetime.now(UTC).date())
    devices = [device.device_id for device in project.fleet.devices[:3]]
    stopped = project.backfill(quota=used + 3).fill(gap_id, devices)  # the token and two pages
    assert stopped.stopped == "the quota" and stopped.status == "partly_filled"
    with project.engine.connect() as connection:
        assert store.open_gaps(connection) == []  # the worker would read every device of the gap


def test_online_and_offline_rows_become_device_events_from_the_log(project: Project) -> None:
    device = project.fleet.devices[1].device_id
    went_off, came_back = GAP_START + timedelta(minutes=30), GAP_START + timedelta(minutes=90)
    project.emulator.set_online(device, False, at_ms=_ms(went_off))
    project.emulator.set_online(device, True, at_ms=_ms(came_back))
    project.backfill().fill(project.gap())
    with project.engine.connect() as connection:
        events = connection.execute(select(DeviceEvent.event, DeviceEvent.occurred_at, DeviceEvent.source)).all()
    assert [tuple(event) for event in events] == [("offline", went_off, "log"), ("online", came_back, "log")]


def test_an_event_the_stream_timed_in_whole_seconds_is_not_stored_again(project: Project) -> None:
    device = project.fleet.devices[1].device_id
    went_off = GAP_START + timedelta(minutes=30)  # a whole second, as the stream's bizData.time gives it
    ArchiveStore(project.engine).write_batch(
        [f.device_event(1, "offline", {}, device=device, when=went_off)], [], received_at=went_off
    )
    project.emulator.set_online(device, False, at_ms=_ms(went_off) + 347)  # the log's own time: to the millisecond
    report = project.backfill().fill(project.gap())
    with project.engine.connect() as connection:
        events = connection.execute(select(DeviceEvent.event, DeviceEvent.occurred_at, DeviceEvent.source)).all()
    assert [tuple(event) for event in events] == [("offline", went_off, "stream")] and report.rows_added == 0


def test_latest_state_moves_only_for_a_newer_value(sqlite_project: Project) -> None:
    project = sqlite_project
    with project.engine.begin() as connection:  # no values from the sync's API calls: only the stream and the log
        connection.execute(DeviceState.__table__.delete())
    _feed(project, range(0, 5))
    device = project.fleet.devices[0]
    code = _reported(project.fleet, 0, range(1))[0][0]
    later = NOW - timedelta(minutes=1)
    ArchiveStore(project.engine).write_batch(
        [f.status_report(1, {code: 999}, device=device.device_id, when=later)], [], received_at=later
    )
    project.backfill().fill(project.gap())
    with project.engine.connect() as connection:
        state = connection.execute(
            select(DeviceState.value, DeviceState.source).where(
                DeviceState.device_id == device.device_id, DeviceState.code == code
            )
        ).one()
        other = project.fleet.devices[1]
        other_code = _reported(project.fleet, 1, range(1))[0][0]
        logged = connection.execute(
            select(DeviceState.value, DeviceState.source).where(
                DeviceState.device_id == other.device_id, DeviceState.code == other_code
            )
        ).one()
    assert tuple(state) == (999, "stream")
    assert tuple(logged) == (104, "log")  # the newest value of the log


def test_a_window_older_than_tuya_keeps_logs_is_reported(sqlite_project: Project) -> None:
    project = sqlite_project
    old = project.gap(NOW - timedelta(days=10), NOW - timedelta(days=9))
    report = project.backfill().fill(old)
    assert (report.status, report.calls) == ("partly_filled", 0)
    assert "older than Tuya keeps device logs (1w)" in report.reasons[0]
    straddling = project.gap(NOW - timedelta(days=8), NOW - timedelta(days=6))
    report = project.backfill().fill(straddling)
    assert report.status == "partly_filled" and "not fetched" in report.reasons[0]
    assert report.devices_done == 6


def test_the_quota_leaves_the_gap_open_and_a_rerun_finishes_it(sqlite_project: Project) -> None:
    project = sqlite_project
    expected = _feed(project)
    gap_id = project.gap()
    with project.engine.connect() as connection:
        from streams.store.api_usage import calls_on

        used = calls_on(connection, datetime.now(UTC).date())
    stopped = project.backfill(quota=used + 5).fill(gap_id)  # the token and four pages
    assert stopped.status == "open" and "quota" in stopped.reasons[0]
    assert f"backfill --gap {gap_id}" in stopped.reasons[0]
    assert stopped.summary_lines()[0].endswith(": stopped by the quota")
    with project.engine.connect() as connection:
        gap = connection.execute(select(Gap).where(Gap.id == gap_id)).one()
        still_open = store.open_gaps(connection)
    assert (gap.status, "quota" in (gap.reason or ""), still_open) == ("open", True, [gap_id])
    assert 0 < stopped.rows_added < expected
    finished = project.backfill().fill(gap_id)
    assert finished.status == "filled"
    assert stopped.rows_added + finished.rows_added == expected == len(project.rows())


def _gap_row(project: Project, gap_id: int) -> Gap:
    with project.engine.connect() as connection:
        return connection.execute(select(Gap).where(Gap.id == gap_id)).one()


def _calls_today(project: Project) -> int:
    with project.engine.connect() as connection:
        return store_calls_on(connection, datetime.now(UTC).date())


def test_refused_credentials_stop_the_backfill_at_once_and_leave_the_gap_open(sqlite_project: Project) -> None:
    project = sqlite_project
    expected = _feed(project)
    gap_id, before = project.gap(), _calls_today(project)
    wrong = OpenApiClient(project.emulator.url, ACCESS_ID, "f" * 32, limiter=TokenBucket(10_000.0, burst=1_000.0))
    project.clients.append(wrong)
    stopped = Backfill(project.engine, wrong).fill(gap_id)
    assert (stopped.status, stopped.stopped, stopped.rows_added) == ("open", "an OpenAPI error", 0)
    assert len(stopped.reasons) == 1 and "1004" in stopped.reasons[0]  # one line, not one a device
    assert stopped.calls == wrong.calls_made == 1  # the token's, not one a device
    gap = _gap_row(project, gap_id)
    assert (gap.status, gap.calls, _calls_today(project) - before) == ("open", 1, 1)
    with project.engine.connect() as connection:
        assert store.open_gaps(connection) == [gap_id]  # the worker tries it again
    assert project.backfill().fill(gap_id).rows_added == expected


def test_an_openapi_that_stops_answering_leaves_the_gap_open_with_its_calls_counted(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    gap_id, before = project.gap(), _calls_today(project)
    client = _quick_client(project)
    project.emulator.fail_next(1_000, code=1199, path_prefix="/v1.0/devices")  # too many requests, for good
    project.emulator.fail_next(1_000, code=1199, path_prefix="/v2.0")
    stopped = Backfill(project.engine, client).fill(gap_id)
    assert (stopped.status, stopped.stopped) == ("open", "an OpenAPI error")
    assert "1199" in stopped.reasons[0] and f"backfill --gap {gap_id}" in stopped.reasons[0]
    gap = _gap_row(project, gap_id)
    assert gap.calls == client.calls_made == _calls_today(project) - before > 1  # the retries counted too
    assert gap.status == "open" and "1199" in (gap.reason or "")


def _quick_client(project: Project) -> OpenApiClient:
    """A client whose retries do not wait."""
    client = OpenApiClient(
        project.emulator.url, ACCESS_ID, ACCESS_KEY, limiter=TokenBucket(10_000.0, burst=1_000.0), sleep=lambda _s: None
    )
    project.clients.append(client)
    return client


def test_a_backfill_the_worker_s_stop_cut_short_counts_its_calls_and_stays_resumable(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    project.emulator.fail_next(1_000, code=1111, path_prefix="/v1.0/devices/")  # busy: the client retries, and
    client = OpenApiClient(project.emulator.url, ACCESS_ID, ACCESS_KEY, sleep=lambda _s: client.close())  # the stop
    project.clients.append(client)
    gap_id, before = project.gap(), _calls_today(project)
    with pytest.raises(ClientClosed):
        Backfill(project.engine, client).fill(gap_id)
    gap = _gap_row(project, gap_id)
    assert (gap.status, gap.calls) == ("backfilling", client.calls_made)  # no page stored, its calls counted
    assert client.calls_made == _calls_today(project) - before > 0
    with project.engine.connect() as connection:
        assert store.open_gaps(connection) == [gap_id]  # resumed at the next start


def test_one_device_s_server_errors_are_its_reason_and_the_others_are_read(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    broken = sorted(device.device_id for device in project.fleet.devices)[0]  # read first: devices go in id order
    project.emulator.fail_next(1_000, code=1111, path_prefix=f"/v1.0/devices/{broken}/")  # "system is busy", for good
    gap_id = project.gap()
    report = Backfill(project.engine, _quick_client(project)).fill(gap_id)
    assert (report.status, report.stopped, report.devices_done, report.unanswered) == ("open", None, 5, 1)
    assert len(report.reasons) == 1 and report.reasons[0].startswith(f"device {broken}: ")
    assert not project.rows(DeviceStatus.device_id == broken) and len(project.rows()) > 0
    with project.engine.connect() as connection:
        assert store.open_gaps(connection) == [gap_id]  # the worker reads that device again


def test_a_device_left_unread_is_named_once_its_window_is_older_than_the_logs(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    broken = sorted(device.device_id for device in project.fleet.devices)[0]
    project.emulator.fail_next(1_000, code=1111, path_prefix=f"/v1.0/devices/{broken}/")
    gap_id = project.gap()
    assert Backfill(project.engine, _quick_client(project)).fill(gap_id).unanswered == 1
    week_on = Backfill(project.engine, _quick_client(project), clock=lambda: NOW + timedelta(days=8)).fill(gap_id)
    assert week_on.status == "partly_filled"
    assert f"1 device(s) not read before Tuya's logs expired: {broken}" in week_on.reasons


def test_devices_that_never_answered_are_named_once_the_window_is_older_than_the_logs(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    ids = sorted(device.device_id for device in project.fleet.devices)
    with project.engine.begin() as connection:  # a fleet of two: the others left before the gap
        gone = update(Device).where(Device.device_id.in_(ids[2:])).values(deleted_at=GAP_START - timedelta(days=1))
        connection.execute(gone)
    for device_id in ids[:2]:
        project.emulator.fail_next(1_000, code=1111, path_prefix=f"/v1.0/devices/{device_id}/")
    gap_id = project.gap()
    first = Backfill(project.engine, _quick_client(project)).fill(gap_id)
    assert (first.status, first.unanswered, first.stopped) == ("open", 2, None)
    week_on = Backfill(project.engine, _quick_client(project), clock=lambda: NOW + timedelta(days=8)).fill(gap_id)
    assert f"2 device(s) not read before Tuya's logs expired: {ids[0]}, {ids[1]}" in week_on.reasons


def test_a_backfill_of_some_devices_says_what_to_run_when_one_does_not_answer(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    broken = sorted(device.device_id for device in project.fleet.devices)[0]
    project.emulator.fail_next(1_000, code=1111, path_prefix=f"/v1.0/devices/{broken}/")
    report = Backfill(project.engine, _quick_client(project)).fill(project.gap(), [broken])
    assert (report.status, report.unanswered) == ("partly_filled", 1)  # the person's gap now, not the worker's
    assert not any("read again later" in reason for reason in report.reasons)


def test_a_filled_gap_older_than_the_logs_stays_filled(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    gap_id = project.gap()
    assert project.backfill().fill(gap_id).status == "filled"
    for later in (timedelta(days=7, hours=-3), timedelta(days=8)):  # part of the window, then all of it, aged out
        again = Backfill(project.engine, _quick_client(project), clock=lambda later=later: NOW + later).fill(gap_id)
        assert (again.status, again.reasons, again.done_as_asked) == ("filled", [], True)
        assert "filled earlier; Tuya's logs no longer hold all of its window" in again.summary_lines()[1]
        assert _gap_row(project, gap_id).status == "filled"


def test_only_server_errors_in_a_row_stop_the_backfill(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    ids = sorted(device.device_id for device in project.fleet.devices)
    for device_id, code in ((ids[0], 1111), (ids[1], 2010), (ids[2], 1111), (ids[3], 1111)):  # 2010: the device's own
        project.emulator.fail_next(1_000, code=code, path_prefix=f"/v1.0/devices/{device_id}/")
    report = Backfill(project.engine, _quick_client(project)).fill(project.gap())
    assert (report.status, report.stopped, report.unanswered, report.devices_done) == ("open", None, 3, 2)
    assert {row.device_id for row in project.rows()} == set(ids[4:])


def test_devices_a_gap_left_unread_are_not_an_outage_when_they_come_in_a_row(sqlite_project: Project) -> None:
    # Asked again, the gap's three broken devices came in a row: the run stopped as for an outage of the log service,
    # so the worker's wait never grew and it never reached a newer gap.
    project = sqlite_project
    _feed(project)
    ids = sorted(device.device_id for device in project.fleet.devices)
    for device_id in ids[0::2]:
        project.emulator.fail_next(1_000, code=1111, path_prefix=f"/v1.0/devices/{device_id}/")
    gap_id, before = project.gap(), _calls_today(project)
    first = Backfill(project.engine, _quick_client(project)).fill(gap_id)
    assert (first.stopped, first.unanswered, first.devices_done) == (None, 3, 3)
    again = Backfill(project.engine, _quick_client(project)).fill(gap_id)
    assert (again.status, again.stopped, again.unanswered) == ("open", None, 3)
    assert _gap_row(project, gap_id).calls == _calls_today(project) - before  # the unanswered devices' calls too


def test_an_outage_of_the_log_service_costs_a_few_devices_a_run_however_often_the_gap_is_tried(
    sqlite_project: Project,
) -> None:
    # Once every device had been tried, each retry asked all of them: calls grew with the fleet.
    project = sqlite_project
    _feed(project)
    project.emulator.fail_next(100_000, code=1111, path_prefix="/v1.0/devices/")  # the log service is down
    project.emulator.fail_next(100_000, code=1111, path_prefix="/v2.0/")
    gap_id, costs = project.gap(), []
    for _ in range(5):
        client = _quick_client(project)
        report = Backfill(project.engine, client).fill(gap_id)
        assert (report.status, report.devices_done) == ("open", 0)
        costs.append(client.calls_made)
    # Three devices a run (two more while some were never tried), never all six once every device was tried.
    assert costs[3:] == costs[:1] * 2 and max(costs) < 2 * costs[0]
    assert "3 device(s) left unread earlier not asked this time (read later)" in report.reasons
    ids = sorted(device.device_id for device in project.fleet.devices)
    asked = Backfill(project.engine, _quick_client(project)).fill(gap_id, ids)
    assert asked.unanswered == 6  # the devices a person names are each asked


def test_server_errors_on_devices_in_a_row_stop_the_backfill_with_the_gap_open(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    project.emulator.fail_next(10_000, code=1111, path_prefix="/v1.0/devices/")  # the log service is down
    project.emulator.fail_next(10_000, code=1111, path_prefix="/v2.0/")
    gap_id = project.gap()
    report = Backfill(project.engine, _quick_client(project)).fill(gap_id)
    assert (report.status, report.stopped, report.devices_done) == ("open", "an OpenAPI error", 0)
    assert len(report.reasons) == 3  # two devices' own, then the stop
    assert _gap_row(project, gap_id).status == "open"


def test_a_refused_log_family_falls_back_to_the_report_logs(tmp_path: Path, fleet: EmulatedFleet) -> None:
    for project in _open(f"sqlite:///{tmp_path / 'a.db'}", fleet, refused={"/v1.0/devices": 1106}):
        expected = _feed(project)
        report = project.backfill().fill(project.gap())
        assert (report.status, report.family, report.rows_added) == (
            "partly_filled",  # every value, but the report logs have no online or offline rows
            "/v2.0/cloud/thing/{device_id}/report-logs",
            expected,
        )
        assert report.reasons == ["online and offline periods not read: Tuya refused /v1.0/devices/{device_id}/logs"]
        assert [(r.path, r.code) for r in report.refused] == [("/v1.0/devices/{device_id}/logs", 1106)]
        with project.engine.connect() as connection:
            query = select(ApiPath.path, ApiPath.status).where(ApiPath.purpose == "device_logs")
            memory = {path: status for path, status in connection.execute(query)}
        assert memory == {
            "/v1.0/devices/{device_id}/logs": "refused",
            "/v2.0/cloud/thing/{device_id}/report-logs": "ok",
        }
        again = project.backfill().fill(report.gap_id)  # resumed: the family that worked first, v1 not asked again
        assert (again.status, again.reasons, again.refused) == ("partly_filled", report.reasons, [])


def test_a_log_family_refused_more_than_a_day_ago_is_asked_first_again(sqlite_project: Project) -> None:
    project = sqlite_project  # an emulator that serves v1: the project subscribed to the log service since
    expected = _feed(project)
    v1, v2 = "/v1.0/devices/{device_id}/logs", "/v2.0/cloud/thing/{device_id}/report-logs"
    with project.engine.begin() as connection:
        remember_path(connection, "device_logs", v2, NOW - timedelta(days=2))
        remember_path(
            connection, "device_logs", v1, NOW - timedelta(days=2), error_code=28841105, error="not subscribed"
        )
    report = project.backfill().fill(project.gap())
    assert (report.status, report.family, report.rows_added, report.reasons) == ("filled", v1, expected, [])
    with project.engine.begin() as connection:  # refused again today: the other family first, for a day
        remember_path(connection, "device_logs", v1, datetime.now(UTC), error_code=28841105, error="not subscribed")
    again = project.backfill().fill(project.gap(GAP_START - timedelta(hours=1), GAP_START))
    assert again.family == v2


def test_a_killed_backfill_rerun_finishes_it_exactly_once(sqlite_project: Project) -> None:
    project = sqlite_project
    expected = _feed(project, range(0, 180))
    gap_id = project.gap()
    project.emulator.delay_next(10_000, 0.2, path_prefix="/v1.0/devices/")  # slow pages: time to kill it mid-way
    env = {
        **os.environ,
        "TUYA_ACCESS_ID": ACCESS_ID,
        "TUYA_ACCESS_KEY": ACCESS_KEY,
        "TUYA_OPENAPI_URL": project.emulator.url,
        "DATABASE_URL": project.url,
        "TUYA_API_RATE": "1000",
    }
    process = subprocess.Popen(cli("backfill", "--gap", str(gap_id)), env=env, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: project.count(BackfillProgress, BackfillProgress.done.is_(True)) >= 2, timeout=60)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    interrupted = len(project.rows())
    assert 0 < interrupted < expected
    with project.engine.connect() as connection:
        assert connection.scalar(select(Gap.status).where(Gap.id == gap_id)) == "backfilling"
    result = subprocess.run(cli("backfill", "--gap", str(gap_id)), env=env, cwd=ROOT, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode()
    rows = project.rows()
    assert len(rows) == expected
    assert len({(row.device_id, row.code, row.reported_at) for row in rows}) == expected
    assert b"filled" in result.stdout


def test_the_cli_s_backfill_of_one_device_exits_0_once_that_device_is_read(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project, range(0, 10))
    device = project.fleet.devices[0].device_id
    env = {**os.environ, "TUYA_ACCESS_ID": ACCESS_ID, "TUYA_ACCESS_KEY": ACCESS_KEY,
           "TUYA_OPENAPI_URL": project.emulator.url, "DATABASE_URL": project.url}  # fmt: skip
    window = ("--from", GAP_START.isoformat(), "--until", GAP_END.isoformat(), "--device", device)
    result = subprocess.run(cli("backfill", *window), env=env, cwd=ROOT, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"partly filled" in result.stdout and b"note: only the 1 device(s) asked for were read" in result.stdout


def test_the_cli_s_backfill_of_devices_the_archive_does_not_know_records_no_gap(sqlite_project: Project) -> None:
    project = sqlite_project
    env = {**os.environ, "TUYA_ACCESS_ID": ACCESS_ID, "TUYA_ACCESS_KEY": ACCESS_KEY,
           "TUYA_OPENAPI_URL": project.emulator.url, "DATABASE_URL": project.url}  # fmt: skip
    deleted = project.fleet.devices[0].device_id
    with project.engine.begin() as connection:  # removed from the project 8 days ago, after 10 days ago
        connection.execute(update(Device).where(Device.device_id == deleted).values(deleted_at=NOW - timedelta(days=8)))
    typo = "bfnosuchdevice0000000"
    said = {
        ((typo,), "3h"): f"no device {typo} in the archive, or deleted before the window",
        ((deleted,), "3h"): f"no device {deleted} in the archive, or deleted before the window",
        ((deleted,), "10d"): f"{deleted}: deleted before",  # in the window, but before the logs' last 7 days
        ((typo, deleted), "10d"): f"adds one); {deleted}: deleted before",  # both named
    }
    for (devices, since), message in said.items():
        asked = ("--since", since, *(part for device in devices for part in ("--device", device)))
        result = subprocess.run(cli("backfill", *asked), env=env, cwd=ROOT, capture_output=True, check=False)
        assert result.returncode == 2
        assert message.encode() in result.stderr
    assert project.count(Gap) == 0  # no gap left partly filled, counted as open, for good
    assert not any(call for call in project.emulator.calls if "/logs" in call.path)


def test_a_window_asked_for_is_filled_only_as_far_as_the_stream_was_consumed(sqlite_project: Project) -> None:
    """``backfill --since``/``--from`` while the worker's backlog holds the window's end: what the stream will store
    is left to it (before, both stored those values), and the gap is the window up to there, filled."""
    project = sqlite_project
    _feed(project)  # a value a minute from GAP_START
    # Tuya keeps this project's messages 6 hours: the backlog still holds what came after the stream's point
    job = project.backfill(margin=timedelta(minutes=5), message_retention=timedelta(hours=6))
    gap_id = job.request(GAP_START, GAP_END)
    with project.engine.begin() as connection:  # the worker was consumed to an hour into the window
        store.save_consumed(connection, "worker-sub", NOW, GAP_START + timedelta(minutes=65))
    report = job.fill(gap_id)
    reach = GAP_START + timedelta(minutes=60)
    assert (report.status, report.reasons, report.done_as_asked) == ("filled", [], True)
    assert f"note: up to {GAP_END.isoformat(timespec='seconds')} the window is left to the stream" in "\n".join(
        report.summary_lines()
    )
    assert max(row.reported_at for row in project.rows()) == reach
    up_to_reach = sum(len(_reported(project.fleet, index, range(61))) for index in range(len(project.fleet.devices)))
    assert report.rows_added == len(project.rows()) == up_to_reach
    with project.engine.connect() as connection:
        gap = connection.execute(select(Gap).where(Gap.id == gap_id)).one()
    assert (gap.started_at, gap.ended_at, gap.status) == (GAP_START, reach, "filled")


def test_a_window_the_stream_holds_whole_is_filled_without_a_call(sqlite_project: Project) -> None:
    project = sqlite_project
    _feed(project)
    job = project.backfill(margin=timedelta(minutes=5), message_retention=timedelta(hours=6))
    gap_id = job.request(GAP_START + timedelta(minutes=30), GAP_END)
    with project.engine.begin() as connection:
        store.save_consumed(connection, "worker-sub", NOW, GAP_START)
    report = job.fill(gap_id)
    assert (report.status, report.reasons, report.rows_added, report.calls) == ("filled", [], 0, 0)


def test_a_window_after_a_stream_point_older_than_tuya_keeps_messages_is_read_from_the_logs(
    sqlite_project: Project,
) -> None:
    """The worker stopped 5 hours ago, and Tuya keeps messages 2: what came after its last point is deleted from
    the backlog, so the stream will never store it, and the logs are read for the whole window."""
    project = sqlite_project
    _feed(project)  # a value a minute from GAP_START, for 3 hours
    job = project.backfill(margin=timedelta(minutes=5), message_retention=timedelta(hours=2))
    ended = GAP_START + timedelta(minutes=120)
    gap_id = job.request(GAP_START, ended)
    with project.engine.begin() as connection:
        store.save_consumed(connection, "worker-sub", GAP_START, GAP_START)
    report = job.fill(gap_id)
    assert (report.status, report.reasons, report.left_to_stream) == ("filled", [], None)
    whole = sum(len(_reported(project.fleet, index, range(121))) for index in range(len(project.fleet.devices)))
    assert report.rows_added == len(project.rows()) == whole


def test_a_detected_gap_waits_until_the_stream_is_consumed_past_its_end(sqlite_project: Project) -> None:
    project = sqlite_project
    expected = _feed(project)
    gap_id = project.gap()
    with project.engine.begin() as connection:  # the worker's backlog is still at the gap's end
        store.save_consumed(connection, "worker-sub", NOW, GAP_END)
    waiting = project.backfill(margin=timedelta(minutes=5)).fill(gap_id)
    assert (waiting.waiting, waiting.rows_added, project.count(Gap, Gap.status == "open")) == (True, 0, 1)
    assert not waiting.done_as_asked  # `backfill --gap` exits 1: nothing was read yet
    assert "waiting until the stream is consumed past its end" in waiting.summary_lines()[0]
    with project.engine.begin() as connection:
        store.save_consumed(connection, "worker-sub", NOW, GAP_END + timedelta(minutes=6))
    filled = project.backfill(margin=timedelta(minutes=5)).fill(gap_id)
    assert (filled.waiting, filled.status, filled.rows_added) == (False, "filled", expected)
