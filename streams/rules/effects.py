"""What a fired rule asks the outside world to do: FiredAction values, with their templates rendered.

Owns the shape of the engine's output and the idempotency key. The store writes commands to the outbox keyed by
``idempotency_key`` = ``"{rule_id}:{message_id}:{action_index}"``, so the same message evaluated twice (redelivery,
replay) can never make a second command. A ``for:`` timer's fire names its trigger too
(``"{rule_id}:{message_id}:for{trigger_index}:{action_index}"``): two timers of a rule started by one message fire
once each. For a device_silent fire, which no message caused, the key names the silence and its trigger instead:
``"{rule_id}:silent:{device_id}:{epoch_ms of the last message}:for{trigger_index}:{action_index}"``.
Pure: the sender does the I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from models.rules import Action, LogAction, Rule, SendCommandAction, WebhookAction
from streams.rules.state import TriggerContext
from streams.rules.templates import TemplateRenderError, render

__all__ = ["Effect", "FiredAction", "PostWebhook", "SendCommands", "TemplateFailed", "WriteLog", "fire_actions"]


class SendCommands(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="tuya.send_command"):
    """POST ``{"commands": commands}`` to the device's commands endpoint."""

    device_id: str
    commands: list[dict[str, Any]]


class PostWebhook(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="webhook"):
    url: str
    body: Any
    headers: dict[str, str]
    timeout_s: float


class WriteLog(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="log"):
    level: Literal["debug", "info", "warning", "error"]
    message: str


class TemplateFailed(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind", tag="template_failed"):
    """The action's templates could not be rendered: record it as failed with ``error``, send nothing."""

    error: str


Effect = SendCommands | PostWebhook | WriteLog | TemplateFailed


class FiredAction(msgspec.Struct, frozen=True, kw_only=True):
    """One action of a rule that fired.

    ``kind`` is the action's kind as written; ``effect`` is what to do (or TemplateFailed). ``device_id`` is the
    command's target for tuya.send_command, else the triggering device (None for user events). ``message_id`` is the
    message that triggered, or that started the ``for:`` timer; None for device_silent. ``dry_run``: record, do not
    send. ``fired_at`` is the fire time (for a timer: when it was due).
    """

    rule_id: str
    action_index: int
    kind: str
    device_id: str | None
    message_id: str | None
    idempotency_key: str
    dry_run: bool
    fired_at: datetime
    trigger: TriggerContext
    effect: Effect


def fire_actions(
    rule: Rule, trigger: TriggerContext, *, at: datetime, dry_run: bool, timer: int | None = None
) -> list[FiredAction]:
    """Every action of ``rule``, rendered for ``trigger``, in the rule's order; ``timer``: the index of the trigger
    whose ``for:`` timer fired."""
    return [
        FiredAction(
            rule_id=rule.id,
            action_index=index,
            kind=action.action,
            device_id=_target(action, trigger),
            message_id=trigger.message_id,
            idempotency_key=idempotency_key(rule.id, trigger, index, timer),
            dry_run=dry_run or rule.dry_run,
            fired_at=at,
            trigger=trigger,
            effect=_effect(action, trigger),
        )
        for index, action in enumerate(rule.actions)
    ]


def idempotency_key(rule_id: str, trigger: TriggerContext, action_index: int, timer: int | None = None) -> str:
    if trigger.message_id is not None:
        fired_by = trigger.message_id if timer is None else f"{trigger.message_id}:for{timer}"
        return f"{rule_id}:{fired_by}:{action_index}"
    silence_ms = int(trigger.time.timestamp() * 1000)
    silence = f"silent:{trigger.device_id}:{silence_ms}" + ("" if timer is None else f":for{timer}")
    return f"{rule_id}:{silence}:{action_index}"


def _target(action: Action, trigger: TriggerContext) -> str | None:
    if isinstance(action, SendCommandAction) and action.device is not None:
        return action.device
    return trigger.device_id


def _effect(action: Action, trigger: TriggerContext) -> Effect:
    context = {"trigger": trigger}
    try:
        match action:
            case SendCommandAction():
                commands = [{"code": item.code, "value": render(item.value, context)} for item in action.commands]
                # The loader refuses a send_command without device unless every trigger names its devices.
                device_id = action.device or trigger.device_id or ""
                return SendCommands(device_id=device_id, commands=commands)
            case WebhookAction():
                body = render(action.body, context)
                timeout = action.timeout.total_seconds()
                return PostWebhook(url=action.url, body=body, headers=dict(action.headers), timeout_s=timeout)
            case LogAction():
                return WriteLog(level=action.level, message=str(render(action.message, context)))
    except TemplateRenderError as exc:
        return TemplateFailed(error=str(exc))
    raise TypeError(f"unknown action {action!r}")
