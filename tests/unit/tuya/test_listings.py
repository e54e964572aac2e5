"""streams/tuya/listings.py: device and user list items in either spelling, and the three specification forms
(partner: tests/integration/test_sync.py, which reads these shapes from the OpenAPI emulator)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from models.points import PointSpec
from streams.tuya.listings import (
    ListedDevice,
    ListedUser,
    listed_device,
    listed_user,
    model_points,
    specification_points,
)

DEVICE = "bf1e8a0cd2e4a1b2c3x9kq"
PRODUCT = "yfemiswbgjhddhcf"
UID = "ay1623229189000AbCdE"
LOCAL_KEY = "5c3f1a9d7e2b4c6a"


def real_user_device(**overrides: Any) -> dict[str, Any]:
    """The real record of a user's device quoted in SPEC.md §10.1, with its elided values filled in."""
    raw: dict[str, Any] = {
        "active_time": 1623229189,
        "biz_type": 18,
        "category": "cz",
        "create_time": 1560491945,
        "icon": "smart/product_icon/cz.png",
        "id": DEVICE,
        "ip": "203.0.113.7",
        "local_key": LOCAL_KEY,
        "model": "",
        "name": "Living Room Socket",
        "online": False,
        "owner_id": "34794909",
        "product_id": PRODUCT,
        "product_name": "Switch Product",
        "status": [{"code": "switch", "value": False}, {"code": "cur_voltage", "value": 2343}],
        "sub": False,
        "time_zone": "+08:00",
        "uid": UID,
        "update_time": 1625101929,
        "uuid": "3a8f0c2e1b7d4e59",
    }
    raw.update(overrides)
    return raw


def thing_device_snake(**overrides: Any) -> dict[str, Any]:
    """An item of ``GET /v2.0/cloud/thing/device`` as one doc version spells it (snake_case, no owner, no status)."""
    raw: dict[str, Any] = {
        "active_time": 1700000000,
        "category": "dj",
        "create_time": 1690000000,
        "custom_name": "Desk Lamp",
        "icon": "smart/icon/dj.png",
        "id": DEVICE,
        "ip": "203.0.113.8",
        "is_online": True,
        "lat": "52.5",
        "local_key": LOCAL_KEY,
        "lon": "13.4",
        "name": "Lamp",
        "product_id": PRODUCT,
        "product_name": "Smart Bulb",
        "sub": False,
        "time_zone": "+01:00",
        "update_time": 1710000000,
        "uuid": "9d2c7e4a1f3b5a68",
    }
    raw.update(overrides)
    return raw


def thing_device_camel(**overrides: Any) -> dict[str, Any]:
    """The same item as another doc version and the CN example spell it (camelCase)."""
    raw: dict[str, Any] = {
        "activeTime": 1700000000,
        "category": "dj",
        "createTime": 1690000000,
        "customName": "Desk Lamp",
        "id": DEVICE,
        "isOnline": True,
        "localKey": LOCAL_KEY,
        "productId": PRODUCT,
        "productName": "Smart Bulb",
        "timeZone": "+01:00",
        "updateTime": 1710000000,
    }
    raw.update(overrides)
    return raw


def user_item(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "uid": UID,
        "username": "alice@example.com",
        "email": "alice@example.com",
        "mobile": "",
        "country_code": "49",
        "create_time": 1700000000,
        "update_time": 1710000000,
    }
    raw.update(overrides)
    return raw


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def thing_model(*properties: dict[str, Any]) -> dict[str, Any]:
    """A ``/v2.0/cloud/thing/{id}/model`` result: ``model`` is a JSON string."""
    model = {"modelId": "m1x2y3", "services": [{"properties": list(properties), "actions": [], "events": []}]}
    return {"model": json.dumps(model)}


# listed_device


def test_listed_device_reads_every_field_of_the_real_user_device_record():
    assert listed_device(real_user_device()) == ListedDevice(
        device_id=DEVICE,
        name="Living Room Socket",
        category="cz",
        product_id=PRODUCT,
        product_name="Switch Product",
        online=False,
        owner_uid=UID,
        time_zone="+08:00",
        created_at=datetime(2019, 6, 14, 5, 59, 5, tzinfo=UTC),
        activated_at=datetime(2021, 6, 9, 8, 59, 49, tzinfo=UTC),
        updated_at=datetime(2021, 7, 1, 1, 12, 9, tzinfo=UTC),
        status=(("switch", False), ("cur_voltage", 2343)),
    )


