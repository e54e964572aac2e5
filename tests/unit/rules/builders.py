"""Builders for rules-engine tests: rule sets from YAML text, records, data-point catalogs, and a loop that persists
state like the worker.

Partner of tests/unit/rules/test_*.py; deterministic data only.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from models.records import DeviceEvent, Record, StatusReported, UserEvent
from models.rules import RuleSet
from streams.fleet.catalog import Catalog, PointSpec
from streams.rules import (
    DeviceSeen,
    FiredAction,
    OnlineEvent,
    PointLookup,
    RuleState,
    Unmeasured,
    evaluate,
    merge_states,
    no_points,
    parse_rules,
    tick,
)

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday
SENSOR = "demo0000greenhouse01"
FAN = "demo000000000fan0001"
PLUG = "bf1e8a0cd2e4a1b2c3x9kq"
OTHER_PLUG = "demo00000000plug0002"
PLUG_PRODUCT = "keyjup78v54myhan"
SENSOR_PRODUCT = "sensorproduct0001"

DEVICES_YAML = f"""\
devices:
  sensor: {SENSOR}
  fan: {FAN}
  plug: {PLUG}
"""


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    """T0 plus an offset: the injected clock of every test."""
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def make_rules(rules_yaml: str, *, dry_run: bool = False) -> RuleSet:
    """A RuleSet from the YAML of a ``rules:`` list (indented or not), with the test devices' aliases."""
    text = DEVICES_YAML + "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  ")
    return parse_rules(text, source="test.yaml", dry_run=dry_run)


def status(
    device_id: str,
    code: str,
    value: Any,
    when: datetime,
    *,
    message_id: str | None = None,
    product_key: str | None = None,
    item_index: int = 0,
) -> StatusReported:
    message_id = message_id or f"status:{device_id}:{code}:{when.isoformat()}"
    return StatusReported(message_id, item_index, device_id, product_key, code, value, None, when)


def device_event(
    device_id: str, event: str, when: datetime, *, message_id: str | None = None, protocol: int = 20
) -> DeviceEvent:
    biz_code = {20: event, 1001: "device" + event.capitalize()}[protocol]
    return DeviceEvent(
        message_id=message_id or f"event:{device_id}:{event}:{when.isoformat()}",
        device_id=device_id,
        product_key=None,
        event=event,
        biz_code=biz_code,
        protocol=protocol,
        occurred_at=when,
        data={},
    )


def user_event(uid: str, event: str, when: datetime) -> UserEvent:
    biz_code = {"registered": "userRegister", "updated": "userUpdate", "deleted": "userDelete"}[event]
    return UserEvent(
        message_id=f"user:{uid}:{event}:{when.isoformat()}",
        uid=uid,
        event=event,
        biz_code=biz_code,
        occurred_at=when,
        data={},
    )


def point(
    code: str,
    *,
    unit: str | None = None,
    scale: int = 0,
    type: str = "Integer",
    product: str = SENSOR_PRODUCT,
    commandable: bool = False,
) -> PointSpec:
    """One data point of ``product``, as ``sync`` stores it."""
    return PointSpec(product_id=product, code=code, type=type, unit=unit, scale=scale, commandable=commandable)


def catalog(*points: PointSpec, devices: dict[str, str] | None = None) -> Catalog:
    """A Catalog of ``points``; ``devices`` maps device ids to products (default: the sensor's and the fan's)."""
    return Catalog(points, {SENSOR: SENSOR_PRODUCT, FAN: SENSOR_PRODUCT} if devices is None else devices)


class EngineLoop:
    """What the worker does around the engine: keep state, latest values, last-seen times and each device's latest
    online or offline event between calls.

    State goes through ``to_row``/``from_row`` after every call, as it would through the rule_state table.
    ``points`` is the data-point lookup both calls get (``Catalog.point`` in the worker); ``unmeasured`` collects
    what the evaluations reported.
    """

    def __init__(self, rule_set: RuleSet, points: PointLookup = no_points) -> None:
        self.rule_set = rule_set
        self.points = points
        self.state: dict[tuple[str, str], RuleState] = {}
        self.latest: dict[tuple[str, str], Any] = {}
        self.latest_stamps: dict[tuple[str, str], tuple[datetime, str]] = {}
        self.last_seen: dict[str, DeviceSeen] = {}
        self.online_events: dict[str, OnlineEvent] = {}  # the latest online/offline of device_events
        self.unmeasured: list[Unmeasured] = []

    def feed(self, *records: Record, now: datetime | None = None) -> list[FiredAction]:
        now = now or max((_time_of(record) for record in records), default=T0)
        result = evaluate(
            self.rule_set,
            records,
            self.state,
            self.latest,
            now,
            latest_stamps=self.latest_stamps,
            online_events=self.online_events,
            points=self.points,
        )
        self._persist(result.state_changes)
        self._remember(records)
        self.unmeasured += result.unmeasured
        return result.fired

    def tick(self, now: datetime) -> list[FiredAction]:
        result = tick(self.rule_set, self.state, self.latest, self.last_seen, now, points=self.points)
        self._persist(result.state_changes)
        self.unmeasured += result.unmeasured
        return result.fired

    def _persist(self, changes: dict[tuple[str, str], RuleState]) -> None:
        merged = merge_states(self.state, changes)
        self.state = {key: RuleState.from_row(_through_json(value.to_row())) for key, value in merged.items()}

    def _remember(self, records: Iterable[Record]) -> None:
        """Latest values as the store keeps them: a value replaces one that is older, by time, then message id."""
        for record in records:
            if isinstance(record, StatusReported):
                key, stamp = (record.device_id, record.code), (record.reported_at, record.message_id)
                if key not in self.latest_stamps or stamp >= self.latest_stamps[key]:
                    self.latest[key], self.latest_stamps[key] = record.value, stamp
            if isinstance(record, StatusReported | DeviceEvent):
                self.last_seen[record.device_id] = DeviceSeen(_time_of(record), record.product_key)
            if isinstance(record, DeviceEvent) and record.event in ("online", "offline"):
                event = (record.occurred_at, record.event == "online")
                self.online_events[record.device_id] = max(self.online_events.get(record.device_id, event), event)


def _through_json(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "data": json.dumps(row["data"])}


def _time_of(record: Record) -> datetime:
    return record.reported_at if isinstance(record, StatusReported) else record.occurred_at


def rule_ids(fired: Iterable[FiredAction]) -> list[str]:
    return [action.rule_id for action in fired]
