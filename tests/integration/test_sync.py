"""streams/fleet/sync.py against the OpenAPI emulator over real loopback HTTP, into SQLite and PostgreSQL archives
(partners: tests/unit/tuya/test_families.py and test_listings.py for the pagers and shapes)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from models.records import StatusReported
from models.tables import ApiPath, ApiUsage, DataPoint, Device, DeviceState, DeviceStatus, User
from streams.cli import main
from streams.fleet.sync import FleetSync
from streams.store import migrate
from streams.store.engine import make_engine
from streams.store.settle import settle_all
from streams.store.sql import ArchiveStore
from streams.tuya.api_errors import TuyaApiError
from streams.tuya.decoder import Decoded
from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulator import Emulator
from streams.tuya.openapi import OpenApiClient
from streams.tuya.ratelimit import DailyCallCounter, TokenBucket
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, scratch_database

pytestmark = pytest.mark.integration

ACCESS_ID, ACCESS_KEY = "syncproject00001", "0123456789abcdef0123456789abcdef"
SCHEMA = "syncapp"
NOW_S = int(time.time())
IOT03, THING = "/v1.3/iot-03/devices", "/v2.0/cloud/thing/device"
ASSOCIATED, PER_USER = "/v1.0/iot-01/associated-users/devices", "/v1.0/users/{uid}/devices"
SPEC_PATHS = ("/specifications", "/specification", "/model")


@pytest.fixture(scope="module")
def fleet() -> EmulatedFleet:
    """Big enough for every family to page: 1,000 devices of 6 products, 150 users."""
    return emulated_fleet(1_000, products=6, users=150, seed=3, now_s=NOW_S)


@pytest.fixture(scope="module")
def small_fleet() -> EmulatedFleet:
    """For what paging does not matter to: 120 devices of 6 products, 30 users."""
    return emulated_fleet(120, products=6, users=30, seed=4, now_s=NOW_S)


@dataclass
class Project:
    emulator: Emulator
    engine: Engine
    fleet: EmulatedFleet
    clients: list[OpenApiClient] = field(default_factory=list)

    def client(self, quota: int = 500_000) -> OpenApiClient:
        client = OpenApiClient(
            self.emulator.url,
            ACCESS_ID,
            ACCESS_KEY,
            limiter=TokenBucket(10_000.0, burst=1_000.0),
            quota=DailyCallCounter(quota),
        )
        self.clients.append(client)
        return client

    def sync(self, quota: int = 500_000, *, schema: str | None = SCHEMA) -> FleetSync:
        return FleetSync(self.engine, self.client(quota), schema=schema)

    def calls(self, *fragments: str) -> list[str]:
        """The paths of the emulator's answered calls containing any of ``fragments`` (all but tokens if none)."""
        paths = [call.path.partition("?")[0] for call in self.emulator.calls if "/token" not in call.path]
        return [path for path in paths if not fragments or any(fragment in path for fragment in fragments)]

    def count(self, table: type, *where: object) -> int:
        with self.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _project(url: str, fleet: EmulatedFleet, **emulator_options: object) -> Iterator[Project]:
    devices = [replace(device, status=dict(device.status)) for device in fleet.devices]  # each test its own copy
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        with Emulator(
            ACCESS_ID, ACCESS_KEY, devices=devices, users=fleet.users, schema=SCHEMA, **emulator_options
        ) as emulator:
            project = Project(emulator, engine, fleet)
            try:
                yield project
            finally:
                for client in project.clients:
                    client.close()
    finally:
        engine.dispose()


@pytest.fixture(params=DIALECTS)
def big_project(request: pytest.FixtureRequest, tmp_path: Path, fleet: EmulatedFleet) -> Iterator[Project]:
    with scratch_database(request, tmp_path) as url:
        yield from _project(url, fleet)


