"""Thresholds with units: parsing (models/rules.py), comparison (streams/rules/operators.py), the range check
(checks.py) and the summary's wording (describe.py).

Partners: test_engine_units.py (the engine with units), test_fleet_checks.py (units against the archive's catalog).
"""

from __future__ import annotations

import pytest

from models.rules import NumericStateTrigger, Threshold, parse_threshold
from streams.rules import RulesFileError, parse_rules
from streams.rules.describe import describe_rule
from streams.rules.operators import in_range, measured, unit_problem
from tests.unit.rules.builders import SENSOR, catalog, make_rules, point

C = Threshold(30.0, "°C")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (300, Threshold(300.0)),
        (12.5, Threshold(12.5)),
        (-5, Threshold(-5.0)),
        ("300", Threshold(300.0)),
        ("30 °C", Threshold(30.0, "°C")),
        ("30°C", Threshold(30.0, "°C")),
        ("-5 °C", Threshold(-5.0, "°C")),
        ("+3 kWh", Threshold(3.0, "kWh")),
        ("12.5 V", Threshold(12.5, "V")),
        (".5 A", Threshold(0.5, "A")),
        ("50%", Threshold(50.0, "%")),
        (" 30 ℃ ", Threshold(30.0, "℃")),
        ("30 °c", Threshold(30.0, "°c")),
        ("35 μg/m³", Threshold(35.0, "μg/m³")),
        ("1e3", Threshold(1000.0)),
    ],
)
def test_threshold_accepts_a_number_with_an_optional_unit(written, expected):
    assert parse_threshold(written) == expected


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("30 degrees", "not a number with an optional unit: '30 degrees' (write the unit as °C or °F)"),
        ("30 C", "not a number with an optional unit: '30 C' (write the unit as °C or °F)"),
        ("hot", "not a number with an optional unit: 'hot' (write e.g. 300 for a raw value, or 30 °C)"),
        ("30 °C today", "not a number with an optional unit: '30 °C today' (write e.g. 300 for a raw value, or 30 °C)"),
        ("°C 30", "not a number with an optional unit: '°C 30' (write e.g. 300 for a raw value, or 30 °C)"),
        ("", "not a number with an optional unit: '' (write e.g. 300 for a raw value, or 30 °C)"),
        (True, "not a number with an optional unit: True (write e.g. 300 for a raw value, or 30 °C)"),
        (float("nan"), "not a number with an optional unit: nan (write e.g. 300 for a raw value, or 30 °C)"),
        ({"value": 30}, "not a number with an optional unit: {'value': 30} (write e.g. 300 for a raw value, or 30 °C)"),
    ],
)
def test_threshold_refuses_anything_else_saying_what(written, message):
    with pytest.raises(ValueError) as caught:
        parse_threshold(written)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        ("above: 30 °C", Threshold(30.0, "°C")),
        ('above: "30 °C"', Threshold(30.0, "°C")),
        ("above: 30°C", Threshold(30.0, "°C")),
        ("above: -5 °C", Threshold(-5.0, "°C")),
        ('above: "12.5 V"', Threshold(12.5, "V")),
        ("above: 300", Threshold(300.0)),
    ],
)
def test_every_documented_yaml_form_loads(yaml, expected):
    rule_set = parse_rules(
        f"rules:\n  - id: r\n    triggers:\n      - trigger: numeric_state\n        device: {SENSOR}\n"
        f"        code: temp_current\n        {yaml}\n    actions: [{{action: log, message: x}}]\n"
    )
    (trigger,) = rule_set.rules[0].triggers
    assert isinstance(trigger, NumericStateTrigger) and trigger.above == expected


def test_a_bad_threshold_names_line_rule_and_key():
    with pytest.raises(RulesFileError) as caught:
        make_rules("""
        - id: hot
          triggers:
            - {trigger: numeric_state, device: sensor, code: temp_current, above: 30 degrees}
          actions: [{action: log, message: hot}]
        """)
    assert str(caught.value) == (
        "test.yaml:9: rule 'hot': triggers[0].above: not a number with an optional unit: '30 degrees' "
        "(write the unit as °C or °F)"
    )


