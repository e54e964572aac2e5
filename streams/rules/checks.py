"""Checks a rule's schema cannot make alone: ranges whose bounds do not make one, targets the triggers cannot supply,
templates that cannot render.

Owns cross-field and cross-section constraints of one rule, reported as (loc within the rule, message), and the
walk to its numeric ranges. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from models.rules import (
    AndCondition,
    Condition,
    NotCondition,
    NumericStateCondition,
    NumericStateTrigger,
    OrCondition,
    Rule,
    SendCommandAction,
    StateCondition,
    UserEventTrigger,
)
from streams.fleet.catalog import normalize_unit
from streams.rules.problems import Loc
from streams.rules.templates import check_template, is_template

__all__ = ["device_conditions", "missing_targets", "numeric_ranges", "range_problems", "template_problems"]

# The keys of an action whose string values are templates.
_TEMPLATED_KEYS = ("commands", "json", "message")


def missing_targets(rule: Rule) -> Iterator[tuple[Loc, str]]:
    """Actions and conditions that leave out ``device`` when a trigger cannot say which device it means.

    A send_command without ``device`` goes to the triggering device, so every trigger must select its devices
    (``device`` or ``product``): "any device" could be any device of the account. A condition without ``device``
    reads the triggering device, which a user_event does not have.
    """
    unselected = [
        (index, trigger)
        for index, trigger in enumerate(rule.triggers)
        if isinstance(trigger, UserEventTrigger) or (trigger.device is None and trigger.product is None)
    ]
    if unselected:
        index, trigger = unselected[0]
        for position, action in enumerate(rule.actions):
            if isinstance(action, SendCommandAction) and action.device is None:
                yield (
                    ("actions", position, "device"),
                    f"required: triggers[{index}] ({trigger.trigger}) names no device or product to send to",
                )
    users = [index for index, trigger in enumerate(rule.triggers) if isinstance(trigger, UserEventTrigger)]
    if users:
        for loc, condition, _negated in device_conditions(rule.conditions, ("conditions",)):
            if condition.device is None:
                yield (*loc, "device"), f"required: triggers[{users[0]}] (user_event) has no device to look at"


def numeric_ranges(rule: Rule) -> Iterator[tuple[Loc, NumericStateTrigger | NumericStateCondition]]:
    """Every numeric_state trigger and condition of ``rule`` (nested ones too), with its loc within the rule."""
    for index, trigger in enumerate(rule.triggers):
        if isinstance(trigger, NumericStateTrigger):
            yield ("triggers", index), trigger
    for loc, condition, _negated in device_conditions(rule.conditions, ("conditions",)):
        if isinstance(condition, NumericStateCondition):
            yield loc, condition


def range_problems(rule: Rule) -> Iterator[tuple[Loc, str]]:
    """Ranges whose ``above`` is not below ``below``, or whose bounds are in different units (or one raw).

    Units compare as ``normalize_unit`` spells them: ``above: 20 ℃`` and ``below: 30 °C`` make a range.
    """
    for loc, bounds in numeric_ranges(rule):
        above, below = bounds.above, bounds.below
        if above is None or below is None:
            continue
        if normalize_unit(above.unit) != normalize_unit(below.unit):
            yield (
                (*loc, "above"),
                f"is not in the unit of 'below' ({above} and {below}): write both in one unit, or both as raw values",
            )
        elif above.value >= below.value:
            yield (*loc, "above"), f"must be below 'below' ({above} >= {below})"


def device_conditions(
    conditions: Sequence[Condition], loc: Loc, *, negated: bool = False
) -> Iterator[tuple[Loc, StateCondition | NumericStateCondition, bool]]:
    """The state and numeric_state conditions among ``conditions`` (nested ones too), with their locs and whether a
    ``not:`` holds them."""
    for position, condition in enumerate(conditions):
        if isinstance(condition, StateCondition | NumericStateCondition):
            yield (*loc, position), condition, negated
        elif isinstance(condition, AndCondition | OrCondition | NotCondition):
            inner = negated or isinstance(condition, NotCondition)
            yield from device_conditions(condition.conditions, (*loc, position, "conditions"), negated=inner)


def template_problems(raw_rule: Any) -> Iterator[tuple[Loc, str]]:
    """Templates in a rule's actions (as written, validated or not) that would fail to render."""
    actions = raw_rule.get("actions") if isinstance(raw_rule, dict) else None
    if not isinstance(actions, list):
        return
    for position, action in enumerate(actions):
        if isinstance(action, dict):
            for key in _TEMPLATED_KEYS:
                if key in action:
                    yield from _templates(action[key], ("actions", position, key))


def _templates(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str) and is_template(value):
        problem = check_template(value)
        if problem is not None:
            yield loc, problem
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _templates(item, (*loc, position))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _templates(item, (*loc, str(key)))
