"""The pages about devices: the list, one device (latest values, charts, events, commands), and one chart alone.

Owns what each page holds, as data: a ``Page`` names its template, carries the data its JSON twin gives, the SVG
charts its HTML draws, and the table its CSV twin gives. The queries are the CLI's (``list_devices``,
``latest_values``, ``status_history_rows`` through series.py) and streams/store/series.py; nothing here writes SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.engine import Connection

from models.points import PointSpec
from streams.store.query import (
    COMMAND_COLUMNS,
    DEVICE_COLUMNS,
    EVENT_COLUMNS,
    LATEST_COLUMNS,
    DeviceFilter,
    count_devices,
    device_categories,
    device_commands,
    device_facts,
    latest_values,
    list_devices,
    recent_device_events,
)
from streams.store.series import device_points
from streams.web.charts import numeric_chart, timeline_chart
from streams.web.formats import rows_as_dicts
from streams.web.series import NumericSeries, StateSeries, chart_kind, numeric_series, online_series, state_series
from streams.web.window import Window

__all__ = ["PAGE_SIZE", "Page", "PageError", "device_page", "devices_page", "online_page", "series_page"]

#: Devices per page of the list.
PAGE_SIZE = 200
#: Device events and commands a device page lists (the newest).
RECENT = 25
_ONLINE = {"": None, "yes": True, "no": False}
NO_ONLINE_EVENTS = "no online or offline event in this window"
_Codes = tuple[list[Row[Any]], dict[str, PointSpec], dict[str, str | None]]


class PageError(Exception):
    """The request cannot be answered: ``status`` (400, 404) and a message for the reader."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Page:
    """A page: ``template`` and ``data`` (its JSON twin); ``charts`` for the HTML only; ``table`` (columns, rows)
    for its CSV twin, saved under ``filename``."""

    template: str
    data: dict[str, Any]
    charts: dict[str, Any] = field(default_factory=dict)
    table: tuple[Sequence[str], Sequence[Sequence[Any]]] | None = None
    filename: str = "data"


def _device_filter(params: Mapping[str, str]) -> tuple[DeviceFilter, int]:
    online = params.get("online", "").strip()
    if online not in _ONLINE:
        raise PageError(400, f"online must be yes or no, not {online!r}")
    page = params.get("page", "1").strip()
    if not re.fullmatch(r"[1-9][0-9]{0,6}", page):
        raise PageError(400, f"page must be a number from 1, not {page!r}")
    search = params.get("q", "").strip() or None
    category = params.get("category", "").strip() or None
    return DeviceFilter(search=search, category=category, online=_ONLINE[online]), int(page)


def devices_page(connection: Connection, params: Mapping[str, str], *, paged: bool = True) -> Page:
    """Every device (or those the search and filters select): a page of PAGE_SIZE at a time, or all of them at
    once (``paged`` False: the CSV twin, an export)."""
    filters, page = _device_filter(params)
    limit, offset = (PAGE_SIZE, (page - 1) * PAGE_SIZE) if paged else (None, 0)
    rows = list_devices(connection, filters, limit=limit, offset=offset)
    data = {
        "total": count_devices(connection),
        "count": count_devices(connection, filters),
        "page": page,
        "page_size": PAGE_SIZE,
        "filters": {"q": filters.search, "category": filters.category, "online": params.get("online") or None},
        "categories": device_categories(connection),
        "devices": rows_as_dicts(DEVICE_COLUMNS, rows),
    }
    return Page("devices.html", data, table=(DEVICE_COLUMNS, rows), filename="devices")


def _device(connection: Connection, device_id: str) -> Row[Any]:
    facts = device_facts(connection, device_id)
    if facts is None:
        raise PageError(404, f"the archive has no device with the id {device_id!r}")
    return facts


def _codes(connection: Connection, device_id: str) -> _Codes:
    """The device's latest values, its data points, and the kind of chart of each code (None: no chart)."""
    latest = latest_values(connection, device_id)
    points = device_points(connection, device_id)
    return latest, points, {row.code: chart_kind(points.get(row.code), row.value) for row in latest}


