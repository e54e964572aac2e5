"""The device logs the emulated project keeps, and the two log endpoints that page through them (SPEC.md §10.3).

Owns a device's log rows (what it reported, when it went online or offline), their time order, retention (rows
older than the retention on the emulator's clock are dropped and never answered), and the result JSON of
``GET /v1.0/devices/{id}/logs`` and ``GET /v2.0/cloud/thing/{id}/report-logs``: values as Tuya sends them, strings
(``"65"``, ``"false"``, ``"middle"``), rows oldest first, opaque row keys. Pure apart from a sequence counter; the
caller (:class:`streams.tuya.emulated_devices.DeviceRegistry`) holds the lock. Must not import the client or httpx.
"""

from __future__ import annotations

import itertools
import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streams.tuya.emulated_requests import PARAM_ILLEGAL, Refusal, comma_list, decode_cursor, encode_cursor, int_param

__all__ = [
    "EVENT_OFFLINE",
    "EVENT_ONLINE",
    "EVENT_REPORT",
    "DeviceLog",
    "log_page",
    "log_text",
    "report_log_page",
]

# The log types of SPEC.md §10.3 (the ``type`` parameter and each row's ``event_id``).
EVENT_ONLINE = 1
EVENT_OFFLINE = 2
EVENT_REPORT = 7

_LOG_SIZE_DEFAULT = 20
_LOG_SIZE_CAP = 100  # tinytuya: "hard limit of 100 records per query"; larger sizes get 100 rows
_REPORT_SIZE_MOST = 100

# A row: (event_time ms, sequence, event_id, code, value as reported, event_from). The sequence orders rows of the
# same millisecond by arrival and makes every row key unique.
Row = tuple[int, int, int, str, Any, str]
_SEQUENCE = itertools.count()  # next() on it is atomic in CPython; rows of different devices share it harmlessly


class DeviceLog:
    """One device's log rows; appending is cheap, time order is restored when a query reads them."""

    __slots__ = ("_in_order", "_rows")

    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._in_order = True

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, at_ms: int, event_id: int, code: str, value: Any, event_from: str = "1") -> None:
        rows = self._rows
        if rows and at_ms < rows[-1][0]:
            self._in_order = False  # a report timed before the last one: sort when next read
        rows.append((at_ms, next(_SEQUENCE), event_id, code, value, event_from))

    def append_reports(self, reports: Iterable[tuple[str, Any, int]], event_from: str = "1") -> None:
        """Data point reports ``(code, value, at_ms)``, in one pass (it is called for every simulated message)."""
        rows, in_order = self._rows, self._in_order
        last = rows[-1][0] if rows else None
        for code, value, at_ms in reports:
            if last is not None and at_ms < last:
                in_order = False
            last = at_ms
            rows.append((at_ms, next(_SEQUENCE), EVENT_REPORT, code, value, event_from))
        self._in_order = in_order

    def rows(self, cutoff_ms: int) -> list[Row]:
        """The rows from ``cutoff_ms`` on, oldest first; older rows are dropped for good (retention)."""
        rows = self._rows
        if not self._in_order:
            rows.sort()
            self._in_order = True
        expired = bisect_left(rows, (cutoff_ms,))
        if expired:
            del rows[:expired]
        return rows


def log_text(value: Any) -> str:
    """A value as the log endpoints send it: a string, booleans lower case, JSON for anything structured."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _row_key(row: Row) -> str:
    return encode_cursor(row[0], row[1])


def _key_of(cursor: str) -> tuple[int, int]:
    try:
        event_time, sequence = (int(part) for part in decode_cursor(cursor, 2))
    except ValueError:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: row key") from None
    return event_time, sequence


def _window(params: Mapping[str, str], default_end: int | None = None) -> tuple[int, int]:
    start = int_param(params, "start_time", None if default_end is None else 0)
    end = int_param(params, "end_time", default_end)
    if start > end:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: start_time after end_time")
    return start, end


def log_page(device_id: str, rows: list[Row], params: Mapping[str, str]) -> dict[str, Any]:
    """A page of ``GET /v1.0/devices/{id}/logs``; ``start_row_key`` is the key of the page's first row."""
    try:
        types = {int(item) for item in comma_list(params, "type")}
    except ValueError:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: type") from None
    if not types:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: type is required")
    start, end = _window(params)
    size = min(int_param(params, "size", _LOG_SIZE_DEFAULT, low=1), _LOG_SIZE_CAP)
    codes = set(comma_list(params, "codes"))
    given = params.get("start_row_key", "")
    begin = max((start,), _key_of(given)) if given else (start,)
    picked = _pick(rows, begin, end, size + 1, lambda row: row[2] in types and (not codes or row[3] in codes))
    page, following = picked[:size], picked[size:]
    return {
        "device_id": device_id,
        "has_next": bool(following),
        "current_row_key": _row_key(page[0]) if page else given,
        "next_row_key": _row_key(following[0]) if following else "",
        "logs": [
            {
                "code": row[3],
                "value": log_text(row[4]),
                "event_time": row[0],
                "event_from": row[5],
                "event_id": row[2],
                "status": "1",
            }
            for row in page
        ],
    }


def _pick(rows: list[Row], begin: tuple[int, ...], end: int, most: int, keep: Callable[[Row], bool]) -> list[Row]:
    picked: list[Row] = []
    for index in range(bisect_left(rows, begin), len(rows)):
        row = rows[index]
        if row[0] > end:
            break
        if keep(row):
            picked.append(row)
            if len(picked) == most:
                break
    return picked


def report_log_page(device_id: str, rows: list[Row], params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
    """A page of ``GET /v2.0/cloud/thing/{id}/report-logs``: data point reports after ``last_row_key``."""
    codes = set(comma_list(params, "codes"))
    if not codes:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: codes is required")
    size = int_param(params, "size", low=1, high=_REPORT_SIZE_MOST)
    start, end = _window(params, default_end=now_ms)
    given = params.get("last_row_key", "")
    after = _key_of(given) if given else None
    total, picked = 0, []
    for index in range(bisect_left(rows, (start,)), len(rows)):
        row = rows[index]
        if row[0] > end:
            break
        if row[2] == EVENT_REPORT and row[3] in codes:
            total += 1
            if (after is None or row[:2] > after) and len(picked) <= size:
                picked.append(row)
    page = picked[:size]
    return {
        "device_id": device_id,
        "total": total,
        "has_more": len(picked) > size,
        "last_row_key": _row_key(page[-1]) if page else given,
        "logs": [{"code": row[3], "value": log_text(row[4]), "event_time": row[0]} for row in page],
    }