def test_listed_device_reads_snake_case_thing_item_without_owner_or_status():
    assert listed_device(thing_device_snake()) == ListedDevice(
        device_id=DEVICE,
        name="Lamp",
        category="dj",
        product_id=PRODUCT,
        product_name="Smart Bulb",
        online=True,
        owner_uid=None,
        time_zone="+01:00",
        created_at=at(1690000000),
        activated_at=at(1700000000),
        updated_at=at(1710000000),
        status=None,
    )


def test_listed_device_reads_camel_case_item_like_its_snake_case_twin():
    assert listed_device(thing_device_camel()) == listed_device(thing_device_snake(name=None))


def test_listed_device_takes_custom_name_when_name_is_blank():
    assert listed_device(thing_device_snake(name="")).name == "Desk Lamp"


@pytest.mark.parametrize("key", ["online", "is_online", "isOnline"])
@pytest.mark.parametrize("value", [True, False])
def test_listed_device_reads_online_under_each_spelling(key: str, value: bool):
    assert listed_device({"id": DEVICE, key: value}).online is value


def test_listed_device_reads_online_sent_as_text():
    assert listed_device({"id": DEVICE, "is_online": "true"}).online is True
    assert listed_device({"id": DEVICE, "is_online": "False"}).online is False


def test_listed_device_leaves_online_unknown_when_absent_or_not_a_flag():
    assert listed_device({"id": DEVICE}).online is None
    assert listed_device({"id": DEVICE, "online": 1}).online is None


def test_listed_device_prefers_uid_over_owner_id_for_owner():
    assert listed_device(real_user_device(uid=UID, owner_id="34794909")).owner_uid == UID


@pytest.mark.parametrize("key", ["owner_id", "ownerId"])
def test_listed_device_does_not_take_home_in_owner_id_for_owner(key: str):
    assert listed_device({"id": DEVICE, key: "34794909"}).owner_uid is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1623229189, datetime(2021, 6, 9, 8, 59, 49, tzinfo=UTC)),
        ("1623229189", datetime(2021, 6, 9, 8, 59, 49, tzinfo=UTC)),
        (1623229189.5, datetime(2021, 6, 9, 8, 59, 49, 500000, tzinfo=UTC)),
        (1623229189000, datetime(2021, 6, 9, 8, 59, 49, tzinfo=UTC)),
        ("1623229189250", datetime(2021, 6, 9, 8, 59, 49, 250000, tzinfo=UTC)),
        (99_999_999_999, datetime(5138, 11, 16, 9, 46, 39, tzinfo=UTC)),
        (10**11, datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)),
    ],
    ids=["int-s", "digits-s", "float-s", "int-ms", "digits-ms", "last-seconds", "first-ms"],
)
def test_listed_device_reads_times_as_seconds_or_milliseconds_from_ten_to_the_eleventh(value: Any, expected: datetime):
    assert listed_device({"id": DEVICE, "active_time": value}).activated_at == expected


@pytest.mark.parametrize("value", [0, -5, "", "12.5", "soon", True, None, [1623229189]])
def test_listed_device_leaves_time_unknown_when_not_positive_epoch(value: Any):
    assert listed_device({"id": DEVICE, "create_time": value}).created_at is None


def test_listed_device_reads_camel_case_times():
    device = listed_device({"id": DEVICE, "createTime": "1690000000", "activeTime": 1700000000, "updateTime": 0})
    assert (device.created_at, device.activated_at, device.updated_at) == (at(1690000000), at(1700000000), None)


def test_listed_device_keeps_inline_status_items_with_a_code_in_order():
    raw = {
        "id": DEVICE,
        "status": [
            {"code": "switch_1", "value": True},
            {"value": 5},
            {"code": "", "value": 6},
            "noise",
            {"code": "countdown_1"},
            {"code": "colour_data", "value": {"h": 10, "s": 20, "v": 30}},
        ],
    }
    assert listed_device(raw).status == (
        ("switch_1", True),
        ("countdown_1", None),
        ("colour_data", {"h": 10, "s": 20, "v": 30}),
    )


