"""Conditions and cooldowns of streams/rules/engine.py and conditions.py, on an injected clock.

Partner: test_engine.py (trigger semantics).
"""

from __future__ import annotations

import pytest

from tests.unit.rules.builders import (
    FAN,
    OTHER_PLUG,
    PLUG,
    SENSOR,
    EngineLoop,
    at,
    device_event,
    make_rules,
    rule_ids,
    status,
)


def _hot_rule(conditions: str = "[]", cooldown: str = "null") -> EngineLoop:
    return EngineLoop(
        make_rules(f"""
        - id: hot
          triggers: [{{trigger: numeric_state, device: sensor, code: temp_current, above: 300}}]
          conditions: {conditions}
          actions: [{{action: log, message: hot}}]
          cooldown: {cooldown}
        """)
    )


FAN_OFF = "[{condition: state, device: fan, code: switch_1, state: false}]"


def test_state_condition_reads_the_latest_value():
    loop = _hot_rule(FAN_OFF)
    loop.latest[(FAN, "switch_1")] = False
    assert rule_ids(loop.feed(status(SENSOR, "temp_current", 310, at(0)))) == ["hot"]


def test_state_condition_fails_on_another_value():
    loop = _hot_rule(FAN_OFF)
    loop.latest[(FAN, "switch_1")] = True
    assert loop.feed(status(SENSOR, "temp_current", 310, at(0))) == []


def test_state_condition_fails_when_nothing_is_known():
    assert _hot_rule(FAN_OFF).feed(status(SENSOR, "temp_current", 310, at(0))) == []


def test_conditions_see_values_reported_earlier_in_the_batch():
    loop = _hot_rule(FAN_OFF)
    loop.latest[(FAN, "switch_1")] = True
    fired = loop.feed(status(FAN, "switch_1", False, at(0)), status(SENSOR, "temp_current", 310, at(0)))
    assert rule_ids(fired) == ["hot"]


def test_a_failed_condition_consumes_the_edge():
    loop = _hot_rule(FAN_OFF)
    loop.latest[(FAN, "switch_1")] = True
    loop.feed(status(SENSOR, "temp_current", 310, at(0)))
    loop.feed(status(FAN, "switch_1", False, at(1)))
    assert loop.feed(status(SENSOR, "temp_current", 320, at(2))) == []


def test_conditions_are_checked_when_a_for_timer_fires():
    loop = EngineLoop(
        make_rules("""
        - id: hot
          triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 300, for: 5m}]
          conditions: [{condition: state, device: fan, code: switch_1, state: false}]
          actions: [{action: log, message: hot}]
        """)
    )
    loop.latest[(FAN, "switch_1")] = False
    loop.feed(status(SENSOR, "temp_current", 310, at(0)))
    loop.feed(status(FAN, "switch_1", True, at(2)))
    assert loop.tick(at(5)) == []


def test_numeric_state_condition_without_device_reads_the_triggering_device():
    loop = _hot_rule("[{condition: numeric_state, code: humidity, below: 50}]")
    loop.latest[(SENSOR, "humidity")] = 40
    assert rule_ids(loop.feed(status(SENSOR, "temp_current", 310, at(0)))) == ["hot"]


@pytest.mark.parametrize(
    ("window", "minutes", "fires"),
    [
        ("{after: '11:00', before: '13:00'}", 0, True),
        ("{after: '11:00', before: '12:00'}", 0, False),  # before is exclusive
        ("{after: '22:00', before: '06:00'}", 0, False),  # wraps midnight: 12:00 is outside
        ("{after: '22:00', before: '06:00'}", 11 * 60, True),  # 23:00
        ("{weekday: mon}", 0, True),
        ("{weekday: [sat, sun]}", 0, False),
    ],
)
def test_time_condition_uses_the_fire_time_in_utc(window, minutes, fires):
    loop = _hot_rule(f"[{{condition: time, {window[1:-1]}}}]")
    fired = loop.feed(status(SENSOR, "temp_current", 310, at(minutes)))
    assert bool(fired) is fires


