"""The engine's memory between batches: one RuleState per (rule, device), as plain values the store persists.

Owns the state shapes and their row form for the ``rule_state`` table (columns rule_id, device_id, pending_since,
pending_message_id, armed, last_fired_at, data). Everything a restart must not lose lives here: ``for:`` timers
(with the context that started them, so a timer that fires after a restart renders the same templates and the same
idempotency key), edge flags and cooldown times. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

__all__ = [
    "DeviceSeen",
    "LatestStamps",
    "LatestValues",
    "OnlineEvent",
    "RuleState",
    "RuleStateKey",
    "RuleStates",
    "TriggerContext",
    "TriggerState",
    "merge_states",
    "whole_second",
]

RuleStateKey = tuple[str, str]
"""(rule_id, device_id); device_id is "" for per-rule cooldowns and holds the uid for user-event rules."""

LatestValues = Mapping[tuple[str, str], Any]
"""(device_id, code) → latest reported value: the ``device_state`` table."""

LatestStamps = Mapping[tuple[str, str], tuple[datetime, str]]
"""(device_id, code) → (reported_at, message_id) of the latest value: the order in which the ``device_state`` upsert
keeps the newest (later time, then the greater message id)."""


OnlineEvent = tuple[datetime, bool]
"""A device's online or offline event as the rules order them: (time, whether online), compared in whole seconds;
an online wins a tie, as the archive's ``devices.online`` has it."""


def whole_second(moment: datetime) -> datetime:
    """The second an event is ordered by: the stream's are timed so, backfill's log copies to the millisecond."""
    return moment.replace(microsecond=0)


class TriggerContext(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a trigger saw when it matched: ``trigger`` in templates, and the start of a pending ``for:`` timer.

    ``time`` is when the match happened (the record's time; for device_silent, the last message's time). ``value``
    is the raw value as reported; for status triggers ``value_scaled`` is it in physical units (raw ÷ 10^scale) where
    the archive knows the data point's specification, else the value as reported (as the archive's views show it),
    and ``unit`` the specification's unit (``°C`` for Tuya's ``℃``), if any.
    """

    kind: str
    rule_id: str
    time: datetime
    device_id: str | None = None
    product_key: str | None = None
    code: str | None = None
    value: Any = None
    from_value: Any = None
    value_scaled: Any = None
    unit: str | None = None
    event: str | None = None
    uid: str | None = None
    message_id: str | None = None


class TriggerState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One trigger's edge and timer state for one device.

    ``armed``: the trigger may fire on its next match (numeric_state: the last value was outside the range).
    ``pending``: a ``for:`` timer runs since ``pending.time``. ``silent_since``: device_silent already fired for the
    silence that began then.
    """

    armed: bool = True
    pending: TriggerContext | None = None
    silent_since: datetime | None = None

    @property
    def is_default(self) -> bool:
        return self.armed and self.pending is None and self.silent_since is None


class RuleState(msgspec.Struct, frozen=True, kw_only=True):
    """A rule's state for one device: trigger states by trigger key, and the last fire (for cooldowns).

    Trigger keys are fingerprints of the trigger's definition, so editing a trigger starts it afresh instead of
    handing it another trigger's timer. A state that ``is_empty`` is the default: its row may be deleted.
    """

    rule_id: str
    device_id: str
    last_fired_at: datetime | None = None
    triggers: dict[str, TriggerState] = {}
    #: Fires timed before ``last_fired_at`` and recent enough to matter to a timer's fire read late, after a restart
    #: (streams.rules.engine keeps them): a cooldown holds between any two fires, whatever order they were made in.
    earlier_fires: tuple[datetime, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.last_fired_at is None and not self.triggers

    @property
    def next_pending(self) -> TriggerContext | None:
        """The earliest-started pending timer, for the row's ``pending_since`` and ``pending_message_id``."""
        pending = [state.pending for state in self.triggers.values() if state.pending is not None]
        return min(pending, key=lambda context: context.time, default=None)

    def to_row(self) -> dict[str, Any]:
        """The ``rule_state`` row: summary columns for people and SQL, the whole state in ``data`` (JSON-ready)."""
        pending = self.next_pending
        return {
            "rule_id": self.rule_id,
            "device_id": self.device_id,
            "pending_since": pending.time if pending else None,
            "pending_message_id": pending.message_id if pending else None,
            "armed": all(state.armed for state in self.triggers.values()),
            "last_fired_at": self.last_fired_at,
            "data": {
                "triggers": msgspec.to_builtins(self.triggers),
                **({"earlier_fires": msgspec.to_builtins(self.earlier_fires)} if self.earlier_fires else {}),
            },
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RuleState:
        """Read back what ``to_row`` wrote (``data`` as a dict, or as JSON text or bytes)."""
        data = row.get("data") or {}
        if isinstance(data, str | bytes):
            data = msgspec.json.decode(data)
        triggers = msgspec.convert(data.get("triggers", {}), dict[str, TriggerState])
        earlier = msgspec.convert(data.get("earlier_fires", ()), tuple[datetime, ...])
        return cls(
            rule_id=row["rule_id"],
            device_id=row["device_id"],
            last_fired_at=_utc(row.get("last_fired_at")),
            triggers=triggers,
            earlier_fires=tuple(_utc(moment) for moment in earlier),
        )


def _utc(moment: datetime | None) -> datetime | None:
    # SQLite hands DateTime(timezone=True) columns back naive; the store writes UTC, so say so.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


class DeviceSeen(msgspec.Struct, frozen=True):
    """When a device last sent anything (the ``devices`` table), for device_silent triggers."""

    last_seen_at: datetime
    product_key: str | None = None


RuleStates = Mapping[RuleStateKey, RuleState]


def merge_states(state: RuleStates, changes: Mapping[RuleStateKey, RuleState]) -> dict[RuleStateKey, RuleState]:
    """``state`` after an evaluation's ``state_changes``; empty states are dropped, as their rows may be."""
    merged = {**state, **changes}
    return {key: value for key, value in merged.items() if not value.is_empty}
