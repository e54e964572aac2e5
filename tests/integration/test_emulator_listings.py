"""The emulator's device-list families and refused families over real loopback HTTP (partner:
streams/tuya/emulated_listings.py; the fleet itself in tests/unit/tuya/test_emulated_fleet.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulator import EmulatedDevice, Emulator
from tests.integration.test_emulator import FakeClock, SignedSession

pytestmark = pytest.mark.integration

NOW_S = 1_750_000_000
SNAKE_FIELDS = {
    "active_time", "category", "create_time", "custom_name", "icon", "id", "ip", "is_online", "lat", "local_key",
    "lon", "name", "product_id", "product_name", "sub", "time_zone", "update_time", "uuid",
}  # fmt: skip
CAMEL_FIELDS = {
    "activeTime", "category", "createTime", "customName", "icon", "id", "ip", "isOnline", "lat", "localKey", "lon",
    "name", "productId", "productName", "sub", "timeZone", "updateTime", "uuid",
}  # fmt: skip
IOT03_FIELDS = {
    "id", "gateway_id", "node_id", "uuid", "category", "category_name", "name", "product_id", "product_name",
    "local_key", "sub", "asset_id", "owner_id", "ip", "lon", "lat", "model", "time_zone", "active_time",
    "update_time", "create_time", "online", "icon",
}  # fmt: skip


@pytest.fixture
def project(vectors) -> tuple[str, str]:
    return vectors["pulsar_auth"]["access_id"], vectors["pulsar_auth"]["access_key"]


@pytest.fixture(scope="module")
def fleet() -> EmulatedFleet:
    return emulated_fleet(1000, users=40, seed=7, now_s=NOW_S)


@contextmanager
def serving(project: tuple[str, str], fleet: EmulatedFleet, **options: Any) -> Iterator[SignedSession]:
    clock = FakeClock(NOW_S)
    with Emulator(*project, devices=fleet.devices, users=fleet.users, clock=clock, **options) as emulator:
        session = SignedSession(emulator, project, clock)
        try:
            yield session
        finally:
            session.close()


@pytest.fixture
def api(project, fleet) -> Iterator[SignedSession]:
    with serving(project, fleet) as session:
        yield session


def _walk_v13(api: SignedSession, **params: Any) -> list[dict[str, Any]]:
    pages, cursor = [], ""
    while True:
        page = api.result("/v1.3/iot-03/devices", last_row_key=cursor, **params)
        pages.append(page)
        if not page["has_more"]:
            return pages
        cursor = page["last_row_key"]


def _walk_v20(api: SignedSession, page_size: int = 20, **params: Any) -> list[list[dict[str, Any]]]:
    pages, last_id = [], ""
    while True:
        page = api.result("/v2.0/cloud/thing/device", page_size=page_size, last_id=last_id, **params)
        pages.append(page)
        if len(page) < page_size:
            return pages
        last_id = page[-1]["id"]


def test_v13_pages_of_200_list_every_device_once(api, fleet):
    pages = _walk_v13(api, page_size=200)
    ids = [item["id"] for page in pages for item in page["list"]]
    assert [len(page["list"]) for page in pages] == [200] * 5
    assert ids == sorted(device.device_id for device in fleet.devices)
    assert {page["total"] for page in pages} == {1000}
    assert set(pages[0]["list"][0]) == IOT03_FIELDS


def test_v13_page_size_defaults_to_20_and_above_200_is_refused(api):
    assert len(api.result("/v1.3/iot-03/devices")["list"]) == 20
    assert api.get("/v1.3/iot-03/devices", page_size=201)["code"] == 1109


def test_v13_record_carries_times_in_seconds_and_the_owner(api, fleet):
    device = fleet.devices[0]
    [item] = [item for page in _walk_v13(api, page_size=200) for item in page["list"] if item["id"] == device.device_id]
    assert (item["create_time"], item["update_time"], item["owner_id"]) == (
        device.create_time,
        device.update_time,
        device.owner_id,
    )
    assert item["create_time"] < 10**10  # seconds, not ms
    assert (item["product_name"], item["online"], item["local_key"]) == (
        device.product_name,
        device.online,
        device.local_key,
    )


def test_v20_pages_of_20_end_with_an_empty_page_when_the_last_is_full(api, fleet):
    pages = _walk_v20(api)
    ids = [item["id"] for page in pages for item in page]
    assert len(pages) == 51 and pages[-1] == []
    assert ids == sorted(device.device_id for device in fleet.devices)


def test_v20_ends_on_a_short_page(project):
    with serving(project, emulated_fleet(45, seed=3, now_s=NOW_S)) as api:
        assert [len(page) for page in _walk_v20(api)] == [20, 20, 5]


@pytest.mark.parametrize("page_size", [None, 21, 0])
def test_v20_page_size_is_required_and_at_most_20(api, page_size):
    params = {} if page_size is None else {"page_size": page_size}
    assert api.get("/v2.0/cloud/thing/device", **params)["code"] == 1109


def test_v20_fields_are_snake_case_by_default_without_an_owner(api):
    [item] = api.result("/v2.0/cloud/thing/device", page_size=1)
    assert set(item) == SNAKE_FIELDS


def test_v20_fields_are_camel_case_when_configured(project, fleet):
    with serving(project, fleet, camel_case=True) as api:
        [item] = api.result("/v2.0/cloud/thing/device", page_size=1)
        details = api.result(f"/v2.0/cloud/thing/{item['id']}")
    assert set(item) == CAMEL_FIELDS and details == item


def test_v20_filters_by_products_and_categories(api, fleet):
    wanted = [product.product_id for product in fleet.products[:2]]
    pages = _walk_v20(api, product_ids=",".join(wanted))
    expected = sorted(device.device_id for device in fleet.devices if device.product_id in wanted)
    assert [item["id"] for page in pages for item in page] == expected
    sensors = [item for page in _walk_v20(api, categories="wsdcg,nothing") for item in page]
    assert len(sensors) == sum(device.category == "wsdcg" for device in fleet.devices) > 0


def test_v20_more_than_five_product_ids_refused(api):
    assert api.get("/v2.0/cloud/thing/device", page_size=20, product_ids="a,b,c,d,e,f")["code"] == 1109


def test_associated_users_pages_of_100_carry_the_owner(api, fleet):
    pages, cursor = [], ""
    while not pages or pages[-1]["has_more"]:
        pages.append(api.result("/v1.0/iot-01/associated-users/devices", size=100, last_row_key=cursor))
        cursor = pages[-1]["last_row_key"]
    owners = {item["id"]: item["uid"] for page in pages for item in page["devices"]}
    assert len(pages) == 10 and {page["total"] for page in pages} == {1000}
    assert owners == {device.device_id: device.uid for device in fleet.devices}
    assert api.get("/v1.0/iot-01/associated-users/devices", size=101)["code"] == 1109


def test_user_devices_are_the_users_own_with_inline_status(api, fleet):
    uid = fleet.devices[0].uid
    listed = api.result(f"/v1.0/users/{uid}/devices", **{"from": "home", "page_no": 1, "page_size": 100})
    own = {device.device_id: device for device in fleet.devices if device.uid == uid}
    assert sorted(item["id"] for item in listed) == sorted(own)
    item = listed[0]
    assert item["status"] == [{"code": c, "value": v} for c, v in own[item["id"]].status.items()]
    assert (item["uid"], item["owner_id"]) == (uid, own[item["id"]].owner_id)


def test_user_devices_of_an_unknown_uid_refused_with_1106(api):
    assert api.get("/v1.0/users/nobodyknowsthisuid/devices")["code"] == 1106


def test_devices_added_while_paging_are_met_once_or_not_at_all(project):
    with serving(project, emulated_fleet(30, seed=5, now_s=NOW_S)) as api:
        first = api.result("/v2.0/cloud/thing/device", page_size=20)
        for device_id in ("00000000added-before", "zzzzzzzzadded-after"):
            api.emulator.add_device(EmulatedDevice(device_id=device_id, functions=()))
        rest = api.result("/v2.0/cloud/thing/device", page_size=20, last_id=first[-1]["id"])
    ids = [item["id"] for item in first + rest]
    assert len(ids) == len(set(ids)) == 31
    assert "zzzzzzzzadded-after" in ids and "00000000added-before" not in ids


REFUSED = {"/v1.3/iot-03/devices": 1106, "/v2.0/cloud/thing": 28841105}


def test_refused_families_answer_their_code_everywhere_under_the_prefix(project, fleet):
    device = fleet.devices[0].device_id
    with serving(project, fleet, refused=REFUSED) as api:
        answers = {
            "v1.3 list": api.get("/v1.3/iot-03/devices"),
            "v2.0 list": api.get("/v2.0/cloud/thing/device", page_size=20),
            "v2.0 model": api.get(f"/v2.0/cloud/thing/{device}/model"),
        }
        allowed = [
            api.get(f"/v1.0/iot-03/devices/{device}"),
            api.get(f"/v1.0/iot-03/devices/{device}/status"),
            api.get("/v1.0/iot-01/associated-users/devices"),
        ]
    assert {name: (a["success"], a["code"]) for name, a in answers.items()} == {
        "v1.3 list": (False, 1106),
        "v2.0 list": (False, 28841105),
        "v2.0 model": (False, 28841105),
    }
    assert answers["v1.3 list"]["msg"] == "permission deny"
    assert answers["v2.0 list"]["msg"] == "No permissions. This API is not subscribed."
    assert all(answer["success"] for answer in allowed)


def test_refused_prefix_matches_whole_segments_only(project, fleet):
    with serving(project, fleet, refused={"/v2.0/cloud/thing/": 1106}) as api:
        assert api.get("/v2.0/cloud/things")["code"] == 1108
        assert api.get("/v2.0/cloud/thing")["code"] == 1106


def test_refused_family_still_checks_the_signature_first(project, fleet):
    with serving(project, fleet, refused=REFUSED) as api:
        target = "/v1.3/iot-03/devices"
        headers = {**api.signer.headers("GET", target, token=api.token), "sign": "0" * 64}
        assert api.http.get(target, headers=headers).json()["code"] == 1004
