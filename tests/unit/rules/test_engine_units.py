"""Thresholds with units through streams/rules/engine.py: triggers, conditions, ``for:`` timers, templates, and what
the engine reports when it cannot compare (on an injected clock, with in-memory catalogs).

Partners: test_units.py (parsing and conversion), test_engine.py (the same semantics with raw numbers).
"""

from __future__ import annotations

import pytest

from streams.rules import Unmeasured, evaluate
from tests.unit.rules.builders import (
    FAN,
    PLUG,
    PLUG_PRODUCT,
    SENSOR,
    EngineLoop,
    at,
    catalog,
    make_rules,
    point,
    rule_ids,
    status,
)

TEMPERATURE = point("temp_current", unit="℃", scale=1)
SPECS = catalog(TEMPERATURE)

HOT = """
- id: hot
  triggers:
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 30 °C}
  actions:
    - {action: log, message: "{{ trigger.value_scaled }} {{ trigger.unit }} ({{ trigger.value }} raw)"}
"""

HOT_FOR_5M = """
- id: hot
  triggers:
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 30 °C, for: 5m}
  actions:
    - {action: log, message: hot}
"""


@pytest.fixture
def hot() -> EngineLoop:
    return EngineLoop(make_rules(HOT), SPECS.point)


@pytest.fixture
def hot_for_5m() -> EngineLoop:
    return EngineLoop(make_rules(HOT_FOR_5M), SPECS.point)


def test_unit_trigger_fires_on_crossing_the_physical_threshold(hot):
    assert hot.feed(status(SENSOR, "temp_current", 290, at(0))) == []
    assert rule_ids(hot.feed(status(SENSOR, "temp_current", 301, at(1)))) == ["hot"]


def test_unit_trigger_bound_is_strict(hot):
    assert hot.feed(status(SENSOR, "temp_current", 300, at(0))) == []


def test_unit_trigger_does_not_fire_again_while_in_range_and_rearms_after_leaving(hot):
    hot.feed(status(SENSOR, "temp_current", 310, at(0)))
    assert hot.feed(status(SENSOR, "temp_current", 320, at(1))) == []
    hot.feed(status(SENSOR, "temp_current", 290, at(2)))
    assert rule_ids(hot.feed(status(SENSOR, "temp_current", 305, at(3)))) == ["hot"]


def test_templates_get_the_scaled_value_and_unit_and_the_raw_value(hot):
    (fired,) = hot.feed(status(SENSOR, "temp_current", 301, at(0)))
    assert fired.effect.message == "30.1 °C (301 raw)"
    assert (fired.trigger.value, fired.trigger.value_scaled, fired.trigger.unit) == (301, 30.1, "°C")


def test_unit_trigger_with_a_negative_threshold():
    loop = EngineLoop(
        make_rules("""
        - id: frost
          triggers: [{trigger: numeric_state, device: sensor, code: temp_current, below: -5 °C}]
          actions: [{action: log, message: frost}]
        """),
        SPECS.point,
    )
    assert loop.feed(status(SENSOR, "temp_current", -50, at(0))) == []
    assert rule_ids(loop.feed(status(SENSOR, "temp_current", -51, at(1)))) == ["frost"]


def test_unit_trigger_for_fires_on_tick_once_held_long_enough(hot_for_5m):
    assert hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0))) == []
    assert hot_for_5m.tick(at(4, 59)) == []
    (fired,) = hot_for_5m.tick(at(5))
    assert fired.fired_at == at(5) and fired.trigger.value_scaled == 31.0


def test_unit_trigger_for_is_cancelled_when_the_physical_value_leaves_the_range(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0)))
    hot_for_5m.feed(status(SENSOR, "temp_current", 300, at(3)))
    assert hot_for_5m.tick(at(10)) == []