def window_data(window: Window) -> dict[str, Any]:
    return {"since": window.since, "until": window.until, "range": window.preset, "query": window.query()}


def series_data(series: NumericSeries | StateSeries) -> dict[str, Any]:
    """A chart as its JSON gives it: what it is, and the rows it draws."""
    columns, rows = series.table()
    if isinstance(series, NumericSeries):
        about = {"kind": "number", "mode": series.mode, "unit": series.unit, "count": series.count}
        about["bucket_seconds"] = series.width_ms / 1000 if series.width_ms else None
    else:
        about = {"kind": "state", "states": list(series.states), "truncated": series.truncated}
    return {"code": series.code, **about, "columns": list(columns), "rows": rows_as_dicts(columns, rows)}


def device_page(connection: Connection, device_id: str, window: Window, now: datetime) -> Page:
    """A device: facts, latest values, a chart per number or state code, online periods, events, commands."""
    facts = _device(connection, device_id)
    latest, points, kinds = _codes(connection, device_id)
    numbers = {code: points.get(code) for code, kind in kinds.items() if kind == "number"}
    numeric = numeric_series(connection, device_id, numbers, window)
    states = [
        state_series(connection, device_id, code, points.get(code), window, now)
        for code, kind in kinds.items()
        if kind == "state"
    ]
    online = online_series(connection, device_id, window, now)
    data = {
        "device": dict(facts._mapping),
        "window": window_data(window),
        "latest": [row | {"chart": kinds[row["code"]]} for row in rows_as_dicts(LATEST_COLUMNS, latest)],
        "online": series_data(online),
        "charts": [series_data(series) for series in (*numeric, *states)],
        "events": rows_as_dicts(EVENT_COLUMNS, recent_device_events(connection, device_id, RECENT)),
        "commands": rows_as_dicts(COMMAND_COLUMNS, device_commands(connection, device_id, RECENT)),
    }
    charts = {
        "numeric": [(series, numeric_chart(series, window)) for series in numeric],
        "states": [(series, timeline_chart(series, window)) for series in states],
        "online": (online, timeline_chart(online, window, empty=NO_ONLINE_EVENTS)),
    }
    return Page("device.html", data, charts)


def series_page(connection: Connection, device_id: str, code: str, window: Window, now: datetime) -> Page:
    """One code's chart alone, with the rows it draws (its CSV twin gives exactly those)."""
    facts = _device(connection, device_id)
    _latest, points, kinds = _codes(connection, device_id)
    if code not in kinds and code not in points:  # a code of the product's specification may have history only
        raise PageError(404, f"device {device_id!r} has reported no code {code!r}")
    kind = kinds[code] if code in kinds else chart_kind(points[code], None)
    series: NumericSeries | StateSeries
    if kind == "number":
        series = numeric_series(connection, device_id, {code: points.get(code)}, window)[0]
        chart = numeric_chart(series, window)
    elif kind == "state":
        series = state_series(connection, device_id, code, points.get(code), window, now)
        chart = timeline_chart(series, window)
    else:
        raise PageError(404, f"code {code!r} of device {device_id!r} holds text or JSON: it has no chart")
    return _one_chart(facts, series, chart, window)


def online_page(connection: Connection, device_id: str, window: Window, now: datetime) -> Page:
    """The device's online/offline timeline alone, with its periods."""
    facts = _device(connection, device_id)
    series = online_series(connection, device_id, window, now)
    return _one_chart(facts, series, timeline_chart(series, window, empty=NO_ONLINE_EVENTS), window)


def _one_chart(facts: Row[Any], series: NumericSeries | StateSeries, chart: Any, window: Window) -> Page:
    device = {"device_id": facts.device_id, "name": facts.name}
    data = {"device": device, "window": window_data(window), **series_data(series)}
    filename = f"{facts.device_id}-{series.code}"
    return Page("series.html", data, {"chart": chart, "series": series}, table=series.table(), filename=filename)
