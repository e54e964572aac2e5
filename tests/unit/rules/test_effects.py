"""Fired actions of streams/rules/effects.py through the engine: targets, templates, keys, dry run; state rows.

Partner: test_engine.py (trigger semantics).
"""

from __future__ import annotations

import json

import msgspec

from streams.rules import FiredAction, PostWebhook, RuleState, SendCommands, TemplateFailed, WriteLog, evaluate
from tests.unit.rules.builders import (
    FAN,
    OTHER_PLUG,
    PLUG,
    PLUG_PRODUCT,
    SENSOR,
    EngineLoop,
    at,
    device_event,
    make_rules,
    status,
)

OVERLOAD = f"""
- id: overload
  triggers: [{{trigger: numeric_state, product: {PLUG_PRODUCT}, code: cur_power, above: 30000}}]
  actions:
    - action: tuya.send_command
      commands: [{{code: switch_1, value: false}}, {{code: countdown_1, value: "{{{{ trigger.value // 100 }}}}"}}]
"""


def test_send_command_without_device_goes_to_the_triggering_device():
    loop = EngineLoop(make_rules(OVERLOAD))
    (fired,) = loop.feed(status(OTHER_PLUG, "cur_power", 31000, at(0), product_key=PLUG_PRODUCT))
    assert fired.kind == "tuya.send_command" and fired.device_id == OTHER_PLUG
    assert fired.effect == SendCommands(
        device_id=OTHER_PLUG, commands=[{"code": "switch_1", "value": False}, {"code": "countdown_1", "value": 310}]
    )


def test_send_command_to_an_alias_resolves_the_device_id():
    loop = EngineLoop(
        make_rules("""
        - id: fan_on
          triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 300}]
          actions: [{action: tuya.send_command, device: fan, commands: [{code: switch_1, value: true}]}]
        """)
    )
    (fired,) = loop.feed(status(SENSOR, "temp_current", 310, at(0)))
    assert fired.device_id == FAN and fired.effect.device_id == FAN


def test_a_template_that_is_one_expression_keeps_its_type():
    loop = EngineLoop(
        make_rules("""
        - id: mirror
          triggers: [{trigger: state, device: plug, code: switch_1}]
          actions:
            - {action: tuya.send_command, device: fan, commands: [{code: switch_1, value: "{{ trigger.value }}"}]}
        """)
    )
    (fired,) = loop.feed(status(PLUG, "switch_1", True, at(0)))
    assert fired.effect.commands == [{"code": "switch_1", "value": True}]


def test_webhook_body_templates_render_to_text():
    loop = EngineLoop(
        make_rules("""
        - id: offline
          triggers: [{trigger: device_event, event: offline}]
          actions:
            - action: webhook
              url: http://127.0.0.1:9000/alerts
              json: {text: "device {{ trigger.device_id }} {{ trigger.event }}", tags: [tuya, "{{ trigger.kind }}"]}
              timeout: 5s
        """)
    )
    (fired,) = loop.feed(device_event(PLUG, "offline", at(0)))
    assert fired.effect == PostWebhook(
        url="http://127.0.0.1:9000/alerts",
        body={"text": f"device {PLUG} offline", "tags": ["tuya", "device_event"]},
        headers={},
        timeout_s=5.0,
    )


def _webhook_fired_with(body: str) -> FiredAction:
    """What a webhook with the JSON ``body`` (YAML flow text) gives when the plug's switch changes."""
    loop = EngineLoop(
        make_rules(f"""
        - id: hook
          triggers: [{{trigger: state, device: plug, code: switch_1}}]
          actions: [{{action: webhook, url: "http://127.0.0.1:9000/at", json: {body}}}]
        """)
    )
    (fired,) = loop.feed(status(PLUG, "switch_1", True, at(0)))
    return fired


def test_a_time_from_a_template_is_iso_text_the_outbox_can_store():
    fired = _webhook_fired_with('{at: "{{ trigger.time }}"}')
    assert fired.effect.body == {"at": at(0).isoformat().replace("+00:00", "Z")}
    json.dumps(fired.effect.body)  # what the commands row's JSON column does: a datetime here stopped the worker


def test_a_template_that_gives_no_json_value_fails_at_fire_time_instead_of_the_commit():
    fired = _webhook_fired_with("""{codes: "{{ [1, 2] | map('string') }}"}""")
    assert isinstance(fired.effect, TemplateFailed) and "not a JSON value (add |list" in fired.effect.error


def test_a_template_failing_at_fire_time_gives_template_failed_and_no_command():
    loop = EngineLoop(
        make_rules("""
        - id: divide
          triggers: [{trigger: state, device: plug, code: mode}]
          actions: [{action: tuya.send_command, commands: [{code: level, value: "{{ 100 // trigger.value }}"}]}]
        """)
    )
    (fired,) = loop.feed(status(PLUG, "mode", 0, at(0)))
    assert fired.kind == "tuya.send_command"
    assert isinstance(fired.effect, TemplateFailed) and "division" in fired.effect.error


def test_log_action_renders_its_message():
    loop = EngineLoop(
        make_rules("""
        - id: changed
          triggers: [{trigger: state, device: plug, code: mode}]
          actions: [{action: log, level: warning, message: "{{ trigger.from_value }} -> {{ trigger.value }}"}]
        """)
    )
    loop.feed(status(PLUG, "mode", "white", at(0)))
    (fired,) = loop.feed(status(PLUG, "mode", "colour", at(1)))
    assert fired.effect == WriteLog(level="warning", message="white -> colour")