@pytest.mark.parametrize(
    ("conditions", "fires"),
    [
        ("[{condition: and, conditions: [{condition: time, weekday: mon}, {condition: time, before: '13:00'}]}]", True),
        (
            "[{condition: and, conditions: [{condition: time, weekday: mon}, {condition: time, before: '11:00'}]}]",
            False,
        ),
        ("[{condition: or, conditions: [{condition: time, weekday: sun}, {condition: time, before: '13:00'}]}]", True),
        ("[{condition: or, conditions: [{condition: time, weekday: sun}, {condition: time, before: '11:00'}]}]", False),
        ("[{condition: not, conditions: [{condition: time, weekday: sun}]}]", True),
        ("[{condition: not, conditions: [{condition: time, weekday: sun}, {condition: time, weekday: mon}]}]", False),
    ],
)
def test_and_or_not_combine_conditions(conditions, fires):
    fired = _hot_rule(conditions).feed(status(SENSOR, "temp_current", 310, at(0)))
    assert bool(fired) is fires


def test_cooldown_per_rule_suppresses_fires_within_the_duration():
    loop = _hot_rule(cooldown="10m")
    loop.feed(status(SENSOR, "temp_current", 310, at(0)))
    loop.feed(status(SENSOR, "temp_current", 290, at(1)))
    assert loop.feed(status(SENSOR, "temp_current", 310, at(9, 59))) == []


def test_cooldown_per_rule_allows_a_fire_after_the_duration():
    loop = _hot_rule(cooldown="10m")
    loop.feed(status(SENSOR, "temp_current", 310, at(0)))
    loop.feed(status(SENSOR, "temp_current", 290, at(1)))
    assert rule_ids(loop.feed(status(SENSOR, "temp_current", 310, at(10)))) == ["hot"]


OFFLINE_COOLDOWN = """
- id: offline
  triggers: [{{trigger: device_event, event: offline}}]
  actions: [{{action: log, message: x}}]
  cooldown: {cooldown}
"""


def test_cooldown_per_rule_covers_every_device():
    loop = EngineLoop(make_rules(OFFLINE_COOLDOWN.format(cooldown="30m")))
    loop.feed(device_event(PLUG, "offline", at(0)))
    assert loop.feed(device_event(OTHER_PLUG, "offline", at(1))) == []


def test_cooldown_per_device_lets_other_devices_fire():
    loop = EngineLoop(make_rules(OFFLINE_COOLDOWN.format(cooldown="{duration: 30m, per: device}")))
    loop.feed(device_event(PLUG, "offline", at(0)))
    assert [fired.device_id for fired in loop.feed(device_event(OTHER_PLUG, "offline", at(1)))] == [OTHER_PLUG]


def test_cooldown_per_device_suppresses_the_same_device():
    loop = EngineLoop(make_rules(OFFLINE_COOLDOWN.format(cooldown="{duration: 30m, per: device}")))
    loop.feed(device_event(PLUG, "offline", at(0)))
    assert loop.feed(device_event(PLUG, "offline", at(29))) == []
    assert rule_ids(loop.feed(device_event(PLUG, "offline", at(30)))) == ["offline"]


def test_a_suppressed_fire_does_not_extend_the_cooldown():
    loop = EngineLoop(make_rules(OFFLINE_COOLDOWN.format(cooldown="30m")))
    loop.feed(device_event(PLUG, "offline", at(0)))
    loop.feed(device_event(PLUG, "offline", at(20)))
    assert rule_ids(loop.feed(device_event(PLUG, "offline", at(30)))) == ["offline"]


def test_cooldown_applies_to_for_timers_as_of_their_due_time():
    loop = EngineLoop(
        make_rules("""
        - id: offline
          triggers: [{trigger: device_event, event: offline, for: 2m}]
          actions: [{action: log, message: x}]
          cooldown: 30m
        """)
    )
    loop.feed(device_event(PLUG, "offline", at(0)), device_event(OTHER_PLUG, "offline", at(1)))
    assert [fired.device_id for fired in loop.tick(at(5))] == [PLUG]
    assert loop.state[("offline", "")].last_fired_at == at(2)