def test_listed_device_keeps_empty_inline_status_as_empty():
    assert listed_device({"id": DEVICE, "status": []}).status == ()


@pytest.mark.parametrize("key", ["id", "device_id", "devId"])
def test_listed_device_reads_id_under_each_spelling(key: str):
    assert listed_device({key: DEVICE}).device_id == DEVICE


@pytest.mark.parametrize(
    "raw",
    [{}, {"id": None}, {"id": ""}, {"name": "Lamp", "local_key": LOCAL_KEY}, None, "bf1e8a0c", [DEVICE]],
    ids=["empty", "null-id", "blank-id", "no-id", "null", "string", "list"],
)
def test_listed_device_is_none_for_item_without_id(raw: Any):
    assert listed_device(raw) is None


def test_listed_device_never_keeps_local_key():
    for raw in (real_user_device(), thing_device_snake(), thing_device_camel()):
        device = listed_device(raw)
        assert "local_key" not in ListedDevice.__struct_fields__
        assert LOCAL_KEY not in msgspec.json.encode(device).decode()
        assert LOCAL_KEY not in repr(device)


def test_listed_device_ignores_unknown_keys():
    assert listed_device(real_user_device(new_tuya_key={"x": 1})) == listed_device(real_user_device())


def test_listed_device_turns_numeric_ids_into_text():
    device = listed_device({"id": 12345, "uid": 34794909, "product_id": 77})
    assert (device.device_id, device.owner_uid, device.product_id) == ("12345", "34794909", "77")


# listed_user


def test_listed_user_reads_uid_times_and_contact_data():
    assert listed_user(user_item(nick_name="Al", avatar="https://example.com/a.png")) == ListedUser(
        uid=UID,
        username="alice@example.com",
        registered_at=at(1700000000),
        updated_at=at(1710000000),
        data={"username": "alice@example.com", "email": "alice@example.com", "country_code": "49", "nick_name": "Al"},
    )


def test_listed_user_reads_camel_case_times_in_milliseconds():
    user = listed_user({"uid": UID, "createTime": "1700000000000", "updateTime": 1710000000})
    assert (user.registered_at, user.updated_at, user.username, user.data) == (
        at(1700000000),
        at(1710000000),
        None,
        {},
    )


@pytest.mark.parametrize("raw", [{}, {"uid": ""}, {"username": "bob"}, None, "ay1623"], ids=repr)
def test_listed_user_is_none_for_item_without_uid(raw: Any):
    assert listed_user(raw) is None


# specification_points

TEMP_SET_VALUES = {"unit": "℃", "min": 0, "max": 37, "scale": 0, "step": 1}


def test_specification_points_reads_values_sent_as_json_string():
    result = {
        "category": "wk",
        "functions": [{"code": "temp_set", "type": "Integer", "values": json.dumps(TEMP_SET_VALUES)}],
    }
    points, specs = specification_points("prodA", result)
    assert points == [
        PointSpec(
            product_id="prodA",
            code="temp_set",
            type="Integer",
            dp_id=None,
            unit="°C",
            scale=0,
            min=0.0,
            max=37.0,
            step=1.0,
            reported=False,
            commandable=True,
        )
    ]
    assert specs == {"temp_set": TEMP_SET_VALUES}


def test_specification_points_reads_values_sent_as_object():
    result = {"status": [{"code": "temp_current", "name": "Temperature", "type": "Integer", "values": TEMP_SET_VALUES}]}
    points, specs = specification_points("prodA", result)
    assert points == [
        PointSpec(
            product_id="prodA",
            code="temp_current",
            type="Integer",
            name="Temperature",
            unit="°C",
            min=0.0,
            max=37.0,
            step=1.0,
            reported=True,
            commandable=False,
        )
    ]
    assert specs == {"temp_current": TEMP_SET_VALUES}


