"""The rules engine: a batch's records (or a clock tick) and the persisted state in, fired actions and new state out.

Owns the order of evaluation. Records are processed in order; each record's time (clamped to ``now``, so a clock
ahead of ours cannot end timers early) is the engine's clock while it is processed: it starts ``for:`` timers, ends
due ones, and is the time conditions and cooldowns see. Latest values are updated record by record, so a condition
sees what the batch reported before it; given ``latest_stamps``, a report older than the known one (by time, then
message id: the order ``device_state`` keeps) is ignored, so a redelivered batch cannot look like news. Nothing is
mutated: the caller persists ``state_changes`` (and the fired actions) in the same transaction as the batch, so a
restart neither loses a pending timer nor fires twice.

Edge-triggered: a trigger fires on the transition into its match (see triggers.py). A rule fires at most once per
message. A fire is dropped, and the edge consumed, when the rule is cooling down or a condition fails.

Thresholds with a unit compare physical values, so they need each device's data-point specification: ``points``
looks it up (the worker passes ``Catalog.point``). A value that no specification of that unit describes is no
number to such a threshold, and ``Evaluation.unmeasured`` says so, once per rule, device and code, for the caller
to warn about. Pure: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import msgspec

from models.records import DeviceEvent, Record, StatusReported, UserEvent
from models.rules import DeviceSilentTrigger, NumericStateTrigger, Rule, RuleSet
from streams.fleet.catalog import PointSpec, normalize_unit, scaled
from streams.rules.conditions import Readings, all_hold
from streams.rules.effects import FiredAction, fire_actions
from streams.rules.operators import UNKNOWN, PointLookup, no_points, unit_problem
from streams.rules.state import (
    DeviceSeen,
    LatestStamps,
    LatestValues,
    OnlineEvent,
    RuleState,
    RuleStateKey,
    RuleStates,
    TriggerContext,
    TriggerState,
    whole_second,
)
from streams.rules.triggers import TriggerEntry, deadline, index_of, selects, step

__all__ = ["Evaluation", "Unmeasured", "evaluate", "tick"]

_IDLE = TriggerState()


class Unmeasured(msgspec.Struct, frozen=True, kw_only=True):
    """A threshold with a unit of ``rule_id`` met a value of (``device_id``, ``code``) it could not compare, and why
    (no specification, not a number, another unit): the value counted as no number."""

    rule_id: str
    device_id: str
    code: str
    why: str


class Evaluation(msgspec.Struct, frozen=True):
    """What one evaluation produced. ``state_changes`` holds only the keys it changed; an ``is_empty`` state means
    the row may be deleted. ``unmeasured`` lists each (rule, device, code) once."""

    fired: list[FiredAction]
    state_changes: dict[RuleStateKey, RuleState]
    unmeasured: list[Unmeasured] = []


def evaluate(
    rules: RuleSet,
    records: Iterable[Record],
    state: RuleStates,
    latest: LatestValues,
    now: datetime,
    *,
    latest_stamps: LatestStamps | None = None,
    online_events: Mapping[str, OnlineEvent] | None = None,
    points: PointLookup = no_points,
) -> Evaluation:
    """Run a stored batch's records, in order, through the enabled rules.

    Args:
        state: the persisted rule states; not mutated.
        latest: (device_id, code) → value before the batch (``device_state``); not mutated.
        now: the wall clock; record times after it count as ``now``.
        latest_stamps: (device_id, code) → (``reported_at``, ``message_id``) of the latest value. When given, a status
            record older than what is known, by time and then message id as ``device_state`` orders them, is
            history, not news: state triggers ignore it. This makes a redelivered batch (whose values ``latest``
            already holds) and out-of-order reports, even of the same second, harmless to state and numeric_state.
        online_events: device_id → its latest online or offline event before the batch (``device_events``). An
            online or offline event before that one, or before one earlier in the batch, by time and then with an
            online winning a tie, is history: no trigger sees it (a late offline neither alerts about a device
            that is online, nor starts a timer its online would have cancelled).
        points: (device_id, code, product_key) → the data point's specification, for thresholds with a unit and
            the templates' ``trigger.value_scaled`` and ``trigger.unit``.
    """
    run = _Run(rules, state, latest, latest_stamps, points, online_events)
    for record in records:
        run.record(record, now)
    return run.result()


def tick(
    rules: RuleSet,
    state: RuleStates,
    latest: LatestValues,
    last_seen: Mapping[str, DeviceSeen],
    now: datetime,
    *,
    points: PointLookup = no_points,
) -> Evaluation:
    """Fire what the clock alone makes due: ``for:`` timers that expired between messages, and silent devices.

    ``last_seen`` is device_id → DeviceSeen (the ``devices`` table). A timer fires as of its due time, so a tick
    that comes late (or after a restart) gives the same fire time, conditions and cooldown as a punctual one.
    ``points`` is as for ``evaluate`` (conditions with a unit read it).
    """
    run = _Run(rules, state, latest, points=points)
    run.expire_timers(now)
    run.check_silence(last_seen, now)
    return run.result()


class _Run:
    """One evaluation: the inputs, and the changes made so far (read through by every lookup)."""

    def __init__(
        self,
        rules: RuleSet,
        state: RuleStates,
        latest: LatestValues,
        latest_stamps: LatestStamps | None = None,
        points: PointLookup = no_points,
        online_events: Mapping[str, OnlineEvent] | None = None,
    ) -> None:
        self._rules = rules
        self._online = dict(online_events or {})  # advanced as the batch's online and offline events pass
        self._index = index_of(rules)
        self._state = state
        self._latest = latest
        self._latest_stamps = latest_stamps
        self._points = points
        self._readings = Readings(self.value, points, self._unmeasured)
        self._unmeasured_by_key: dict[tuple[str, str, str], Unmeasured] = {}
        self._values: dict[tuple[str, str], object] = {}
        self._stamps: dict[tuple[str, str], tuple[datetime, str]] = {}
        self._changes: dict[RuleStateKey, RuleState] = {}
        self._fired: list[FiredAction] = []
        self._fired_messages: set[tuple[str, str]] = set()

    def result(self) -> Evaluation:
        return Evaluation(self._fired, self._changes, list(self._unmeasured_by_key.values()))

    def value(self, device_id: str, code: str) -> object:
        key = (device_id, code)
        if key in self._values:
            return self._values[key]
        return self._latest.get(key, UNKNOWN)

    def record(self, record: Record, now: datetime) -> None:
        match record:
            case StatusReported():
                self._status(record, min(record.reported_at, now))
            case DeviceEvent():
                self._device_event(record, min(record.occurred_at, now))
            case UserEvent():
                self._user_event(record, min(record.occurred_at, now))

    def _status(self, record: StatusReported, at: datetime) -> None:
        key = (record.device_id, record.code)
        if self._is_stale(key, (record.reported_at, record.message_id)):
            return
        previous = self.value(*key)
        candidates = self._index.by_code.get(record.code, ())
        entries = [entry for entry in candidates if selects(entry.trigger, record.device_id, record.product_key)]
        self._expire_due(entries, record.device_id, at)  # with the code's value as it was when they came due
        self._values[key] = record.value
        if not entries:
            return
        point = self._points(record.device_id, record.code, record.product_key)
        value_scaled = scaled(record.value, point)
        unit = None if point is None else normalize_unit(point.unit)
        for entry in entries:
            seen = TriggerContext(
                kind=entry.trigger.trigger,
                rule_id=entry.rule.id,
                time=at,
                device_id=record.device_id,
                product_key=record.product_key,
                code=record.code,
                value=record.value,
                from_value=None if previous is UNKNOWN else previous,
                value_scaled=value_scaled,
                unit=unit,
                message_id=record.message_id,
            )
            self._check_units(entry, seen, point)
            self._advance(entry, record.device_id, seen, previous, point)

    def _check_units(self, entry: TriggerEntry, seen: TriggerContext, point: PointSpec | None) -> None:
        trigger = entry.trigger
        if isinstance(trigger, NumericStateTrigger) and trigger.has_unit:
            why = unit_problem(trigger.above, trigger.below, point)
            if why is not None and seen.device_id is not None and seen.code is not None:
                self._unmeasured(entry.rule.id, seen.device_id, seen.code, why)

    def _unmeasured(self, rule_id: str, device_id: str, code: str, why: str) -> None:
        key = (rule_id, device_id, code)
        if key not in self._unmeasured_by_key:
            self._unmeasured_by_key[key] = Unmeasured(rule_id=rule_id, device_id=device_id, code=code, why=why)

    def _is_stale(self, key: tuple[str, str], stamp: tuple[datetime, str]) -> bool:
        if self._latest_stamps is None:
            return False
        known = self._stamps.get(key) or self._latest_stamps.get(key)
        if known is not None and stamp < known:
            return True
        self._stamps[key] = stamp
        return False

    def _device_event(self, record: DeviceEvent, at: datetime) -> None:
        if record.event in ("online", "offline") and self._is_stale_event(record):
            return
        for entry in self._index.by_event.get(record.event, ()):
            if selects(entry.trigger, record.device_id, record.product_key):
                seen = TriggerContext(
                    kind="device_event",
                    rule_id=entry.rule.id,
                    time=at,
                    device_id=record.device_id,
                    product_key=record.product_key,
                    event=record.event,
                    message_id=record.message_id,
                )
                self._advance(entry, record.device_id, seen)

    def _is_stale_event(self, record: DeviceEvent) -> bool:
        """Compared in whole seconds, as the stream times events: a backfilled log copy of the same event, timed to
        the millisecond, is the same event, not a newer one."""
        event = (whole_second(record.occurred_at), record.event == "online")
        known = self._online.get(record.device_id)
        if known is not None and event < (whole_second(known[0]), known[1]):
            return True
        self._online[record.device_id] = event
        return False

    def _user_event(self, record: UserEvent, at: datetime) -> None:
        for entry in self._index.by_user_event.get(record.event, ()):
            if getattr(entry.trigger, "uid", None) in (None, record.uid):
                seen = TriggerContext(
                    kind="user_event",
                    rule_id=entry.rule.id,
                    time=at,
                    event=record.event,
                    uid=record.uid,
                    message_id=record.message_id,
                )
                self._fire(entry.rule, seen, record.uid, at)

    def _advance(
        self,
        entry: TriggerEntry,
        subject: str,
        seen: TriggerContext,
        previous: object = UNKNOWN,
        point: PointSpec | None = None,
    ) -> None:
        current = self._expire(entry, subject, seen.time)
        moved = step(entry.trigger, current, seen, previous, point)
        self._put(entry, subject, moved.state)
        if moved.fire is not None:
            self._fire(entry.rule, moved.fire, subject, seen.time)

    def _expire_due(self, entries: list[TriggerEntry], device_id: str, now: datetime) -> None:
        """Fire the ``for:`` timers of ``entries`` (the triggers a report of one code advances) due by ``now``,
        earliest first, before the report's value is applied: a value reported after a timer was due must not
        decide its conditions, as a tick that came first would not have seen it. A report of another code leaves
        them to their own reports and the ticks: it may arrive ahead of an earlier one that cancels them."""
        due = []
        for entry in entries:
            when = deadline(entry.trigger, self._trigger_state(entry, device_id))
            if when is not None and when <= now:
                due.append((when, entry.rule.id, entry))
        for _when, _rule_id, entry in sorted(due, key=lambda item: item[:2]):
            self._expire(entry, device_id, now)

    def _expire(self, entry: TriggerEntry, subject: str, now: datetime) -> TriggerState:
        """Fire the trigger's ``for:`` timer for ``subject`` if it is due by ``now``; the state after that."""
        current = self._trigger_state(entry, subject)
        due = deadline(entry.trigger, current)
        if due is None or due > now or current.pending is None:
            return current
        started = current.pending
        current = msgspec.structs.replace(current, pending=None)
        self._put(entry, subject, current)
        self._fire(entry.rule, started, subject, due, timer=entry.index)
        return current

    def expire_timers(self, now: datetime) -> None:
        """Fire every pending ``for:`` timer due by ``now``, earliest first."""
        due: list[tuple[datetime, str, str, TriggerEntry]] = []
        for (rule_id, subject), rule_state in self._state.items():
            for key, trigger_state in rule_state.triggers.items():
                entry = self._index.by_key.get((rule_id, key))
                when = None if entry is None else deadline(entry.trigger, trigger_state)
                if entry is not None and when is not None and when <= now:
                    due.append((when, rule_id, subject, entry))
        for _when, _rule_id, subject, entry in sorted(due, key=lambda item: item[:3]):
            self._expire(entry, subject, now)

    def check_silence(self, last_seen: Mapping[str, DeviceSeen], now: datetime) -> None:
        """Fire device_silent triggers of devices quiet for their duration, once per silence."""
        for entry in self._index.silent:
            assert isinstance(entry.trigger, DeviceSilentTrigger)
            for device_id, seen in _candidates(entry.trigger, last_seen):
                since = _utc(seen.last_seen_at)
                current = self._trigger_state(entry, device_id)
                if since + entry.trigger.for_ > now or current.silent_since == since:
                    continue
                self._put(entry, device_id, msgspec.structs.replace(current, silent_since=since))
                silence = TriggerContext(
                    kind="device_silent",
                    rule_id=entry.rule.id,
                    time=since,
                    device_id=device_id,
                    product_key=seen.product_key,
                )
                self._fire(entry.rule, silence, device_id, since + entry.trigger.for_, timer=entry.index)

    def _fire(self, rule: Rule, trigger: TriggerContext, subject: str, at: datetime, timer: int | None = None) -> None:
        """``timer``: the index of the trigger whose ``for:`` timer fires; a message fires a rule once, and each of
        its timers once more."""
        once = (rule.id, trigger.message_id or "", timer)
        if trigger.message_id is not None and once in self._fired_messages:
            return
        cooldown_key = (rule.id, subject if rule.cooldown and rule.cooldown.per == "device" else "")
        cooling = self._rule_state(cooldown_key)
        fires = (cooling.last_fired_at, *cooling.earlier_fires) if cooling.last_fired_at else ()
        # Either side of any fire: a timer's fire read after a restart may be timed before fires made since.
        if rule.cooldown is not None and any(abs(at - fired) < rule.cooldown.duration for fired in fires):
            return
        if not all_hold(rule.conditions, trigger, self._readings, at):
            return
        self._fired_messages.add(once)
        if rule.cooldown is not None:
            self._changes[cooldown_key] = _fired_at(cooling, at, rule.cooldown.duration)
        self._fired.extend(fire_actions(rule, trigger, at=at, dry_run=self._rules.dry_run, timer=timer))

    def _rule_state(self, key: RuleStateKey) -> RuleState:
        if key in self._changes:
            return self._changes[key]
        return self._state.get(key) or RuleState(rule_id=key[0], device_id=key[1])

    def _trigger_state(self, entry: TriggerEntry, subject: str) -> TriggerState:
        return self._rule_state((entry.rule.id, subject)).triggers.get(entry.key, _IDLE)

    def _put(self, entry: TriggerEntry, subject: str, new: TriggerState) -> None:
        """Store a trigger's state; idle states are left out, as are states of triggers no longer in the file."""
        rule_state = self._rule_state((entry.rule.id, subject))
        triggers = {
            key: value
            for key, value in rule_state.triggers.items()
            if key != entry.key and (entry.rule.id, key) in self._index.by_key
        }
        if not new.is_default:
            triggers[entry.key] = new
        if triggers != rule_state.triggers:
            self._changes[(entry.rule.id, subject)] = msgspec.structs.replace(rule_state, triggers=triggers)


def _candidates(trigger: DeviceSilentTrigger, last_seen: Mapping[str, DeviceSeen]) -> Iterable[tuple[str, DeviceSeen]]:
    if trigger.device is not None:
        seen = last_seen.get(trigger.device)
        return [] if seen is None else [(trigger.device, seen)]
    return ((device_id, seen) for device_id, seen in last_seen.items() if selects(trigger, device_id, seen.product_key))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


#: How far before its last fire a rule's earlier fires are kept for its cooldown: a timer's fire read late comes
#: from a backlog Tuya keeps for two hours.
_LATE_FIRES = timedelta(hours=2)


def _fired_at(state: RuleState, at: datetime, cooldown: timedelta) -> RuleState:
    """``state`` after a fire at ``at``: the latest fire, and the earlier ones a late fire could fall near."""
    fires = sorted({at, *state.earlier_fires, *([state.last_fired_at] if state.last_fired_at else [])})
    last = fires[-1]
    earlier = tuple(fired for fired in fires[:-1] if fired > last - cooldown - _LATE_FIRES)
    return msgspec.structs.replace(state, last_fired_at=last, earlier_fires=earlier)
