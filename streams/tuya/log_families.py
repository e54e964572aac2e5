"""Tuya's device logs (SPEC.md §10.3): the two path families that page through what a device reported, as pagers.

``GET /v1.0/devices/{id}/logs`` gives data-point reports and online/offline rows (``has_next`` + ``next_row_key``,
at most 100 rows a page, asked again with ``start_row_key``); ``GET /v2.0/cloud/thing/{id}/report-logs`` gives
data-point reports only, for the codes asked (``has_more`` + ``last_row_key``). Values are Tuya's strings
(``"65"``, ``"false"``); times are ms. Each pager hides its cursor, resumes from a cursor a checkpoint kept, and
stops with :class:`~streams.tuya.families.CursorRepeated` when a cursor comes back. Calls go through the client, so
signing, pacing and retries are the client's. Must not import the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from streams.tuya.api_errors import TuyaApiError
from streams.tuya.families import CursorRepeated, Requester
from streams.tuya.results import ApiAnswer

__all__ = [
    "LOG_FAMILIES",
    "LOG_OFFLINE",
    "LOG_ONLINE",
    "LOG_REPORT",
    "LogFamily",
    "LogPage",
    "LogRow",
]

#: The log types kept (SPEC.md §10.3): 1 online, 2 offline, 7 data-point report.
LOG_ONLINE, LOG_OFFLINE, LOG_REPORT = 1, 2, 7
_PAGE = 100  # the most rows Tuya answers a page (tinytuya: "hard limit of 100 records per query")


class LogRow(msgspec.Struct, frozen=True):
    """One log row: ``event_id`` (1 online, 2 offline, 7 report), ``code`` and ``value`` (a string) of a report."""

    event_time: int
    event_id: int = LOG_REPORT
    code: str = ""
    value: Any = None
    event_from: str = ""


@dataclass(frozen=True, slots=True)
class LogPage:
    """One answer's rows; ``next_cursor`` resumes after it (None: the window is done)."""

    rows: list[LogRow]
    next_cursor: str | None
    t: int


class _V1Result(msgspec.Struct):
    logs: list[dict[str, Any]] = []
    has_next: bool = False
    next_row_key: str | None = None


class _V2Result(msgspec.Struct):
    logs: list[dict[str, Any]] = []
    has_more: bool | None = None
    has_next: bool | None = None  # the deprecated iot-03 answers say has_next: accept both
    last_row_key: str | None = None


_Result = TypeVar("_Result", _V1Result, _V2Result)


def _rows(items: list[dict[str, Any]], event_id: int | None = None) -> list[LogRow]:
    rows = []
    for item in items:
        try:
            row = msgspec.convert(item, type=LogRow, strict=False)
        except msgspec.ValidationError:
            continue  # a row without a time cannot be placed: skipped, as Tuya adds row kinds we do not keep
        rows.append(msgspec.structs.replace(row, event_id=event_id) if event_id is not None else row)
    return rows


def _result(answer: ApiAnswer, shape: type[_Result], path: str) -> _Result:
    """The answer's result in ``shape``; TuyaApiError (code 0, so not a refusal) when it has another."""
    try:
        return msgspec.convert(answer.result or {}, type=shape, strict=False)
    except msgspec.ValidationError as exc:
        raise TuyaApiError(0, f"unexpected device log shape: {exc}", answer.tid, path=path) from None


def _following(path: str, more: bool, key: str | None, cursor: str | None, seen: set[str]) -> str | None:
    """The cursor of the next page (None: this page is the last). CursorRepeated when more pages follow but the
    answer gives no cursor, or one already followed: the device's log is not done, and its checkpoint stays."""
    if not more:
        return None
    if not key or key in seen or key == cursor:
        raise CursorRepeated(path, key or "")
    seen.add(key)
    return key


def _device_path(template: str, device_id: str) -> str:
    return template.format(device_id=quote(device_id, safe=""))


_V1 = "/v1.0/devices/{device_id}/logs"


def _v1_pages(
    client: Requester, device_id: str, start_ms: int, end_ms: int, codes: Sequence[str], cursor: str | None
) -> Iterator[LogPage]:
    """Reports and online/offline rows; ``codes`` is not sent (every code is wanted)."""
    path, seen = _device_path(_V1, device_id), set()
    while True:
        params: dict[str, Any] = {"type": f"{LOG_ONLINE},{LOG_OFFLINE},{LOG_REPORT}", "query_type": 1}
        params.update(start_time=start_ms, end_time=end_ms, size=_PAGE)
        if cursor:
            params["start_row_key"] = cursor
        answer = client.request("GET", path, params=params)
        result = _result(answer, _V1Result, path)
        following = _following(_V1, result.has_next, result.next_row_key, cursor, seen)
        yield LogPage(_rows(result.logs), following, answer.t)
        if following is None:
            return
        cursor = following


_V2 = "/v2.0/cloud/thing/{device_id}/report-logs"


def _v2_pages(
    client: Requester, device_id: str, start_ms: int, end_ms: int, codes: Sequence[str], cursor: str | None
) -> Iterator[LogPage]:
    """Reports of ``codes`` only (the family requires them); no online/offline rows."""
    if not codes:
        return
    path, seen = _device_path(_V2, device_id), set()
    while True:
        params: dict[str, Any] = {"codes": ",".join(codes), "start_time": start_ms, "end_time": end_ms, "size": _PAGE}
        if cursor:
            params["last_row_key"] = cursor
        answer = client.request("GET", path, params=params)
        result = _result(answer, _V2Result, path)
        more = result.has_more if result.has_more is not None else bool(result.has_next)
        following = _following(_V2, more, result.last_row_key, cursor, seen)
        yield LogPage(_rows(result.logs, LOG_REPORT), following, answer.t)
        if following is None:
            return
        cursor = following


Pager = Callable[[Requester, str, int, int, Sequence[str], str | None], Iterator[LogPage]]


@dataclass(frozen=True, slots=True)
class LogFamily:
    """A device-log path family; ``needs_codes``: it answers only for the codes asked (the product's reported);
    ``online_rows``: it gives the online and offline rows too."""

    path: str
    needs_codes: bool
    online_rows: bool
    pages: Pager = field(repr=False)


#: In the order backfill tries them: v1.0 also gives online/offline periods.
LOG_FAMILIES: tuple[LogFamily, ...] = (
    LogFamily(_V1, needs_codes=False, online_rows=True, pages=_v1_pages),
    LogFamily(_V2, needs_codes=True, online_rows=False, pages=_v2_pages),
)