def test_specification_points_makes_code_in_status_and_functions_one_reported_commandable_point():
    result = {
        "functions": [{"code": "switch_1", "type": "Boolean", "values": "{}"}],
        "status": [
            {"code": "switch_1", "dp_id": 1, "type": "Boolean", "values": "{}"},
            {"code": "cur_voltage", "dp_id": 20, "type": "Integer", "values": '{"unit":"V","scale":1}'},
        ],
    }
    points, specs = specification_points("prodA", result)
    assert [(p.code, p.dp_id, p.reported, p.commandable) for p in points] == [
        ("switch_1", 1, True, True),
        ("cur_voltage", 20, True, False),
    ]
    assert specs == {"switch_1": {}, "cur_voltage": {"unit": "V", "scale": 1}}


@pytest.mark.parametrize("key", ["dp_id", "dpId"])
@pytest.mark.parametrize("value", [7, "7"])
def test_specification_points_reads_dp_id_under_either_spelling(key: str, value: Any):
    points, _specs = specification_points("prodA", {"status": [{"code": "switch_1", key: value, "values": "{}"}]})
    assert points[0].dp_id == 7


def test_specification_points_leaves_dp_id_unknown_when_absent_or_not_a_number():
    result = {"status": [{"code": "a"}, {"code": "b", "dp_id": "x1"}, {"code": "c", "dp_id": True}]}
    points, _specs = specification_points("prodA", result)
    assert [p.dp_id for p in points] == [None, None, None]


@pytest.mark.parametrize(("unit", "expected"), [("℃", "°C"), ("℉", "°F"), ("°c", "°C"), (" % ", "%"), ("", None)])
def test_specification_points_normalises_unit(unit: str, expected: str | None):
    result = {"status": [{"code": "temp", "type": "Integer", "values": json.dumps({"unit": unit})}]}
    assert specification_points("prodA", result)[0][0].unit == expected


def test_specification_points_reads_scale_min_max_step_given_as_text():
    values = {"unit": "V", "min": "0", "max": "5000", "scale": "1", "step": "0.5"}
    points, _specs = specification_points(
        "prodA", {"status": [{"code": "cur_voltage", "type": "Integer", "values": values}]}
    )
    assert (points[0].scale, points[0].min, points[0].max, points[0].step) == (1, 0.0, 5000.0, 0.5)


@pytest.mark.parametrize("scale", [-1, "x", None, True], ids=repr)
def test_specification_points_reads_scale_as_zero_when_negative_or_not_a_number(scale: Any):
    values = json.dumps({"scale": scale})
    assert (
        specification_points("prodA", {"status": [{"code": "c", "type": "Integer", "values": values}]})[0][0].scale == 0
    )


def test_specification_points_reads_enum_range_as_text():
    values = '{"range":["low","middle",3]}'
    points, specs = specification_points("prodA", {"functions": [{"code": "mode", "type": "Enum", "values": values}]})
    assert (points[0].type, points[0].range) == ("Enum", ("low", "middle", "3"))
    assert specs == {"mode": {"range": ["low", "middle", 3]}}


def test_specification_points_reads_unparsable_values_as_empty():
    points, specs = specification_points("prodA", {"status": [{"code": "raw_1", "type": "Raw", "values": "{not json"}]})
    assert points == [PointSpec(product_id="prodA", code="raw_1", type="Raw")]
    assert specs == {"raw_1": {}}


def test_specification_points_types_point_without_type_as_raw():
    points, _specs = specification_points("prodA", {"status": [{"code": "blob"}]})
    assert points[0].type == "Raw"


def test_specification_points_skips_items_without_code():
    result = {"status": [{"type": "Boolean"}, {"code": 5}, "switch", {"code": "switch_1"}], "functions": None}
    assert [p.code for p in specification_points("prodA", result)[0]] == ["switch_1"]


def test_specification_points_is_empty_for_empty_specification():
    assert specification_points("prodA", {"category": "cz"}) == ([], {})


@pytest.mark.parametrize(
    "result",
    [None, [], "specification", {"status": {"code": "switch_1"}}, {"functions": "switch_1"}, {1: []}],
    ids=["null", "list", "string", "status-object", "functions-string", "int-key"],
)
def test_specification_points_raises_validation_error_on_another_shape(result: Any):
    with pytest.raises(msgspec.ValidationError):
        specification_points("prodA", result)


# model_points


