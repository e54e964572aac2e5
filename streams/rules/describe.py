"""One-line descriptions of triggers, conditions and actions, for ``rules check`` and logs meant for people.

Owns the wording only. Devices are shown by alias where the file gives one. Given the data points (``points``), a
numeric threshold also shows its other side: a raw number its physical value (``300 (30.0 °C)``), a number with a
unit its raw value (``30 °C (300 raw)``). Pure.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import time, timedelta
from typing import Any

from models.rules import (
    Action,
    AndCondition,
    Condition,
    DeviceEventTrigger,
    DeviceSilentTrigger,
    LogAction,
    NotCondition,
    NumericStateCondition,
    NumericStateTrigger,
    OrCondition,
    Rule,
    RuleSet,
    SendCommandAction,
    StateCondition,
    StateTrigger,
    Threshold,
    TimeCondition,
    Trigger,
    UserEventTrigger,
    WebhookAction,
)
from streams.fleet.catalog import PointSpec, normalize_unit
from streams.rules.operators import PointLookup, no_points, unit_mismatch

__all__ = ["describe_action", "describe_condition", "describe_rule", "describe_trigger", "format_duration"]

_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

Names = Callable[[str], str]


def describe_rule(rule: Rule, rule_set: RuleSet, points: PointLookup = no_points) -> list[str]:
    """The rule as a heading line and one indented line per trigger, condition, action and cooldown."""

    def name(device_id: str) -> str:
        return rule_set.alias_of(device_id) or device_id

    flags = [flag for flag, on in (("disabled", not rule.enabled), ("dry run", rule.dry_run)) if on]
    heading = rule.id + (f" — {rule.alias}" if rule.alias else "") + "".join(f" [{flag}]" for flag in flags)
    lines = [heading]
    lines += [f"  when  {describe_trigger(trigger, name, points)}" for trigger in rule.triggers]
    lines += [f"  if    {describe_condition(condition, name, points)}" for condition in rule.conditions]
    lines += [f"  then  {describe_action(action, name)}" for action in rule.actions]
    if rule.cooldown is not None:
        lines.append(f"  cooldown {format_duration(rule.cooldown.duration)} per {rule.cooldown.per}")
    return lines


def describe_trigger(trigger: Trigger, name: Names, points: PointLookup = no_points) -> str:
    match trigger:
        case StateTrigger():
            change = _given("from", trigger.from_) + _given("to", trigger.to)
            text = f"state {trigger.code} changes{change}"
        case NumericStateTrigger():
            point = _point(points, trigger.device, trigger.product, trigger.code)
            text = f"numeric_state {trigger.code} {_range(trigger.above, trigger.below, point)}"
        case DeviceEventTrigger():
            text = f"device_event {trigger.event}"
        case DeviceSilentTrigger():
            return (
                f"device_silent {_selected(trigger.device, trigger.product, name)} for {format_duration(trigger.for_)}"
            )
        case UserEventTrigger():
            return f"user_event {trigger.event}" + (f" of user {trigger.uid}" if trigger.uid else "")
    held = f" for {format_duration(trigger.for_)}" if trigger.for_ is not None else ""
    return f"{text}{held} {_selected(trigger.device, trigger.product, name)}"


def describe_condition(condition: Condition, name: Names, points: PointLookup = no_points) -> str:
    match condition:
        case StateCondition():
            return f"{condition.code} = {_shown(condition.state)} {_on(condition.device, name)}"
        case NumericStateCondition():
            point = _point(points, condition.device, None, condition.code)
            bounds = _range(condition.above, condition.below, point)
            return f"{condition.code} {bounds} {_on(condition.device, name)}"
        case TimeCondition():
            return _time(condition)
        case AndCondition() | OrCondition():
            inner = [describe_condition(inner, name, points) for inner in condition.conditions]
            return "(" + f" {condition.condition} ".join(inner) + ")"
        case NotCondition():
            return (
                "not (" + " or ".join(describe_condition(inner, name, points) for inner in condition.conditions) + ")"
            )
    raise TypeError(f"unknown condition {condition!r}")


def describe_action(action: Action, name: Names) -> str:
    match action:
        case SendCommandAction():
            commands = ", ".join(f"{item.code}={_shown(item.value)}" for item in action.commands)
            target = name(action.device) if action.device else "the triggering device"
            return f"tuya.send_command to {target}: {commands}"
        case WebhookAction():
            return f"webhook POST {action.url} (timeout {format_duration(action.timeout)})"
        case LogAction():
            return f"log {action.level}: {action.message}"
    raise TypeError(f"unknown action {action!r}")


def format_duration(duration: timedelta) -> str:
    """The shortest text the rules file reads back: ``1h30m``, ``45s``, ``2d``."""
    remaining = int(duration.total_seconds())
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or f"{duration.total_seconds():g}s"


def _selected(device: str | None, product: str | None, name: Names) -> str:
    if device is not None:
        return f"on {name(device)}"
    return f"on product {product}" if product is not None else "on any device"


def _on(device: str | None, name: Names) -> str:
    return f"on {name(device)}" if device is not None else "on the triggering device"


def _point(points: PointLookup, device: str | None, product: str | None, code: str) -> PointSpec | None:
    """The data point a range reads, where one device or product says which (the triggering device does not)."""
    if device is not None:
        return points(device, code, None)
    return points("", code, product) if product is not None else None


def _range(above: Threshold | None, below: Threshold | None, point: PointSpec | None) -> str:
    if above is not None and below is not None:
        return f"between {_bound(above, point)} and {_bound(below, point)}"
    return f"above {_bound(above, point)}" if above is not None else f"below {_bound(below, point)}"


def _bound(threshold: Threshold | None, point: PointSpec | None) -> str:
    """The threshold as written, and with a known numeric data point its other side (raw or physical)."""
    if threshold is None or point is None or not point.numeric:
        return str(threshold)
    scale, factor, unit = point.digits, point.divisor, normalize_unit(point.unit)
    if threshold.unit is None:
        if not scale and not unit:
            return str(threshold)  # raw and physical are the same number
        exact = threshold.value / factor
        shown = f"{exact:.{scale}f}"  # the data point's digits, or more where they would round it (12.5 %, not 12)
        physical = (shown if abs(float(shown) - exact) < 1e-9 else _number(exact)) + (f" {unit}" if unit else "")
        return f"{threshold} ({physical})"
    if unit_mismatch(threshold.unit, point) is not None:
        return str(threshold)
    return f"{threshold} ({_number(threshold.value * factor)} raw)"


def _number(value: float) -> str:
    """A number without float noise: 261.00000000000003 is 261."""
    return f"{round(value, 9):.15g}"


def _given(word: str, value: Any) -> str:
    return f" {word} {_shown(value)}" if value is not None else ""


def _time(condition: TimeCondition) -> str:
    parts = []
    if condition.after is not None:
        parts.append(f"after {_clock(condition.after)}")
    if condition.before is not None:
        parts.append(f"before {_clock(condition.before)}")
    if condition.weekday is not None:
        parts.append("on " + ",".join(condition.weekday))
    return "time " + " ".join(parts) + " UTC"


def _clock(moment: time) -> str:
    return moment.isoformat(timespec="seconds" if moment.second else "minutes")


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