def test_a_bare_threshold_dumps_as_the_number_it_always_was():
    # Trigger state is keyed by a fingerprint of the dump: rules files written before units keep their state.
    (rule,) = make_rules("""
    - id: r
      triggers: [{trigger: numeric_state, code: t, above: 300, below: 400}]
      actions: [{action: log, message: x}]
    """).rules
    assert rule.triggers[0].model_dump_json(by_alias=True).startswith('{"below":400.0,"above":300.0,')


def test_a_unit_threshold_dumps_as_its_text():
    (rule,) = make_rules("""
    - id: r
      triggers: [{trigger: numeric_state, code: t, above: 30°C}]
      actions: [{action: log, message: x}]
    """).rules
    assert rule.triggers[0].model_dump(by_alias=True)["above"] == "30 °C"


# --- conversion -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "scale", "physical"),
    [(26, 0, 26.0), (261, 1, 26.1), (2612, 2, 26.12), (26125, 3, 26.125), (-50, 1, -5.0), (-5, 2, -0.05)],
)
def test_a_unit_threshold_reads_raw_over_ten_to_the_scale(raw, scale, physical):
    assert measured(raw, C, point("temp_current", unit="℃", scale=scale)) == physical


def test_a_bare_threshold_reads_the_raw_value_whatever_the_point():
    assert measured(261, Threshold(300.0), point("temp_current", unit="℃", scale=1)) == 261.0
    assert measured(261, Threshold(300.0), None) == 261.0


@pytest.mark.parametrize(
    ("raw", "inside"),
    [(300, False), (301, True), (299, False), ("301", True), (True, False), ("hot", False), (float("nan"), False)],
)
def test_unit_bounds_are_strict_on_the_physical_value(raw, inside):
    assert in_range(raw, C, None, point("temp_current", unit="℃", scale=1)) is inside


def test_negative_thresholds_compare_below_zero():
    frost = point("temp_current", unit="°C", scale=1)
    below = Threshold(-5.0, "°C")
    assert in_range(-51, None, below, frost) and not in_range(-50, None, below, frost)
    assert in_range(-49, below, None, frost)


def test_units_compare_as_normalize_unit_spells_them():
    assert in_range(301, Threshold(30.0, "℃"), None, point("temp_current", unit="°C", scale=1))
    assert in_range(301, Threshold(30.0, "°c"), None, point("temp_current", unit="℃", scale=1))


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (None, "the archive has no specification of this data point yet: run `tuya-archiver sync`"),
        (point("temp_current", unit="℉", scale=1), "unit °C is not the data point's unit (°F)"),
        (point("temp_current", scale=1), "unit °C is not the data point's unit (it has none)"),
        (point("temp_current", type="Enum"), "the data point is Enum, not a number with a unit"),
    ],
    ids=["missing_spec", "other_unit", "no_unit", "not_numeric"],
)
def test_a_unit_threshold_without_a_fitting_point_never_matches(spec, why):
    assert measured(700, C, spec) is None
    assert not in_range(700, C, None, spec) and not in_range(-700, None, C, spec)
    assert unit_problem(C, None, spec) == why


def test_bare_thresholds_have_no_unit_problem():
    assert unit_problem(Threshold(300.0), None, None) is None
    assert unit_problem(C, None, point("temp_current", unit="℃", scale=1)) is None


# --- above < below --------------------------------------------------------------------------------------------------


def _range_problem(bounds: str) -> str:
    with pytest.raises(RulesFileError) as caught:
        make_rules(f"""
        - id: r
          triggers: [{{trigger: numeric_state, device: sensor, code: temp_current, {bounds}}}]
          actions: [{{action: log, message: x}}]
        """)
    return str(caught.value).removeprefix("test.yaml:8: rule 'r': triggers[0].above: ")


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ("above: 300, below: 200", "must be below 'below' (300 >= 200)"),
        ("above: 30 °C, below: 20 °C", "must be below 'below' (30 °C >= 20 °C)"),
        ("above: 30 ℃, below: 30 °C", "must be below 'below' (30 ℃ >= 30 °C)"),
        (
            "above: 30 °C, below: 400",
            "is not in the unit of 'below' (30 °C and 400): write both in one unit, or both as raw values",
        ),
        (
            "above: 30 °C, below: 90 °F",
            "is not in the unit of 'below' (30 °C and 90 °F): write both in one unit, or both as raw values",
        ),
    ],
)
def test_range_bounds_must_make_a_range_in_one_unit(bounds, message):
    assert _range_problem(bounds) == message


