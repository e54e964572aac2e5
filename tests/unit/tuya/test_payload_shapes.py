"""streams/tuya/normalize.py (and decoder.py) on the payload shapes people published (SPEC.md §3.6).

One test per shape, the data written inline as it was published (ids and times made up). The rules these shapes
meet (odd items, dead letters, time units) are tested in test_normalize.py.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from models.records import DeviceEvent, PulsarMessage, StatusReported, UnknownMessage
from streams.tuya.crypto import Cipherbox
from streams.tuya.decoder import Decoded, MessageDecoder
from streams.tuya.envelope import envelope_sign
from streams.tuya.normalize import normalize

PUSHED = 1_700_000_009_999
ACCESS_KEY = "0123456789abcdef0123456789abcdef"


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _report(*items: Any, pushed_ms: int = PUSHED, **extra: Any) -> list[StatusReported]:
    payload = {"dataId": "AAYJ7Q8s3kq1yC0bAAAA", "devId": "bf1e8a0cd2e4a1b2c3x9kq", "productKey": "keyjup78v54myhan"}
    payload.update(extra, status=list(items))
    records = normalize("m1", 4, payload, pushed_ms)
    assert all(type(record) is StatusReported for record in records)
    return records  # type: ignore[return-value]


def _event(protocol: int, payload: dict[str, Any]) -> DeviceEvent:
    (record,) = normalize("m1", protocol, payload, PUSHED)
    assert isinstance(record, DeviceEvent)
    return record


# status[].t


def test_status_t_as_number_of_ms():
    (record,) = _report({"code": "switch_1", "value": True, "t": 1700000000087, "1": "true"})
    assert record.reported_at == _at(1_700_000_000_087)


def test_status_t_as_string_of_seconds():
    (record,) = _report({"code": "switch_1", "value": False, "t": "1671301561", "1": "false"})
    assert record.reported_at == _at(1_671_301_561_000)


def test_status_t_as_string_of_ms():
    (record,) = _report({"code": "switch_1", "value": False, "t": "1671301561123", "1": "false"})
    assert record.reported_at == _at(1_671_301_561_123)


def test_status_items_of_one_report_sharing_one_t():
    records = _report(
        {"code": "cur_current", "value": 52, "t": 1700000000087, "18": "52"},
        {"code": "cur_power", "value": 1234, "t": 1700000000087, "19": "1234"},
        {"code": "cur_voltage", "value": 2301, "t": 1700000000087, "20": "2301"},
    )
    assert [r.reported_at for r in records] == [_at(1_700_000_000_087)] * 3


# envelope t / ts fallbacks


def test_status_without_t_takes_payload_ts():
    (record,) = _report({"code": "switch_1", "value": True, "1": "true"}, ts=1700000000555)
    assert record.reported_at == _at(1_700_000_000_555)


def test_status_without_t_takes_envelope_t_in_ms():
    (record,) = _report({"code": "switch_1", "value": True, "1": "true"}, pushed_ms=1700000000777)
    assert record.reported_at == _at(1_700_000_000_777)


def test_status_without_t_takes_envelope_t_in_seconds():
    # OpenMQ's envelope t is in seconds.
    (record,) = _report({"code": "switch_1", "value": True, "1": "true"}, pushed_ms=1671301561)
    assert record.reported_at == _at(1_671_301_561_000)


# protocol 20 online/offline times


def test_online_with_ts_zero_and_biz_data_time_in_seconds():
    record = _event(
        20,
        {
            "bizCode": "online",
            "bizData": {"time": 1671301561},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 0,
        },
    )
    assert (record.event, record.occurred_at) == ("online", _at(1_671_301_561_000))


def test_offline_with_ts_and_biz_data_time_both_in_ms():
    record = _event(
        20,
        {
            "bizCode": "offline",
            "bizData": {"time": 1600000000123},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 1600000000456,
        },
    )
    assert (record.event, record.occurred_at) == ("offline", _at(1_600_000_000_123))


def test_online_with_twelve_digit_biz_data_time():
    # Tuya's own doc example: 12 digits is at or above 10^11, so ms by SPEC.md §3.5 (1974: the doc's number is odd,
    # but it is read by the rule, not refused).
    record = _event(
        20, {"bizCode": "online", "bizData": {"time": 146052438362}, "devId": "bf1e8a0cd2e4a1b2c3x9kq", "ts": 0}
    )
    assert record.occurred_at == _at(146_052_438_362)


# the dp-id key inside a status item


def test_dp_key_with_string_value():
    (record,) = _report({"code": "cur_current", "value": 52, "t": 1700000000087, "3": "52"})
    assert (record.dp_id, record.value) == (3, 52)


def test_dp_key_with_native_value():
    (record,) = _report({"code": "switch_led", "value": True, "t": 1700000000087, "101": True})
    assert (record.dp_id, record.value) == (101, True)


@pytest.mark.parametrize(
    "item",
    [
        {"1": "false", "code": "switch_1", "value": False, "t": 1700000000087},
        {"code": "switch_1", "1": "false", "value": False, "t": 1700000000087},
        {"code": "switch_1", "value": False, "1": "false", "t": 1700000000087},
        {"t": 1700000000087, "value": False, "code": "switch_1", "1": "false"},
    ],
    ids=["first", "second", "third", "last"],
)
def test_dp_key_in_any_position(item):
    (record,) = _report(item)
    assert (record.code, record.dp_id, record.value) == ("switch_1", 1, False)


def test_dp_key_absent():
    (record,) = _report({"code": "switch_1", "value": True, "t": 1700000000087})
    assert (record.code, record.dp_id, record.value) == ("switch_1", None, True)


def test_dp_key_value_different_from_value():
    (record,) = _report({"code": "mode", "value": "hot", "t": 1700000000087, "4": "HEAT"})
    assert (record.dp_id, record.value) == (4, "hot")


# status items without code


def test_item_without_code_with_integer_dp_id():
    (record,) = _report({"dpId": 101, "t": 1700000000000, "value": 456})
    assert (record.code, record.dp_id, record.value) == (None, 101, 456)
    assert record.reported_at == _at(1_700_000_000_000)


def test_item_without_code_with_dp_id_outside_standard_range():
    (record,) = _report({"dpId": 300, "t": 1700000000000, "value": "abc"})
    assert (record.code, record.dp_id, record.value) == (None, 300, "abc")


def test_item_without_code_in_dp_key_form():
    (record,) = _report({"value": 456, "t": 1700000000000, "101": "456"})
    assert (record.code, record.dp_id, record.value) == (None, 101, 456)


def test_item_without_code_beside_items_with_code_keeps_all():
    records = _report(
        {"code": "switch_1", "value": True, "t": 1700000000000, "1": "true"},
        {"dpId": 101, "t": 1700000000000, "value": 456},
    )
    assert [(r.item_index, r.code, r.dp_id) for r in records] == [(0, "switch_1", 1), (1, None, 101)]


def test_item_without_code_decodes_unresolved_not_dead_lettered():
    inner = {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "status": [{"dpId": 101, "t": 1700000000000, "value": 456}]}
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x00" * 12)
    envelope = {"data": base64.b64encode(blob).decode(), "protocol": 4, "pv": "2.0", "t": 1700000000001}
    msg = PulsarMessage(payload=json.dumps(envelope).encode(), properties={"em": "aes_gcm"}, message_id="9", topic="t")
    result = MessageDecoder(ACCESS_KEY).decode(msg)
    assert isinstance(result, Decoded) and result.unresolved
    assert [(r.code, r.dp_id) for r in result.records] == [(None, 101)]


# values kept exactly as sent


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1", id="enum_like_number_as_string"),
        pytest.param(-175, id="negative_integer"),
        pytest.param("eyJ2IjoxLCJkcHMiOnsiMSI6dHJ1ZX19", id="base64_json_blob"),
        pytest.param("1|0|255|100|30", id="pipe_delimited_string"),
    ],
)
def test_value_kept_exactly_as_sent(value):
    (record,) = _report({"code": "x", "value": value, "t": 1700000000087, "7": str(value)})
    assert record.value == value and type(record.value) is type(value)


# no top-level devId / productKey


def test_iot_core_device_online_with_ids_inside_biz_data():
    record = _event(
        1001,
        {
            "bizCode": "deviceOnline",
            "bizData": {
                "devId": "eb5f9a2c4d1e8b7a6c3f0d",
                "productId": "Ks8dQp2LmN4xYz7a",
                "uid": "eu1700000000000AbCdE",
                "dataId": "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f",
                "time": 1700000000123,
            },
            "ts": 1700000000456,
        },
    )
    assert (record.event, record.device_id, record.product_key) == (
        "online",
        "eb5f9a2c4d1e8b7a6c3f0d",
        "Ks8dQp2LmN4xYz7a",
    )
    assert record.data["uid"] == "eu1700000000000AbCdE"
    assert record.occurred_at == _at(1_700_000_000_123)


def test_iot_core_property_message_with_ids_inside_biz_data_and_time_not_t():
    payload = {
        "bizCode": "devicePropertyMessage",
        "bizData": {
            "devId": "6c0e1f2a3b4c5d6e7f8a9b",
            "productId": "aWxbN2nz",
            "dataId": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "properties": [
                {"code": "switch_1", "dpId": 1, "time": 1700000000123, "value": True},
                {"code": "temp_current", "dpId": 6, "time": 1700000000124, "value": -175},
            ],
        },
        "ts": 1700000000456,
    }
    records = normalize("m1", 1000, payload, PUSHED)
    assert [(r.code, r.dp_id, r.value, r.reported_at) for r in records] == [
        ("switch_1", 1, True, _at(1_700_000_000_123)),
        ("temp_current", 6, -175, _at(1_700_000_000_124)),
    ]
    assert {(r.device_id, r.product_key, r.data_id) for r in records} == {
        ("6c0e1f2a3b4c5d6e7f8a9b", "aWxbN2nz", "0f1e2d3c4b5a69788796a5b4c3d2e1f0")
    }


def test_protocol_20_online_with_ids_inside_biz_data():
    record = _event(
        20,
        {
            "bizCode": "online",
            "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "productId": "keyjup78v54myhan", "time": 1671301561},
            "ts": 0,
        },
    )
    assert (record.device_id, record.product_key) == ("bf1e8a0cd2e4a1b2c3x9kq", "keyjup78v54myhan")
    assert record.occurred_at == _at(1_671_301_561_000)


# bizData key types and bizCodes the docs lack


def test_dp_name_update_with_string_dp_id():
    record = _event(
        20,
        {
            "bizCode": "dpNameUpdate",
            "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "name": "Tischlampe", "dpId": "1"},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 1700000004444,
        },
    )
    assert record.data["dpId"] == "1"


def test_upgrade_status_with_string_status_and_module_type():
    record = _event(
        20,
        {
            "bizCode": "upgradeStatus",
            "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "upgradeStatus": "2", "moduleType": "0", "description": ""},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 1700000007432,
        },
    )
    assert (record.data["upgradeStatus"], record.data["moduleType"]) == ("2", "0")


def test_bind_user_with_string_owner_id():
    record = _event(
        20,
        {
            "bizCode": "bindUser",
            "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "uid": "eu1700000000000AbCdE", "ownerId": "45678901"},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 1700000005432,
        },
    )
    assert record.data["ownerId"] == "45678901"


def test_upgrade_process_with_integer_firmware_type_and_progress():
    record = _event(
        20,
        {
            "bizCode": "upgradeProcess",
            "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "firmwareType": 9, "progress": 45},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 1700000008432,
        },
    )
    assert (record.event, record.biz_code) == ("upgrade_progress", "upgradeProcess")
    assert (record.data["firmwareType"], record.data["progress"]) == (9, 45)


def test_event_notify_stays_unknown_with_its_payload():
    payload = {"bizCode": "event_notify", "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq"}, "ts": 1700000008432}
    (record,) = normalize("m1", 20, payload, PUSHED)
    assert isinstance(record, UnknownMessage)
    assert (record.biz_code, record.device_id, record.payload) == ("event_notify", "bf1e8a0cd2e4a1b2c3x9kq", payload)


# ids


@pytest.mark.parametrize(
    "device_id",
    [
        pytest.param("0120015260091453a970", id="20_characters"),
        pytest.param("bf1e8a0cd2e4a1b2c3x9kq", id="22_characters_bf"),
        pytest.param("eb5f9a2c4d1e8b7a6c3f0d", id="22_characters_eb"),
        pytest.param("6c0e1f2a3b4c5d6e7f8a9b", id="22_characters_6c"),
    ],
)
def test_device_id_of_20_or_22_characters_kept_as_sent(device_id):
    (record,) = _report({"code": "switch_1", "value": True, "t": 1700000000087}, devId=device_id)
    assert record.device_id == device_id


@pytest.mark.parametrize("product_key", ["aWxbN2nz", "keyjup78v54myhan", "Ks8dQp2LmN4xYz7a"])
def test_product_key_of_8_or_16_characters_mixed_case_kept_as_sent(product_key):
    (record,) = _report({"code": "switch_1", "value": True, "t": 1700000000087}, productKey=product_key)
    assert record.product_key == product_key


@pytest.mark.parametrize(
    "data_id", ["5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "AAYJ7Q8s3kq1yC0bAAAA"]
)
def test_data_id_as_uuid_hex_or_base64_like_kept_as_sent(data_id):
    (record,) = _report({"code": "switch_1", "value": True, "t": 1700000000087}, dataId=data_id)
    assert record.data_id == data_id


def test_top_level_uuid_different_from_dev_id_is_event_data():
    record = _event(
        20,
        {
            "bizCode": "nameUpdate",
            "bizData": {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "uid": "eu1700000000000AbCdE", "name": "Küche"},
            "devId": "bf1e8a0cd2e4a1b2c3x9kq",
            "productKey": "keyjup78v54myhan",
            "ts": 1700000003456,
            "uuid": "9a3c1e0b7d2f4a65",
        },
    )
    assert (record.device_id, record.data["uuid"]) == ("bf1e8a0cd2e4a1b2c3x9kq", "9a3c1e0b7d2f4a65")


# key order


def test_key_order_not_stable():
    published = {
        "status": [{"t": 1700000000087, "1": "true", "value": True, "code": "switch_1"}, {"value": 456, "dpId": 101}],
        "productKey": "keyjup78v54myhan",
        "devId": "bf1e8a0cd2e4a1b2c3x9kq",
        "dataId": "AAYJ7Q8s3kq1yC0bAAAA",
    }
    documented = {
        "dataId": "AAYJ7Q8s3kq1yC0bAAAA",
        "devId": "bf1e8a0cd2e4a1b2c3x9kq",
        "productKey": "keyjup78v54myhan",
        "status": [{"code": "switch_1", "value": True, "t": 1700000000087, "1": "true"}, {"dpId": 101, "value": 456}],
    }
    assert normalize("m1", 4, published, PUSHED) == normalize("m1", 4, documented, PUSHED)
    assert [r.dp_id for r in normalize("m1", 4, published, PUSHED)] == [1, 101]


# envelope


def test_gcm_envelope_with_extra_encrypt_version_field_decodes():
    inner = {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "status": [{"code": "switch_1", "value": True, "t": 1700000000087}]}
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x00" * 12)
    fields = {"data": base64.b64encode(blob).decode(), "encryptVersion": "v2", "protocol": 4, "pv": "2.0", "t": 1}
    fields["sign"] = envelope_sign(fields, ACCESS_KEY)
    msg = PulsarMessage(payload=json.dumps(fields).encode(), properties={"em": "aes_gcm"}, message_id="9", topic="t")
    result = MessageDecoder(ACCESS_KEY).decode(msg)
    assert isinstance(result, Decoded)
    assert [(r.code, r.value) for r in result.records] == [("switch_1", True)]


def _sealed(t: int) -> PulsarMessage:
    inner = {"devId": "bf1e8a0cd2e4a1b2c3x9kq", "status": [{"code": "switch_1", "value": True}]}
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x00" * 12)
    fields = {"data": base64.b64encode(blob).decode(), "protocol": 4, "pv": "2.0", "t": t}
    fields["sign"] = envelope_sign(fields, ACCESS_KEY)
    return PulsarMessage(payload=json.dumps(fields).encode(), properties={"em": "aes_gcm"}, message_id="9", topic="t")


def test_envelope_time_in_seconds_is_the_push_time_of_the_message():
    result = MessageDecoder(ACCESS_KEY).decode(_sealed(1_671_301_561))  # OpenMQ's envelopes give seconds
    assert isinstance(result, Decoded)
    assert result.message.pushed_at == datetime(2022, 12, 17, 18, 26, 1, tzinfo=UTC)
    assert result.records[0].reported_at == result.message.pushed_at


def test_envelope_time_past_year_9999_falls_back_instead_of_raising():
    message = msgspec.structs.replace(_sealed(10**17), publish_time_ms=1_700_000_000_000)
    result = MessageDecoder(ACCESS_KEY).decode(message)
    assert isinstance(result, Decoded)
    assert result.message.pushed_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
