"""Conditions: checked when a trigger fires, against the latest values and the fire time.

Owns the meaning of each condition kind. A condition without ``device`` looks at the triggering device. Time
conditions read the fire time in UTC (rules files have no time zone). Pure: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from typing import Any

from models.rules import (
    WEEKDAYS,
    AndCondition,
    Condition,
    NotCondition,
    NumericStateCondition,
    OrCondition,
    StateCondition,
    TimeCondition,
)
from streams.rules.operators import UNKNOWN, in_range, same_value
from streams.rules.state import TriggerContext

__all__ = ["LatestLookup", "all_hold", "holds"]

LatestLookup = Callable[[str, str], Any]
"""(device_id, code) → the latest value, or UNKNOWN."""


def all_hold(conditions: Sequence[Condition], trigger: TriggerContext, latest: LatestLookup, at: datetime) -> bool:
    return all(holds(condition, trigger, latest, at) for condition in conditions)


def holds(condition: Condition, trigger: TriggerContext, latest: LatestLookup, at: datetime) -> bool:
    """Whether ``condition`` is true for a fire of ``trigger`` at ``at``."""
    match condition:
        case StateCondition():
            value = _latest(condition.device, condition.code, trigger, latest)
            return value is not UNKNOWN and same_value(value, condition.state)
        case NumericStateCondition():
            value = _latest(condition.device, condition.code, trigger, latest)
            return in_range(value, condition.above, condition.below)
        case TimeCondition():
            return _time_holds(condition, at)
        case AndCondition():
            return all_hold(condition.conditions, trigger, latest, at)
        case OrCondition():
            return any(holds(inner, trigger, latest, at) for inner in condition.conditions)
        case NotCondition():
            return not any(holds(inner, trigger, latest, at) for inner in condition.conditions)
    raise TypeError(f"unknown condition {condition!r}")


def _latest(device: str | None, code: str, trigger: TriggerContext, latest: LatestLookup) -> Any:
    device_id = device or trigger.device_id
    return UNKNOWN if device_id is None else latest(device_id, code)


def _time_holds(condition: TimeCondition, at: datetime) -> bool:
    at = at.astimezone(UTC)
    if condition.weekday is not None and WEEKDAYS[at.weekday()] not in condition.weekday:
        return False
    return _in_window(at.time(), condition.after, condition.before)


def _in_window(now: time, after: time | None, before: time | None) -> bool:
    """after ≤ now < before; when after is later than before the window wraps past midnight (Home Assistant's rule)."""
    if after is not None and before is not None and after > before:
        return now >= after or now < before
    return (after is None or now >= after) and (before is None or now < before)
