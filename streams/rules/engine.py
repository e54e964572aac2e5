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
Pure: imports no I/O library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import msgspec

from models.records import DeviceEvent, Record, StatusReported, UserEvent
from models.rules import DeviceSilentTrigger, Rule, RuleSet
from streams.rules.conditions import all_hold
from streams.rules.effects import FiredAction, fire_actions
from streams.rules.operators import UNKNOWN
from streams.rules.state import (
    DeviceSeen,
    LatestStamps,
    LatestValues,
    RuleState,
    RuleStateKey,
    RuleStates,
    TriggerContext,
    TriggerState,
)
from streams.rules.triggers import TriggerEntry, deadline, index_of, selects, step

__all__ = ["Evaluation", "evaluate", "tick"]

_IDLE = TriggerState()


class Evaluation(msgspec.Struct, frozen=True):
    """What one evaluation produced. ``state_changes`` holds only the keys it changed; an ``is_empty`` state means
    the row may be deleted."""

    fired: list[FiredAction]
    state_changes: dict[RuleStateKey, RuleState]


def evaluate(
    rules: RuleSet,
    records: Iterable[Record],
    state: RuleStates,
    latest: LatestValues,
    now: datetime,
    *,
    latest_stamps: LatestStamps | None = None,
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
    """
    run = _Run(rules, state, latest, latest_stamps)
    for record in records:
        run.record(record, now)
    return run.result()


def tick(
    rules: RuleSet, state: RuleStates, latest: LatestValues, last_seen: Mapping[str, DeviceSeen], now: datetime
) -> Evaluation:
    """Fire what the clock alone makes due: ``for:`` timers that expired between messages, and silent devices.

    ``last_seen`` is device_id → DeviceSeen (the ``devices`` table). A timer fires as of its due time, so a tick
    that comes late (or after a restart) gives the same fire time, conditions and cooldown as a punctual one.
    """
    run = _Run(rules, state, latest)
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
    ) -> None:
        self._rules = rules
        self._index = index_of(rules)
        self._state = state
        self._latest = latest
        self._latest_stamps = latest_stamps
        self._values: dict[tuple[str, str], object] = {}
        self._stamps: dict[tuple[str, str], tuple[datetime, str]] = {}
        self._changes: dict[RuleStateKey, RuleState] = {}
        self._fired: list[FiredAction] = []
        self._fired_messages: set[tuple[str, str]] = set()

    def result(self) -> Evaluation:
        return Evaluation(fired=self._fired, state_changes=self._changes)

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
        self._values[key] = record.value
        for entry in self._index.by_code.get(record.code, ()):
            if selects(entry.trigger, record.device_id, record.product_key):
                seen = TriggerContext(
                    kind=entry.trigger.trigger,
                    rule_id=entry.rule.id,
                    time=at,
                    device_id=record.device_id,
                    product_key=record.product_key,
                    code=record.code,
                    value=record.value,
                    from_value=None if previous is UNKNOWN else previous,
                    message_id=record.message_id,
                )
                self._advance(entry, record.device_id, seen, previous)

    def _is_stale(self, key: tuple[str, str], stamp: tuple[datetime, str]) -> bool:
        if self._latest_stamps is None:
            return False
        known = self._stamps.get(key) or self._latest_stamps.get(key)
        if known is not None and stamp < known:
            return True
        self._stamps[key] = stamp
        return False

    def _device_event(self, record: DeviceEvent, at: datetime) -> None:
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

    def _advance(self, entry: TriggerEntry, subject: str, seen: TriggerContext, previous: object = UNKNOWN) -> None:
        current = self._expire(entry, subject, seen.time)
        moved = step(entry.trigger, current, seen, previous)
        self._put(entry, subject, moved.state)
        if moved.fire is not None:
            self._fire(entry.rule, moved.fire, subject, seen.time)

    def _expire(self, entry: TriggerEntry, subject: str, now: datetime) -> TriggerState:
        """Fire the trigger's ``for:`` timer for ``subject`` if it is due by ``now``; the state after that."""
        current = self._trigger_state(entry, subject)
        due = deadline(entry.trigger, current)
        if due is None or due > now or current.pending is None:
            return current
        started = current.pending
        current = msgspec.structs.replace(current, pending=None)
        self._put(entry, subject, current)
        self._fire(entry.rule, started, subject, due)
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
                self._fire(entry.rule, silence, device_id, since + entry.trigger.for_)

    def _fire(self, rule: Rule, trigger: TriggerContext, subject: str, at: datetime) -> None:
        once = (rule.id, trigger.message_id or "")
        if trigger.message_id is not None and once in self._fired_messages:
            return
        cooldown_key = (rule.id, subject if rule.cooldown and rule.cooldown.per == "device" else "")
        if rule.cooldown is not None:
            last = self._rule_state(cooldown_key).last_fired_at
            if last is not None and at - last < rule.cooldown.duration:
                return
        if not all_hold(rule.conditions, trigger, self.value, at):
            return
        self._fired_messages.add(once)
        if rule.cooldown is not None:
            self._changes[cooldown_key] = msgspec.structs.replace(self._rule_state(cooldown_key), last_fired_at=at)
        self._fired.extend(fire_actions(rule, trigger, at=at, dry_run=self._rules.dry_run))

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
