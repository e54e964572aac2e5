"""Charts as SVG, drawn on the server: a line of numbers (raw values, or buckets as a min–max band around the mean)
and a timeline of states (booleans, enums, online/offline).

Owns the drawing only: coordinates, shapes and labels; the look is the stylesheet's (static/app.css, by class), so
the page needs neither inline styles nor script. Every text that comes from the archive (codes, units, states) is
escaped here, in text and in attributes. Each drawn value carries its time and value in ``data-*`` attributes (the
browser tests read them, and so can anyone), and a ``<title>`` the browser shows on hover. Pure.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

from streams.web.axes import format_number, time_ticks, value_range, value_ticks
from streams.web.display import value_text
from streams.web.series import NumericSeries, StateSeries
from streams.web.window import Window

__all__ = ["numeric_chart", "timeline_chart"]

WIDTH = 960
LEFT, RIGHT = 78, 16
CHART_HEIGHT, TOP, BOTTOM = 240, 12, 30
TIMELINE_HEIGHT, BAR_TOP, BAR_HEIGHT = 64, 6, 30
#: A line breaks where consecutive values are further apart than this many times their usual interval, and than
#: this share of the window (so a sensor's jitter does not break it).
GAP_FACTOR = 5
GAP_SHARE = 0.04


def _attrs(attributes: dict[str, Any]) -> str:
    return "".join(f' {name}="{escape(value)}"' for name, value in attributes.items() if value is not None)


def _el(tag: str, attributes: dict[str, Any], content: str | Markup = "") -> Markup:
    """An element; ``content`` is text (escaped) unless it is already Markup."""
    return Markup(f"<{tag}{_attrs(attributes)}>{escape(content)}</{tag}>")


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps times to x and values to y inside the plot area."""

    window: Window
    low: float = 0.0
    high: float = 1.0
    height: int = CHART_HEIGHT

    def x(self, moment: datetime) -> float:
        share = (moment - self.window.since) / self.window.span
        return LEFT + min(max(share, 0.0), 1.0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return TOP + (1.0 - share) * (self.height - TOP - BOTTOM)


def _svg(kind: str, height: int, label: str, data: dict[str, Any], parts: Iterable[Markup]) -> Markup:
    attributes = {
        "class": f"chart {kind}",
        "viewBox": f"0 0 {WIDTH} {height}",
        "role": "img",
        "aria-label": label,
        "xmlns": "http://www.w3.org/2000/svg",
        **{f"data-{name}": value for name, value in data.items()},
    }
    return _el("svg", attributes, Markup("").join(parts))


def _window_data(series_code: str, window: Window) -> dict[str, Any]:
    return {"code": series_code, "since": window.since.isoformat(), "until": window.until.isoformat()}


def _time_axis(frame: _Frame, top: float, baseline: float) -> list[Markup]:
    """Labelled ticks at round times below ``baseline``; their lines reach up to ``top``."""
    parts = []
    for moment, label in time_ticks(frame.window.since, frame.window.until):
        x = f"{frame.x(moment):.1f}"
        parts.append(_el("line", {"class": "tick", "x1": x, "x2": x, "y1": top, "y2": baseline + 4}))
        text = {"class": "tick-label", "x": x, "y": baseline + 18, "text-anchor": "middle"}
        parts.append(_el("text", text, label))
    return parts


def _value_axis(frame: _Frame, unit: str | None, code: str) -> list[Markup]:
    ticks = value_ticks(frame.low, frame.high)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else None
    parts = []
    for tick in ticks:
        if not frame.low <= tick <= frame.high:
            continue
        y = f"{frame.y(tick):.1f}"
        parts.append(_el("line", {"class": "grid", "x1": LEFT, "x2": WIDTH - RIGHT, "y1": y, "y2": y}))
        label = {"class": "tick-label", "x": LEFT - 6, "y": y, "text-anchor": "end", "dominant-baseline": "middle"}
        parts.append(_el("text", label, format_number(tick, step)))
    middle = (TOP + frame.height - BOTTOM) / 2
    rotated = {"class": "axis-label", "transform": f"translate(14 {middle:.1f}) rotate(-90)"}
    parts.append(_el("text", rotated | {"text-anchor": "middle"}, unit or code))
    return parts


def _runs(times: Sequence[datetime], span: timedelta) -> list[range]:
    """Index ranges of values close enough in time to be joined by a line (a long silence breaks it)."""
    if len(times) < 3:
        return [range(len(times))] if times else []
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    limit = max(statistics.median(gaps) * GAP_FACTOR, span.total_seconds() * GAP_SHARE)
    runs, start = [], 0
    for index, gap in enumerate(gaps, start=1):
        if gap > limit:
            runs.append(range(start, index))
            start = index
    runs.append(range(start, len(times)))
    return runs


def _polyline(points: Iterable[tuple[float, float]], css: str) -> Markup:
    return _el("polyline", {"class": css, "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points)})


def _empty(y: float, text: str) -> Markup:
    attributes = {"class": "empty", "x": (LEFT + WIDTH - RIGHT) / 2, "y": y, "text-anchor": "middle"}
    return _el("text", attributes | {"dominant-baseline": "middle"}, text)


def numeric_chart(series: NumericSeries, window: Window) -> Markup:
    """The chart of a code's numbers: a line with a dot per value, or the buckets' mean inside their min–max band."""
    values = [p.value for p in series.points] + [v for b in series.buckets for v in (b.min, b.max)]
    low, high = value_range(min(values), max(values)) if values else (0.0, 1.0)
    frame = _Frame(window, low, high)
    parts = [*_value_axis(frame, series.unit, series.code), *_time_axis(frame, TOP, CHART_HEIGHT - BOTTOM)]
    if series.mode == "raw":
        parts += _raw_shapes(series, frame)
    else:
        parts += _bucket_shapes(series, frame)
    if not values:
        parts.append(_empty((TOP + CHART_HEIGHT - BOTTOM) / 2, "no values in this window"))
    data = {**_window_data(series.code, window), "unit": series.unit or "", "mode": series.mode, "count": series.count}
    label = f"{series.code} ({series.unit or 'no unit'}): {series.count} values"
    return _svg("numeric", CHART_HEIGHT, label, data, parts)


def _raw_shapes(series: NumericSeries, frame: _Frame) -> list[Markup]:
    points = series.points
    coordinates = [(frame.x(p.time), frame.y(p.value)) for p in points]
    runs = _runs([p.time for p in points], frame.window.span)
    parts = [_polyline((coordinates[i] for i in run), "line") for run in runs if len(run) > 1]
    radius = "3" if len(points) <= 200 else "1.6"
    for point, (x, y) in zip(points, coordinates, strict=True):
        attributes = {"class": "point", "cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": radius}
        attributes |= {"data-time": point.time.isoformat(), "data-value": repr(point.value)}
        title = _el("title", {}, f"{_when(point.time)}: {value_text(point.value, series.unit)}")
        parts.append(_el("circle", attributes, title))
    return parts


def _bucket_shapes(series: NumericSeries, frame: _Frame) -> list[Markup]:
    buckets = series.buckets
    middles = [frame.x(b.start + (b.end - b.start) / 2) for b in buckets]
    parts = []
    for run in _runs([b.start for b in buckets], frame.window.span):
        band = [(middles[i], frame.y(buckets[i].max)) for i in run]
        band += [(middles[i], frame.y(buckets[i].min)) for i in reversed(run)]
        parts.append(_el("polygon", {"class": "band", "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in band)}))
        if len(run) > 1:
            parts.append(_polyline(((middles[i], frame.y(buckets[i].avg)) for i in run), "line"))
    for bucket in buckets:
        left, right = frame.x(bucket.start), frame.x(bucket.end)
        attributes = {"class": "bucket", "x": f"{left:.1f}", "y": TOP, "width": f"{max(right - left, 0.5):.1f}"}
        attributes |= {"height": CHART_HEIGHT - TOP - BOTTOM, "data-time": bucket.start.isoformat()}
        attributes |= {"data-end": bucket.end.isoformat(), "data-count": bucket.count, "data-min": repr(bucket.min)}
        attributes |= {"data-avg": repr(bucket.avg), "data-max": repr(bucket.max), "data-value": repr(bucket.avg)}
        summary = ", ".join(f"{name} {value_text(v, series.unit)}" for name, v in
                            (("min", bucket.min), ("mean", bucket.avg), ("max", bucket.max)))  # fmt: skip
        title = f"{_when(bucket.start)} – {bucket.end:%H:%M:%S}: {bucket.count} values; {summary}"
        parts.append(_el("rect", attributes, _el("title", {}, title)))
    return parts


def timeline_chart(series: StateSeries, window: Window, *, empty: str = "no report in this window") -> Markup:
    """A band per state period, coloured by the state's place in ``series.states`` (class ``state-N``); ``empty``
    is said when there is none."""
    frame = _Frame(window, height=TIMELINE_HEIGHT)
    track = {"class": "track", "x": LEFT, "y": BAR_TOP, "width": WIDTH - LEFT - RIGHT, "height": BAR_HEIGHT}
    parts = [_el("rect", track)]
    for segment in series.segments:
        left, right = frame.x(segment.start), frame.x(segment.end)
        css = f"state state-{_state_index(series.states, segment.state)}"
        attributes = {"class": css, "x": f"{left:.1f}", "y": BAR_TOP, "width": f"{max(right - left, 0.5):.1f}"}
        attributes |= {"height": BAR_HEIGHT, "data-state": segment.state, "data-time": segment.start.isoformat()}
        attributes |= {"data-end": segment.end.isoformat()}
        title = _el("title", {}, f"{segment.state}: {_when(segment.start)} – {_when(segment.end)}")
        parts.append(_el("rect", attributes, title))
        if right - left > 8 * len(segment.state) + 12:
            label = {"class": "state-label", "x": f"{left + 6:.1f}", "y": BAR_TOP + BAR_HEIGHT / 2}
            parts.append(_el("text", label | {"dominant-baseline": "middle"}, segment.state))
    parts += _time_axis(frame, BAR_TOP + BAR_HEIGHT, BAR_TOP + BAR_HEIGHT)
    if not series.segments:
        parts.append(_empty(BAR_TOP + BAR_HEIGHT / 2, empty))
    label = f"{series.code}: {len(series.segments)} periods"
    data = {**_window_data(series.code, window), "states": " ".join(series.states)}
    return _svg("timeline", TIMELINE_HEIGHT, label, data, parts)


def _state_index(states: Sequence[str], state: str) -> int:
    """The state's colour: its place among the known states (online first, false before true), at most 7."""
    return min(states.index(state), 7) if state in states else 7