@pytest.fixture(params=DIALECTS)
def project(request: pytest.FixtureRequest, tmp_path: Path, small_fleet: EmulatedFleet) -> Iterator[Project]:
    with scratch_database(request, tmp_path) as url:
        yield from _project(url, small_fleet)


@pytest.fixture
def sqlite_project(tmp_path: Path, small_fleet: EmulatedFleet) -> Iterator[Project]:
    yield from _project(f"sqlite:///{tmp_path / 'archive.db'}", small_fleet)


def test_a_full_sync_knows_every_device_product_data_point_and_user(big_project: Project) -> None:
    project = big_project
    report = project.sync().run()
    fleet = project.fleet
    assert (report.family, report.complete, report.devices_listed, report.devices_new) == (IOT03, True, 1_000, 1_000)
    assert (report.products, report.specifications, report.users_new) == (6, 6, 150)
    with project.engine.connect() as connection:
        stored = {row.device_id: row for row in connection.execute(select(Device.__table__))}
        points = connection.execute(select(DataPoint.product_id, func.count()).group_by(DataPoint.product_id)).all()
    sample = fleet.devices[17]
    row = stored[sample.device_id]
    assert (row.name, row.category, row.product_key, row.product_name) == (
        sample.name,
        sample.category,
        sample.product_id,
        sample.product_name,
    )
    # v1.3 lists the home (owner_id), not the owner's uid
    assert (row.owner_uid, row.time_zone, row.synced_at is not None) == (None, sample.time_zone, True)
    assert row.created_at == datetime.fromtimestamp(sample.create_time, UTC)
    expected = {p.product_id: len({d.code for d in (*p.functions, *p.reported)}) for p in fleet.products}
    assert dict(points) == expected
    assert project.count(User, User.synced_at.is_not(None)) == 150


def test_one_specification_call_per_product(project: Project) -> None:
    project.sync().run()
    assert len(project.calls(*SPEC_PATHS)) == len(project.fleet.products)
    assert len(project.calls(IOT03)) == 1  # 120 devices, 200 a page


def test_data_points_keep_type_unit_scale_range_and_direction(project: Project) -> None:
    project.sync().run()
    product = project.fleet.products[0]
    with project.engine.connect() as connection:
        rows = {
            row.code: row
            for row in connection.execute(select(DataPoint).where(DataPoint.product_id == product.product_id))
        }
    for point in (*product.functions, *product.reported):
        row = rows[point.code]
        assert (row.type, row.dp_id) == (point.type, point.dp_id)
        if point.type == "Integer":
            assert (row.scale, row.min, row.max) == (point.values["scale"], point.values["min"], point.values["max"])
        if point.type == "Enum":
            assert row.range == list(point.values["range"])
    functions = {point.code for point in product.functions}
    assert {code for code, row in rows.items() if row.commandable} == functions


@pytest.mark.parametrize(
    ("refused", "family", "calls"),
    [
        ({IOT03: 1106}, THING, 7),  # 20 a page: 6 full pages, then an empty one
        ({IOT03: 1106, "/v2.0/cloud/thing": 28841105}, ASSOCIATED, 2),  # 100 a page
        ({IOT03: 1106, "/v2.0/cloud/thing": 1106, "/v1.0/iot-01": 1106}, PER_USER, None),  # one call per uid
    ],
    ids=["v2.0-thing", "associated-users", "per-user"],
)
def test_each_family_pages_to_the_end(
    tmp_path: Path, small_fleet: EmulatedFleet, refused: dict[str, int], family: str, calls: int | None
) -> None:
    fleet = small_fleet
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", fleet, refused=refused):
        with project.engine.begin() as connection:  # the per-user family asks for the devices of known users
            rows = [{"uid": user.uid, "updated_at": f.at(0), "data": {}} for user in fleet.users]
            connection.execute(User.__table__.insert(), rows)
        report = project.sync(schema=None).run()
        assert (report.family, report.devices_listed, report.complete) == (family, 120, True)
        assert project.count(Device, Device.synced_at.is_not(None)) == 120
        assert [refusal.code for refusal in report.refused] == list(refused.values())
        if calls is not None:
            assert len(project.calls(family)) == calls


