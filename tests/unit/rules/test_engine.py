"""Trigger semantics of streams/rules/engine.py and triggers.py, on an injected clock (no sleeping).

Partners: test_conditions.py (conditions, cooldowns), test_effects.py (actions, keys, dry run).
"""

from __future__ import annotations

import pytest

from streams.rules import evaluate
from streams.rules.operators import same_value
from tests.unit.rules.builders import (
    FAN,
    OTHER_PLUG,
    PLUG,
    PLUG_PRODUCT,
    SENSOR,
    SENSOR_PRODUCT,
    EngineLoop,
    at,
    device_event,
    make_rules,
    rule_ids,
    status,
    user_event,
)

HOT = """
- id: hot
  triggers:
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 300}
  actions:
    - {action: log, message: hot}
"""

HOT_FOR_5M = """
- id: hot
  triggers:
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 300, for: 5m}
  actions:
    - {action: log, message: hot}
"""


@pytest.fixture
def hot() -> EngineLoop:
    return EngineLoop(make_rules(HOT))


@pytest.fixture
def hot_for_5m() -> EngineLoop:
    return EngineLoop(make_rules(HOT_FOR_5M))


def test_numeric_state_fires_on_crossing_into_range(hot):
    assert hot.feed(status(SENSOR, "temp_current", 290, at(0))) == []
    assert rule_ids(hot.feed(status(SENSOR, "temp_current", 310, at(1)))) == ["hot"]


def test_numeric_state_first_value_in_range_fires(hot):
    assert rule_ids(hot.feed(status(SENSOR, "temp_current", 310, at(0)))) == ["hot"]


def test_numeric_state_does_not_fire_again_while_in_range(hot):
    hot.feed(status(SENSOR, "temp_current", 310, at(0)))
    assert hot.feed(status(SENSOR, "temp_current", 320, at(1)), status(SENSOR, "temp_current", 330, at(2))) == []


def test_numeric_state_rearms_after_leaving_the_range(hot):
    hot.feed(status(SENSOR, "temp_current", 310, at(0)))
    hot.feed(status(SENSOR, "temp_current", 290, at(1)))
    assert rule_ids(hot.feed(status(SENSOR, "temp_current", 305, at(2)))) == ["hot"]


def test_numeric_state_bounds_are_strict(hot):
    assert hot.feed(status(SENSOR, "temp_current", 300, at(0))) == []


def test_numeric_state_between_above_and_below():
    loop = EngineLoop(
        make_rules("""
        - id: mild
          triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 200, below: 250}]
          actions: [{action: log, message: mild}]
        """)
    )
    assert loop.feed(status(SENSOR, "temp_current", 260, at(0))) == []
    assert rule_ids(loop.feed(status(SENSOR, "temp_current", 220, at(1)))) == ["mild"]


def test_numeric_state_ignores_values_that_are_not_numbers(hot):
    assert hot.feed(status(SENSOR, "temp_current", True, at(0)), status(SENSOR, "temp_current", "hot", at(1))) == []


def test_numeric_state_only_listens_to_its_device_and_code(hot):
    assert hot.feed(status(FAN, "temp_current", 310, at(0)), status(SENSOR, "humidity", 310, at(0))) == []


def test_numeric_state_for_fires_on_tick_once_held_long_enough(hot_for_5m):
    assert hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0))) == []
    assert hot_for_5m.tick(at(4, 59)) == []
    fired = hot_for_5m.tick(at(5))
    assert rule_ids(fired) == ["hot"]
    assert fired[0].fired_at == at(5)


def test_numeric_state_for_is_cancelled_when_the_value_leaves_the_range(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0)))
    hot_for_5m.feed(status(SENSOR, "temp_current", 290, at(3)))
    assert hot_for_5m.tick(at(10)) == []


def test_numeric_state_for_restarts_at_the_next_crossing(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0)))
    hot_for_5m.feed(status(SENSOR, "temp_current", 290, at(3)))
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(4)))
    assert hot_for_5m.tick(at(8)) == []
    assert rule_ids(hot_for_5m.tick(at(9))) == ["hot"]


def test_numeric_state_for_fires_on_a_record_after_the_deadline_without_a_tick(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0)))
    fired = hot_for_5m.feed(status(SENSOR, "temp_current", 320, at(6)))
    assert rule_ids(fired) == ["hot"]
    assert fired[0].fired_at == at(5)


