"""streams/sim/fleet.py: deterministic traffic that the real decoder reads as what it claims to be.

Publishing to a real broker: tests/integration/test_sim_publish.py.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from models.records import DeadLetter, DeviceEvent, PulsarMessage, StatusReported, UserEvent
from streams.sim.fleet import MAX_ITEMS, Fleet, SimMessage
from streams.sim.seal import CORRUPTIONS
from streams.tuya.decoder import Decoded, MessageDecoder
from tests.conftest import load_vectors

ACCESS_KEY = load_vectors()["pulsar_auth"]["access_key"]
T0 = 1_700_000_000_000

# What each kind must decode to: (protocol, bizCode). Written out here, not taken from the module under test.
EXPECTED = {
    "status": (4, None),
    "devicePropertyMessage": (1000, "devicePropertyMessage"),
    "online": (20, "online"),
    "offline": (20, "offline"),
    "nameUpdate": (20, "nameUpdate"),
    "dpNameUpdate": (20, "dpNameUpdate"),
    "bindUser": (20, "bindUser"),
    "delete": (20, "delete"),
    "upgradeStatus": (20, "upgradeStatus"),
    "userRegister": (21, "userRegister"),
}


def _clock(step_ms: int = 250) -> Callable[[], int]:
    return itertools.count(T0, step_ms).__next__


def _fleet(size: int = 30, seed: int = 7, step_ms: int = 250, **kwargs) -> Fleet:
    return Fleet(ACCESS_KEY, size, clock=_clock(step_ms), seed=seed, **kwargs)


def _decode(message: SimMessage, decoder: MessageDecoder | None = None) -> Decoded | DeadLetter:
    pulsar_message = PulsarMessage(payload=message.payload, properties=message.properties, message_id="m", topic="t")
    return (decoder or MessageDecoder(ACCESS_KEY)).decode(pulsar_message)


def _decoded(message: SimMessage) -> Decoded:
    result = _decode(message)
    assert isinstance(result, Decoded), result
    return result


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@pytest.fixture(scope="module")
def traffic() -> list[SimMessage]:
    return list(_fleet().messages(4000, corrupt=0.05))


def test_same_seed_and_clock_give_same_bytes():
    first = list(_fleet(seed=3).messages(300, corrupt=0.1))
    second = list(_fleet(seed=3).messages(300, corrupt=0.1))
    other = list(_fleet(seed=4).messages(300, corrupt=0.1))
    assert first == second
    assert [m.payload for m in first] != [m.payload for m in other]


def test_every_sound_message_decodes_to_the_kind_it_claims(traffic):
    decoder = MessageDecoder(ACCESS_KEY)
    for message in (m for m in traffic if not m.kind.startswith("corrupt:")):
        result = _decode(message, decoder)
        assert isinstance(result, Decoded), (message.kind, result)
        assert (result.message.protocol, result.message.biz_code) == EXPECTED[message.kind]
        assert result.message.device_id == message.device_id
        assert result.message.sign_ok
        assert result.records and not any(r.kind == "unknown" for r in result.records)


def test_every_corrupt_message_becomes_a_dead_letter(traffic):
    corrupt = [m for m in traffic if m.kind.startswith("corrupt:")]
    assert {m.kind.removeprefix("corrupt:") for m in corrupt} == set(CORRUPTIONS)
    assert 0.03 < len(corrupt) / len(traffic) < 0.07
    for message in corrupt:
        assert isinstance(_decode(message), DeadLetter), message.kind


def test_traffic_has_every_kind_mostly_status_reports(traffic):
    kinds = Counter(m.kind for m in traffic)
    assert set(EXPECTED) <= set(kinds)
    assert kinds["status"] / len(traffic) > 0.7


def test_both_ciphers_and_both_ecb_forms_are_sent():
    sound = list(_fleet().messages(1000))
    forms = Counter(m.properties.get("em", "none") for m in sound)
    assert set(forms) == {"aes_gcm", "aes_ecb", "none"}
    assert abs(forms["aes_ecb"] - forms["none"]) <= 1  # ECB alternates between the two forms
    assert 0.4 < forms["aes_gcm"] / len(sound) < 0.6


def test_gcm_share_is_honoured():
    assert {m.properties.get("em") for m in _fleet(gcm_share=1.0).messages(50)} == {"aes_gcm"}
    assert "aes_gcm" not in {m.properties.get("em") for m in _fleet(gcm_share=0.0).messages(50)}


@pytest.mark.parametrize("items", range(1, MAX_ITEMS + 1))
def test_item_count_is_honoured(items):
    reports = [m for m in _fleet().messages(300, items=items) if m.kind in ("status", "devicePropertyMessage")]
    assert reports
    for message in reports:
        assert len(_decoded(message).records) == items


def test_item_count_outside_the_products_is_rejected():
    with pytest.raises(ValueError, match="items"):
        next(_fleet().messages(1, items=MAX_ITEMS + 1))


def test_device_ids_are_unique_and_22_characters():
    ids = [device.device_id for device in _fleet(size=200).devices]
    assert len(set(ids)) == 200
    assert {len(device_id) for device_id in ids} == {22}


def test_data_ids_are_unique_under_a_frozen_clock():
    data_ids = [_decoded(m).records[0].data_id for m in _fleet(step_ms=0).messages(2000) if m.kind == "status"]
    assert len(data_ids) > 1000
    assert len(set(data_ids)) == len(data_ids)


def test_generated_events_never_repeat_device_bizcode_and_time_under_a_frozen_clock():
    fleet = _fleet(size=3, step_ms=0, mix={"status": 1, "online": 5, "offline": 5, "nameUpdate": 5})
    keys = [
        (r.device_id, r.biz_code, r.occurred_at)
        for m in fleet.messages(500)
        for r in _decoded(m).records
        if isinstance(r, DeviceEvent)
    ]
    assert keys and len(keys) == len(set(keys))


def test_scripted_status_reports_the_given_values_at_the_given_time():
    fleet = _fleet()
    sensor = next(d for d in fleet.devices if d.product.kind == "sensor")
    records = _decoded(fleet.status(sensor, {"temp_current": 320}, T0 + 5, cipher="ecb")).records
    assert records == [
        StatusReported(
            "m", 0, sensor.device_id, sensor.product_key, "temp_current", 320, 1, _at(T0 + 5), records[0].data_id
        )
    ]
    assert sensor.readings["temp_current"] == 320


def test_scripted_offline_makes_the_device_come_online_before_it_reports():
    fleet = _fleet(size=1, mix={"status": 1})
    offline = _decoded(fleet.event(0, "offline", T0, cipher="gcm")).records[0]
    assert isinstance(offline, DeviceEvent) and offline.event == "offline"
    assert [m.kind for m in fleet.messages(2)] == ["online", "status"]


def test_scripted_rename_carries_a_unicode_name():
    fleet = _fleet()
    event = _decoded(fleet.event(fleet.devices[0], "nameUpdate", T0, name="Küche Steckdose 厨房")).records[0]
    assert isinstance(event, DeviceEvent) and event.event == "name_updated"
    assert event.data["name"] == "Küche Steckdose 厨房"
    assert fleet.devices[0].name == "Küche Steckdose 厨房"


def test_scripted_property_message_and_user_event_decode():
    fleet = _fleet()
    plug = fleet.device(fleet.devices[0].device_id)
    records = _decoded(fleet.property(plug, {"switch_1": False, "cur_power": 0}, T0)).records
    assert [(r.code, r.value, r.dp_id) for r in records] == [("switch_1", False, 1), ("cur_power", 0, 19)]
    user = _decoded(fleet.user_event("userRegister", T0, uid="eu1700000000000AbCdE")).records[0]
    assert isinstance(user, UserEvent) and (user.uid, user.event) == ("eu1700000000000AbCdE", "registered")
    assert "eu1700000000000AbCdE" in fleet.users


@pytest.mark.parametrize("reason", CORRUPTIONS)
def test_scripted_corruption_names_its_reason(reason):
    message = _fleet().corrupt(reason, T0, device=0)
    assert message.kind == f"corrupt:{reason}"
    assert isinstance(_decode(message), DeadLetter)


def test_unknown_mix_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown message kinds"):
        _fleet(mix={"status": 1, "sceneExecute": 1})


def test_reports_are_the_values_and_times_the_decoder_reads(traffic):
    for message in traffic:
        if message.kind not in ("status", "devicePropertyMessage"):
            assert message.reports == ()
            continue
        records = [r for r in _decoded(message).records if isinstance(r, StatusReported)]
        decoded = [(r.code, r.value, int(r.reported_at.timestamp() * 1000)) for r in records]
        assert list(message.reports) == decoded


def test_online_and_offline_happen_at_the_whole_second_of_the_message_time(traffic):
    events = [m for m in traffic if m.kind in ("online", "offline")]
    assert events
    for message in events:
        record = _decoded(message).records[0]
        assert isinstance(record, DeviceEvent) and record.occurred_at == _at(message.t_ms // 1000 * 1000)