def test_range_in_one_unit_spelled_two_ways_loads():
    make_rules("""
    - id: r
      triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 20 ℃, below: 30 °C}]
      actions: [{action: log, message: x}]
    """)


def test_range_problems_of_nested_conditions_are_found():
    with pytest.raises(RulesFileError) as caught:
        make_rules("""
        - id: r
          triggers: [{trigger: state, device: sensor, code: switch_1}]
          conditions:
            - condition: not
              conditions: [{condition: numeric_state, code: temp_current, above: 3 V, below: 2 V}]
          actions: [{action: log, message: x}]
        """)
    assert str(caught.value) == (
        "test.yaml:11: rule 'r': conditions[0].conditions[0].above: must be below 'below' (3 V >= 2 V)"
    )


# --- wording --------------------------------------------------------------------------------------------------------

DESCRIBED = """
- id: r
  triggers:
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 300, for: 5m}
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 30 °C, below: 40 °C}
    - {trigger: numeric_state, device: sensor, code: temp_current, below: 90 °F}
    - {trigger: numeric_state, device: sensor, code: add_ele, above: 12.5 kWh}
  conditions:
    - {condition: numeric_state, device: sensor, code: humidity_value, below: 85}
    - {condition: numeric_state, code: temp_current, below: 35 °C}
  actions: [{action: log, message: x}]
"""


def _described(*points) -> list[str]:
    rule_set = make_rules(DESCRIBED)
    return describe_rule(rule_set.rules[0], rule_set, catalog(*points).point)[1:7]


def test_summary_shows_the_other_side_of_thresholds_when_the_spec_is_known():
    assert _described(
        point("temp_current", unit="℃", scale=1),
        point("add_ele", unit="kWh", scale=3),
        point("humidity_value", unit="%"),
    ) == [
        "  when  numeric_state temp_current above 300 (30.0 °C) for 5m on sensor",
        "  when  numeric_state temp_current between 30 °C (300 raw) and 40 °C (400 raw) on sensor",
        "  when  numeric_state temp_current below 90 °F on sensor",  # another unit: rules check reports it
        "  when  numeric_state add_ele above 12.5 kWh (12500 raw) on sensor",
        "  if    humidity_value below 85 (85 %) on sensor",
        "  if    temp_current below 35 °C on the triggering device",  # which device is not known
    ]


def test_the_other_side_of_a_raw_threshold_is_not_rounded_past_it():
    """Raw 12.5 at scale 0 is 12.5 %, and raw 300.5 at scale 1 is 30.05 °C: the data point's digits rounded them to
    12 and 30.1, which the rule does fire at."""
    rule_set = make_rules("""
- id: edges
  triggers:
    - {trigger: numeric_state, device: sensor, code: battery_percentage, below: 12.5}
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 300.5}
  actions:
    - {action: log, message: x}
""")
    points = catalog(point("battery_percentage", unit="%"), point("temp_current", unit="℃", scale=1)).point
    assert describe_rule(rule_set.rules[0], rule_set, points)[1:3] == [
        "  when  numeric_state battery_percentage below 12.5 (12.5 %) on sensor",
        "  when  numeric_state temp_current above 300.5 (30.05 °C) on sensor",
    ]


def test_summary_shows_thresholds_as_written_without_the_spec():
    assert _described() == [
        "  when  numeric_state temp_current above 300 for 5m on sensor",
        "  when  numeric_state temp_current between 30 °C and 40 °C on sensor",
        "  when  numeric_state temp_current below 90 °F on sensor",
        "  when  numeric_state add_ele above 12.5 kWh on sensor",
        "  if    humidity_value below 85 on sensor",
        "  if    temp_current below 35 °C on the triggering device",
    ]