def test_a_listing_by_owner_marks_gone_only_devices_of_the_owners_it_listed(
    tmp_path: Path, small_fleet: EmulatedFleet
) -> None:
    refused = {IOT03: 1106, "/v2.0/cloud/thing": 1106, "/v1.0/iot-01": 1106}
    silent, listed = sorted({device.uid for device in small_fleet.devices if device.uid})[:2]
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", small_fleet, refused=refused):
        with project.engine.begin() as connection:
            rows = [{"uid": user.uid, "updated_at": f.at(0), "data": {}} for user in small_fleet.users]
            connection.execute(User.__table__.insert(), rows)
        project.sync(schema=None).run()
        removed = next(device.device_id for device in small_fleet.devices if device.uid == listed)
        project.emulator.remove_device(removed)
        project.emulator.fail_next(code=1106, path_prefix=PER_USER.format(uid=silent))  # not linked this time
        report = project.sync(schema=None).run()
        assert (report.family, report.complete, report.devices_gone) == (PER_USER, True, 1)
        with project.engine.connect() as connection:
            deleted = set(connection.scalars(select(Device.device_id).where(Device.deleted_at.is_not(None))))
        assert deleted == {removed}  # the silent owner's devices were not listed, so not judged gone


def test_a_listing_by_owner_knows_the_devices_shared_with_a_listed_user(
    tmp_path: Path, small_fleet: EmulatedFleet
) -> None:
    refused = {IOT03: 1106, "/v2.0/cloud/thing": 1106, "/v1.0/iot-01": 1106}
    guest = small_fleet.users[0].uid
    lent = replace(small_fleet.devices[0], uid="euUnlinkedOwner", shared_with=(guest,))  # its owner is not linked
    fleet = replace(small_fleet, devices=(lent, *small_fleet.devices[1:]))
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", fleet, refused=refused):
        with project.engine.begin() as connection:
            connection.execute(User.__table__.insert(), [{"uid": guest, "updated_at": f.at(0), "data": {}}])
        report = project.sync(schema=None).run()
        assert (report.family, report.complete) == (PER_USER, True)
        with project.engine.connect() as connection:
            row = connection.execute(select(Device).where(Device.device_id == lent.device_id)).one()
        assert (row.name, row.owner_uid, row.deleted_at) == (lent.name, "euUnlinkedOwner", None)
        asked = [call.path for call in project.emulator.calls if "from=sharing" in call.path]
        assert asked == [f"{PER_USER.format(uid=guest)}?from=sharing"]


def test_a_refused_family_is_remembered_and_not_asked_again(tmp_path: Path, small_fleet: EmulatedFleet) -> None:
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", small_fleet, refused={IOT03: 1106}):
        first = project.sync().run()
        assert [(r.path, r.code) for r in first.refused] == [(IOT03, 1106)]
        assert "IoT Core" in str(first.refused[0])
        before = len(project.calls(IOT03))
        second = project.sync().run()
        assert (second.family, second.refused, len(project.calls(IOT03))) == (THING, [], before)
        with project.engine.connect() as connection:
            memory = dict(
                connection.execute(select(ApiPath.path, ApiPath.status).where(ApiPath.purpose == "device_list")).all()
            )
        assert memory == {IOT03: "refused", THING: "ok"}


def test_devices_two_families_listed_count_once(tmp_path: Path, fleet: EmulatedFleet) -> None:
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", fleet):
        project.emulator.delay_next(1, 0.0, path_prefix=IOT03)  # its first page answered, its second refused
        project.emulator.fail_next(1, code=1106, path_prefix=IOT03)
        report = project.sync().run()
        assert (report.family, report.devices_listed, report.devices_new) == (THING, 1_000, 1_000)
        assert len(project.calls(IOT03)) == 2


