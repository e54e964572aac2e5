"""The axes of a chart: where the ticks go and what they say, for time (x) and for values (y).

Owns "nice" steps (1, 2, 5 × 10^n for values; round seconds, minutes, hours and days for time), the value range a
chart shows (a flat series gets a margin) and the tick labels, in UTC. Pure.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime, timedelta

__all__ = ["TIME_STEPS_S", "format_number", "time_ticks", "value_range", "value_ticks"]

TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
                172_800, 604_800, 1_209_600, 2_592_000)  # fmt: skip
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LARGEST = sys.float_info.max


def value_range(low: float, high: float) -> tuple[float, float]:
    """The range the y axis spans for values in [low, high]: the nice ticks around them; a flat series gets ±1
    (or ±10 % of its value)."""
    if low == high:
        margin = abs(low) * 0.1 or 1.0
        low, high = max(low - margin, -_LARGEST), min(high + margin, _LARGEST)
    ticks = value_ticks(low, high)
    return min(ticks[0], low), max(ticks[-1], high)


def value_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` evenly spaced round values covering [low, high] (the outer ones at or beyond them, within
    the largest float: a span of ±1e308 must not overflow into infinity, nor a step of 1 over it)."""
    parts = max(count - 1, 1)
    step = _nice_step(high / parts - low / parts)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [max(-_LARGEST, min(round(n * step, 12), _LARGEST)) for n in range(first, max(last, first + 1) + 1)]


def _nice_step(rough: float) -> float:
    if rough <= 0 or not math.isfinite(rough):
        return 1.0
    magnitude = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 2.5, 5, 10):
        if rough <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def format_number(value: float, step: float | None = None) -> str:
    """``value`` with as many decimals as ``step`` needs (a tick's), else up to 3 without trailing zeros."""
    if step is not None and step > 0:
        decimals = 0
        while decimals < 9 and abs(round(step * 10**decimals) - step * 10**decimals) > 1e-6:
            decimals += 1
        text = f"{value:.{decimals}f}"
    else:  # three decimals, or three significant digits of a smaller number (0.0219 kWh, not 0.022)
        decimals = 3 if abs(value) >= 0.1 or value == 0 else min(9, 2 - math.floor(math.log10(abs(value))))
        text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text.lstrip("-").strip("0.") == "" else text


def time_ticks(since: datetime, until: datetime, count: int = 7) -> list[tuple[datetime, str]]:
    """Ticks at round times (UTC) within [since, until], about ``count`` of them, each with its label."""
    span_s = (until - since).total_seconds()
    step = next((s for s in TIME_STEPS_S if span_s / s <= count), TIME_STEPS_S[-1])
    first = math.ceil((since - _EPOCH).total_seconds() / step) * step
    ticks = []
    moment = _EPOCH + timedelta(seconds=first)
    while moment <= until:
        ticks.append((moment, _time_label(moment, step)))
        moment += timedelta(seconds=step)
    return ticks


def _time_label(moment: datetime, step_s: int) -> str:
    if step_s >= 86_400:
        return moment.strftime("%b %d")
    if moment.hour == 0 and moment.minute == 0 and moment.second == 0:
        return moment.strftime("%b %d")
    return moment.strftime("%H:%M:%S" if step_s < 60 else "%H:%M")
