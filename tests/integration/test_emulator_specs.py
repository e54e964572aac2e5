"""The emulator's specification endpoints, thing model and device details over real loopback HTTP (partner:
streams/tuya/emulated_specs.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulator import Emulator
from tests.integration.test_emulator import FakeClock, SignedSession

pytestmark = pytest.mark.integration

NOW_S = 1_750_000_000
_MODEL_TYPES = {"Boolean": "bool", "Integer": "value", "Enum": "enum"}


@pytest.fixture
def project(vectors) -> tuple[str, str]:
    return vectors["pulsar_auth"]["access_id"], vectors["pulsar_auth"]["access_key"]


@pytest.fixture(scope="module")
def fleet() -> EmulatedFleet:
    return emulated_fleet(12, seed=11, now_s=NOW_S)


@pytest.fixture
def api(project, fleet) -> Iterator[SignedSession]:
    clock = FakeClock(NOW_S)
    with Emulator(*project, devices=fleet.devices, clock=clock) as emulator:
        session = SignedSession(emulator, project, clock)
        yield session
        session.close()


def _device_of(fleet: EmulatedFleet, category: str) -> str:
    return next(device.device_id for device in fleet.devices if device.category == category)


def _without_dp_id(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{key: value for key, value in entry.items() if key != "dp_id"} for entry in entries]


@pytest.mark.parametrize("category", ["cz", "wsdcg", "wk", "zndb", "dj", "kg"])
def test_the_three_specification_paths_agree(api, fleet, category):
    device = _device_of(fleet, category)
    v11 = api.result(f"/v1.1/devices/{device}/specifications")
    iot03 = api.result(f"/v1.0/iot-03/devices/{device}/specification")
    legacy = api.result(f"/v1.0/devices/{device}/specifications")
    assert iot03 == legacy
    assert iot03["category"] == v11["category"] == category
    assert iot03["functions"] == _without_dp_id(v11["functions"])
    assert iot03["status"] == _without_dp_id(v11["status"])
    assert all(isinstance(entry["dp_id"], int) and entry["dp_id"] > 0 for entry in v11["functions"] + v11["status"])
    assert all(isinstance(entry["values"], str) for entry in v11["functions"] + v11["status"])


@pytest.mark.parametrize("category", ["cz", "wsdcg", "wk", "zndb", "dj", "kg"])
def test_thing_model_agrees_with_the_v11_specification(api, fleet, category):
    device = _device_of(fleet, category)
    v11 = api.result(f"/v1.1/devices/{device}/specifications")
    model = json.loads(api.result(f"/v2.0/cloud/thing/{device}/model")["model"])
    [service] = model["services"]
    commandable = {entry["code"] for entry in v11["functions"]}
    reported = {entry["code"] for entry in v11["status"]}
    by_code = {entry["code"]: entry for entry in v11["functions"] + v11["status"]}
    assert model["modelId"] == next(d.product_id for d in fleet.devices if d.device_id == device)
    assert {prop["code"] for prop in service["properties"]} == set(by_code)
    for prop in service["properties"]:
        entry, values = by_code[prop["code"]], json.loads(by_code[prop["code"]]["values"])
        expected_mode = {(True, True): "rw", (False, True): "ro", (True, False): "wr"}
        assert prop["abilityId"] == entry["dp_id"]
        assert prop["accessMode"] == expected_mode[prop["code"] in commandable, prop["code"] in reported]
        assert prop["typeSpec"]["type"] == _MODEL_TYPES[entry["type"]]
        if entry["type"] == "Integer":
            assert {key: prop["typeSpec"][key] for key in values} == values
        if entry["type"] == "Enum":
            assert prop["typeSpec"]["range"] == values["range"]


def test_values_strings_decode_to_tuyas_shapes(api, fleet):
    spec = api.result(f"/v1.1/devices/{_device_of(fleet, 'cz')}/specifications")
    by_code = {entry["code"]: entry for entry in spec["functions"] + spec["status"]}
    assert by_code["switch_1"]["values"] == "{}" and by_code["switch_1"]["type"] == "Boolean"
    assert json.loads(by_code["cur_power"]["values"]) == {"unit": "W", "min": 0, "max": 99999, "scale": 1, "step": 1}
    assert json.loads(by_code["relay_status"]["values"]) == {"range": ["0", "1", "2"]}
    assert by_code["switch_1"]["dp_id"] == 1 and by_code["cur_power"]["dp_id"] == 19


def test_a_write_only_point_is_a_function_but_not_reported(api, fleet):
    spec = api.result(f"/v1.1/devices/{_device_of(fleet, 'wk')}/specifications")
    assert "factory_reset" in {entry["code"] for entry in spec["functions"]}
    assert "factory_reset" not in {entry["code"] for entry in spec["status"]}


def test_devices_of_one_product_share_its_specification(api, fleet):
    product = fleet.products[0].product_id
    first, second = [device.device_id for device in fleet.devices if device.product_id == product][:2]
    assert api.result(f"/v1.1/devices/{first}/specifications") == api.result(f"/v1.1/devices/{second}/specifications")


def test_thing_details_are_the_v20_list_record(api, fleet):
    device = fleet.devices[3]
    details = api.result(f"/v2.0/cloud/thing/{device.device_id}")
    [listed] = api.result("/v2.0/cloud/thing/device", page_size=1, last_id=_previous_id(fleet, device.device_id))
    assert details == listed
    assert (details["is_online"], details["product_name"], details["create_time"]) == (
        device.online,
        device.product_name,
        device.create_time,
    )


def _previous_id(fleet: EmulatedFleet, device_id: str) -> str:
    ids = sorted(device.device_id for device in fleet.devices)
    index = ids.index(device_id)
    return ids[index - 1] if index else ""


def test_iot03_details_keep_their_fields_and_add_the_owner(api, fleet):
    device = fleet.devices[0]
    details = api.result(f"/v1.0/iot-03/devices/{device.device_id}")
    assert (details["id"], details["name"], details["uid"], details["online"]) == (
        device.device_id,
        device.name,
        device.uid,
        device.online,
    )
    assert (details["product_id"], details["product_name"], details["time_zone"]) == (
        device.product_id,
        device.product_name,
        device.time_zone,
    )


def test_unknown_device_answers_2010_on_every_device_path(api):
    paths = ["/v1.1/devices/x/specifications", "/v2.0/cloud/thing/x/model", "/v2.0/cloud/thing/x"]
    assert [api.get(path)["code"] for path in paths] == [2010, 2010, 2010]