@pytest.mark.parametrize("camel_case", [False, True], ids=["snake_case", "camelCase"])
def test_both_spellings_of_the_device_list(tmp_path: Path, small_fleet: EmulatedFleet, camel_case: bool) -> None:
    fleet = small_fleet
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", fleet, refused={IOT03: 1106}, camel_case=camel_case):
        project.sync().run()
        sample = fleet.devices[3]
        with project.engine.connect() as connection:
            row = connection.execute(select(Device).where(Device.device_id == sample.device_id)).one()
        assert (row.name, row.product_key, row.product_name, row.online, row.time_zone) == (
            sample.custom_name or sample.name,
            sample.product_id,
            sample.product_name,
            sample.online,
            sample.time_zone,
        )
        assert row.updated_at == datetime.fromtimestamp(sample.update_time, UTC)


def test_a_rename_and_a_removal_between_two_syncs(project: Project) -> None:
    project.sync().run()
    renamed, removed = project.fleet.devices[1].device_id, project.fleet.devices[2].device_id
    project.emulator.device(renamed).name = "Renamed in the app"
    project.emulator.remove_device(removed)
    report = project.sync().run()
    assert (report.devices_new, report.devices_changed, report.devices_gone) == (0, 1, 1)
    with project.engine.connect() as connection:
        rows = {
            r.device_id: r for r in connection.execute(select(Device).where(Device.device_id.in_([renamed, removed])))
        }
    assert rows[renamed].name == "Renamed in the app" and rows[renamed].deleted_at is None
    assert rows[removed].deleted_at is not None


def test_the_stream_keeps_a_newer_name_than_the_list(sqlite_project: Project) -> None:
    project = sqlite_project
    device = project.fleet.devices[5].device_id
    late = datetime.fromtimestamp(NOW_S + 3_600, UTC)  # a rename the stream reports after the sync's answer
    project.sync().run()
    ArchiveStore(project.engine).write_batch(
        [f.device_event(1, "name_updated", {"name": "Renamed later"}, device=device, when=late)], [], received_at=late
    )
    project.sync().run()
    with project.engine.connect() as connection:
        assert connection.scalar(select(Device.name).where(Device.device_id == device)) == "Renamed later"


def test_a_deletion_the_stream_delivers_after_a_newer_listing_gives_way_to_it(project: Project) -> None:
    # The worker's start: its backlog's delete arrives after the start-up sync listed the device again (re-paired).
    device = project.fleet.devices[5].device_id
    project.sync().run()
    store = ArchiveStore(project.engine)
    for n, minutes in ((1, -30), (2, 60)):  # half an hour before Tuya's answer, then an hour after it
        when = datetime.fromtimestamp(NOW_S + minutes * 60, UTC)
        store.write_batch([f.device_event(n, "deleted", device=device, when=when)], [], received_at=when)
        with project.engine.connect() as connection:
            deleted_at = connection.scalar(select(Device.deleted_at).where(Device.device_id == device))
        assert deleted_at == (None if minutes < 0 else when)


def test_a_late_message_of_the_product_a_device_had_before_leaves_the_listed_one(project: Project) -> None:
    # A backlog's message (or replay --messages) switched it back, and every view scaled its history by the old one.
    device = project.fleet.devices[5]
    assert device.product_id != f.PRODUCT
    project.sync().run()
    late = datetime.fromtimestamp(NOW_S - 3_600, UTC)
    ArchiveStore(project.engine).write_batch(
        [f.status_report(1, {"switch_1": True}, device=device.device_id, when=late)], [], received_at=late
    )
    with project.engine.connect() as connection:
        assert connection.scalar(select(Device.product_key).where(Device.device_id == device.device_id)) == (
            device.product_id
        )


