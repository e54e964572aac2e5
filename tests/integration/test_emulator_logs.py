"""The emulator's device logs (``/v1.0/devices/{id}/logs``, ``/v2.0/cloud/thing/{id}/report-logs``) over real
loopback HTTP (partner: streams/tuya/emulated_logs.py; its pure parts in tests/unit/tuya/test_emulated_logs.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from streams.tuya.emulator import DataPoint, EmulatedDevice, Emulator
from tests.integration.test_emulator import FakeClock, SignedSession

pytestmark = pytest.mark.integration

PLUG = "emuplugforlogs01"
NOW_MS = 1_750_000_000_000
DAY_MS = 86_400_000
LOGS = f"/v1.0/devices/{PLUG}/logs"
REPORT_LOGS = f"/v2.0/cloud/thing/{PLUG}/report-logs"


def _plug() -> EmulatedDevice:
    return EmulatedDevice(
        device_id=PLUG,
        functions=(DataPoint("switch_1", "Boolean", dp_id=1), DataPoint("mode", "Enum", {"range": ["eco", "boost"]})),
        reported=(DataPoint("cur_power", "Integer", {"unit": "W", "min": 0, "max": 50000, "scale": 1, "step": 1}),),
        status={"switch_1": False, "mode": "eco", "cur_power": 0},
        name="Log plug",
        category="cz",
    )


@pytest.fixture
def project(vectors) -> tuple[str, str]:
    return vectors["pulsar_auth"]["access_id"], vectors["pulsar_auth"]["access_key"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW_MS / 1000)


@pytest.fixture
def emulator(project, clock) -> Iterator[Emulator]:
    with Emulator(
        *project, devices=[_plug()], clock=clock, log_retention_s=7 * 86400, token_lifetime_s=30 * 86400
    ) as emu:
        yield emu


@pytest.fixture
def api(emulator, project, clock) -> Iterator[SignedSession]:
    session = SignedSession(emulator, project, clock)
    yield session
    session.close()


def _window(**params: Any) -> dict[str, Any]:
    return {"start_time": NOW_MS - DAY_MS, "end_time": NOW_MS, **params}


def test_values_are_strings_and_booleans_lower_case(api, emulator):
    emulator.record_reports(
        PLUG, [("cur_power", 65, NOW_MS - 3), ("switch_1", False, NOW_MS - 2), ("mode", "boost", NOW_MS - 1)]
    )
    page = api.result(LOGS, **_window(type="7"))
    assert [(row["code"], row["value"]) for row in page["logs"]] == [
        ("cur_power", "65"),
        ("switch_1", "false"),
        ("mode", "boost"),
    ]
    assert {(row["event_id"], row["event_from"], row["status"]) for row in page["logs"]} == {(7, "1", "1")}


def test_rows_come_oldest_first_whatever_the_order_they_were_recorded_in(api, emulator):
    emulator.record_reports(PLUG, [("cur_power", value, NOW_MS - 1000 + value) for value in (5, 1, 4, 2, 3)])
    emulator.report(PLUG, "cur_power", 0, at_ms=NOW_MS - 1000)
    page = api.result(LOGS, **_window(type="7", codes="cur_power"))
    assert [row["value"] for row in page["logs"]] == ["0", "1", "2", "3", "4", "5"]
    assert [row["event_time"] for row in page["logs"]] == sorted(row["event_time"] for row in page["logs"])


def test_v1_pages_follow_next_row_key_to_the_end(api, emulator):
    emulator.record_reports(PLUG, [("cur_power", value, NOW_MS - 500 + value) for value in range(250)])
    values, start_row_key, pages = [], "", 0
    while True:
        page = api.result(LOGS, **_window(type="7", size=100, start_row_key=start_row_key))
        values += [int(row["value"]) for row in page["logs"]]
        pages += 1
        if not page["has_next"]:
            break
        start_row_key = page["next_row_key"]
    assert (pages, values) == (3, list(range(250)))


def test_v1_size_above_100_is_capped_at_100(api, emulator):
    emulator.record_reports(PLUG, [("cur_power", value, NOW_MS - 500 + value) for value in range(150)])
    page = api.result(LOGS, **_window(type="7", size=500))
    assert len(page["logs"]) == 100 and page["has_next"] is True


def test_v1_size_defaults_to_20(api, emulator):
    emulator.record_reports(PLUG, [("cur_power", value, NOW_MS - 500 + value) for value in range(30)])
    assert len(api.result(LOGS, **_window(type="7"))["logs"]) == 20


def test_v1_online_and_offline_rows_by_type(api, emulator):
    emulator.set_online(PLUG, False, at_ms=NOW_MS - 20)
    emulator.report(PLUG, "switch_1", True, at_ms=NOW_MS - 15)
    emulator.set_online(PLUG, True, at_ms=NOW_MS - 10)
    rows = api.result(LOGS, **_window(type="1,2"))["logs"]
    assert [(row["event_id"], row["code"], row["value"]) for row in rows] == [(2, "offline", ""), (1, "online", "")]
    assert len(api.result(LOGS, **_window(type="1,2,7"))["logs"]) == 3
    assert emulator.device(PLUG).online is True


@pytest.mark.parametrize(
    "params",
    [
        {"start_time": NOW_MS - 10, "end_time": NOW_MS},
        {"type": "7", "end_time": NOW_MS},
        {"type": "7", "start_time": NOW_MS - 10},
        {"type": "x", "start_time": NOW_MS - 10, "end_time": NOW_MS},
        {"type": "7", "start_time": NOW_MS, "end_time": NOW_MS - 10},
        {"type": "7", "start_time": NOW_MS - 10, "end_time": NOW_MS, "start_row_key": "not-a-key"},
    ],
)
def test_v1_missing_or_malformed_parameters_refused(api, params):
    assert api.get(LOGS, **params)["code"] == 1109


def test_report_logs_page_through_last_row_key_with_total(api, emulator):
    emulator.record_reports(PLUG, [("cur_power", value, NOW_MS - 500 + value) for value in range(230)])
    emulator.record_reports(PLUG, [("switch_1", True, NOW_MS - 100)])
    emulator.set_online(PLUG, False, at_ms=NOW_MS - 50)
    values, last_row_key, totals = [], "", set()
    while True:
        page = api.result(REPORT_LOGS, **_window(codes="cur_power", size=100, last_row_key=last_row_key))
        values += [row["value"] for row in page["logs"]]
        totals.add(page["total"])
        if not page["has_more"]:
            break
        last_row_key = page["last_row_key"]
    assert values == [str(value) for value in range(230)] and totals == {230}
    assert set(page["logs"][0]) == {"code", "value", "event_time"}


def test_report_logs_only_data_point_reports_of_the_codes_asked(api, emulator):
    emulator.set_online(PLUG, False, at_ms=NOW_MS - 50)
    emulator.record_reports(PLUG, [("switch_1", True, NOW_MS - 40), ("mode", "boost", NOW_MS - 30)])
    page = api.result(REPORT_LOGS, **_window(codes="switch_1,online,offline", size=10))
    assert [(row["code"], row["value"]) for row in page["logs"]] == [("switch_1", "true")]


@pytest.mark.parametrize("params", [{"size": 10}, {"codes": "switch_1"}, {"codes": "switch_1", "size": 101}])
def test_report_logs_need_codes_and_a_size_of_at_most_100(api, params):
    assert api.get(REPORT_LOGS, **_window(**params))["code"] == 1109


def test_rows_older_than_the_retention_are_never_answered(api, emulator, clock):
    emulator.record_reports(PLUG, [("cur_power", 1, NOW_MS - 8 * DAY_MS), ("cur_power", 2, NOW_MS - 6 * DAY_MS)])
    old_window = {"start_time": NOW_MS - 9 * DAY_MS, "end_time": NOW_MS - 7 * DAY_MS - 1}
    assert api.result(LOGS, type="7", **old_window)["logs"] == []
    assert api.result(REPORT_LOGS, codes="cur_power", size=10, **old_window)["logs"] == []
    whole = {"start_time": NOW_MS - 9 * DAY_MS, "end_time": NOW_MS}
    assert [row["value"] for row in api.result(LOGS, type="7", **whole)["logs"]] == ["2"]
    clock.now += 2 * 86400  # two days on, the second row is past the retention too
    assert api.result(LOGS, type="7", start_time=NOW_MS - 9 * DAY_MS, end_time=NOW_MS + 2 * DAY_MS)["logs"] == []


def test_bulk_reports_change_the_status_too(api, emulator):
    emulator.record_reports(PLUG, [("cur_power", 120, NOW_MS - 2), ("cur_power", 130, NOW_MS - 1)])
    status = api.result(f"/v1.0/iot-03/devices/{PLUG}/status")
    assert {"code": "cur_power", "value": 130} in status


def test_bulk_reports_from_several_threads_all_land(api, emulator):
    def publish(offset: int) -> None:
        for batch in range(50):
            at = NOW_MS - 10_000 + offset * 1000 + batch
            emulator.record_reports(PLUG, [("cur_power", batch, at), ("switch_1", True, at)])

    threads = [threading.Thread(target=publish, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    page = api.result(REPORT_LOGS, **_window(codes="cur_power,switch_1", size=1))
    assert page["total"] == 4 * 50 * 2


def test_bulk_reports_of_an_unknown_device_raise_key_error(emulator):
    with pytest.raises(KeyError):
        emulator.record_reports("nosuchdevice", [("switch_1", True, NOW_MS)])
