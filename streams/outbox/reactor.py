"""The rules reactor: inside a batch's transaction, evaluate the rules and write rule state and outbox rows.

Owns what the rules engine sees: only messages that are new to the archive (a redelivered message can never fire a
rule again), the latest values before the batch (``device_state`` of the batch's devices and of every device a rule
names), the persisted rule state, and the data-point catalog of the moment (read once per batch or tick: ``sync``
may swap in a new one at any time). Everything it writes (``rule_state``, ``commands``) commits with the batch, so a
crash either keeps the batch, its timers and its commands, or none of them. Sending is the sender's job.

Also owns the warning about thresholds with a unit that met a value they could not compare (no specification yet,
not a number, another unit): one per (rule, device, code) while the worker runs, not one per message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Connection

from models.records import DeviceEvent, News, Record, UserEvent
from models.rules import DeviceEventTrigger, DeviceSilentTrigger, RuleSet
from streams.fleet.catalog import Catalog
from streams.outbox import sql
from streams.rules import (
    Evaluation,
    FiredAction,
    PostWebhook,
    SendCommands,
    TemplateFailed,
    Unmeasured,
    WriteLog,
    evaluate,
    tick,
)
from streams.store.sql import Hook

__all__ = ["RulesReactor", "outbox_row", "referenced_devices"]

log = logging.getLogger(__name__)


def referenced_devices(rules: RuleSet) -> set[str]:
    """Every device id a rule names anywhere (triggers, conditions, actions): their latest values are needed."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, BaseModel):
            device = getattr(node, "device", None)
            if isinstance(device, str):
                found.add(device)
            for name in type(node).model_fields:
                walk(getattr(node, name))
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(list(rules.rules))
    return found


def outbox_row(fired: FiredAction, now: datetime) -> dict[str, Any]:
    """The ``commands`` row of a fired action: pending, dry_run, or failed when its templates did not render."""
    effect = fired.effect
    status, error, payload = "pending", None, None
    if isinstance(effect, SendCommands):
        payload = effect.commands
    elif isinstance(effect, PostWebhook):
        # The headers' names only: a value may be a token, which stays in the rules file (the sender reads it there).
        headers = sorted(effect.headers)
        payload = {"url": effect.url, "body": effect.body, "headers": headers, "timeout_s": effect.timeout_s}
    elif isinstance(effect, WriteLog):
        payload = {"level": effect.level, "message": effect.message}
    elif isinstance(effect, TemplateFailed):
        status, error = "failed", f"template failed: {effect.error}"
    if fired.dry_run and status == "pending":
        status = "dry_run"
    return {
        "idempotency_key": fired.idempotency_key,
        "rule_id": fired.rule_id,
        "action": fired.kind,
        "device_id": fired.device_id or "",
        "message_id": fired.message_id,
        "commands": payload,
        "status": status,
        "error": error,
        "created_at": now,
        "updated_at": now,
    }


