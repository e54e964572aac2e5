"""streams/rules/loader.py: broken files in tests/data/rules give problems naming file, line, rule id and what is wrong.

Partner: tests/unit/test_cli_rules.py (the same through ``tuya-archiver rules check``).
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from models.rules import NumericStateTrigger, TimeCondition, parse_duration
from streams.rules import RulesFileError, load_rules, parse_rules

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "rules"


def _problems(name: str) -> list[str]:
    path = DATA / name
    with pytest.raises(RulesFileError) as caught:
        load_rules(path)
    return [str(problem).removeprefix(f"{path}:") for problem in caught.value.problems]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "unknown_key.yaml",
            "9: rule 'greenhouse_fan_on_when_hot': triggers[0].abov: unknown key (did you mean 'above'?)",
        ),
        (
            "bad_duration.yaml",
            "10: rule 'greenhouse_fan_on_when_hot': triggers[0].for: not a duration: '5 minutes' "
            "(write e.g. 30s, 5m, 1h30m, 1d, HH:MM:SS or {minutes: 5})",
        ),
        (
            "unknown_alias.yaml",
            "13: rule 'greenhouse_fan_on_when_hot': actions[0].device: unknown device or alias 'greenhouse_fam' "
            "(did you mean 'greenhouse_fan'?)",
        ),
        (
            "above_not_below.yaml",
            "9: rule 'greenhouse_fan_on_when_hot': triggers[0].above: must be below 'below' (300 >= 200)",
        ),
        (
            "missing_target.yaml",
            "9: rule 'switch_off_when_offline': actions[0].device: required: triggers[0] (device_event) names no "
            "device or product to send to",
        ),
        (
            "bad_template.yaml",
            "9: rule 'notify_offline': actions[0].json.text: bad template: expected token 'end of print statement', "
            "got 'offline'",
        ),
        ("not_yaml.yaml", "4: not valid YAML: expected ',' or ']', but got '<scalar>'"),
    ],
    ids=lambda value: value if str(value).endswith(".yaml") else "",
)
def test_broken_file_names_line_rule_and_problem(name, expected):
    assert _problems(name) == [expected]


def test_every_problem_is_reported_at_once_in_line_order():
    assert _problems("many_problems.yaml") == [
        "3: devices.broken: 'not-an-id' is not a Tuya device id (10 or more letters and digits)",
        "7: rule 'first': triggers[0].trigger: unknown trigger kind 'numeric_sate' "
        "(one of: state, numeric_state, device_event, device_silent, user_event)",
        "11: rule 'first': actions[0].message: bad template: trigger has no 'valeu' "
        "(it has: code, device_id, event, from_value, kind, message_id, product_key, rule_id, time, uid, unit, value, "
        "value_scaled)",
        "17: rule 'second': actions: needs at least 1 item",
        "18: rule 'second': cooldown.duration: must be longer than 0s, not '0s'",
        "18: rule 'second': cooldown.per: Input should be 'rule' or 'device' (got 'everything')",
        "19: rules[2].id: required",
        "30: rule 'first': id: duplicate rule id (first on line 5)",
    ]


def test_rules_file_error_is_one_line_per_problem():
    with pytest.raises(RulesFileError) as caught:
        load_rules(DATA / "many_problems.yaml")
    assert str(caught.value).splitlines() == [str(problem) for problem in caught.value.problems]


def test_shipped_example_rules_are_valid():
    rule_set = load_rules(ROOT / "config" / "rules.yaml")
    kinds = {trigger.trigger for rule in rule_set.rules for trigger in rule.triggers}
    assert kinds == {"state", "numeric_state", "device_event", "device_silent", "user_event"}
    assert {"greenhouse_fan_on_when_hot", "notify_offline"} <= {rule.id for rule in rule_set.rules}


def test_bare_list_of_rules_loads():
    (rule,) = load_rules(DATA / "bare_list.yaml").rules
    assert rule.id == "plug_on" and rule.triggers[0].device == "bf1e8a0cd2e4a1b2c3x9kq"


def test_aliases_resolve_to_device_ids():
    rule_set = parse_rules(
        "devices: {sensor: demo0000greenhouse01}\n"
        "rules: [{id: r, triggers: [{trigger: numeric_state, device: sensor, code: t, above: 1}], "
        "actions: [{action: log, message: x}]}]"
    )
    assert rule_set.rules[0].triggers[0].device == "demo0000greenhouse01"
    assert rule_set.alias_of("demo0000greenhouse01") == "sensor"


@pytest.mark.parametrize("text", ["", "# only comments\n", "rules: []\n", "devices: {}\nrules:\n"])
def test_empty_files_have_no_rules(text):
    assert parse_rules(text).rules == ()


def test_unreadable_file_is_one_problem_without_a_line(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(RulesFileError) as caught:
        load_rules(missing)
    assert str(caught.value) == f"{missing}: cannot read the rules file: No such file or directory"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[1]\n", "<rules>:1: rules[0]: must be a mapping (key: value), not 1"),
        ("rulez: []\n", "<rules>:1: rulez: unknown key (the file has 'devices:' and 'rules:') (did you mean 'rules'?)"),
        ("rules: {id: x}\n", "<rules>:1: rules: must be a list of rules (each item starting with '- id:')"),
        ("just text\n", "<rules>:1: must be a mapping with 'devices:' and 'rules:', or a list of rules"),
    ],
)
def test_file_shape_problems(text, expected):
    with pytest.raises(RulesFileError) as caught:
        parse_rules(text)
    assert str(caught.value) == expected


def _one_rule(body: str) -> str:
    with pytest.raises(RulesFileError) as caught:
        parse_rules(f"rules:\n  - id: r\n{body}")
    return str(caught.value)


def test_duplicate_yaml_keys_are_reported():
    text = "    actions: [{action: log, message: x}]\n    actions: [{action: log, message: y}]\n"
    text += "    triggers: [{trigger: user_event, event: registered}]\n"
    assert _one_rule(text) == "<rules>:4: rule 'r': actions: duplicate key (first on line 3)"


def test_device_and_product_together_are_refused():
    text = "    triggers: [{trigger: device_event, event: online, device: abcdef0123, product: key0}]\n"
    text += "    actions: [{action: log, message: x}]\n"
    assert _one_rule(text) == "<rules>:3: rule 'r': triggers[0]: give 'device' or 'product', not both"


def test_a_value_that_is_not_an_id_or_alias_is_an_unknown_device():
    text = "    triggers: [{trigger: device_event, event: online, device: kitchen}]\n"
    text += "    actions: [{action: log, message: x}]\n"
    expected = (
        "triggers[0].device: unknown device or alias 'kitchen' (add it to the devices: map, or give the device id)"
    )
    assert _one_rule(text) == f"<rules>:3: rule 'r': {expected}"


def test_condition_without_device_needs_a_device_trigger():
    text = "    triggers: [{trigger: user_event, event: registered}]\n"
    text += "    conditions: [{condition: not, conditions: [{condition: state, code: switch_1, state: true}]}]\n"
    text += "    actions: [{action: log, message: x}]\n"
    expected = "conditions[0].conditions[0].device: required: triggers[0] (user_event) has no device to look at"
    assert _one_rule(text) == f"<rules>:4: rule 'r': {expected}"


def test_yaml_boolean_words_get_a_hint():
    with pytest.raises(RulesFileError) as caught:
        parse_rules("rules: [{id: off, triggers: [{trigger: user_event, event: registered}], actions: []}]")
    assert "quote the text" in str(caught.value.problems[0])


def test_clock_times_are_not_read_as_base_60_numbers():
    rule_set = parse_rules(
        "rules: [{id: r, triggers: [{trigger: user_event, event: registered}], "
        "conditions: [{condition: time, after: 22:30, before: 06:15}], actions: [{action: log, message: x}]}]"
    )
    condition = rule_set.rules[0].conditions[0]
    assert isinstance(condition, TimeCondition) and (condition.after, condition.before) == (time(22, 30), time(6, 15))


def _parse_problems(text: str) -> list[str]:
    with pytest.raises(RulesFileError) as caught:
        parse_rules(text, source="rules.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_a_bare_number_is_no_time_of_day():
    """Before, 22 became 22 seconds past midnight in UTC: accepted, then a crash comparing it with every record."""
    problems = _parse_problems(
        "rules: [{id: night, triggers: [{trigger: user_event, event: registered}], "
        "conditions: [{condition: time, after: 22, before: '06:00'}], actions: [{action: log, message: x}]}]"
    )
    assert problems == [
        "rules.yaml:1: rule 'night': conditions[0].after: not a time of day: 22 (write HH:MM or HH:MM:SS, quoted)"
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://[::1/alerts", "not a URL: Invalid IPv6 URL"),
        ("http://hooks.example:80a/x", "not a URL: Port could not be cast to integer value as '80a'"),
        ("http:///alerts", "a URL needs a host"),
    ],
)
def test_a_webhook_url_no_request_can_be_sent_to_is_a_problem(url, why):
    # Accepted before; the sender's post then raised for every fire.
    problems = _parse_problems(
        "rules: [{id: r, triggers: [{trigger: user_event, event: registered}], "
        f"actions: [{{action: webhook, url: '{url}'}}]}}]"
    )
    assert problems == [f"rules.yaml:1: rule 'r': actions[0].url: {why}"]


def test_an_unquoted_date_is_sent_as_the_text_written():
    rule_set = parse_rules(
        "rules: [{id: r, triggers: [{trigger: user_event, event: registered}], "
        "actions: [{action: webhook, url: 'https://hooks.example/a', json: {until: 2027-01-01}}]}]"
    )
    assert rule_set.rules[0].actions[0].body == {"until": "2027-01-01"}


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("value: !!binary aGVsbG8=", "Object of type bytes is not JSON serializable"),
        ("value: .nan", "Out of range float values are not JSON compliant"),
        ("value: !!set {a, b}", "Object of type set is not JSON serializable"),
    ],
)
def test_a_command_value_json_cannot_hold_is_a_problem(written, why):
    """The outbox row holds the value as JSON: before, the insert failed in the batch's transaction, every time."""
    problems = _parse_problems(
        "rules:\n- id: r\n  triggers: [{trigger: user_event, event: registered}]\n  actions:\n"
        f"  - action: tuya.send_command\n    device: bf1e8a0cd2e4a1b2c3x9kq\n    commands:\n    - code: switch_1\n"
        f"      {written}\n"
    )
    assert len(problems) == 1 and "actions[0].commands[0].value: not a JSON value" in problems[0] and why in problems[0]