def test_quota_stops_a_sync_and_a_rerun_finishes_it_without_doubles(tmp_path: Path, small_fleet: EmulatedFleet) -> None:
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", small_fleet, refused={IOT03: 1106}):
        stopped = project.sync(quota=4).run()  # the token, v1.3 refused, then 2 pages of 20
        assert stopped.stopped is not None and "quota" in stopped.stopped
        assert (stopped.devices_listed, stopped.complete, stopped.calls_left) == (40, False, 0)
        assert project.count(Device) == 40 and project.count(Device, Device.deleted_at.is_not(None)) == 0
        with project.engine.connect() as connection:
            recorded = connection.scalar(select(ApiUsage.calls))
        assert recorded == stopped.calls == 4
        finished = project.sync().run()
        assert (finished.devices_new, finished.devices_changed, finished.complete) == (80, 0, True)
        assert project.count(Device) == 120 and project.count(DataPoint) > 0


def test_a_quota_with_room_for_one_call_is_not_spent_on_a_token_grant_and_its_call(sqlite_project: Project) -> None:
    """The first call needs a token grant ahead of it: two calls, where one was left (before, both were made)."""
    report = sqlite_project.sync(quota=1).run()
    assert (report.calls, report.stopped is not None, sqlite_project.emulator.calls) == (0, True, [])


def test_a_token_due_for_refresh_counts_against_the_last_call_left(sqlite_project: Project) -> None:
    now = [time.time()]
    client = OpenApiClient(
        sqlite_project.emulator.url, ACCESS_ID, ACCESS_KEY, quota=DailyCallCounter(1), clock=lambda: now[0]
    )
    sqlite_project.clients.append(client)
    client.device_status(sqlite_project.fleet.devices[0].device_id)  # a token, granted outside the sync's budget
    now[0] += 7200  # due for its refresh
    asked = len(sqlite_project.emulator.calls)
    report = FleetSync(sqlite_project.engine, client, schema=SCHEMA).run()
    assert (report.calls, report.stopped is not None, len(sqlite_project.emulator.calls)) == (0, True, asked)


def test_calls_are_counted_against_the_days_quota(sqlite_project: Project) -> None:
    project = sqlite_project
    first = project.sync(quota=10_000).run()
    second = project.sync(quota=10_000).run()
    with project.engine.connect() as connection:
        recorded = connection.scalar(select(ApiUsage.calls))
    assert recorded == first.calls + second.calls == len(project.emulator.calls)
    assert second.calls_left == 10_000 - recorded


def test_latest_values_of_devices_that_never_reported_come_from_the_api(sqlite_project: Project) -> None:
    project = sqlite_project
    reporting = project.fleet.devices[0]
    code = next(iter(reporting.status))
    ArchiveStore(project.engine).write_batch(
        [f.status_report(1, {code: "from the stream"}, device=reporting.device_id, when=f.at(0))],
        [],
        received_at=f.at(0),
    )
    report = project.sync().run()
    assert report.states_filled == 119  # every device but the one that reported
    with project.engine.connect() as connection:
        sources = Counter(connection.scalars(select(DeviceState.source)))
        mine = connection.execute(select(DeviceState).where(DeviceState.device_id == reporting.device_id)).all()
        silent = project.fleet.devices[9]
        api = {
            r.code: r.value
            for r in connection.execute(select(DeviceState).where(DeviceState.device_id == silent.device_id))
        }
    assert [(row.code, row.value, row.source) for row in mine] == [(code, "from the stream", "stream")]
    assert api == silent.status
    assert sources["api"] == sum(len(d.status) for d in project.fleet.devices[1:])


def _dp_only_report(n: int, device_id: str, dp_id: int, value: object) -> Decoded:
    """A report whose one item carried only a DP id (no code, no product key), as normalize keeps it."""
    empty = f.status_report(n, {}, device=device_id, when=f.at(0))
    record = StatusReported(empty.message.message_id, 0, device_id, None, None, value, dp_id, f.at(0))
    return Decoded(empty.message, [record])


