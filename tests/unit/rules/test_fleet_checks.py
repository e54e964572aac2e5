"""streams/rules/fleet_checks.py through the loader: thresholds with a unit against an in-memory data-point catalog.

Partner: tests/unit/test_cli_rules.py (the same through ``tuya-archiver rules check`` and a SQLite archive).
"""

from __future__ import annotations

import textwrap

import pytest

from streams.fleet.catalog import Catalog
from streams.rules import RulesFileError, parse_rules
from tests.unit.rules.builders import (
    DEVICES_YAML,
    PLUG,
    PLUG_PRODUCT,
    SENSOR_PRODUCT,
    catalog,
    point,
)

# The sensor's product (the sensor's and the fan's devices are known to be of it) and the plugs' product.
SPECS_POINTS = (
    point("temp_current", unit="℃", scale=1),
    point("battery_state", type="Enum"),
    point("cur_power", unit="W", scale=1, product=PLUG_PRODUCT),
)
SPECS = catalog(*SPECS_POINTS)
SYNC = "(run `tuya-archiver sync`)"


def _checked(rules_yaml: str, specs: Catalog = SPECS) -> tuple[list[str], list[str]]:
    """The problems, and what could not be checked yet (no problems: the worker runs such rules)."""
    text = DEVICES_YAML + "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  ")
    try:
        rule_set = parse_rules(text, source="test.yaml", catalog=specs)
    except RulesFileError as exc:
        return [str(p).removeprefix("test.yaml:") for p in exc.problems], [
            str(note).removeprefix("test.yaml:") for note in exc.unchecked
        ]
    return [], [note.removeprefix("test.yaml:") for note in rule_set.unchecked]


def _problems(rules_yaml: str, specs: Catalog = SPECS) -> list[str]:
    return _checked(rules_yaml, specs)[0]


def _unchecked(rules_yaml: str, specs: Catalog = SPECS) -> list[str]:
    problems, unchecked = _checked(rules_yaml, specs)
    assert problems == []
    return unchecked


def _trigger(selector: str, bounds: str, code: str = "temp_current") -> str:
    return f"""
    - id: r
      triggers: [{{trigger: numeric_state, {selector}, code: {code}, {bounds}}}]
      actions: [{{action: log, message: x}}]
    """


def test_a_unit_that_matches_the_points_after_normalising_is_no_problem():
    assert _problems(_trigger("device: sensor", "above: 30 °C")) == []


def test_a_unit_other_than_the_points_is_reported_on_its_key():
    assert _problems(_trigger("device: sensor", "above: 20 °C, below: 86 °F")) == [
        "8: rule 'r': triggers[0].above: is not in the unit of 'below' (20 °C and 86 °F): write both in one unit, "
        "or both as raw values",
        f"8: rule 'r': triggers[0].below: temp_current of product {SENSOR_PRODUCT}: unit °F is not the data "
        "point's unit (°C)",
    ]


def test_a_unit_on_a_point_that_is_no_number_is_reported():
    assert _problems(_trigger("device: sensor", "below: 10 %", code="battery_state")) == [
        f"8: rule 'r': triggers[0].below: battery_state of product {SENSOR_PRODUCT}: the data point is Enum, "
        "not a number with a unit"
    ]


def test_a_code_the_products_spec_does_not_have_is_reported():
    assert _problems(_trigger("device: sensor", "above: 30 °C", code="temp_curent")) == [
        f"8: rule 'r': triggers[0].above: product {SENSOR_PRODUCT} has no data point 'temp_curent'"
    ]


def test_a_device_whose_product_is_unknown_asks_for_a_sync():
    assert _unchecked(_trigger(f"device: {PLUG}", "above: 3000 W", code="cur_power")) == [
        f"8: rule 'r': triggers[0].above: cannot check the unit: the archive does not know device {PLUG}'s "
        f"product yet {SYNC}"
    ]


def test_a_product_without_a_spec_asks_for_a_sync():
    assert _unchecked(_trigger("product: otherproduct01", "above: 3000 W", code="cur_power")) == [
        f"8: rule 'r': triggers[0].above: cannot check the unit: the archive has no specification of product "
        f"otherproduct01 yet {SYNC}"
    ]


def test_a_product_selector_is_checked_on_the_products_spec():
    assert _problems(_trigger(f"product: {PLUG_PRODUCT}", "above: 3 kW", code="cur_power")) == [
        f"8: rule 'r': triggers[0].above: cur_power of product {PLUG_PRODUCT}: unit kW is not the data point's unit (W)"
    ]