def test_unit_trigger_uses_the_product_the_message_names():
    loop = EngineLoop(
        make_rules(f"""
        - id: overload
          triggers: [{{trigger: numeric_state, product: {PLUG_PRODUCT}, code: cur_power, above: 3000 W}}]
          actions: [{{action: log, message: x}}]
        """),
        catalog(point("cur_power", unit="W", scale=1, product=PLUG_PRODUCT), devices={}).point,
    )
    assert loop.feed(status(PLUG, "cur_power", 30000, at(0), product_key=PLUG_PRODUCT)) == []
    assert rule_ids(loop.feed(status(PLUG, "cur_power", 30001, at(1), product_key=PLUG_PRODUCT))) == ["overload"]


def test_without_a_spec_a_unit_trigger_never_fires_and_says_so_once_per_evaluation():
    loop = EngineLoop(make_rules(HOT))
    records = [status(SENSOR, "temp_current", value, at(i)) for i, value in enumerate((310, 290, 400))]
    assert loop.feed(*records) == []
    assert loop.unmeasured == [
        Unmeasured(
            rule_id="hot",
            device_id=SENSOR,
            code="temp_current",
            why="the archive has no specification of this data point yet: run `tuya-archiver sync`",
        )
    ]


def test_a_unit_other_than_the_points_never_matches():
    loop = EngineLoop(make_rules(HOT), catalog(point("temp_current", unit="℉", scale=1)).point)
    assert loop.feed(status(SENSOR, "temp_current", 999, at(0))) == []
    assert [item.why for item in loop.unmeasured] == ["unit °C is not the data point's unit (°F)"]


def test_a_spec_that_arrives_later_makes_the_next_reading_an_edge():
    loop = EngineLoop(make_rules(HOT))
    assert loop.feed(status(SENSOR, "temp_current", 310, at(0))) == []
    loop.points = SPECS.point  # sync stored the sensor's specification
    assert rule_ids(loop.feed(status(SENSOR, "temp_current", 311, at(1)))) == ["hot"]


def test_bare_numbers_stay_raw_when_the_spec_is_known():
    loop = EngineLoop(
        make_rules("""
        - id: hot
          triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 300}]
          actions: [{action: log, message: "{{ trigger.value }}"}]
        """),
        SPECS.point,
    )
    assert loop.feed(status(SENSOR, "temp_current", 250, at(0))) == []  # 25.0 °C, but 250 is not above 300
    (fired,) = loop.feed(status(SENSOR, "temp_current", 301, at(1)))
    assert fired.effect.message == "301" and loop.unmeasured == []


def test_a_bare_number_rule_fires_the_same_with_or_without_a_catalog():
    rules = make_rules(HOT_FOR_5M.replace("above: 30 °C", "above: 300"))
    values = {0: 290, 1: 310, 2: 320, 3: 290, 4: 330, 10: 340}  # a timer from 1, cancelled at 3, one from 4 fires
    records = [status(SENSOR, "temp_current", value, at(minute)) for minute, value in values.items()]
    without = evaluate(rules, records, {}, {}, at(10))
    with_specs = evaluate(rules, records, {}, {}, at(10), points=SPECS.point)
    assert [(f.idempotency_key, f.fired_at) for f in without.fired] == [
        (f.idempotency_key, f.fired_at) for f in with_specs.fired
    ]
    assert [f.fired_at for f in without.fired] == [at(9)]
    armed = [[s.armed for s in state.triggers.values()] for state in without.state_changes.values()]
    assert armed == [[s.armed for s in state.triggers.values()] for state in with_specs.state_changes.values()]


# --- conditions -----------------------------------------------------------------------------------------------------

FAN_ON_IF_HOT_CONDITIONS = "[{condition: numeric_state, device: sensor, code: temp_current, above: 30 °C}]"
FAN_ON_IF_HOT = f"""
- id: fan_on_if_hot
  triggers: [{{trigger: state, device: fan, code: switch_1, to: true}}]
  conditions: {FAN_ON_IF_HOT_CONDITIONS}
  actions: [{{action: log, message: x}}]
"""