def test_items_that_carried_only_a_dp_id_are_named_after_the_sync(sqlite_project: Project) -> None:
    project = sqlite_project
    device = project.fleet.devices[0]
    point = next(p for p in project.fleet.products if p.product_id == device.product_id).reported[0]
    store = ArchiveStore(project.engine, settle_every=1_000_000)  # values wait in status_recent until settled
    store.write_batch([_dp_only_report(1, device.device_id, point.dp_id, 41)], [], received_at=f.at(0))
    settle_all(project.engine)  # one value settled into the history, one still recent
    store.write_batch([_dp_only_report(2, device.device_id, point.dp_id, 42)], [], received_at=f.at(0))
    assert project.count(DeviceStatus, DeviceStatus.code.is_(None)) == 2
    result = project.sync().run()
    assert result.items_named == 2
    with project.engine.connect() as connection:
        named = connection.execute(select(DeviceStatus.code, DeviceStatus.dp_id)).all()
        where = (DeviceState.device_id == device.device_id, DeviceState.code == point.code)
        state = connection.execute(select(DeviceState.value, DeviceState.source).where(*where)).one()
    assert [tuple(row) for row in named] == [(point.code, point.dp_id)] * 2
    # Named before the latest values are filled: the device has reported, so the API does not fill it.
    assert tuple(state) == (42, "stream")


def test_app_users_are_walked_back_in_30_day_windows(sqlite_project: Project) -> None:
    project = sqlite_project
    project.sync().run()
    windows = project.calls("/v2.0/apps/")
    assert project.count(User) == 30 and len(windows) >= 2
    again = project.sync().run()
    assert (again.users_new, again.users_changed, project.count(User)) == (0, 0, 30)


def test_a_user_the_stream_saw_at_the_list_s_update_time_gets_the_list_s_details(sqlite_project: Project) -> None:
    # A sign-up the stream saw is timed as Tuya's update_time of a user not changed since: the list's details (email,
    # mobile, country code) were left out, the event's uid and schema kept.
    project = sqlite_project
    user = project.fleet.users[0]
    when = datetime.fromtimestamp(user.update_time, UTC)
    ArchiveStore(project.engine).write_batch([f.user_event(1, "registered", user.uid, when=when)], [], received_at=when)
    project.sync().run()
    with project.engine.connect() as connection:
        data = connection.scalar(select(User.data).where(User.uid == user.uid))
    assert (data["country_code"], data["email"] or data["mobile"]) == (user.country_code, user.email or user.mobile)


def test_a_walk_through_the_users_cut_short_is_walked_again_to_the_first_sign_up(sqlite_project: Project) -> None:
    project = sqlite_project
    project.emulator.delay_next(1, 0.0, path_prefix="/v2.0/apps/")  # the newest window answers
    project.emulator.fail_next(code=1109, msg="param is illegal", path_prefix="/v2.0/apps/")  # the next one fails
    with pytest.raises(TuyaApiError):
        project.sync().run()
    assert 0 < project.count(User) < 30
    project.sync().run()
    assert project.count(User) == 30


def test_a_wrong_app_schema_is_explained_not_fatal(sqlite_project: Project) -> None:
    report = sqlite_project.sync(schema="notmyapp").run()
    assert report.complete and [(r.path, r.code) for r in report.refused] == [("/v2.0/apps/notmyapp/users", 1106)]
    assert "TUYA_APP_SCHEMA 'notmyapp'" in str(report.refused[0])


