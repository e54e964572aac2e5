"""streams/tuya/log_families.py with a scripted Requester: each device-log family pages to its end, resumes from a
checkpoint's cursor, and stops incomplete when a cursor comes back or is missing (partner:
tests/integration/test_backfill.py, the same families over loopback HTTP against the emulator)."""

from __future__ import annotations

import pytest

from streams.tuya.api_errors import TuyaApiError
from streams.tuya.families import CursorRepeated
from streams.tuya.log_families import LOG_FAMILIES, LOG_OFFLINE, LogFamily, LogPage
from tests.unit.tuya.test_families import ScriptedRequester, answer

DEVICE = "bf00001d2e4a1b2c3x9kq"
V1, V2 = "/v1.0/devices/{device_id}/logs", "/v2.0/cloud/thing/{device_id}/report-logs"
START, END = 1_764_500_000_000, 1_764_590_000_000


def family(path: str) -> LogFamily:
    return next(family for family in LOG_FAMILIES if family.path == path)


def rows(first: int, count: int) -> list[dict[str, object]]:
    return [
        {"event_time": START + n, "event_id": 7, "code": "cur_power", "value": str(n)}
        for n in range(first, first + count)
    ]


def v1(first: int, count: int, next_key: str | None) -> dict[str, object]:
    return {"logs": rows(first, count), "has_next": next_key is not None, "next_row_key": next_key}


def pages(path: str, client: ScriptedRequester, cursor: str | None = None) -> list[LogPage]:
    return list(family(path).pages(client, DEVICE, START, END, ["cur_power"], cursor))


def test_v1_follows_next_row_key_to_the_last_page():
    client = ScriptedRequester(answer(v1(0, 100, "k1"), 0), answer(v1(100, 100, "k2"), 1), answer(v1(200, 3, None), 2))
    got = pages(V1, client)
    assert [(len(page.rows), page.next_cursor) for page in got] == [(100, "k1"), (100, "k2"), (3, None)]
    assert [params.get("start_row_key") for params in client.params] == [None, "k1", "k2"]
    assert client.calls[0][1] == f"/v1.0/devices/{DEVICE}/logs" and client.params[0]["type"] == "1,2,7"


def test_v1_resumes_from_the_checkpoint_cursor():
    client = ScriptedRequester(answer(v1(100, 2, None)))
    assert [page.next_cursor for page in pages(V1, client, cursor="k1")] == [None]
    assert client.params[0]["start_row_key"] == "k1"


def test_v1_keeps_online_and_offline_rows():
    logs = [{"event_time": START, "event_id": LOG_OFFLINE, "event_from": "1"}, {"event_time": START + 5, "event_id": 1}]
    client = ScriptedRequester(answer({"logs": logs, "has_next": False}))
    assert [(row.event_id, row.event_from) for row in pages(V1, client)[0].rows] == [(2, "1"), (1, "")]


@pytest.mark.parametrize("next_key", [None, ""])
def test_v1_more_pages_without_a_cursor_stop_the_log_incomplete(next_key: str | None):
    client = ScriptedRequester(answer({"logs": rows(0, 100), "has_next": True, "next_row_key": next_key}))
    with pytest.raises(CursorRepeated, match="more pages follow but no cursor"):
        pages(V1, client)


def test_v1_a_cursor_that_comes_back_stops_the_log_incomplete():
    client = ScriptedRequester(answer(v1(0, 100, "k1"), 0), answer(v1(100, 100, "k1"), 1))
    with pytest.raises(CursorRepeated, match="'k1' came back"):
        pages(V1, client)


def test_v2_asks_for_the_codes_and_follows_last_row_key():
    first = {"logs": rows(0, 100), "has_more": True, "last_row_key": "r1"}
    client = ScriptedRequester(answer(first, 0), answer({"logs": rows(100, 1), "has_more": False}, 1))
    assert [page.next_cursor for page in pages(V2, client)] == ["r1", None]
    assert [params.get("last_row_key") for params in client.params] == [None, "r1"]
    assert client.params[0]["codes"] == "cur_power"


def test_v2_reads_the_deprecated_has_next_when_has_more_is_absent():
    client = ScriptedRequester(answer({"logs": rows(0, 100), "has_next": True}))
    with pytest.raises(CursorRepeated, match="more pages follow but no cursor"):
        pages(V2, client)


def test_v2_without_codes_asks_nothing():
    client = ScriptedRequester()
    assert list(family(V2).pages(client, DEVICE, START, END, [], None)) == [] and client.calls == []


@pytest.mark.parametrize("path", [V1, V2])
def test_an_answer_of_another_shape_is_an_api_error_not_a_crash(path: str):
    client = ScriptedRequester(answer({"logs": "not a list"}))
    with pytest.raises(TuyaApiError, match="unexpected device log shape") as raised:
        pages(path, client)
    assert not isinstance(raised.value, CursorRepeated) and raised.value.code == 0