def test_numeric_state_for_fires_once(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0)))
    hot_for_5m.tick(at(5))
    assert hot_for_5m.tick(at(6)) == []
    assert hot_for_5m.feed(status(SENSOR, "temp_current", 320, at(7))) == []


def test_a_timer_due_before_a_value_fires_with_the_values_of_its_due_time():
    """The tick and the batch holding a later value race: whichever comes first, the timer's conditions read the
    values as they were when it came due (before, the later value decided them when the batch came first)."""
    rules = make_rules("""
- id: door_left_open
  triggers:
    - {trigger: state, device: sensor, code: doorcontact_state, to: true, for: 5m}
  conditions:
    - {condition: state, code: doorcontact_state, state: true}
  actions:
    - {action: log, message: open}
""")
    ticked_first, batch_first = EngineLoop(rules), EngineLoop(rules)
    for loop in (ticked_first, batch_first):
        loop.feed(status(SENSOR, "doorcontact_state", True, at(0), message_id="m1"))
    fired = ticked_first.tick(at(5, 4)) + ticked_first.feed(status(SENSOR, "doorcontact_state", False, at(5, 2)))
    raced = batch_first.feed(status(SENSOR, "doorcontact_state", False, at(5, 2)), now=at(5, 3)) + batch_first.tick(
        at(5, 4)
    )
    assert [f.idempotency_key for f in fired] == [f.idempotency_key for f in raced] == ["door_left_open:m1:for0:0"]
    assert [f.fired_at for f in raced] == [at(5)]


def test_a_report_of_another_code_does_not_fire_a_timer_an_earlier_report_behind_it_cancels():
    """A backlog batch in arrival order: the door opens, a battery report timed after the timer's due time arrives,
    then the door's close timed before it. The battery's report leaves the door's timer to the door's reports."""
    loop = EngineLoop(
        make_rules("""
- id: door_open_5m
  triggers:
    - {trigger: state, device: sensor, code: doorcontact_state, to: true, for: 5m}
  actions:
    - {action: log, message: open}
""")
    )
    fired = loop.feed(
        status(SENSOR, "doorcontact_state", True, at(0), message_id="m1"),
        status(SENSOR, "battery_percentage", 80, at(10), message_id="m2"),
        status(SENSOR, "doorcontact_state", False, at(3), message_id="m3"),
        now=at(20),
    )
    assert fired == [] and loop.tick(at(21)) == []


def test_two_timers_of_a_rule_started_by_one_message_fire_once_each():
    """Both keyed by the message: before, the second fire had the first's key and was dropped by the outbox."""
    loop = EngineLoop(
        make_rules("""
- id: greenhouse
  triggers:
    - {trigger: numeric_state, device: sensor, code: temp_current, above: 300, for: 5m}
    - {trigger: numeric_state, device: sensor, code: humidity_value, above: 80, for: 30m}
  actions:
    - {action: log, message: alert}
""")
    )
    loop.feed(
        status(SENSOR, "temp_current", 310, at(0), message_id="m1"),
        status(SENSOR, "humidity_value", 90, at(0), message_id="m1"),
    )
    fired = loop.tick(at(6)) + loop.tick(at(31))
    assert [f.idempotency_key for f in fired] == ["greenhouse:m1:for0:0", "greenhouse:m1:for1:0"]
    assert loop.tick(at(60)) == []


#: Any sensor of the product hot for 2 minutes, with a cooldown of 10 shared by the rule's devices.
HOT_ROOM_COOLING_10M = f"""
- id: hot_room
  triggers:
    - {{trigger: numeric_state, product: {SENSOR_PRODUCT}, code: temp_current, above: 300, for: 2m}}
  actions:
    - {{action: log, message: hot}}
  cooldown: 10m
"""


def test_a_timer_read_after_a_restart_fires_though_a_later_fire_of_its_rule_came_first():
    """Punctually, A's timer fires at 12:02 and B's at 12:22, ten minutes of cooldown apart. After a restart the
    backlog fires B first; A's fire, timed twenty minutes before it, was taken for one inside B's cooldown."""
    rules = make_rules(HOT_ROOM_COOLING_10M)
    other = "demo0000greenhouse02"
    loop = EngineLoop(rules)
    loop.feed(status(SENSOR, "temp_current", 310, at(0), product_key=SENSOR_PRODUCT))
    fired = loop.feed(status(other, "temp_current", 310, at(20), product_key=SENSOR_PRODUCT), now=at(31))
    fired += loop.feed(status(other, "temp_current", 312, at(30), product_key=SENSOR_PRODUCT), now=at(31))
    fired += loop.tick(at(31))
    assert sorted((f.trigger.device_id, f.fired_at) for f in fired) == [(SENSOR, at(2)), (other, at(22))]
    # The cooldown runs from the later fire, 12:22, not from A's 12:02 written after it: B again at 12:29 is within.
    loop.feed(status(other, "temp_current", 290, at(26), product_key=SENSOR_PRODUCT))
    loop.feed(status(other, "temp_current", 320, at(27), product_key=SENSOR_PRODUCT))
    assert loop.tick(at(30)) == []