def test_idempotency_key_is_rule_message_and_action_index():
    loop = EngineLoop(make_rules(OVERLOAD + "    - {action: log, message: x}\n"))
    fired = loop.feed(status(PLUG, "cur_power", 31000, at(0), message_id="77:3:5:-1", product_key=PLUG_PRODUCT))
    assert [action.idempotency_key for action in fired] == ["overload:77:3:5:-1:0", "overload:77:3:5:-1:1"]


def test_redelivered_message_yields_the_same_idempotency_key():
    rule_set = make_rules(
        "[{id: went_offline, triggers: [{trigger: device_event, event: offline}], "
        "actions: [{action: log, message: x}]}]"
    )
    record = device_event(PLUG, "offline", at(0), message_id="5:6:0:-1")
    first = evaluate(rule_set, [record], {}, {}, at(0))
    again = evaluate(rule_set, [record], {}, {}, at(1))
    assert first.fired[0].idempotency_key == again.fired[0].idempotency_key == "went_offline:5:6:0:-1:0"


def test_device_silent_key_names_the_silence():
    loop = EngineLoop(
        make_rules(
            "[{id: quiet, triggers: [{trigger: device_silent, device: plug, for: 1h}], "
            "actions: [{action: log, message: x}]}]"
        )
    )
    loop.feed(status(PLUG, "switch_1", True, at(0)))
    (fired,) = loop.tick(at(60))
    assert fired.idempotency_key == f"quiet:silent:{PLUG}:{int(at(0).timestamp() * 1000)}:for0:0"


def test_a_rule_fires_once_per_message():
    loop = EngineLoop(
        make_rules("""
        - id: either
          triggers:
            - {trigger: numeric_state, device: plug, code: cur_power, above: 100}
            - {trigger: numeric_state, device: plug, code: cur_current, above: 100}
          actions: [{action: log, message: x}]
        """)
    )
    report = [
        status(PLUG, "cur_power", 200, at(0), message_id="m1"),
        status(PLUG, "cur_current", 200, at(0), message_id="m1", item_index=1),
    ]
    assert len(loop.feed(*report)) == 1


def test_dry_run_per_rule_marks_only_that_rule():
    loop = EngineLoop(make_rules(OVERLOAD.replace("- id: overload", "- id: overload\n  dry_run: true")))
    (fired,) = loop.feed(status(PLUG, "cur_power", 31000, at(0), product_key=PLUG_PRODUCT))
    assert fired.dry_run is True


def test_global_dry_run_marks_every_rule():
    loop = EngineLoop(make_rules(OVERLOAD, dry_run=True))
    (fired,) = loop.feed(status(PLUG, "cur_power", 31000, at(0), product_key=PLUG_PRODUCT))
    assert fired.dry_run is True


def test_fired_actions_encode_to_json():
    loop = EngineLoop(make_rules(OVERLOAD))
    (fired,) = loop.feed(status(PLUG, "cur_power", 31000, at(0), product_key=PLUG_PRODUCT))
    encoded = json.loads(msgspec.json.encode(fired))
    assert encoded["effect"]["kind"] == "tuya.send_command" and encoded["trigger"]["value"] == 31000


def test_rule_state_row_round_trips_through_json():
    loop = EngineLoop(
        make_rules("""
        - id: hot
          triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 300, for: 5m}]
          actions: [{action: log, message: x}]
          cooldown: {duration: 1h, per: device}
        """)
    )
    loop.feed(status(SENSOR, "temp_current", 310, at(0), message_id="1:1:0:-1"))
    loop.tick(at(5))
    loop.feed(status(SENSOR, "temp_current", 290, at(6)))
    loop.feed(status(SENSOR, "temp_current", 310, at(7), message_id="1:2:0:-1"))
    (state,) = loop.state.values()
    row = state.to_row()
    assert row["pending_since"] == at(7) and row["pending_message_id"] == "1:2:0:-1" and row["armed"] is False
    assert row["last_fired_at"] == at(5)
    assert RuleState.from_row({**row, "data": json.dumps(row["data"])}) == state


def test_a_rule_state_s_earlier_fires_round_trip_through_json():
    state = RuleState(rule_id="hot", device_id="", last_fired_at=at(22), earlier_fires=(at(2), at(15)))
    row = state.to_row()
    assert len(row["data"]["earlier_fires"]) == 2
    assert RuleState.from_row({**row, "data": json.dumps(row["data"])}) == state
    assert "earlier_fires" not in RuleState(rule_id="hot", device_id="", last_fired_at=at(2)).to_row()["data"]


def test_editing_a_trigger_drops_its_old_state():
    old = EngineLoop(
        make_rules(
            "[{id: hot, triggers: [{trigger: numeric_state, device: sensor, code: t, above: 300,"
            " for: 5m}], actions: [{action: log, message: x}]}]"
        )
    )
    old.feed(status(SENSOR, "t", 310, at(0)))
    edited = EngineLoop(
        make_rules(
            "[{id: hot, triggers: [{trigger: numeric_state, device: sensor, code: t, above: 305,"
            " for: 5m}], actions: [{action: log, message: x}]}]"
        )
    )
    edited.state = old.state
    assert edited.tick(at(10)) == []
    edited.feed(status(SENSOR, "t", 312, at(11)))
    (state,) = edited.state.values()
    assert len(state.triggers) == 1 and next(iter(state.triggers.values())).pending.time == at(11)
