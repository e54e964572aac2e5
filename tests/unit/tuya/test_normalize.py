"""streams/tuya/normalize.py on payload shapes the vectors do not cover (IoT-Core events, time units, devId place)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.records import DeviceEvent, StatusReported
from streams.errors import PayloadError
from streams.tuya.normalize import device_id_of, normalize, timestamp_ms

PUSHED = 1_700_000_009_999


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_700_000_000, 1_700_000_000_000),
        (1_700_000_000_123, 1_700_000_000_123),
        ("1700000000", 1_700_000_000_000),
        (0, PUSHED),
        (None, PUSHED),
        (True, PUSHED),
        ("soon", PUSHED),
        ("²", PUSHED),
        (-5, PUSHED),
        (10**18, PUSHED),
        ("9" * 5000, PUSHED),
    ],
)
def test_timestamp_unit_chosen_by_magnitude_with_fallback(value, expected):
    assert timestamp_ms(value, PUSHED) == expected


def test_device_id_found_in_biz_data_when_absent_at_top_level():
    assert device_id_of({"bizData": {"devId": "abc1234567"}}) == "abc1234567"
    assert device_id_of({"devId": "top", "bizData": {"devId": "inner"}}) == "top"
    assert device_id_of({"bizData": "x"}) is None


@pytest.mark.parametrize(
    ("protocol", "biz_code", "event"),
    [
        (1001, "deviceOnline", "online"),
        (1001, "deviceOffline", "offline"),
        (1001, "deviceNameUpdate", "name_updated"),
        (1001, "deviceBindSpace", "bound"),
        (1002, "deviceOtaProgress", "upgrade_progress"),
        (20, "deviceSignal", "signal"),
        (20, "share", "shared"),
        (20, "upgradeProcess", "upgrade_progress"),
    ],
)
def test_iot_core_and_other_device_events_share_the_vocabulary(protocol, biz_code, event):
    payload = {"bizCode": biz_code, "bizData": {"devId": "dev0000001", "time": 1_700_000_001}, "ts": 0}
    (record,) = normalize("m1", protocol, payload, PUSHED)
    assert isinstance(record, DeviceEvent)
    assert (record.event, record.biz_code, record.device_id) == (event, biz_code, "dev0000001")
    assert record.occurred_at == datetime.fromtimestamp(1_700_000_001, tz=UTC)


def test_event_without_any_time_falls_back_to_envelope_t():
    (record,) = normalize("m1", 20, {"bizCode": "online", "devId": "d1", "ts": 0}, PUSHED)
    assert record.occurred_at == datetime.fromtimestamp(PUSHED / 1000, tz=UTC)


def test_top_level_extra_fields_are_kept_in_event_data():
    payload = {"bizCode": "deviceSignal", "devId": "d1", "reportData": [{"rssi": -60}], "ts": 1}
    (record,) = normalize("m1", 20, payload, PUSHED)
    assert record.data["reportData"] == [{"rssi": -60}]


def test_status_item_without_time_uses_envelope_t_and_no_dp_id():
    (record,) = normalize("m1", 4, {"devId": "d1", "status": [{"code": "c", "value": "v"}]}, PUSHED)
    assert isinstance(record, StatusReported)
    assert record.reported_at == datetime.fromtimestamp(PUSHED / 1000, tz=UTC)
    assert record.dp_id is None and record.value == "v"


@pytest.mark.parametrize(
    ("key", "dp_id"), [("1", 1), ("255", 255), ("300", 300), ("07", 7), ("0", None), ("4294967296", None)]
)
def test_status_item_dp_id_is_its_key_of_digits(key, dp_id):
    item = {"code": "c", "value": True, "t": PUSHED, key: "true"}
    (record,) = normalize("m1", 4, {"devId": "d1", "status": [item]}, PUSHED)
    assert record.dp_id == dp_id


@pytest.mark.parametrize(("dp_id_field", "dp_id"), [(101, 101), ("101", 101), (0, None), (True, None), (2**31, None)])
def test_status_item_dp_id_field_read_when_no_key_of_digits(dp_id_field, dp_id):
    item = {"code": "c", "value": 1, "t": PUSHED, "dpId": dp_id_field}
    (record,) = normalize("m1", 4, {"devId": "d1", "status": [item]}, PUSHED)
    assert record.dp_id == dp_id


def test_key_of_digits_wins_over_dp_id_field():
    item = {"code": "c", "value": 1, "dpId": 7, "3": "1"}
    (record,) = normalize("m1", 4, {"devId": "d1", "status": [item]}, PUSHED)
    assert record.dp_id == 3


def test_odd_status_items_are_skipped_and_the_others_keep_their_positions():
    items = [
        {"code": "a", "value": 1, "t": PUSHED},
        "not an object",
        {"value": 2, "t": PUSHED},  # neither code nor DP id
        {"code": "", "value": 3},  # an empty code is no code, and no DP id either
        None,
        {"dpId": 101, "value": 4},
        {"code": 5, "value": 5, "6": "5"},  # a code that is not a string: the DP id is kept
        {"code": "c" * 256, "value": 7, "7": 7},  # a code no index can take, or with a NUL: no code of Tuya's
        {"code": "c\x00x", "value": 8, "8": 8},
        {"code": "c" * 3000, "value": 9},  # … and without a DP id: skipped
        {"code": "c" * 255, "value": 10},  # the longest code kept
    ]
    records = normalize("m1", 4, {"devId": "d1", "status": items}, PUSHED)
    assert [(r.item_index, r.code, r.dp_id, r.value) for r in records] == [
        (0, "a", None, 1),
        (5, None, 101, 4),
        (6, None, 6, 5),
        (7, None, 7, 7),
        (8, None, 8, 8),
        (10, "c" * 255, None, 10),
    ]


def test_odd_property_is_skipped_and_the_others_keep_their_positions():
    properties = [[], {"value": 1}, {"code": "b", "value": 2, "time": 1_700_000_000}]
    payload = {"bizCode": "devicePropertyMessage", "bizData": {"devId": "d1", "properties": properties}}
    (record,) = normalize("m1", 1000, payload, PUSHED)
    assert (record.item_index, record.code, record.reported_at) == (2, "b", datetime.fromtimestamp(1_700_000_000, UTC))


def test_empty_status_list_is_no_records_not_a_dead_letter():
    assert normalize("m1", 4, {"devId": "d1", "status": []}, PUSHED) == []


def test_status_item_with_absurd_time_falls_back_rather_than_failing_the_report():
    items = [{"code": "a", "value": 1, "t": 10**18}, {"code": "b", "value": 2, "t": PUSHED - 1}]
    records = normalize("m1", 4, {"devId": "d1", "status": items, "ts": PUSHED - 2}, PUSHED)
    assert [r.reported_at for r in records] == [
        datetime.fromtimestamp((PUSHED - 2) / 1000, tz=UTC),
        datetime.fromtimestamp((PUSHED - 1) / 1000, tz=UTC),
    ]


DAY_MS = 86_400_000
YEAR_2100_MS = 4_102_444_800_000


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_a_time_more_than_a_day_after_tuya_pushed_the_message_is_a_wrong_clock_s():
    # a device whose clock says 2100: its value would have stayed the latest for good (newer wins in device_state)
    items = [{"code": "a", "value": 1, "t": YEAR_2100_MS}, {"code": "b", "value": 2, "t": PUSHED + DAY_MS}]
    records = normalize("m1", 4, {"devId": "d1", "status": items, "ts": PUSHED - 2}, PUSHED)
    assert [r.reported_at for r in records] == [_at(PUSHED - 2), _at(PUSHED + DAY_MS)]  # ts, then its own: a day ahead
    (record,) = normalize("m1", 4, {"devId": "d1", "status": [{"code": "a"}], "ts": YEAR_2100_MS}, PUSHED)
    assert record.reported_at == _at(PUSHED)


def test_without_a_push_time_an_item_or_event_keeps_its_own_time():
    # a `decode` line or a Kafka record no broker wrote: every time became 1970 once compared with a push time of 0
    (item,) = normalize("m1", 4, {"devId": "d1", "status": [{"code": "a", "t": PUSHED}]}, 0)
    (event,) = normalize("m2", 20, {"bizCode": "online", "devId": "d1", "ts": PUSHED}, 0)
    assert item.reported_at == event.occurred_at == _at(PUSHED)


def test_an_event_timed_after_tuya_pushed_it_by_more_than_a_day_falls_back_to_the_push():
    payload = {"bizCode": "online", "bizData": {"time": YEAR_2100_MS // 1000}, "devId": "d1", "ts": YEAR_2100_MS}
    (record,) = normalize("m1", 20, payload, PUSHED)
    assert record.occurred_at == _at(PUSHED)
    (record,) = normalize("m1", 20, payload | {"ts": PUSHED - 7}, PUSHED // 1000)  # OpenMQ: the push in seconds
    assert record.occurred_at == _at(PUSHED - 7)


def test_status_items_of_one_report_keep_their_own_times():
    items = [{"code": "a", "value": 1, "t": PUSHED}, {"code": "b", "value": 2, "t": PUSHED - 1000}, {"code": "c"}]
    records = normalize("m1", 4, {"devId": "d1", "status": items}, PUSHED + 5)
    assert [r.reported_at for r in records] == [
        datetime.fromtimestamp(PUSHED / 1000, tz=UTC),
        datetime.fromtimestamp((PUSHED - 1000) / 1000, tz=UTC),
        datetime.fromtimestamp((PUSHED + 5) / 1000, tz=UTC),
    ]


def test_items_times_equal_in_value_but_not_in_type_are_read_apart():
    # 1 (seconds) is a time; True and 1.0 are not, though both equal 1: the time read for one item is not reused.
    items = [{"code": "a", "t": 1}, {"code": "b", "t": True}, {"code": "c", "t": 1}, {"code": "d", "t": 1.0}]
    records = normalize("m1", 4, {"devId": "d1", "status": items}, PUSHED)
    second, pushed = datetime.fromtimestamp(1, tz=UTC), datetime.fromtimestamp(PUSHED / 1000, tz=UTC)
    assert [r.reported_at for r in records] == [second, pushed, second, pushed]


@pytest.mark.parametrize(
    ("protocol", "payload", "kind"),
    [
        (4, {"status": []}, "missing_device_id"),
        (4, {"devId": "d1"}, "bad_status_report"),
        (4, {"devId": "d1", "status": {"code": "a", "value": 1}}, "bad_status_report"),
        (4, {"devId": "d1", "status": [{"value": 1}, "x", {"code": ""}]}, "bad_status_report"),
        (1000, {"bizCode": "devicePropertyMessage", "bizData": {"devId": "d1"}}, "bad_property_message"),
        (
            1000,
            {"bizCode": "devicePropertyMessage", "bizData": {"devId": "d1", "properties": [{"value": 1}]}},
            "bad_property_message",
        ),
        (20, {"bizCode": "online", "bizData": {}}, "missing_device_id"),
        (4, {"devId": "d\x001", "status": []}, "missing_device_id"),  # a devId the archive cannot key by
        (4, {"devId": "d" * 256, "status": []}, "missing_device_id"),
        (20, {"bizCode": "online", "devId": "\n", "bizData": {}}, "missing_device_id"),
        (21, {"bizCode": "userRegister", "bizData": {}}, "missing_uid"),
        (21, {"bizCode": "userRegister", "bizData": {"uid": "u" * 256}}, "missing_uid"),
    ],
)
def test_known_kinds_missing_required_fields_raise_payload_error(protocol, payload, kind):
    with pytest.raises(PayloadError) as info:
        normalize("m1", protocol, payload, PUSHED)
    assert info.value.kind == kind


def test_protocol_four_with_biz_code_and_unknown_biz_codes_are_unknown_records():
    (record,) = normalize("m1", 20, {"bizCode": "somethingNew", "devId": "d1"}, PUSHED)
    assert record.kind == "unknown" and record.device_id == "d1"
    (record,) = normalize("m2", 1000, {"bizCode": "deviceEventMessage", "bizData": {"devId": "d2"}}, PUSHED)
    assert record.kind == "unknown" and record.device_id == "d2"