def test_late_timers_keep_the_cooldown_among_themselves_as_punctual_ones_do():
    """Punctually A fires at 12:02, B (12:03) is inside its cooldown, C fires at 12:22. After the restart C's timer
    fires first: A's and B's, read late, must still keep ten minutes from each other, not only from C's."""
    rules = make_rules(HOT_ROOM_COOLING_10M)
    b, c = "demo0000greenhouse02", "demo0000greenhouse03"
    punctual, late = EngineLoop(rules), EngineLoop(rules)
    for loop in (punctual, late):
        loop.feed(status(SENSOR, "temp_current", 310, at(0), product_key=SENSOR_PRODUCT))
        loop.feed(status(b, "temp_current", 310, at(1), product_key=SENSOR_PRODUCT))
    expected = punctual.tick(at(2)) + punctual.tick(at(3))
    expected += punctual.feed(status(c, "temp_current", 310, at(20), product_key=SENSOR_PRODUCT)) + punctual.tick(
        at(22)
    )
    fired = late.feed(status(c, "temp_current", 310, at(20), product_key=SENSOR_PRODUCT), now=at(31))
    fired += late.feed(status(c, "temp_current", 312, at(30), product_key=SENSOR_PRODUCT), now=at(31))
    fired += late.tick(at(31))
    assert sorted((f.trigger.device_id, f.fired_at) for f in fired) == [(SENSOR, at(2)), (c, at(22))]
    assert sorted((f.trigger.device_id, f.fired_at) for f in expected) == [(SENSOR, at(2)), (c, at(22))]


NOTIFY_OFFLINE = """
- id: notify_offline
  triggers:
    - {trigger: device_event, event: offline, for: 2m}
  actions:
    - {action: log, message: offline}
"""


def test_an_offline_older_than_an_online_of_the_same_batch_starts_no_timer():
    loop = EngineLoop(make_rules(NOTIFY_OFFLINE))
    fired = loop.feed(device_event(SENSOR, "online", at(0, 30)), device_event(SENSOR, "offline", at(0)), now=at(0, 31))
    assert fired == [] and loop.tick(at(3)) == []


@pytest.mark.parametrize("first", ["online", "offline"])
def test_an_online_wins_an_online_and_offline_of_the_same_second_in_either_order(first: str):
    """A reconnect: the archive keeps the device online (devices.online), and the rules raise no offline alert."""
    second = {"online": "offline", "offline": "online"}[first]
    loop = EngineLoop(make_rules(NOTIFY_OFFLINE))
    loop.feed(device_event(SENSOR, first, at(0)), device_event(SENSOR, second, at(0)))
    assert loop.tick(at(3)) == []


def test_an_offline_older_than_the_device_s_last_online_is_history_to_every_trigger():
    """A day-old offline replayed from a dead letter (``replay --dead-letters --rules``) about a device online
    since: neither a timer nor an immediate alert."""
    loop = EngineLoop(
        make_rules(
            NOTIFY_OFFLINE
            + """
- id: offline_now
  triggers:
    - {trigger: device_event, event: offline}
  actions:
    - {action: log, message: offline now}
"""
        )
    )
    loop.feed(device_event(SENSOR, "online", at(-60)))
    assert loop.feed(device_event(SENSOR, "offline", at(-24 * 60), message_id="late-offline"), now=at(0)) == []
    assert loop.tick(at(0, 5)) == []
    assert rule_ids(loop.feed(device_event(SENSOR, "offline", at(1)))) == ["offline_now"]  # a new one still counts
    assert rule_ids(loop.tick(at(4))) == ["notify_offline"]


