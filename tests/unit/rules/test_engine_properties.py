"""Properties of streams/rules/engine.py over generated record streams: where a batch ends changes nothing, and
evaluating a batch twice (redelivery) makes no command the first evaluation did not.

Partner: test_engine.py (the semantics, example by example).
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.rules.builders import FAN, PLUG, SENSOR, EngineLoop, at, device_event, make_rules, status

RULES = make_rules("""
- id: hot
  triggers: [{trigger: numeric_state, code: temp_current, above: 300, for: 2m}]
  conditions: [{condition: state, device: fan, code: switch_1, state: false}]
  actions: [{action: log, message: hot}]
  cooldown: {duration: 5m, per: device}
- id: switched
  triggers: [{trigger: state, code: switch_1, to: true}]
  actions: [{action: log, message: "{{ trigger.from_value }}"}]
- id: offline
  triggers: [{trigger: device_event, event: offline, for: 3m}]
  actions: [{action: log, message: offline}]
  cooldown: 10m
""")

_devices = st.sampled_from([SENSOR, FAN, PLUG])
_reading = st.tuples(st.just("temp_current"), st.integers(250, 350))
_switch = st.tuples(st.just("switch_1"), st.booleans())
_event = st.tuples(st.just("event"), st.sampled_from(["online", "offline"]))
_step = st.tuples(_devices, st.one_of(_reading, _switch, _event), st.integers(0, 90))


def _records(steps):
    records, seconds = [], 0
    for index, (device_id, (code, value), gap) in enumerate(steps):
        seconds += gap
        message_id = f"m{index}"
        if code == "event":
            records.append(device_event(device_id, value, at(seconds=seconds), message_id=message_id))
        else:
            records.append(status(device_id, code, value, at(seconds=seconds), message_id=message_id))
    return records


def _fires(fired):
    return [(action.idempotency_key, action.fired_at) for action in fired]


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(_step, max_size=40), cuts=st.sets(st.integers(1, 39), max_size=5))
def test_splitting_a_stream_into_batches_fires_the_same_actions(steps, cuts):
    records = _records(steps)
    whole = EngineLoop(RULES)
    expected = _fires(whole.feed(*records, now=at(60)))
    split = EngineLoop(RULES)
    fired, bounds = [], [0, *sorted(cut for cut in cuts if cut < len(records)), len(records)]
    for start, end in itertools.pairwise(bounds):
        fired += split.feed(*records[start:end], now=at(60))
    assert _fires(fired) == expected
    assert split.state == whole.state


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(_step, max_size=40))
def test_a_redelivered_batch_makes_no_new_command(steps):
    records = _records(steps)
    loop = EngineLoop(RULES)
    first = {key for key, _ in _fires(loop.feed(*records, now=at(60)))}
    again = {key for key, _ in _fires(loop.feed(*records, now=at(60)))}
    assert again <= first