def test_model_points_reads_thing_model_property():
    prop = {
        "abilityId": 102,
        "accessMode": "rw",
        "code": "bright_value",
        "name": "Brightness",
        "typeSpec": {"type": "value", "min": 1, "max": 100, "scale": 0, "step": 1, "unit": "%"},
    }
    points, specs = model_points("prodA", thing_model(prop))
    assert points == [
        PointSpec(
            product_id="prodA",
            code="bright_value",
            type="Integer",
            dp_id=102,
            name="Brightness",
            unit="%",
            scale=0,
            min=1.0,
            max=100.0,
            step=1.0,
            reported=True,
            commandable=True,
        )
    ]
    assert specs == {"bright_value": prop["typeSpec"]}


@pytest.mark.parametrize(
    ("type_spec", "expected"),
    [
        ({"type": "value", "unit": "℃", "scale": 1}, ("Integer", "°C", 1, None)),
        ({"type": "bool"}, ("Boolean", None, 0, None)),
        ({"type": "enum", "range": ["cold", "hot"]}, ("Enum", None, 0, ("cold", "hot"))),
        ({"type": "string", "maxlen": 255}, ("String", None, 0, None)),
        ({"type": "bitmap", "label": ["fault"], "maxlen": 1}, ("Bitmap", None, 0, None)),
        ({"type": "raw"}, ("Raw", None, 0, None)),
        ({"type": "struct"}, ("Json", None, 0, None)),
        ({"type": "novel"}, ("Raw", None, 0, None)),
    ],
    ids=["value", "bool", "enum", "string", "bitmap", "raw", "struct", "unknown"],
)
def test_model_points_maps_type_spec_types(type_spec: dict[str, Any], expected: tuple[Any, ...]):
    point = model_points("prodA", thing_model({"code": "c", "abilityId": 1, "typeSpec": type_spec}))[0][0]
    assert (point.type, point.unit, point.scale, point.range) == expected


@pytest.mark.parametrize(
    ("mode", "reported", "commandable"),
    [
        ("ro", True, False),
        ("wr", False, True),
        ("rw", True, True),
    ],
)
def test_model_points_reads_access_mode(mode: str, reported: bool, commandable: bool):
    point = model_points("prodA", thing_model({"code": "c", "accessMode": mode, "typeSpec": {"type": "bool"}}))[0][0]
    assert (point.reported, point.commandable) == (reported, commandable)


def test_model_points_reads_missing_access_mode_as_rw():
    point = model_points("prodA", thing_model({"code": "c", "typeSpec": {"type": "bool"}}))[0][0]
    assert (point.reported, point.commandable) == (True, True)


def test_model_points_reads_ability_id_as_dp_id_and_type_spec_as_json_string():
    prop = {"code": "mode", "abilityId": "4", "typeSpec": json.dumps({"type": "enum", "range": ["a", "b"]})}
    points, specs = model_points("prodA", thing_model(prop))
    assert (points[0].dp_id, points[0].type, points[0].range) == (4, "Enum", ("a", "b"))
    assert specs == {"mode": {"type": "enum", "range": ["a", "b"]}}


def test_model_points_reads_properties_of_every_service():
    model = {
        "services": [
            {"properties": [{"code": "a", "abilityId": 1, "typeSpec": {"type": "bool"}}]},
            {"code": "no properties"},
            {"properties": [{"code": "b", "abilityId": 2, "typeSpec": {"type": "bool"}}, {"abilityId": 3}]},
        ]
    }
    points, _specs = model_points("prodA", {"model": json.dumps(model)})
    assert [(p.code, p.dp_id) for p in points] == [("a", 1), ("b", 2)]


def test_model_points_reads_model_sent_as_object():
    model = {"services": [{"properties": [{"code": "a", "abilityId": 1, "typeSpec": {"type": "bool"}}]}]}
    assert [p.code for p in model_points("prodA", {"model": model})[0]] == ["a"]


@pytest.mark.parametrize(
    "result",
    [None, [], {"model": "{}"}, {"model": "{not json"}, {"model": json.dumps({"services": {}})}, {}],
    ids=["null", "list", "no-services", "bad-json", "services-object", "no-model"],
)
def test_model_points_raises_validation_error_on_another_shape(result: Any):
    with pytest.raises(msgspec.ValidationError):
        model_points("prodA", result)