def test_a_backfilled_copy_of_an_offline_in_the_same_second_does_not_hide_the_stream_s():
    """Backfill times a log's events to the millisecond, the stream in whole seconds: the same event, not a newer."""
    loop = EngineLoop(make_rules(NOTIFY_OFFLINE))
    loop.online_events[SENSOR] = (at(0, 0.7), False)  # device_events holds the log's copy, 12:00:00.700
    loop.feed(device_event(SENSOR, "offline", at(0), message_id="dead-letter-replayed"), now=at(0, 1))
    assert rule_ids(loop.tick(at(3))) == ["notify_offline"]


def test_two_silence_triggers_of_a_rule_fire_once_each():
    loop = EngineLoop(
        make_rules("""
- id: quiet
  triggers:
    - {trigger: device_silent, device: sensor, for: 30m}
    - {trigger: device_silent, device: sensor, for: 2h}
  actions:
    - {action: log, message: quiet}
""")
    )
    loop.feed(status(SENSOR, "temp_current", 250, at(0)))
    keys = [f.idempotency_key for f in loop.tick(at(31)) + loop.tick(at(121))]
    silence = f"quiet:silent:{SENSOR}:{int(at(0).timestamp() * 1000)}"
    assert keys == [f"{silence}:for0:0", f"{silence}:for1:0"]


def test_for_timer_fire_carries_the_message_that_started_it(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0), message_id="1:2:3:-1"))
    hot_for_5m.feed(status(SENSOR, "temp_current", 315, at(1), message_id="1:9:3:-1"))
    (fired,) = hot_for_5m.tick(at(5))
    assert fired.message_id == "1:2:3:-1"
    assert fired.idempotency_key == "hot:1:2:3:-1:for0:0"


def test_pending_timer_survives_a_restart(hot_for_5m):
    hot_for_5m.feed(status(SENSOR, "temp_current", 310, at(0)))
    restarted = EngineLoop(hot_for_5m.rule_set)
    restarted.state, restarted.latest = dict(hot_for_5m.state), dict(hot_for_5m.latest)
    assert rule_ids(restarted.tick(at(5))) == ["hot"]


STATE_TO_TRUE = """
- id: switched_on
  triggers: [{trigger: state, device: plug, code: switch_1, to: true}]
  actions: [{action: log, message: "on"}]
"""


def test_state_fires_when_the_value_changes():
    loop = EngineLoop(
        make_rules(
            "[{id: any_change, triggers: [{trigger: state, device: plug, code: mode}], "
            "actions: [{action: log, message: x}]}]"
        )
    )
    loop.feed(status(PLUG, "mode", "white", at(0)))
    assert rule_ids(loop.feed(status(PLUG, "mode", "colour", at(1)))) == ["any_change"]


def test_state_does_not_fire_on_a_repeated_value():
    loop = EngineLoop(make_rules(STATE_TO_TRUE))
    loop.feed(status(PLUG, "switch_1", True, at(0)))
    assert loop.feed(status(PLUG, "switch_1", True, at(1))) == []


def test_state_to_ignores_changes_to_other_values():
    loop = EngineLoop(make_rules(STATE_TO_TRUE))
    loop.feed(status(PLUG, "switch_1", True, at(0)))
    assert loop.feed(status(PLUG, "switch_1", False, at(1))) == []
    assert rule_ids(loop.feed(status(PLUG, "switch_1", True, at(2)))) == ["switched_on"]


def test_state_first_report_counts_as_a_change():
    loop = EngineLoop(make_rules(STATE_TO_TRUE))
    assert rule_ids(loop.feed(status(PLUG, "switch_1", True, at(0)))) == ["switched_on"]


def test_state_from_needs_a_known_previous_value():
    loop = EngineLoop(
        make_rules("""
    - id: off_to_on
      triggers: [{trigger: state, device: plug, code: switch_1, from: false, to: true}]
      actions: [{action: log, message: x}]
    """)
    )
    assert loop.feed(status(PLUG, "switch_1", True, at(0))) == []
    loop.feed(status(PLUG, "switch_1", False, at(1)))
    assert rule_ids(loop.feed(status(PLUG, "switch_1", True, at(2)))) == ["off_to_on"]


def test_state_true_is_not_one():
    loop = EngineLoop(make_rules(STATE_TO_TRUE))
    assert loop.feed(status(PLUG, "switch_1", 1, at(0))) == []


