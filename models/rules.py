"""The rules file's schema: what an operator may write in ``config/rules.yaml``, and the RuleSet it loads into.

Owns the pydantic models of a rule (unknown keys rejected, so typos fail) and the device reference rule (an alias of
the file's ``devices:`` map, else something that looks like a Tuya device id); the syntaxes of durations, times of
day and thresholds are in ``models.rule_values``.
The conventions follow Home Assistant automations (``triggers:`` / ``conditions:`` / ``actions:``, each item
tagged by ``trigger:`` / ``condition:`` / ``action:``). Data only: never imports ``streams``; the loader adds
line numbers, the engine gives the rules their meaning.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    model_validator,
)

from models.records import DEVICE_EVENTS, USER_EVENTS
from models.rule_values import Threshold, parse_clock_time, parse_duration, parse_threshold, threshold_data

__all__ = [
    "WEEKDAYS",
    "Action",
    "AndCondition",
    "CommandItem",
    "Condition",
    "Cooldown",
    "DeviceAliases",
    "DeviceEventTrigger",
    "DeviceSilentTrigger",
    "LogAction",
    "NotCondition",
    "NumericStateCondition",
    "NumericStateTrigger",
    "OrCondition",
    "Rule",
    "RuleSet",
    "SendCommandAction",
    "StateCondition",
    "StateTrigger",
    "Threshold",
    "TimeCondition",
    "Trigger",
    "UserEventTrigger",
    "WebhookAction",
    "looks_like_device_id",
    "parse_duration",
    "parse_threshold",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)

# Tuya device ids are 20-22 letters and digits ("bf1e8a0cd2e4a1b2c3x9kq"); asking for a digit keeps a mistyped
# alias such as "greenhousefan" from passing for one.
_DEVICE_ID = re.compile(r"(?=.*\d)[A-Za-z0-9]{10,}")


def looks_like_device_id(text: str) -> bool:
    """True for letters and digits, at least 10 of them, one a digit: what Tuya device ids look like."""
    return bool(_DEVICE_ID.fullmatch(text))


def _device_id(value: str) -> str:
    if not looks_like_device_id(value):
        raise ValueError(f"{value!r} is not a Tuya device id (10 or more letters and digits)")
    return value


def _resolve_device(value: str, info: ValidationInfo) -> str:
    aliases: Mapping[str, str] = (info.context or {}).get("devices", {})
    if value in aliases:
        return aliases[value]
    if looks_like_device_id(value):
        return value
    close = difflib.get_close_matches(value, list(aliases), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else " (add it to the devices: map, or give the device id)"
    raise ValueError(f"unknown device or alias {value!r}{hint}")


def _one_of(names: frozenset[str], what: str) -> Any:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"unknown {what} {value!r} (one of: {', '.join(sorted(names))})")
        return value

    return AfterValidator(check)


def _weekdays(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _json_value(value: Any) -> Any:
    """A value an outbox row can hold and send as JSON (YAML can also write binary, sets and NaN)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a JSON value: {value!r} ({exc})") from None
    return value


def _web_address(url: str) -> str:
    """An http(s) URL a webhook can be posted to: a host, and a port that is a number (checked when the file loads,
    not when the first fire is sent)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is no number)
    except ValueError as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("a URL needs a host")
    return url


def _cooldown_shorthand(value: Any) -> Any:
    return value if value is None or isinstance(value, dict) else {"duration": value}


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
DeviceId = Annotated[str, AfterValidator(_device_id)]
DeviceRef = Annotated[str, AfterValidator(_resolve_device)]
DpCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
ProductKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9]+$")]
ClockTime = Annotated[time, BeforeValidator(parse_clock_time)]
JsonValue = Annotated[Any, AfterValidator(_json_value)]
Bound = Annotated[Threshold, BeforeValidator(parse_threshold), PlainSerializer(threshold_data)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _DeviceSelector(_Schema):
    """Which devices a trigger listens to: one ``device`` (id or alias), every device of a ``product``, or any."""

    device: DeviceRef | None = None
    product: ProductKey | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> _DeviceSelector:
        if self.device is not None and self.product is not None:
            raise ValueError("give 'device' or 'product', not both")
        return self


class _Range(_Schema):
    """``above`` < value < ``below`` (both strict, as in Home Assistant); at least one bound.

    That ``above`` is below ``below``, in the same unit, is checked by the loader (streams.rules.checks), which
    knows which spellings of a unit are the same.
    """

    # ``below`` comes first, as it did when a validator of ``above`` read it: the order is part of the fingerprint.
    below: Bound | None = None
    above: Bound | None = None

    @property
    def has_unit(self) -> bool:
        """Whether a bound has a unit: the range compares physical values then, and needs the data point's scale."""
        return any(bound is not None and bound.unit is not None for bound in (self.above, self.below))

    @model_validator(mode="after")
    def _has_bound(self) -> _Range:
        if self.above is None and self.below is None:
            raise ValueError("needs 'above', 'below' or both")
        return self


class StateTrigger(_DeviceSelector):
    """A DP code's value changed (``to`` the new value, ``from`` the old one, if given)."""

    trigger: Literal["state"]
    code: DpCode
    from_: Any = Field(None, alias="from")
    to: Any = None
    for_: Duration | None = Field(None, alias="for")


