"""Trigger semantics: which triggers a record concerns, and how one record moves a trigger's state.

Owns the transition table of every trigger kind, as pure functions of (trigger, state, what was seen) → (new
state, fire or not):

    state          value changed (to/from match)      → fire; with for: start the timer (a further change ends it)
    numeric_state  value entered the range while armed → fire, disarm; with for: start the timer, disarm
                   value outside the range (or no number) → re-arm, cancel the timer; a threshold with a unit
                   compares the physical value, and a value without a data point of that unit is no number
    device_event   the event                          → fire; with for: start the timer (unless already running)
                   the opposite event (online/offline…) → cancel the timer
    user_event     the event                          → fire
    device_silent  (clock only, see engine.tick)

A timer fires when ``pending.time + for`` has passed: on the next record about the same trigger and device, or on a
clock tick. Also owns the index from record keys (DP code, event) to triggers, built once per RuleSet. Pure.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from models.rules import (
    DeviceEventTrigger,
    NumericStateTrigger,
    Rule,
    RuleSet,
    StateTrigger,
    Trigger,
    UserEventTrigger,
)
from streams.fleet.catalog import PointSpec
from streams.rules.operators import UNKNOWN, in_range, same_value
from streams.rules.state import TriggerContext, TriggerState

__all__ = ["OPPOSITE_EVENTS", "Step", "TriggerEntry", "TriggerIndex", "deadline", "index_of", "selects", "step"]

#: The event that cancels a pending ``for:`` timer of the other. Events without one make ``for:`` a plain delay.
OPPOSITE_EVENTS = {
    "online": "offline",
    "offline": "online",
    "bound": "unbound",
    "unbound": "bound",
    "frozen": "unfrozen",
    "unfrozen": "frozen",
}


class TriggerEntry(NamedTuple):
    """One trigger of an enabled rule; ``key`` fingerprints its definition (the key of its state)."""

    rule: Rule
    index: int
    trigger: Trigger
    key: str


class TriggerIndex(NamedTuple):
    by_code: dict[str, tuple[TriggerEntry, ...]]
    by_event: dict[str, tuple[TriggerEntry, ...]]
    by_user_event: dict[str, tuple[TriggerEntry, ...]]
    silent: tuple[TriggerEntry, ...]
    by_key: dict[tuple[str, str], TriggerEntry]
    rules: dict[str, Rule]


class Step(NamedTuple):
    state: TriggerState
    fire: TriggerContext | None = None


@lru_cache(maxsize=8)
def index_of(rule_set: RuleSet) -> TriggerIndex:
    """The enabled rules' triggers by what selects them (RuleSets compare by identity, so this caches per load)."""
    groups: dict[str, defaultdict[str, list[TriggerEntry]]] = {name: defaultdict(list) for name in ("code", "event")}
    users: defaultdict[str, list[TriggerEntry]] = defaultdict(list)
    silent, by_key = [], {}
    for rule in rule_set.rules:
        if not rule.enabled:
            continue
        for index, trigger in enumerate(rule.triggers):
            entry = TriggerEntry(rule, index, trigger, _fingerprint(trigger))
            by_key[(rule.id, entry.key)] = entry
            if isinstance(trigger, StateTrigger | NumericStateTrigger):
                groups["code"][trigger.code].append(entry)
            elif isinstance(trigger, DeviceEventTrigger):
                groups["event"][trigger.event].append(entry)
                if trigger.for_ is not None and trigger.event in OPPOSITE_EVENTS:
                    groups["event"][OPPOSITE_EVENTS[trigger.event]].append(entry)
            elif isinstance(trigger, UserEventTrigger):
                users[trigger.event].append(entry)
            else:
                silent.append(entry)
    return TriggerIndex(
        by_code=_frozen(groups["code"]),
        by_event=_frozen(groups["event"]),
        by_user_event=_frozen(users),
        silent=tuple(silent),
        by_key=by_key,
        rules={rule.id: rule for rule in rule_set.rules if rule.enabled},
    )


def _frozen(groups: dict[str, list[TriggerEntry]]) -> dict[str, tuple[TriggerEntry, ...]]:
    return {name: tuple(entries) for name, entries in groups.items()}


def _fingerprint(trigger: Trigger) -> str:
    return hashlib.sha1(trigger.model_dump_json(by_alias=True).encode(), usedforsecurity=False).hexdigest()[:12]


def selects(trigger: Trigger, device_id: str, product_key: str | None) -> bool:
    """Whether a device trigger listens to this device (by id, by product, or any)."""
    if isinstance(trigger, UserEventTrigger):
        return False
    if trigger.device is not None:
        return trigger.device == device_id
    return trigger.product is None or trigger.product == product_key


def deadline(trigger: Trigger, state: TriggerState) -> datetime | None:
    """When the pending ``for:`` timer of ``state`` is up, or None if none runs."""
    duration = getattr(trigger, "for_", None)
    if state.pending is None or duration is None:
        return None
    return state.pending.time + duration


def step(
    trigger: Trigger, state: TriggerState, seen: TriggerContext, previous: Any = UNKNOWN, point: PointSpec | None = None
) -> Step:
    """The trigger's next state after ``seen`` (a record it selects), and the context to fire with, if any.

    ``previous`` is the value the code had before this record, ``point`` the specification of the reporting device's
    data point (status triggers only; numeric_state thresholds with a unit need its scale).
    """
    match trigger:
        case StateTrigger():
            return _state_step(trigger, state, seen, previous)
        case NumericStateTrigger():
            return _numeric_step(trigger, state, seen, point)
        case DeviceEventTrigger():
            return _event_step(trigger, state, seen)
        case UserEventTrigger():
            return Step(state, seen)
    raise TypeError(f"{trigger!r} is not stepped by records")


def _state_step(trigger: StateTrigger, state: TriggerState, seen: TriggerContext, previous: Any) -> Step:
    if previous is not UNKNOWN and same_value(previous, seen.value):
        return Step(state)
    matches = (trigger.to is None or same_value(seen.value, trigger.to)) and (
        trigger.from_ is None or (previous is not UNKNOWN and same_value(previous, trigger.from_))
    )
    if trigger.for_ is None:
        return Step(state, seen if matches else None)
    return Step(msgspec.structs.replace(state, pending=seen if matches else None))


def _numeric_step(
    trigger: NumericStateTrigger, state: TriggerState, seen: TriggerContext, point: PointSpec | None
) -> Step:
    if not in_range(seen.value, trigger.above, trigger.below, point):
        return Step(msgspec.structs.replace(state, armed=True, pending=None))
    if not state.armed:
        return Step(state)
    if trigger.for_ is None:
        return Step(msgspec.structs.replace(state, armed=False), seen)
    return Step(msgspec.structs.replace(state, armed=False, pending=seen))


def _event_step(trigger: DeviceEventTrigger, state: TriggerState, seen: TriggerContext) -> Step:
    if seen.event != trigger.event:
        return Step(msgspec.structs.replace(state, pending=None))
    if trigger.for_ is None:
        return Step(state, seen)
    if state.pending is not None:
        return Step(state)
    return Step(msgspec.structs.replace(state, pending=seen))