@pytest.mark.parametrize(("written", "reported"), [("3", "3"), ("'3'", 3), ("3", "3.0")])
def test_state_to_a_number_matches_the_same_number_sent_as_text(written, reported):
    # Tuya sends an enum as text: `to: 3` never fired on "3", while numeric_state read "3" as 3.
    loop = EngineLoop(
        make_rules(f"""
    - id: speed_3
      triggers: [{{trigger: state, device: plug, code: fan_speed_enum, to: {written}}}]
      conditions: [{{condition: state, device: plug, code: fan_speed_enum, state: {written}}}]
      actions: [{{action: log, message: x}}]
    """)
    )
    loop.feed(status(PLUG, "fan_speed_enum", "1", at(0)))
    assert rule_ids(loop.feed(status(PLUG, "fan_speed_enum", reported, at(1)))) == ["speed_3"]
    assert loop.feed(status(PLUG, "fan_speed_enum", "30", at(2))) == []


@pytest.mark.parametrize(
    ("text", "number", "same"),
    [
        ("9007199254740993", 9007199254740993, True),  # exact, not through a float
        ("9007199254740993", 9007199254740992, False),
        ("0.1", 0.1, True),
        (" 3", 3, False),  # what float() reads as well, no rule writes: spaces, underscores, exponents, other digits
        ("3_0", 30, False),
        ("1e3", 1000, False),
        ("\u0663", 3, False),
        ("nan", float("nan"), False),
    ],
)
def test_numeric_text_matches_a_number_only_as_written_and_exactly(text, number, same):
    assert same_value(text, number) is same and same_value(number, text) is same


def test_state_for_is_cancelled_by_another_change():
    loop = EngineLoop(make_rules(STATE_TO_TRUE.replace("to: true}", "to: true, for: 1m}")))
    loop.feed(status(PLUG, "switch_1", True, at(0)))
    loop.feed(status(PLUG, "switch_1", False, at(0, 30)))
    assert loop.tick(at(2)) == []


def test_state_for_fires_when_held():
    loop = EngineLoop(make_rules(STATE_TO_TRUE.replace("to: true}", "to: true, for: 1m}")))
    loop.feed(status(PLUG, "switch_1", True, at(0)))
    loop.feed(status(PLUG, "switch_1", True, at(0, 30)))
    assert rule_ids(loop.tick(at(1))) == ["switched_on"]


OFFLINE_FOR_2M = """
- id: offline
  triggers: [{trigger: device_event, event: offline, for: 2m}]
  actions: [{action: log, message: "{{ trigger.device_id }} offline"}]
"""


@pytest.mark.parametrize("protocol", [20, 1001], ids=["legacy", "iot_core"])
def test_device_event_fires_for_legacy_and_iot_core_messages(protocol):
    loop = EngineLoop(
        make_rules("""
        - id: went_offline
          triggers: [{trigger: device_event, event: offline}]
          actions: [{action: log, message: x}]
        """)
    )
    assert rule_ids(loop.feed(device_event(PLUG, "offline", at(0), protocol=protocol))) == ["went_offline"]


def test_device_event_for_is_cancelled_by_the_opposite_event():
    loop = EngineLoop(make_rules(OFFLINE_FOR_2M))
    loop.feed(device_event(PLUG, "offline", at(0)))
    loop.feed(device_event(PLUG, "online", at(1)))
    assert loop.tick(at(5)) == []


def test_device_event_for_fires_when_the_time_is_up():
    loop = EngineLoop(make_rules(OFFLINE_FOR_2M))
    loop.feed(device_event(PLUG, "offline", at(0)))
    assert loop.tick(at(1, 59)) == []
    (fired,) = loop.tick(at(2))
    assert fired.device_id == PLUG and fired.effect.message == f"{PLUG} offline"


def test_device_event_for_keeps_counting_from_the_first_event():
    loop = EngineLoop(make_rules(OFFLINE_FOR_2M))
    loop.feed(device_event(PLUG, "offline", at(0)))
    loop.feed(device_event(PLUG, "offline", at(1)))
    assert rule_ids(loop.tick(at(2))) == ["offline"]


def test_device_event_for_fires_before_an_opposite_event_that_comes_too_late():
    loop = EngineLoop(make_rules(OFFLINE_FOR_2M))
    loop.feed(device_event(PLUG, "offline", at(0)))
    assert rule_ids(loop.feed(device_event(PLUG, "online", at(3)))) == ["offline"]


def test_device_event_timers_are_per_device():
    loop = EngineLoop(make_rules(OFFLINE_FOR_2M))
    loop.feed(device_event(PLUG, "offline", at(0)), device_event(OTHER_PLUG, "offline", at(0)))
    loop.feed(device_event(PLUG, "online", at(1)))
    assert [fired.device_id for fired in loop.tick(at(2))] == [OTHER_PLUG]