class NumericStateTrigger(_DeviceSelector, _Range):
    """A DP code's number entered the range; re-arms when it leaves it."""

    trigger: Literal["numeric_state"]
    code: DpCode
    for_: Duration | None = Field(None, alias="for")


class DeviceEventTrigger(_DeviceSelector):
    """A device event of the one vocabulary (legacy and IoT-Core alike); with ``for``, the opposite one cancels."""

    trigger: Literal["device_event"]
    event: Annotated[str, _one_of(DEVICE_EVENTS, "device event")]
    for_: Duration | None = Field(None, alias="for")


class DeviceSilentTrigger(_DeviceSelector):
    """No message about the device for ``for``; fires once per silence."""

    trigger: Literal["device_silent"]
    for_: Duration = Field(alias="for")


class UserEventTrigger(_Schema):
    """A user lifecycle event (registered, updated, deleted), of one ``uid`` or any user."""

    trigger: Literal["user_event"]
    event: Annotated[str, _one_of(USER_EVENTS, "user event")]
    uid: str | None = None


Trigger = Annotated[
    StateTrigger | NumericStateTrigger | DeviceEventTrigger | DeviceSilentTrigger | UserEventTrigger,
    Field(discriminator="trigger"),
]


class StateCondition(_Schema):
    """The latest value of ``code`` on ``device`` (default: the triggering device) equals ``state``."""

    condition: Literal["state"]
    device: DeviceRef | None = None
    code: DpCode
    state: Any


class NumericStateCondition(_Range):
    """The latest value of ``code`` on ``device`` (default: the triggering device) is within the range."""

    condition: Literal["numeric_state"]
    device: DeviceRef | None = None
    code: DpCode


class TimeCondition(_Schema):
    """The fire time (UTC) is ``after`` ≤ t < ``before`` (wrapping past midnight) on one of the ``weekday``s."""

    condition: Literal["time"]
    after: ClockTime | None = None
    before: ClockTime | None = None
    weekday: Annotated[tuple[Weekday, ...] | None, BeforeValidator(_weekdays)] = None

    @model_validator(mode="after")
    def _has_bound(self) -> TimeCondition:
        if self.after is None and self.before is None and self.weekday is None:
            raise ValueError("needs 'after', 'before' or 'weekday'")
        return self


class AndCondition(_Schema):
    condition: Literal["and"]
    conditions: list[Condition] = Field(min_length=1)


class OrCondition(_Schema):
    condition: Literal["or"]
    conditions: list[Condition] = Field(min_length=1)


class NotCondition(_Schema):
    """None of ``conditions`` holds."""

    condition: Literal["not"]
    conditions: list[Condition] = Field(min_length=1)


Condition = Annotated[
    StateCondition | NumericStateCondition | TimeCondition | AndCondition | OrCondition | NotCondition,
    Field(discriminator="condition"),
]


class CommandItem(_Schema):
    """One DP to set; ``value`` may be a template such as ``"{{ not trigger.value }}"``."""

    code: DpCode
    value: JsonValue


class SendCommandAction(_Schema):
    """Send DP commands through the signed OpenAPI to ``device`` (default: the triggering device)."""

    action: Literal["tuya.send_command"]
    device: DeviceRef | None = None
    commands: list[CommandItem] = Field(min_length=1)


class WebhookAction(_Schema):
    """HTTP POST of the ``json`` body (templates rendered) to ``url``."""

    action: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://\S+$"), AfterValidator(_web_address)]
    body: JsonValue = Field(None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=10)


class LogAction(_Schema):
    """A line in the worker's log (``message`` is a template)."""

    action: Literal["log"]
    message: str
    level: Literal["debug", "info", "warning", "error"] = "info"


for _group in (AndCondition, OrCondition, NotCondition):
    _group.model_rebuild()


Action = Annotated[SendCommandAction | WebhookAction | LogAction, Field(discriminator="action")]


class Cooldown(_Schema):
    """After a fire, further fires within ``duration`` are dropped: of the whole rule, or of the same device."""

    duration: Duration
    per: Literal["rule", "device"] = "rule"


class Rule(_Schema):
    """One automation: when any trigger fires and all conditions hold, run the actions in order."""

    # No ':' in ids: the idempotency key of a command is "rule_id:message_id:action_index".
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    alias: str | None = None
    description: str | None = None
    enabled: bool = True
    dry_run: bool = False
    triggers: list[Trigger] = Field(min_length=1)
    conditions: list[Condition] = Field(default_factory=list)
    actions: list[Action] = Field(min_length=1)
    cooldown: Annotated[Cooldown | None, BeforeValidator(_cooldown_shorthand)] = None


DeviceAliases = dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], DeviceId]
"""The ``devices:`` map: alias → Tuya device id."""


@dataclass(frozen=True, eq=False)
class RuleSet:
    """The validated rules of one file, device aliases resolved; ``dry_run`` is the global RULES_DRY_RUN;
    ``unchecked``: what the loader could not check yet (thresholds' units before a sync), one line each."""

    rules: tuple[Rule, ...] = ()
    devices: Mapping[str, str] = field(default_factory=dict)
    source: str = "<rules>"
    dry_run: bool = False
    unchecked: tuple[str, ...] = ()

    def alias_of(self, device_id: str) -> str | None:
        """The first alias naming ``device_id``, for messages meant for people."""
        return next((alias for alias, known in self.devices.items() if known == device_id), None)