@pytest.mark.parametrize("template", ["{{ trigger.value | rount(1) }}", "{{ trigger.value is nosuchtest }}"])
def test_an_unknown_filter_or_test_is_a_problem_not_a_traceback(template):
    problems = _parse_problems(
        "rules: [{id: r, triggers: [{trigger: user_event, event: registered}], "
        f"actions: [{{action: log, message: '{template}'}}]}}]"
    )
    assert len(problems) == 1 and "rule 'r': actions[0].message: bad template: No " in problems[0]


@pytest.mark.parametrize(
    "written", ["9999999999d", ".inf", "99999999999999999", "{days: 1000000000}", "3000000d", "36501d"]
)
def test_a_duration_too_long_for_a_timer_is_a_problem(written):
    problems = _parse_problems(
        f"rules: [{{id: r, triggers: [{{trigger: device_silent, for: {written}}}], "
        "actions: [{action: log, message: x}]}]"
    )
    assert len(problems) == 1 and "triggers[0].for: too long a duration" in problems[0]


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        ("1.5m", 90),
        ("00:05:00", 300),
        ("1:30", 5400),
        (90, 90),
        ({"minutes": 5}, 300),
    ],
)
def test_durations_accept_the_documented_forms(written, seconds):
    assert parse_duration(written) == timedelta(seconds=seconds)


@pytest.mark.parametrize("written", ["5 minutes", "0s", -1, True, {"fortnights": 1}, "m5"])
def test_durations_refuse_anything_else(written):
    with pytest.raises(ValueError):
        parse_duration(written)


def test_numeric_state_needs_a_bound():
    text = "    triggers: [{trigger: numeric_state, device: abcdef0123, code: t}]\n"
    text += "    actions: [{action: log, message: x}]\n"
    assert _one_rule(text) == "<rules>:3: rule 'r': triggers[0]: needs 'above', 'below' or both"
    assert NumericStateTrigger.model_fields["above"].default is None
