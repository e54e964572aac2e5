"""streams/web/downsample.py: bucket widths, bucket numbers and bounds, raw or buckets, units (partner:
tests/integration/test_web.py checks the SQL against the same arithmetic on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from models.points import PointSpec
from streams.web.downsample import (
    BUCKET_WIDTHS_S,
    MAX_RAW_POINTS,
    TARGET_BUCKETS,
    Scale,
    bucket_bounds,
    bucket_of,
    bucket_width_ms,
    draw_raw,
)

END = datetime(2026, 12, 1, tzinfo=UTC)


def _point(type_: str = "Integer", scale: int = 1) -> PointSpec:
    return PointSpec(product_id="p", code="temp_current", type=type_, unit="°C", scale=scale)


@pytest.mark.parametrize(
    ("span", "width_s"),
    [(timedelta(hours=1), 10), (timedelta(hours=24), 300), (timedelta(days=7), 1_800), (timedelta(seconds=30), 1)],
)
def test_bucket_width_is_the_narrowest_nice_width_within_the_target(span: timedelta, width_s: int) -> None:
    assert bucket_width_ms(span) == width_s * 1000
    assert span / timedelta(seconds=width_s) <= TARGET_BUCKETS
    narrower = [w for w in BUCKET_WIDTHS_S if w < width_s]
    assert not narrower or span / timedelta(seconds=narrower[-1]) > TARGET_BUCKETS


def test_bucket_width_of_a_very_long_span_is_the_widest() -> None:
    assert bucket_width_ms(timedelta(days=10_000)) == BUCKET_WIDTHS_S[-1] * 1000


def test_bucket_bounds_contain_the_moment_of_their_number() -> None:
    moment = datetime(2026, 12, 5, 9, 36, 51, 791_000, tzinfo=UTC)
    for width_ms in (1_000, 10_000, 1_800_000, 86_400_000):
        start, end = bucket_bounds(bucket_of(moment, width_ms), width_ms)
        assert start <= moment < end
        assert end - start == timedelta(milliseconds=width_ms)


def test_buckets_are_aligned_on_the_epoch() -> None:
    start, _end = bucket_bounds(bucket_of(datetime(2026, 12, 5, 9, 47, 12, tzinfo=UTC), 1_800_000), 1_800_000)
    assert start == datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def test_a_moment_on_a_boundary_starts_the_next_bucket() -> None:
    boundary = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert bucket_of(boundary, 1_800_000) == bucket_of(boundary - timedelta(milliseconds=1), 1_800_000) + 1


def test_a_week_of_a_sensor_every_10_s_is_336_full_buckets_of_30_min() -> None:
    width_ms = bucket_width_ms(timedelta(days=7))
    counts: dict[int, int] = defaultdict(int)
    for n in range(7 * 86_400 // 10):
        counts[bucket_of(END - timedelta(days=7) + timedelta(seconds=10 * n), width_ms)] += 1
    assert len(counts) == 336
    assert set(counts.values()) == {180}


def test_draw_raw_up_to_the_limit_only() -> None:
    assert draw_raw(0)
    assert draw_raw(MAX_RAW_POINTS)
    assert not draw_raw(MAX_RAW_POINTS + 1)


def test_scale_of_an_integer_point_divides_by_ten_to_its_scale() -> None:
    scale = Scale.of(_point(scale=1))
    assert (scale.divisor, scale.digits) == (10, 1)
    assert scale.value(215) == 21.5
    assert scale.value(-3) == -0.3


@pytest.mark.parametrize("point", [None, _point(scale=0), _point(type_="Enum", scale=2)])
def test_scale_without_a_scaled_integer_point_keeps_the_number(point: PointSpec | None) -> None:
    assert Scale.of(point) == Scale()
    assert Scale.of(point).value(215) == 215


def test_scaled_bucket_has_physical_units_and_its_bounds() -> None:
    bucket = Scale.of(_point(scale=2)).bucket(5, 1_000, 3, 2301.0, 2302.3333333, 2304.0)
    assert (bucket.count, bucket.min, bucket.avg, bucket.max) == (3, 23.01, 23.0233, 23.04)
    assert bucket.start == datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert bucket.end == datetime(1970, 1, 1, 0, 0, 6, tzinfo=UTC)


def test_scaled_values_equal_the_views_rounding() -> None:
    # the views compute ROUND(value / 10^scale, scale): the same double as Python's round of the same quotient
    scale = Scale.of(_point(scale=1))
    assert [scale.value(raw) for raw in (261, 259, 1, 0)] == [26.1, 25.9, 0.1, 0.0]
