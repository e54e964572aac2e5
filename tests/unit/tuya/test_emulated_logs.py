"""streams/tuya/emulated_logs.py and emulated_requests.py: log rows, their order and retention, values as strings,
row keys (over HTTP: tests/integration/test_emulator_logs.py)."""

from __future__ import annotations

import pytest

from streams.tuya.emulated_logs import EVENT_OFFLINE, EVENT_REPORT, DeviceLog, log_page, log_text, report_log_page
from streams.tuya.emulated_requests import Refusal, comma_list, decode_cursor, encode_cursor, int_param


@pytest.mark.parametrize(
    ("value", "text"),
    [(65, "65"), (False, "false"), (True, "true"), ("middle", "middle"), (None, ""), (21.5, "21.5"), ([1, 2], "[1,2]")],
)
def test_values_as_the_log_endpoints_send_them(value, text):
    assert log_text(value) == text


def test_rows_read_oldest_first_and_expired_rows_dropped():
    log = DeviceLog()
    log.append_reports([("a", 1, 30), ("a", 2, 10), ("a", 3, 20)])
    log.append(5, EVENT_OFFLINE, "offline", "")
    assert [row[4] for row in log.rows(0)] == ["", 2, 3, 1]
    assert [row[4] for row in log.rows(15)] == [3, 1] and len(log) == 2


def test_rows_of_the_same_millisecond_keep_their_arrival_order():
    log = DeviceLog()
    log.append_reports([("a", value, 7) for value in range(5)])
    assert [row[4] for row in log.rows(0)] == [0, 1, 2, 3, 4]


def test_v1_page_keys_resume_where_the_page_ended():
    log = DeviceLog()
    log.append_reports([("a", value, 100 + value) for value in range(5)])
    params = {"type": str(EVENT_REPORT), "start_time": "0", "end_time": "1000", "size": "2"}
    first = log_page("d", log.rows(0), params)
    second = log_page("d", log.rows(0), {**params, "start_row_key": first["next_row_key"]})
    assert [row["value"] for row in first["logs"] + second["logs"]] == ["0", "1", "2", "3"]
    assert second["current_row_key"] == first["next_row_key"]


def test_report_page_total_counts_the_whole_window():
    log = DeviceLog()
    log.append_reports([("a", value, 100 + value) for value in range(5)])
    page = report_log_page("d", log.rows(0), {"codes": "a", "size": "2", "start_time": "101"}, 1000)
    assert (page["total"], page["has_more"], [row["value"] for row in page["logs"]]) == (4, True, ["1", "2"])


def test_cursor_round_trip_and_foreign_cursors_refused():
    assert decode_cursor(encode_cursor("bf123", 7), 2) == ["bf123", "7"]
    with pytest.raises(Refusal) as refused:
        decode_cursor("bm90IG91cnM=", 2)
    assert refused.value.code == 1109


def test_parameters_validated_as_tuya_does():
    assert int_param({}, "size", 20) == 20
    assert comma_list({"codes": "a, b,,c"}, "codes") == ["a", "b", "c"]
    for params, call in [
        ({}, lambda p: int_param(p, "page_size")),
        ({"page_size": "21"}, lambda p: int_param(p, "page_size", high=20)),
        ({"page_size": "x"}, lambda p: int_param(p, "page_size")),
        ({"ids": "1,2,3"}, lambda p: comma_list(p, "ids", most=2)),
    ]:
        with pytest.raises(Refusal) as refused:
            call(params)
        assert refused.value.code == 1109