class RulesReactor:
    """Evaluates a RuleSet against stored batches and clock ticks (see the module docstring)."""

    def __init__(self, rules: RuleSet, catalog: Callable[[], Catalog] | None = None) -> None:
        self._rules = rules
        self._catalog = catalog or Catalog
        self._named = referenced_devices(rules)
        silences = [t.for_ for rule in rules.rules for t in rule.triggers if isinstance(t, DeviceSilentTrigger)]
        self._shortest_silence = min(silences, default=None)  # None: no rule watches for silent devices
        self._warned: set[tuple[str, str, str]] = set()
        # rules whose cooldown is shared by every device: fired by one processor at a time (scale-out)
        self._rule_wide = {r.id for r in rules.rules if r.enabled and r.cooldown and r.cooldown.per == "rule"}
        # whether an online or offline event triggers a rule: such events are ordered against the device's latest
        self._online_events = any(
            isinstance(t, DeviceEventTrigger) and t.event in ("online", "offline")
            for rule in rules.rules
            if rule.enabled
            for t in rule.triggers
        )
        self.fired = 0

    @property
    def active(self) -> bool:
        return any(rule.enabled for rule in self._rules.rules)

    def in_transaction(self, news: Sequence[News], now: datetime) -> Hook | None:
        """The hook the store runs inside the batch's transaction, before the batch's own writes."""
        if not self.active or not news:
            return None
        return lambda connection: self._react(connection, news, now)

    def on_tick(self, now: datetime, owns: Callable[[str], bool] | None = None) -> Hook | None:
        """The hook for a clock tick: fire ``for:`` timers and silent devices that came due between messages.

        ``owns``: whether a device or user is this processor's (scale-out: its messages reach this processor's
        partitions), None: all are. Only its own are acted on: another's may sit in a backlog its processor is still
        reading, with the value that cancels a timer or the report that ends a silence. States per rule (subject
        '') are read by every processor, for their cooldowns.
        """
        if not self.active:
            return None
        return lambda connection: self._tick(connection, now, owns)

    def _react(self, connection: Connection, news: Sequence[News], now: datetime) -> set[str] | None:
        fresh = sql.new_message_ids(connection, [item.message_id for item in news])
        records = [record for item in news if item.message_id in fresh for record in item.records]
        if not records:
            return None
        devices = {r.device_id for r in records if not isinstance(r, UserEvent)} | self._named
        subjects = devices | {r.uid for r in records if isinstance(r, UserEvent)} | {""}
        latest, stamps = sql.latest_values(connection, devices)
        online = sql.latest_online_events(connection, _with_online_events(records)) if self._online_events else {}
        points = self._catalog().point

        def evaluated() -> Evaluation:
            state = sql.rule_states(connection, subjects)
            return evaluate(
                self._rules, records, state, latest, now, latest_stamps=stamps, online_events=online, points=points
            )

        evaluation = evaluated()
        shared = self._shared_cooldowns(connection, evaluation)
        if shared:  # another processor may be firing the same rule: take turns, and decide on what it committed
            sql.lock_rule_cooldowns(connection, shared)
            evaluation = evaluated()
        self._save(connection, evaluation, now)
        return fresh

    def _shared_cooldowns(self, connection: Connection, evaluation: Evaluation) -> list[str]:
        """The rules with a cooldown per rule that ``evaluation`` fires, when other processors may fire them too."""
        fired = {action.rule_id for action in evaluation.fired} & self._rule_wide
        return sorted(fired) if fired and sql.shared_by_processors(connection) else []

    def _tick(self, connection: Connection, now: datetime, owns: Callable[[str], bool] | None) -> None:
        state = sql.rule_states(connection)
        quiet = self._shortest_silence
        if owns is not None:
            state = {key: value for key, value in state.items() if not key[1] or owns(key[1])}
        if not state and quiet is None:
            return
        seen = sql.last_seen(connection) if quiet is not None else {}
        if owns is not None:
            seen = {device: last for device, last in seen.items() if owns(device)}
        # the devices silent long enough to fire: a condition reads the silent device's own latest values
        silent = {device for device, last in seen.items() if quiet is not None and last.last_seen_at + quiet <= now}
        latest, _ = sql.latest_values(connection, self._named | {device for _, device in state if device} | silent)
        points = self._catalog().point
        evaluation = tick(self._rules, state, latest, seen, now, points=points)
        acted = evaluation.state_changes.keys()
        if acted and sql.shared_by_processors(connection):
            # Another processor's batch may be changing these states (cancelling a timer, say): wait for it, and
            # decide again on what it committed, rather than write back what was read before.
            sql.lock_rule_cooldowns(connection, self._shared_cooldowns(connection, evaluation))
            fresh = sql.lock_rule_states(connection, acted)
            state = {key: value for key, value in state.items() if key not in acted} | fresh
            evaluation = tick(self._rules, state, latest, seen, now, points=points)
        self._save(connection, evaluation, now)

    def _save(self, connection: Connection, evaluation: Evaluation, now: datetime) -> None:
        sql.save_rule_states(connection, evaluation.state_changes, now)
        sql.insert_commands(connection, [outbox_row(fired, now) for fired in evaluation.fired])
        self.fired += len(evaluation.fired)
        for fired in evaluation.fired:
            log.info(
                "rule fired rule=%s action=%s device=%s message=%s dry_run=%s",
                fired.rule_id, fired.kind, fired.device_id, fired.message_id, fired.dry_run,
            )  # fmt: skip
            if isinstance(fired.effect, TemplateFailed):  # its row is failed from the start: the sender never sees it
                log.warning("outbox: %s failed: template failed: %s", fired.idempotency_key, fired.effect.error)
        self._warn(evaluation.unmeasured)

    def _warn(self, unmeasured: Sequence[Unmeasured]) -> None:
        for item in unmeasured:
            key = (item.rule_id, item.device_id, item.code)
            if key not in self._warned:
                self._warned.add(key)
                log.warning(
                    "rule %s: %s of device %s not compared with its threshold's unit (%s); "
                    "until that changes the rule treats it as no number, and this is not logged again",
                    item.rule_id, item.code, item.device_id, item.why,
                )  # fmt: skip


def _with_online_events(records: Sequence[Record]) -> set[str]:
    """The devices with an online or offline event among ``records``."""
    return {r.device_id for r in records if isinstance(r, DeviceEvent) and r.event in ("online", "offline")}
