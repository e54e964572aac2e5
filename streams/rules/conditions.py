"""Conditions: checked when a trigger fires, against the latest values and the fire time.

Owns the meaning of each condition kind. A condition without ``device`` looks at the triggering device. Time
conditions read the fire time in UTC (rules files have no time zone). A numeric_state condition with a unit reads
the data point's specification, and says through ``Readings.on_unmeasured`` when it has none that fits: the
condition is then neither true nor false, and neither is a ``not`` of it (the rule does not fire unless an ``or``
holds without it). Pure: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from typing import Any, NamedTuple

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
from streams.rules.operators import UNKNOWN, PointLookup, in_range, no_points, same_value, unit_problem
from streams.rules.state import TriggerContext

__all__ = ["LatestLookup", "OnUnmeasured", "Readings", "all_hold", "holds"]

LatestLookup = Callable[[str, str], Any]
"""(device_id, code) → the latest value, or UNKNOWN."""

OnUnmeasured = Callable[[str, str, str, str], None]
"""(rule_id, device_id, code, why): a threshold with a unit could not be compared with the device's value."""


def _ignore(rule_id: str, device_id: str, code: str, why: str) -> None:
    return None


class Readings(NamedTuple):
    """What conditions read: the latest values, and the data points that give numbers their units."""

    latest: LatestLookup
    points: PointLookup = no_points
    on_unmeasured: OnUnmeasured = _ignore


def all_hold(conditions: Sequence[Condition], trigger: TriggerContext, readings: Readings, at: datetime) -> bool:
    """Whether every one of ``conditions`` is true (not merely not false) for a fire of ``trigger`` at ``at``."""
    return _all(conditions, trigger, readings, at) is True


def holds(condition: Condition, trigger: TriggerContext, readings: Readings, at: datetime) -> bool:
    """Whether ``condition`` is true for a fire of ``trigger`` at ``at``."""
    return _judge(condition, trigger, readings, at) is True


def _judge(condition: Condition, trigger: TriggerContext, readings: Readings, at: datetime) -> bool | None:
    """``condition`` for a fire of ``trigger`` at ``at``: True, False, or None when a threshold with a unit could not
    be compared (no specification that fits); ``and``, ``or`` and ``not`` carry None as the logic of three values
    does (None and False is False, None or True is True, not None is None)."""
    match condition:
        case StateCondition():
            device_id = condition.device or trigger.device_id
            value = UNKNOWN if device_id is None else readings.latest(device_id, condition.code)
            return value is not UNKNOWN and same_value(value, condition.state)
        case NumericStateCondition():
            return _numeric_holds(condition, trigger, readings)
        case TimeCondition():
            return _time_holds(condition, at)
        case AndCondition():
            return _all(condition.conditions, trigger, readings, at)
        case OrCondition():
            return _any(condition.conditions, trigger, readings, at)
        case NotCondition():
            found = _any(condition.conditions, trigger, readings, at)
            return None if found is None else not found
    raise TypeError(f"unknown condition {condition!r}")


def _all(conditions: Sequence[Condition], trigger: TriggerContext, readings: Readings, at: datetime) -> bool | None:
    return _until(False, conditions, trigger, readings, at)


def _any(conditions: Sequence[Condition], trigger: TriggerContext, readings: Readings, at: datetime) -> bool | None:
    return _until(True, conditions, trigger, readings, at)


def _until(
    decisive: bool, conditions: Sequence[Condition], trigger: TriggerContext, readings: Readings, at: datetime
) -> bool | None:
    """``decisive`` at the first condition judged so (``and``: False, ``or``: True), else None if one could not be
    judged, else the other value."""
    result: bool | None = not decisive
    for condition in conditions:
        judged = _judge(condition, trigger, readings, at)
        if judged is decisive:
            return decisive
        result = None if judged is None else result
    return result


def _numeric_holds(condition: NumericStateCondition, trigger: TriggerContext, readings: Readings) -> bool | None:
    device_id = condition.device or trigger.device_id
    if device_id is None:
        return False
    value = readings.latest(device_id, condition.code)
    if not condition.has_unit:
        return in_range(value, condition.above, condition.below)
    # The message named the triggering device's product; for another device the catalog knows it.
    product_key = trigger.product_key if device_id == trigger.device_id else None
    point = readings.points(device_id, condition.code, product_key)
    why = unit_problem(condition.above, condition.below, point)
    if why is not None:
        readings.on_unmeasured(trigger.rule_id, device_id, condition.code, why)
        return None
    return in_range(value, condition.above, condition.below, point)


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