SILENT = f"""
- id: silent
  triggers: [{{trigger: device_silent, product: {PLUG_PRODUCT}, for: 30m}}]
  actions: [{{action: log, message: "{{{{ trigger.device_id }}}} silent"}}]
"""


def test_device_silent_fires_once_after_the_duration():
    loop = EngineLoop(make_rules(SILENT))
    loop.feed(status(PLUG, "switch_1", True, at(0), product_key=PLUG_PRODUCT))
    assert loop.tick(at(29)) == []
    (fired,) = loop.tick(at(31))
    assert fired.fired_at == at(30) and fired.message_id is None
    assert loop.tick(at(60)) == []


def test_device_silent_rearms_on_the_next_message():
    loop = EngineLoop(make_rules(SILENT))
    loop.feed(status(PLUG, "switch_1", True, at(0), product_key=PLUG_PRODUCT))
    loop.tick(at(30))
    loop.feed(status(PLUG, "switch_1", False, at(40), product_key=PLUG_PRODUCT))
    assert loop.tick(at(69)) == []
    assert rule_ids(loop.tick(at(70))) == ["silent"]


def test_device_silent_only_watches_selected_devices():
    loop = EngineLoop(make_rules(SILENT))
    loop.feed(status(SENSOR, "temp_current", 200, at(0), product_key="otherproduct01"))
    assert loop.tick(at(60)) == []


def test_user_event_fires_for_its_event_and_uid():
    loop = EngineLoop(
        make_rules("""
    - id: new_user
      triggers: [{trigger: user_event, event: registered, uid: eu1700000000000AbCdE}]
      actions: [{action: log, message: "{{ trigger.uid }}"}]
    """)
    )
    assert loop.feed(user_event("eu1700000000000AbCdE", "deleted", at(0))) == []
    assert loop.feed(user_event("someoneelse", "registered", at(0))) == []
    (fired,) = loop.feed(user_event("eu1700000000000AbCdE", "registered", at(1)))
    assert fired.effect.message == "eu1700000000000AbCdE"


def test_record_times_after_now_count_as_now(hot_for_5m):
    rule_set = hot_for_5m.rule_set
    result = evaluate(rule_set, [status(SENSOR, "temp_current", 310, at(60))], {}, {}, at(0))
    (state,) = result.state_changes.values()
    (trigger_state,) = state.triggers.values()
    assert trigger_state.pending is not None and trigger_state.pending.time == at(0)


def test_disabled_rules_do_not_fire():
    loop = EngineLoop(make_rules(HOT.replace("- id: hot", "- id: hot\n  enabled: false")))
    assert loop.feed(status(SENSOR, "temp_current", 310, at(0))) == []


def test_records_no_trigger_selects_change_no_state(hot):
    result = evaluate(hot.rule_set, [status(FAN, "switch_1", True, at(0))], {}, {}, at(0))
    assert result.state_changes == {} and result.fired == []


def test_evaluate_does_not_mutate_its_inputs(hot_for_5m):
    state, latest = {}, {(SENSOR, "temp_current"): 290}
    evaluate(hot_for_5m.rule_set, [status(SENSOR, "temp_current", 310, at(0))], state, latest, at(1))
    assert state == {} and latest == {(SENSOR, "temp_current"): 290}


def test_a_status_older_than_the_latest_known_is_ignored(hot):
    hot.feed(status(SENSOR, "temp_current", 290, at(5)))
    assert hot.feed(status(SENSOR, "temp_current", 310, at(4))) == []
    assert hot.latest[(SENSOR, "temp_current")] == 290


def test_a_status_of_the_same_time_but_an_older_message_id_is_ignored(hot):
    # device_state keeps, of two values of the same time, the one of the greater message id: the engine must agree,
    # or a redelivered batch with two reports in one second would look like a new edge (found by hypothesis).
    hot.feed(status(SENSOR, "temp_current", 290, at(5), message_id="m2"))
    assert hot.feed(status(SENSOR, "temp_current", 310, at(5), message_id="m1")) == []
    assert hot.feed(status(SENSOR, "temp_current", 310, at(5), message_id="m3")) != []


def test_without_latest_times_every_status_counts(hot):
    result = evaluate(hot.rule_set, [status(SENSOR, "temp_current", 310, at(4))], {}, {}, at(5))
    assert len(result.fired) == 1
