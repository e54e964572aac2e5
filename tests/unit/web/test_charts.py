"""streams/web/charts.py: the SVG of numbers and of states, its data attributes, its escaping (partner: the browser
tests of tests/integration/test_web.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from streams.web.charts import numeric_chart, timeline_chart
from streams.web.downsample import Bucket
from streams.web.series import NumericSeries, Point, Segment, StateSeries
from streams.web.window import Window

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
WINDOW = Window(T0, T0 + timedelta(hours=1), "1h")
HOSTILE = '<script>alert("x")</script>'


def _parse(markup: str) -> ET.Element:
    return ET.fromstring(str(markup))


def _raw(values: list[float], unit: str | None = "°C", code: str = "temp_current") -> NumericSeries:
    points = tuple(Point(T0 + timedelta(minutes=5 * n), value) for n, value in enumerate(values))
    return NumericSeries(code, unit, len(points), points=points)


def test_raw_points_carry_their_time_and_value() -> None:
    svg = _parse(numeric_chart(_raw([21.5, 22.0, 21.75]), WINDOW))
    circles = svg.findall(f".//{SVG}circle")
    assert [(c.get("data-time"), float(c.get("data-value"))) for c in circles] == [
        ((T0 + timedelta(minutes=5 * n)).isoformat(), value) for n, value in enumerate([21.5, 22.0, 21.75])
    ]
    assert svg.get("data-mode") == "raw" and svg.get("data-unit") == "°C"


def test_the_y_axis_is_labelled_with_the_unit() -> None:
    svg = _parse(numeric_chart(_raw([1.0, 2.0], unit="kWh"), WINDOW))
    labels = [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "axis-label"]
    assert labels == ["kWh"]


def test_without_a_unit_the_y_axis_names_the_code() -> None:
    svg = _parse(numeric_chart(_raw([1.0, 2.0], unit=None, code="bright_value"), WINDOW))
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "axis-label"] == ["bright_value"]


def test_points_lie_inside_the_plot_higher_values_higher() -> None:
    svg = _parse(numeric_chart(_raw([10.0, 30.0]), WINDOW))
    low, high = svg.findall(f".//{SVG}circle")
    assert float(high.get("cy")) < float(low.get("cy"))
    width, height = (float(v) for v in svg.get("viewBox").split()[2:])
    for circle in (low, high):
        assert 0 < float(circle.get("cx")) < width and 0 < float(circle.get("cy")) < height


def test_a_long_silence_breaks_the_line() -> None:
    times = [0, 1, 2, 3, 40, 41, 42]
    points = tuple(Point(T0 + timedelta(minutes=m), float(m)) for m in times)
    svg = _parse(numeric_chart(NumericSeries("c", None, len(points), points=points), WINDOW))
    assert len(svg.findall(f".//{SVG}polyline")) == 2


def test_buckets_carry_count_min_mean_max() -> None:
    buckets = tuple(
        Bucket(T0 + timedelta(minutes=10 * n), T0 + timedelta(minutes=10 * (n + 1)), 60, 20.0 + n, 21.0 + n, 22.0 + n)
        for n in range(6)
    )
    series = NumericSeries("temp_current", "°C", 360, buckets=buckets, width_ms=600_000)
    svg = _parse(numeric_chart(series, WINDOW))
    rects = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bucket"]
    drawn = [tuple(r.get(f"data-{name}") for name in ("time", "count", "min", "avg", "max")) for r in rects]
    assert drawn == [(b.start.isoformat(), "60", repr(b.min), repr(b.avg), repr(b.max)) for b in buckets]
    assert svg.get("data-mode") == "buckets"
    assert len(svg.findall(f".//{SVG}polygon")) == 1


def test_an_empty_series_says_so() -> None:
    svg = _parse(numeric_chart(NumericSeries("c", "W", 0), WINDOW))
    assert "no values in this window" in [t.text for t in svg.iter(f"{SVG}text")]


def test_a_timeline_draws_a_band_per_period_coloured_by_state() -> None:
    segments = (
        Segment(T0, T0 + timedelta(minutes=20), "true"),
        Segment(T0 + timedelta(minutes=20), T0 + timedelta(minutes=60), "false"),
    )
    svg = _parse(timeline_chart(StateSeries("switch_1", ("true", "false"), segments), WINDOW))
    bands = [r for r in svg.iter(f"{SVG}rect") if "state" in (r.get("class") or "").split()]
    assert [(b.get("data-state"), b.get("class")) for b in bands] == [
        ("true", "state state-0"),
        ("false", "state state-1"),
    ]
    assert float(bands[0].get("width")) < float(bands[1].get("width"))


def test_user_text_is_escaped_in_text_and_attributes() -> None:
    markup = str(numeric_chart(_raw([1.0, 2.0], unit=HOSTILE, code=HOSTILE), WINDOW))
    markup += str(
        timeline_chart(StateSeries(HOSTILE, (HOSTILE,), (Segment(T0, T0 + timedelta(hours=1), HOSTILE),)), WINDOW)
    )
    assert "<script" not in markup
    assert "&lt;script&gt;" in markup
    svg = _parse(numeric_chart(_raw([1.0], unit=HOSTILE, code=HOSTILE), WINDOW))
    assert svg.get("data-code") == HOSTILE and svg.get("data-unit") == HOSTILE


def test_charts_use_no_style_attributes_or_scripts() -> None:
    markup = str(numeric_chart(_raw([1.0, 2.0, 3.0]), WINDOW)) + str(
        timeline_chart(StateSeries("online", ("online", "offline"), ()), WINDOW)
    )
    assert "style=" not in markup and "<script" not in markup and "on" + "load=" not in markup
