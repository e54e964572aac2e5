"""streams/fleet/report.py: the wording of a sync's summary (partner: tests/unit/fleet/test_background.py, whose
worker logs these lines)."""

from __future__ import annotations

from typing import Any

from streams.fleet.report import Refusal, SyncReport


def report(**overrides: Any) -> SyncReport:
    """A complete full sync through IoT Core's device list: 1,234 devices, 3 products, a known quota."""
    fields: dict[str, Any] = {
        "family": "/v1.3/iot-03/devices",
        "complete": True,
        "devices_listed": 1234,
        "devices_new": 12,
        "devices_changed": 5,
        "devices_gone": 2,
        "products": 3,
        "specifications": 3,
        "spec_family": "/v1.1/devices/{device_id}/specifications",
        "points": 41,
        "items_named": 0,
        "users_new": 1500,
        "users_changed": 7,
        "states_filled": 4,
        "calls": 2051,
        "calls_left": 27949,
    }
    fields.update(overrides)
    return SyncReport(**fields)


def refusal(**overrides: Any) -> Refusal:
    fields: dict[str, Any] = {
        "purpose": "device_list",
        "path": "/v1.3/iot-03/devices",
        "code": 28841105,
        "msg": "No permissions. This API is not subscribed.",
        "needs": "IoT Core",
    }
    fields.update(overrides)
    return Refusal(**fields)


def test_summary_lines_of_complete_sync():
    assert report().summary_lines() == [
        "devices: 1,234 listed through /v1.3/iot-03/devices: 12 new, 5 updated, 2 gone",
        "products: 3, specifications fetched: 3 (41 data points, through /v1.1/devices/{device_id}/specifications)",
        "users: 1,500 new, 7 updated",
        "latest values from the API for devices that never reported: 4",
        "OpenAPI calls: 2,051 made, 27,949 left in today's quota",
    ]


def test_summary_lines_say_incomplete_listing_marked_none_gone():
    lines = report(complete=False, devices_gone=0).summary_lines()
    assert lines[0] == (
        "devices: 1,234 listed through /v1.3/iot-03/devices: 12 new, 5 updated, 0 gone"
        " (listing incomplete: none marked gone)"
    )


def test_summary_lines_of_empty_report_name_no_family():
    assert SyncReport().summary_lines() == [
        "devices: 0 listed: 0 new, 0 updated, 0 gone (listing incomplete: none marked gone)",
        "products: 0, specifications fetched: 0 (0 data points)",
        "users: 0 new, 0 updated",
        "latest values from the API for devices that never reported: 0",
        "OpenAPI calls: 0 made",
    ]


def test_summary_lines_leave_out_calls_left_when_unknown():
    assert report(calls_left=None).summary_lines()[4] == "OpenAPI calls: 2,051 made"


def test_summary_lines_show_calls_left_of_zero():
    assert report(calls_left=0).summary_lines()[4] == "OpenAPI calls: 2,051 made, 0 left in today's quota"


def test_summary_lines_count_items_named_only_when_some_were():
    assert report(items_named=2500).summary_lines()[5:] == ["status items named from their DP id: 2,500"]
    assert len(report(items_named=0).summary_lines()) == 5


def test_summary_lines_list_each_refusal_with_what_the_project_needs():
    refused = [
        refusal(),
        refusal(
            purpose="users",
            path="/v2.0/apps/smartlife/users",
            code=1106,
            msg="permission deny",
            needs="TUYA_APP_SCHEMA 'smartlife' to be an app of this project",
        ),
    ]
    assert report(refused=refused).summary_lines()[5:] == [
        "refused: /v1.3/iot-03/devices: Tuya answered 28841105 'No permissions. This API is not subscribed.'"
        " (IoT Core)",
        "refused: /v2.0/apps/smartlife/users: Tuya answered 1106 'permission deny'"
        " (TUYA_APP_SCHEMA 'smartlife' to be an app of this project)",
    ]


def test_summary_lines_list_each_problem():
    problems = ["specification of product keyjup78v54myhan: unexpected shape", "device list: paging cursor came back"]
    assert report(problems=problems).summary_lines()[5:] == [
        "problem: specification of product keyjup78v54myhan: unexpected shape",
        "problem: device list: paging cursor came back",
    ]


def test_summary_lines_end_with_quota_stop():
    stopped = "today's OpenAPI quota is spent (120 calls were left at the start)"
    lines = report(calls=120, calls_left=0, stopped=stopped, complete=False, problems=["p"]).summary_lines()
    assert lines[4:] == [
        "OpenAPI calls: 120 made, 0 left in today's quota",
        "problem: p",
        "stopped early: today's OpenAPI quota is spent (120 calls were left at the start)",
    ]


def test_summary_lines_order_named_refused_problems_stopped():
    lines = report(items_named=1, refused=[refusal()], problems=["p"], stopped="s").summary_lines()
    assert [line.split(":")[0] for line in lines[5:]] == [
        "status items named from their DP id",
        "refused",
        "problem",
        "stopped early",
    ]


def test_refusal_reads_as_path_code_message_and_need():
    assert str(refusal(code=1106, msg="permission deny", needs="a linked Tuya app account")) == (
        "/v1.3/iot-03/devices: Tuya answered 1106 'permission deny' (a linked Tuya app account)"
    )