def test_sync_of_a_device_tuya_does_not_know_exits_1_naming_it(
    sqlite_project: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", str(sqlite_project.engine.url))
    monkeypatch.setenv("TUYA_OPENAPI_URL", sqlite_project.emulator.url)
    monkeypatch.setenv("TUYA_ACCESS_ID", ACCESS_ID)
    monkeypatch.setenv("TUYA_ACCESS_KEY", ACCESS_KEY)
    known = sqlite_project.fleet.devices[0].device_id
    assert main(["sync", "--device", known]) == 0
    assert main(["sync", "--device", known, "--device", "bfnosuchdevice0000000"]) == 1
    assert "problem: device bfnosuchdevice0000000:" in capsys.readouterr().out


def test_syncing_one_device_fetches_its_details_and_its_products_specification(sqlite_project: Project) -> None:
    project = sqlite_project
    device = project.fleet.devices[7]
    report = project.sync().sync_devices([device.device_id])
    assert (report.devices_listed, report.devices_new, report.specifications) == (1, 1, 1)
    assert project.count(DataPoint, DataPoint.product_id == device.product_id) > 0
    assert project.calls(IOT03) == []  # no listing of the whole fleet


def test_syncing_a_device_fetches_its_products_specification_whichever_device_of_it_the_archive_knows_first(
    sqlite_project: Project,
) -> None:
    """The archive knows every device of the product (from the stream, say), without its specification: asking for
    one that is not the first of its product still fetches the product's (before, only the first one's did)."""
    project = sqlite_project
    device = project.fleet.devices[7]
    siblings = [d for d in project.fleet.devices if d.product_id == device.product_id]
    assert siblings[0] != device
    with project.engine.begin() as connection:
        rows = [
            {"device_id": d.device_id, "product_key": d.product_id, "first_seen_at": f.at(0), "last_seen_at": f.at(0)}
            for d in siblings
        ]
        connection.execute(Device.__table__.insert(), rows)
    report = project.sync().sync_devices([device.device_id])
    assert (report.specifications, report.problems) == (1, [])
    assert project.count(DataPoint, DataPoint.product_id == device.product_id) > 0


def test_syncing_a_device_no_detail_path_answers_for_is_a_problem_for_each(
    tmp_path: Path, small_fleet: EmulatedFleet
) -> None:
    refused = {"/v1.0/iot-03/devices": 1106, "/v2.0/cloud/thing": 1106}
    asked = [device.device_id for device in small_fleet.devices[:2]]
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", small_fleet, refused=refused):
        report = project.sync().sync_devices(asked)
        assert report.problems == [f"device {d}: not read, every device-detail path was refused" for d in asked]


def _an_hour_ahead() -> datetime:
    """Our clock an hour ahead of Tuya's, as after the specification calls of a big fleet."""
    return datetime.now(UTC) + timedelta(hours=1)


def test_values_a_device_list_carried_are_as_of_its_answer_not_of_when_they_were_stored(
    tmp_path: Path, small_fleet: EmulatedFleet
) -> None:
    # The per-user family's pages carry each device's status; they were stamped after every specification call, by
    # our clock, so that a stream report newer than the list lost to it.
    refused = {IOT03: 1106, "/v2.0/cloud/thing": 1106, "/v1.0/iot-01": 1106}
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", small_fleet, refused=refused):
        sync = FleetSync(project.engine, project.client(), schema=SCHEMA, clock=_an_hour_ahead)
        assert sync.run().family == PER_USER
        with project.engine.connect() as connection:
            stamps = connection.execute(select(DeviceState.reported_at).where(DeviceState.source == "api")).scalars()
            latest = max(stamps)
        assert latest < datetime.now(UTC)  # Tuya's time of the page's answer


def test_a_first_sync_through_the_per_user_family_lists_the_devices_of_the_app_s_users(
    tmp_path: Path, small_fleet: EmulatedFleet
) -> None:
    """The users are walked first: before, a fresh archive knew no user when the per-user family was asked, which
    failed the listing and recorded the path as refused."""
    refused = {IOT03: 1106, "/v2.0/cloud/thing": 1106, "/v1.0/iot-01": 1106}
    for project in _project(f"sqlite:///{tmp_path / 'a.db'}", small_fleet, refused=refused):
        report = project.sync().run()
        assert (report.family, report.devices_listed, report.problems) == (PER_USER, 120, [])
        assert PER_USER not in {refusal.path for refusal in report.refused}
