"""streams/web/formats.py and display.py: JSON and CSV twins, and values for people."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from streams.web.display import age, duration, plural, value_text, when
from streams.web.formats import csv_response, json_ready, json_response

T = datetime(2026, 12, 5, 9, 37, 4, 720_000, tzinfo=UTC)


def test_json_carries_times_as_iso_and_decimals_as_numbers() -> None:
    data = {"at": T, "n": Decimal("1.5"), "rows": [(T, {"v": True})]}
    assert json_ready(data) == {"at": T.isoformat(), "n": 1.5, "rows": [[T.isoformat(), {"v": True}]]}
    assert json.loads(json_response(data).body)["at"] == "2026-12-05T09:37:04.720000+00:00"


def test_a_number_json_cannot_hold_is_null_not_a_failure() -> None:
    # an average of values near a double's limit overflows to infinity in SQL
    data = {"mean": float("inf"), "low": -float("inf"), "nan": float("nan"), "decimal": Decimal("Infinity"), "n": 2.5}
    assert json.loads(json_response(data).body) == {"mean": None, "low": None, "nan": None, "decimal": None, "n": 2.5}


def test_csv_has_a_header_iso_times_and_json_values() -> None:
    response = csv_response(("time", "value", "unit", "data"), [(T, 21.5, "°C", {"a": 1}), (T, None, None, [1])], "x")
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows == [
        ["time", "value", "unit", "data"],
        [T.isoformat(), "21.5", "°C", '{"a": 1}'],
        [T.isoformat(), "", "", "[1]"],
    ]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


def test_csv_text_that_a_spreadsheet_would_run_is_quoted_but_numbers_are_not() -> None:
    response = csv_response(("name", "value"), [("=HYPERLINK(1)", -3.5), ("@SUM", 0), ("+1", 1)], "devices")
    rows = list(csv.reader(io.StringIO(response.body.decode())))[1:]
    assert rows == [["'=HYPERLINK(1)", "-3.5"], ["'@SUM", "0"], ["'+1", "1"]]


def test_csv_file_name_is_safe() -> None:
    response = csv_response(("a",), [], '../x"; y<script>')
    assert response.headers["content-disposition"] == 'inline; filename="x_y_script.csv"'


def test_values_for_people() -> None:
    assert value_text(21.5, "°C") == "21.5 °C"
    assert value_text(True) == "true"
    assert value_text({"a": 1}) == '{"a": 1}'
    assert value_text(None, "W") == ""
    assert when(T) == "2026-12-05 09:37:04"
    assert when(T, precise=True) == "2026-12-05 09:37:04.720"
    assert [duration(timedelta(seconds=s)) for s in (45, 720, 11_100, 352_800)] == [
        "45 s",
        "12 min",
        "3 h 5 min",
        "4 d 2 h",
    ]
    assert age(T - timedelta(minutes=3), T) == "3 min ago"
    assert (plural(1, "period"), plural(1204, "value")) == ("1 period", "1,204 values")
