"""The values a rules file writes in its own syntax: durations, times of day, and numeric thresholds with a unit.

Owns the parsers the schema (``models.rules``) runs before its own validation, each raising a ValueError that says
what is wrong and how to write it: ``30s``/``1h30m``/``00:05:00``/``{minutes: 5}``; ``"22:30"``; ``300`` (a raw
value) or ``30 °C`` (a physical value in a unit). Data only: never imports ``streams``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import time, timedelta
from typing import Any

__all__ = ["Threshold", "parse_clock_time", "parse_duration", "parse_threshold", "threshold_data"]

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_COMPOUND = re.compile(r"(?:\d+(?:\.\d+)?[dhms])+")
_COMPOUND_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_CLOCK = re.compile(r"(\d+):([0-5]\d)(?::([0-5]\d))?")
_DURATION_HINT = "write e.g. 30s, 5m, 1h30m, 1d, HH:MM:SS or {minutes: 5}"
#: The longest duration (about 100 years): a timer's or a cooldown's end is a time that must stay a date.
_LONGEST = timedelta(days=36_500)

# A number (as YAML and Python write it), then optionally a unit: one word of no spaces that starts with neither a
# digit nor a sign ("°C", "℃", "V", "%", "kWh", "μg/m³").
_THRESHOLD = re.compile(r"(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[^\s\d.+-]\S*)?")
# Spelled-out temperature units: Tuya's specifications say ℃ or ℉, so these would never match a data point.
_TEMPERATURE_WORDS = frozenset({"c", "f", "deg", "degc", "degf", "degree", "degrees", "celsius", "fahrenheit"})
_THRESHOLD_HINT = "write e.g. 300 for a raw value, or 30 °C"


def parse_duration(value: Any) -> timedelta:
    """A positive duration from ``"30s"``, ``"1h30m"``, ``"2d"``, ``"00:05:00"``, ``{minutes: 5}`` or seconds."""
    try:
        duration = _duration(value)
    except OverflowError:  # beyond timedelta's 999,999,999 days, or infinite
        duration = _LONGEST + _LONGEST
    if duration <= timedelta(0):
        raise ValueError(f"must be longer than 0s, not {value!r}")
    if duration > _LONGEST:  # a time it is added to must stay a date
        raise ValueError(f"too long a duration: {value!r} (at most {_LONGEST.days:,} days)")
    return duration


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        return _parse_duration_text(value)
    if isinstance(value, dict):
        return _parse_duration_mapping(value)
    raise ValueError(f"not a duration: {value!r} ({_DURATION_HINT})")


def _parse_duration_text(text: str) -> timedelta:
    compact = text.replace(" ", "").lower()
    if compact.isdigit():
        return timedelta(seconds=int(compact))
    if _COMPOUND.fullmatch(compact):
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _COMPOUND_PART.findall(compact))
        return timedelta(seconds=seconds)
    clock = _CLOCK.fullmatch(compact)
    if clock:
        hours, minutes, seconds = (int(part or 0) for part in clock.groups())
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)
    raise ValueError(f"not a duration: {text!r} ({_DURATION_HINT})")


def _parse_duration_mapping(mapping: dict[Any, Any]) -> timedelta:
    try:
        return timedelta(**mapping)
    except TypeError:
        raise ValueError(f"not a duration: {mapping!r} (keys: days, hours, minutes, seconds)") from None


@dataclass(frozen=True, slots=True)
class Threshold:
    """A bound of a numeric range as written: ``value``, and the ``unit`` it is in (None for a bare number).

    A bare number compares with the raw value Tuya reports; one with a unit with the physical value (raw ÷
    10^scale of the device's data point), and only on a data point of that unit (streams.rules.operators).
    """

    value: float
    unit: str | None = None

    def __str__(self) -> str:
        number = f"{self.value:.15g}"  # 30000 and 3000000, not 3e+06 as :g would write it
        return number if self.unit is None else f"{number} {self.unit}"


def parse_threshold(value: Any) -> Threshold:
    """A Threshold from a number (raw) or a text: ``"300"``, ``"30 °C"``, ``"30°C"``, ``"-5 °C"``, ``"12.5 V"``."""
    if isinstance(value, Threshold):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value):
        return Threshold(float(value))
    match = _THRESHOLD.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or math.isnan(float(match["number"])):
        raise ValueError(f"not a number with an optional unit: {value!r} ({_THRESHOLD_HINT})")
    unit = match["unit"]
    if unit is not None and unit.lower() in _TEMPERATURE_WORDS:
        raise ValueError(f"not a number with an optional unit: {value!r} (write the unit as °C or °F)")
    return Threshold(float(match["number"]), unit)


def threshold_data(threshold: Threshold) -> float | str:
    """How a Threshold dumps (JSON and ``model_dump``): a bare one as its float, one with a unit as its text."""
    # A bare number dumps as the float it was before thresholds had units: trigger state is keyed by a fingerprint
    # of the dump (streams.rules.triggers), so existing rules keep their timers and edges across the upgrade.
    return threshold.value if threshold.unit is None else str(threshold)


def parse_clock_time(value: Any) -> time:
    """A time of day from ``"HH:MM"`` or ``"HH:MM:SS"`` (or a time without a zone). A bare number is refused: the
    schema would take 22 for 22 seconds past midnight, in UTC, which no record's time compares with."""
    if isinstance(value, time) and value.tzinfo is None:
        return value
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > 23:
        raise ValueError(f"not a time of day: {value!r} (write HH:MM or HH:MM:SS, quoted)")
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return time(hours, minutes, seconds)
