"""The arithmetic of downsampling a series: when to draw raw points, how wide a time bucket is, where it starts.

Owns the rules both the SQL (streams/store/series.py) and the charts rely on: a window holding at most
MAX_RAW_POINTS values of a code is drawn point by point; a longer one in buckets whose width is the smallest of
BUCKET_WIDTHS_S that keeps at most TARGET_BUCKETS of them in the window, aligned on the Unix epoch (bucket ``n``
of width ``w`` ms is [n·w, (n+1)·w) ms), so a bucket's numbers do not change as the window slides. And the
conversion of a bucket's raw numbers to physical units: ÷ 10^scale of the data point, the factor worked out once
per series. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models.points import PointSpec

__all__ = [
    "BUCKET_WIDTHS_S",
    "MAX_RAW_POINTS",
    "TARGET_BUCKETS",
    "Bucket",
    "Scale",
    "bucket_bounds",
    "bucket_of",
    "bucket_width_ms",
    "draw_raw",
]

#: A chart of at most this many values shows each of them.
MAX_RAW_POINTS = 1_000
#: About one bucket per two or three pixels of a chart's width.
TARGET_BUCKETS = 360
#: Widths that read well on a time axis: 1 s … 1 week.
BUCKET_WIDTHS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
                   172_800, 604_800)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def draw_raw(count: int, limit: int = MAX_RAW_POINTS) -> bool:
    """Whether a window holding ``count`` values of a code is drawn value by value (else in buckets)."""
    return count <= limit


def bucket_width_ms(span: timedelta, target: int = TARGET_BUCKETS) -> int:
    """The narrowest width of BUCKET_WIDTHS_S, in ms, that cuts ``span`` into at most ``target`` buckets (the
    widest one for a longer span)."""
    span_ms = span / timedelta(milliseconds=1)
    for width_s in BUCKET_WIDTHS_S:
        if span_ms / (width_s * 1000) <= target:
            return width_s * 1000
    return BUCKET_WIDTHS_S[-1] * 1000


def bucket_of(moment: datetime, width_ms: int) -> int:
    """The number of the bucket ``moment`` falls in: what the SQL computes, in whole milliseconds."""
    return _epoch_ms(moment) // width_ms


def bucket_bounds(bucket: int, width_ms: int) -> tuple[datetime, datetime]:
    """[start, end) of bucket number ``bucket``."""
    start = _EPOCH + timedelta(milliseconds=bucket * width_ms)
    return start, start + timedelta(milliseconds=width_ms)


def _epoch_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket's values in physical units: how many, the least, the mean, the greatest; [start, end)."""

    start: datetime
    end: datetime
    count: int
    min: float
    avg: float
    max: float


@dataclass(frozen=True, slots=True)
class Scale:
    """The physical value of a raw number: ÷ ``divisor`` (10^scale for an Integer point, else 1), to ``digits``."""

    divisor: int = 1
    digits: int = 0

    @classmethod
    def of(cls, point: PointSpec | None) -> Scale:
        return cls() if point is None else cls(point.divisor, point.digits)

    def value(self, raw: float) -> float:
        """A reported number in physical units, rounded as the views round it."""
        return round(raw / self.divisor, self.digits) if self.divisor != 1 else raw

    def bucket(self, bucket: int, width_ms: int, count: int, low: float, mean: float, high: float) -> Bucket:
        """A bucket of the SQL's raw (count, min, avg, max) in physical units; the mean keeps two more digits."""
        start, end = bucket_bounds(bucket, width_ms)
        return Bucket(start, end, count, self.value(low), round(mean / self.divisor, self.digits + 2), self.value(high))