def test_any_device_is_checked_on_every_product_with_the_code():
    other = point("cur_power", unit="kW", scale=3, product="otherproduct01")
    rule = """
    - id: r
      triggers: [{trigger: numeric_state, code: cur_power, above: 3000 W}]
      actions: [{action: log, message: x}]
    """
    assert _problems(rule, catalog(*SPECS_POINTS, other)) == [
        "8: rule 'r': triggers[0].above: cur_power of product otherproduct01: unit W is not the data point's unit (kW)"
    ]
    assert _unchecked(rule.replace("cur_power", "add_ele")) == [
        f"8: rule 'r': triggers[0].above: cannot check the unit: no product in the archive has a data point "
        f"'add_ele' yet {SYNC}"
    ]


def test_a_condition_without_device_is_checked_on_the_triggers_devices_once():
    assert _checked("""
    - id: r
      triggers:
        - {trigger: state, device: sensor, code: temp_current}
        - {trigger: state, device: sensor, code: battery_state}
        - {trigger: state, device: plug, code: switch_1}
      conditions:
        - {condition: numeric_state, code: temp_current, above: 80 °F}
      actions: [{action: log, message: x}]
    """) == (
        [
            f"13: rule 'r': conditions[0].above: temp_current of product {SENSOR_PRODUCT}: unit °F is not the data "
            "point's unit (°C)"
        ],
        [
            f"13: rule 'r': conditions[0].above: cannot check the unit: the archive does not know device {PLUG}'s "
            f"product yet {SYNC}"
        ],
    )


def test_a_condition_with_device_is_checked_on_that_device():
    assert (
        _problems("""
    - id: r
      triggers: [{trigger: state, device: plug, code: switch_1}]
      conditions: [{condition: numeric_state, device: sensor, code: temp_current, below: 10 °C}]
      actions: [{action: log, message: x}]
    """)
        == []
    )


@pytest.mark.parametrize("specs", [SPECS, Catalog()], ids=["known", "empty"])
def test_bare_numbers_are_never_checked_against_the_archive(specs):
    assert _problems(_trigger(f"device: {PLUG}", "above: 30000", code="cur_power"), specs) == []


def test_without_a_catalog_unit_rules_load_as_the_worker_loads_them():
    text = DEVICES_YAML + "rules:\n" + textwrap.indent(textwrap.dedent(_trigger("device: plug", "above: 3 kW")), "  ")
    assert parse_rules(text).rules[0].id == "r"


# --- codes ------------------------------------------------------------------------------------------------------


def test_a_code_the_products_specification_lacks_is_a_problem_to_command_or_negate_and_else_a_note():
    # A typo passed rules check unless it sat beside a unit: the rule then never fired, or its command failed at Tuya.
    # A code read may be one the device reports outside its specification, which the worker runs: a note; but under
    # a not: a value never reported makes the condition hold on every fire.
    assert _checked("""
    - id: r
      triggers: [{trigger: state, device: sensor, code: temp_curent}]
      conditions:
        - {condition: not, conditions: [{condition: numeric_state, device: sensor, code: batery_state, above: 1}]}
      actions: [{action: tuya.send_command, device: sensor, commands: [{code: swich_1, value: true}]}]
    """) == (
        [
            f"10: rule 'r': conditions[0].conditions[0].code: product {SENSOR_PRODUCT} has no data point "
            "'batery_state' in its specification",
            f"11: rule 'r': actions[0].commands[0].code: product {SENSOR_PRODUCT} has no data point 'swich_1' in its "
            "specification",
        ],
        [
            f"8: rule 'r': triggers[0].code: product {SENSOR_PRODUCT} has no data point 'temp_curent' in its "
            "specification"
        ],
    )  # fmt: skip


def test_a_command_of_a_code_its_product_only_reports_is_a_problem():
    specs = catalog(*SPECS_POINTS, point("switch_1", type="Boolean", commandable=True))
    assert _problems(
        """
    - id: r
      triggers: [{trigger: state, device: sensor, code: switch_1}]
      actions: [{action: tuya.send_command, commands: [{code: switch_1, value: true}, {code: temp_current, value: 1}]}]
    """,
        specs,
    ) == [
        f"9: rule 'r': actions[0].commands[1].code: temp_current of product {SENSOR_PRODUCT} takes no commands "
        "(it is reported only)"
    ]


def test_codes_of_devices_or_products_without_a_specification_are_left_to_the_worker():
    assert _checked("""
    - id: r
      triggers:
        - {trigger: state, device: plug, code: anything}
        - {trigger: state, product: unknownproduct01, code: whatever}
        - {trigger: state, code: any_device_code}
      actions: [{action: log, message: x}]
    """) == ([], [])