@pytest.mark.parametrize(("raw", "fires"), [(301, True), (300, False), (250, False)])
def test_unit_condition_compares_the_physical_value(raw, fires):
    loop = EngineLoop(make_rules(FAN_ON_IF_HOT), SPECS.point)
    loop.latest[(SENSOR, "temp_current")] = raw
    assert rule_ids(loop.feed(status(FAN, "switch_1", True, at(0)))) == (["fan_on_if_hot"] if fires else [])


def test_unit_condition_without_a_spec_fails_and_says_so():
    loop = EngineLoop(make_rules(FAN_ON_IF_HOT))
    loop.latest[(SENSOR, "temp_current")] = 400
    assert loop.feed(status(FAN, "switch_1", True, at(0))) == []
    assert [(item.rule_id, item.device_id, item.code) for item in loop.unmeasured] == [
        ("fan_on_if_hot", SENSOR, "temp_current")
    ]


@pytest.mark.parametrize(
    ("conditions", "fires"),
    [
        ("[{condition: not, conditions: [UNIT]}]", False),  # not unknown: unknown, not true
        ("[{condition: or, conditions: [UNIT, {condition: time, weekday: mon}]}]", True),  # unknown or true
        ("[{condition: or, conditions: [UNIT, {condition: time, weekday: sun}]}]", False),
        (
            "[{condition: not, conditions: [{condition: and, conditions: [UNIT, {condition: time, weekday: sun}]}]}]",
            True,
        ),
    ],
)
def test_a_unit_condition_without_a_spec_is_neither_true_nor_false(conditions, fires):
    # "Heater on unless warm" sent its command on a fresh archive: the unknown threshold, negated, held.
    unit = "{condition: numeric_state, device: sensor, code: temp_current, above: 25 °C}"
    loop = EngineLoop(make_rules(FAN_ON_IF_HOT.replace(FAN_ON_IF_HOT_CONDITIONS, conditions.replace("UNIT", unit))))
    loop.latest[(SENSOR, "temp_current")] = 300  # 30 °C, once the specification is known
    assert rule_ids(loop.feed(status(FAN, "switch_1", True, at(0)))) == (["fan_on_if_hot"] if fires else [])


def test_unit_condition_on_the_triggering_device_uses_the_messages_product():
    loop = EngineLoop(
        make_rules(f"""
        - id: switched_on_at_mains
          triggers: [{{trigger: state, product: {PLUG_PRODUCT}, code: switch_1, to: true}}]
          conditions: [{{condition: numeric_state, code: cur_voltage, above: 200 V}}]
          actions: [{{action: log, message: x}}]
        """),
        catalog(point("cur_voltage", unit="V", scale=1, product=PLUG_PRODUCT), devices={}).point,
    )
    loop.latest[(PLUG, "cur_voltage")] = 2301
    assert rule_ids(loop.feed(status(PLUG, "switch_1", True, at(0), product_key=PLUG_PRODUCT))) == [
        "switched_on_at_mains"
    ]


def test_unit_condition_is_read_when_a_timer_fires_on_a_tick():
    loop = EngineLoop(
        make_rules("""
        - id: fan_on_if_still_hot
          triggers: [{trigger: state, device: fan, code: switch_1, to: true, for: 1m}]
          conditions: [{condition: numeric_state, device: sensor, code: temp_current, above: 30 °C}]
          actions: [{action: log, message: x}]
        """),
        SPECS.point,
    )
    loop.latest[(SENSOR, "temp_current")] = 310
    loop.feed(status(FAN, "switch_1", True, at(0)))
    loop.latest[(SENSOR, "temp_current")] = 290
    assert loop.tick(at(1)) == []
    loop.feed(status(FAN, "switch_1", False, at(2)), status(FAN, "switch_1", True, at(3)))
    loop.latest[(SENSOR, "temp_current")] = 310
    assert rule_ids(loop.tick(at(4))) == ["fan_on_if_still_hot"]
