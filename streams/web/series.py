"""What each chart of a device shows, read from the archive: numbers (raw values or buckets) and states over time.

Owns the choice of chart per code (a number, a state such as a boolean or an enum, or nothing for texts and JSON),
the choice between raw values and buckets (downsample.py) from the counts the bucket query returns, and the
segments of a state timeline. The queries are streams/store/: raw values through ``status_history_rows`` (the
CLI's ``history``, already in physical units), buckets and state changes through streams/store/series.py. Every
series lists its rows as the CSV and JSON of the chart give them: exactly what is drawn.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from models.points import PointSpec
from streams.store.query import HistoryQuery, status_history_rows
from streams.store.series import numeric_buckets, online_periods, state_changes
from streams.web.downsample import Bucket, Scale, bucket_width_ms, draw_raw
from streams.web.window import Window

__all__ = [
    "MAX_STATE_CHANGES",
    "NumericSeries",
    "Point",
    "Segment",
    "StateSeries",
    "chart_kind",
    "numeric_series",
    "online_series",
    "state_series",
    "state_text",
]

#: A timeline draws at most this many changes of a state; a longer one says it was cut short.
MAX_STATE_CHANGES = 2_000
ONLINE_STATES = ("online", "offline")


@dataclass(frozen=True, slots=True)
class Point:
    time: datetime
    value: float


@dataclass(frozen=True, slots=True)
class NumericSeries:
    """A code's numbers in a window: ``points`` (each value) or ``buckets`` (of ``width_ms``); ``count`` values."""

    code: str
    unit: str | None
    count: int
    points: tuple[Point, ...] = ()
    buckets: tuple[Bucket, ...] = ()
    width_ms: int | None = None

    @property
    def mode(self) -> str:
        return "raw" if self.width_ms is None else "buckets"

    def table(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """The columns and rows the chart draws (its CSV)."""
        if self.width_ms is None:
            return ("time", "value", "unit"), [(p.time, p.value, self.unit) for p in self.points]
        columns = ("start", "end", "count", "min", "avg", "max", "unit")
        return columns, [(b.start, b.end, b.count, b.min, b.avg, b.max, self.unit) for b in self.buckets]


@dataclass(frozen=True, slots=True)
class Segment:
    start: datetime
    end: datetime
    state: str


@dataclass(frozen=True, slots=True)
class StateSeries:
    """A code's (or the device's online) state over a window: ``states`` in legend order; ``truncated`` when more
    than MAX_STATE_CHANGES changes happened (the timeline ends at the last one drawn)."""

    code: str
    states: tuple[str, ...]
    segments: tuple[Segment, ...]
    truncated: bool = False

    def table(self) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        return ("start", "end", "state"), [(s.start, s.end, s.state) for s in self.segments]


def chart_kind(point: PointSpec | None, latest: Any) -> str | None:
    """``number``, ``state`` or None (no chart), from the data point's type, else from its latest value."""
    if point is not None:
        return {"Integer": "number", "Boolean": "state", "Enum": "state"}.get(point.type)
    if isinstance(latest, bool | str):
        return "state"
    return "number" if isinstance(latest, int | float) else None


def state_text(value: Any) -> str:
    """A state as shown and as CSV gives it: a text as it is, anything else as JSON (``true``, ``3``)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def numeric_series(
    connection: Connection, device_id: str, points: Mapping[str, PointSpec | None], window: Window
) -> list[NumericSeries]:
    """The chart of every code of ``points`` (code → its data point, None if unknown), in the order given."""
    width_ms = bucket_width_ms(window.span)
    rows = numeric_buckets(connection, device_id, list(points), window.since, window.until, width_ms)
    by_code: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_code[row.code].append(row)
    counts = {code: sum(row.count for row in by_code[code]) for code in points}
    raw = _raw_points(connection, device_id, [code for code in points if draw_raw(counts[code])], window)
    series = []
    for code, point in points.items():
        unit = point.unit if point is not None else None
        if draw_raw(counts[code]):
            series.append(NumericSeries(code, unit, counts[code], points=tuple(raw[code])))
            continue
        scale = Scale.of(point)  # once per series
        buckets = tuple(scale.bucket(r.bucket, width_ms, r.count, r.min, r.avg, r.max) for r in by_code[code])
        series.append(NumericSeries(code, unit, counts[code], buckets=buckets, width_ms=width_ms))
    return series


def _raw_points(connection: Connection, device_id: str, codes: Sequence[str], window: Window) -> dict[str, list[Point]]:
    points: dict[str, list[Point]] = defaultdict(list)
    if not codes:
        return points
    query = HistoryQuery(device_id, tuple(codes), window.since, window.until)
    for row in status_history_rows(connection, query):
        value = row.value_scaled
        if isinstance(value, int | float) and not isinstance(value, bool):
            points[row.code].append(Point(row.reported_at, value))
    return points


def state_series(
    connection: Connection, device_id: str, code: str, point: PointSpec | None, window: Window, now: datetime
) -> StateSeries:
    """The timeline of ``code``: the value in force at the window's start, then each change."""
    before, changes = state_changes(connection, device_id, code, window.since, window.until, MAX_STATE_CHANGES + 1)
    truncated = len(changes) > MAX_STATE_CHANGES
    moments = [(max(row.reported_at, window.since), state_text(row.value)) for row in changes]
    if before is not None and (not moments or moments[0][1] != state_text(before.value)):
        moments.insert(0, (window.since, state_text(before.value)))
    elif before is not None:  # the window's first report repeats the state in force: it began at the window's start
        moments[0] = (window.since, moments[0][1])
    end = moments[-1][0] if truncated else min(window.until, max(now, window.since))
    ends = [start for start, _state in moments[1:]] + [end] if moments else []  # nothing in force, nothing changed
    segments = [Segment(start, until, state) for (start, state), until in zip(moments, ends, strict=True)]
    if truncated:
        segments = segments[:-1]
    known = _known_states(point)
    seen = [state for state in dict.fromkeys(s.state for s in segments) if state not in known]
    return StateSeries(code, (*known, *seen), tuple(segments), truncated)


def _known_states(point: PointSpec | None) -> tuple[str, ...]:
    if point is None:
        return ()
    if point.type == "Boolean":
        return ("true", "false")  # the first state is drawn as "on", like online
    return tuple(point.range or ())


def online_series(connection: Connection, device_id: str, window: Window, now: datetime) -> StateSeries:
    """The device's online and offline periods in the window (device_online_periods), the current one up to now."""
    last = min(window.until, max(now, window.since))
    segments = []
    for row in online_periods(connection, device_id, window.since, window.until):
        start = max(row.started_at, window.since)
        end = min(row.ended_at or last, window.until)
        if end >= start:
            segments.append(Segment(start, end, row.state))
    return StateSeries("online", ONLINE_STATES, tuple(segments))
