"""streams/tuya/decoder.py end to end on the vectors: both ciphers, both input forms, every negative case."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.records import DeadLetter, DeviceEvent, PulsarMessage, StatusReported, UserEvent
from streams.errors import TransientError
from streams.tuya.crypto import Cipherbox
from streams.tuya.decoder import Decoded, MessageDecoder
from streams.tuya.envelope import parse_websocket_frame
from tests.conftest import load_vectors
from tests.factories import message_from_negative, message_from_vector

VECTORS = load_vectors()
ACCESS_KEY = VECTORS["pulsar_auth"]["access_key"]
NAMES = [e["name"] for e in VECTORS["envelopes"]]


def _ms(value: int) -> datetime:
    ms = value * 1000 if value < 10**11 else value
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _by_name(name: str) -> dict:
    return next(e for e in VECTORS["envelopes"] if e["name"] == name)


def _decode(msg: PulsarMessage) -> Decoded:
    result = MessageDecoder(ACCESS_KEY).decode(msg)
    assert isinstance(result, Decoded), result
    return result


@pytest.mark.parametrize("name", NAMES)
def test_binary_message_decodes_to_vector_payload(name):
    envelope = _by_name(name)
    decoded = _decode(message_from_vector(envelope))
    message = decoded.message
    assert message.payload == envelope["decrypted_utf8"]  # kept as decrypted, not encoded again
    assert message.protocol == envelope["protocol"]
    assert message.encrypt_model == envelope["encrypt_model"]
    assert message.message_id == envelope["pulsar"]["message_id"]["as_string"]
    assert message.pushed_at == _ms(envelope["envelope"]["t"])
    assert message.sign_ok is True


@pytest.mark.parametrize("name", NAMES)
def test_websocket_frame_decodes_to_same_records_and_id(name):
    envelope = _by_name(name)
    frame = parse_websocket_frame(json.loads(envelope["websocket_frame_utf8"]), envelope["pulsar"]["topic"])
    from_frame = _decode(frame)
    from_binary = _decode(message_from_vector(envelope))
    assert from_frame.records == from_binary.records
    assert frame.message_id == envelope["pulsar"]["message_id"]["as_string"]


@pytest.mark.parametrize("name", [n for n in NAMES if VECTORS["envelopes"][NAMES.index(n)]["protocol"] in (4, 1000)])
def test_status_items_become_one_record_each(name):
    envelope = _by_name(name)
    payload = envelope["decrypted"]
    items = payload.get("status") or payload["bizData"]["properties"]
    records = _decode(message_from_vector(envelope)).records
    assert len(records) == len(items)
    for index, (record, item) in enumerate(zip(records, items, strict=True)):
        assert isinstance(record, StatusReported)
        assert record.item_index == index
        assert record.code == item["code"]
        assert record.value == item["value"] and type(record.value) is type(item["value"])
        assert record.device_id == (payload.get("devId") or payload["bizData"]["devId"])
        assert record.reported_at == _ms(item.get("t") or item.get("time"))
        dp_keys = [k for k in item if k.isdigit()]
        expected_dp = int(dp_keys[0]) if dp_keys else item.get("dpId")
        assert record.dp_id == expected_dp


@pytest.mark.parametrize(
    ("name", "event"),
    [
        ("p20_online_gcm", "online"),
        ("p20_offline_ecb", "offline"),
        ("p20_name_update_gcm_unicode", "name_updated"),
        ("p20_dp_name_update_ecb", "dp_name_updated"),
        ("p20_bind_user_gcm", "bound"),
        ("p20_delete_gcm", "deleted"),
        ("p20_upgrade_status_ecb", "upgrade_status"),
    ],
)
def test_device_events_map_onto_one_vocabulary(name, event):
    envelope = _by_name(name)
    payload = envelope["decrypted"]
    (record,) = _decode(message_from_vector(envelope)).records
    assert isinstance(record, DeviceEvent)
    assert record.event == event
    assert record.biz_code == payload["bizCode"]
    assert record.device_id == payload["devId"]
    assert record.product_key == payload["productKey"]
    own_time = payload["bizData"].get("time")
    assert record.occurred_at == _ms(own_time or payload["ts"] or envelope["envelope"]["t"])
    for key, value in payload["bizData"].items():
        assert record.data[key] == value


def test_unicode_device_name_survives(vectors):
    (record,) = _decode(message_from_vector(_by_name("p20_name_update_gcm_unicode"))).records
    assert record.data["name"] == "Küche Steckdose 厨房"


def test_user_register_becomes_user_event():
    envelope = _by_name("p21_user_register_gcm")
    (record,) = _decode(message_from_vector(envelope)).records
    assert isinstance(record, UserEvent)
    assert (record.uid, record.event, record.biz_code) == (
        envelope["decrypted"]["bizData"]["uid"],
        "registered",
        "userRegister",
    )
    assert record.occurred_at == _ms(envelope["decrypted"]["bizData"]["time"])


@pytest.mark.parametrize(("em", "name"), [(None, "p20_offline_ecb"), ("aes_ecb", "p4_status_report_ecb_no_em")])
def test_ecb_chosen_when_em_absent_or_aes_ecb(em, name):
    envelope = _by_name(name)
    properties = {"em": em} if em else {}
    decoded = _decode(message_from_vector(envelope, properties=properties))
    assert decoded.message.encrypt_model == "aes_ecb"
    assert decoded.message.payload == envelope["decrypted_utf8"]


def test_gcm_message_without_em_is_dead_lettered_not_misread():
    # SPEC.md §2.2: the em property decides; a GCM blob read as ECB must fail loudly, not yield garbage.
    result = MessageDecoder(ACCESS_KEY).decode(message_from_vector(_by_name("p20_online_gcm"), properties={}))
    assert isinstance(result, DeadLetter)


@pytest.mark.parametrize("case", VECTORS["negative"], ids=lambda c: c["name"])
def test_negative_vectors_become_dead_letters(case):
    key = case.get("access_key_used", ACCESS_KEY)
    msg = message_from_negative(case)
    result = MessageDecoder(key).decode(msg)
    assert isinstance(result, DeadLetter)
    assert result.payload == msg.payload and result.properties == msg.properties
    assert result.error_kind in {"gcm_tag_mismatch", "bad_length", "bad_padding"}
    assert result.error


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"not json", "bad_envelope_json"),
        (b"[1,2", "bad_envelope_json"),
        (b'{"data":5,"protocol":4', "bad_envelope_json"),
        (b'{"data":"QUJD","protocol":true,"pv":"2.0","t":1,"sign":"x"}', "bad_envelope"),
        (b'{"data":"QUJD","protocol":4,"pv":"2.0","t":1.5,"sign":"x"}', "bad_envelope"),
        (b"[1,2]", "bad_envelope"),
        (b'{"protocol":4,"t":1}', "bad_envelope"),
        (b'{"data":"QUJD","t":1}', "bad_envelope"),
        (b'{"data":"QU=JD","protocol":4,"t":1}', "bad_base64"),
        (b'{"data":"QUJD\\n","protocol":4,"t":1}', "bad_base64"),
        # a protocol no 32-bit column holds, in the standard envelope and in another shape
        (b'{"data":"QUJD","protocol":9223372036854775808,"pv":"2.0","t":1,"sign":"x"}', "bad_envelope"),
        (b'{"data":"QUJD","protocol":-1,"t":1}', "bad_envelope"),
    ],
)
def test_malformed_envelopes_become_dead_letters_with_kind(payload, kind):
    msg = PulsarMessage(payload=payload, properties={"em": "aes_gcm"}, message_id="1:1:0:-1", topic="t")
    result = MessageDecoder(ACCESS_KEY).decode(msg)
    assert isinstance(result, DeadLetter)
    assert result.error_kind == kind


def test_sign_mismatch_is_recorded_and_counted_not_dropped():
    envelope = _by_name("p4_status_report_gcm")
    fields = dict(envelope["envelope"], sign="0" * 32)
    decoder = MessageDecoder(ACCESS_KEY)
    result = decoder.decode(message_from_vector(envelope, payload=json.dumps(fields).encode()))
    assert isinstance(result, Decoded)
    assert result.message.sign_ok is False
    assert decoder.sign_mismatches == 1


@pytest.mark.parametrize("extra", [{"note": ""}, {"note": None}])
def test_sign_leaves_out_empty_fields_of_a_nonstandard_envelope(extra):
    # An extra field takes envelope_sign off its fast path for the standard envelope; an empty one must not count.
    envelope = _by_name("p4_status_report_gcm")
    fields = dict(envelope["envelope"], **extra)
    result = _decode(message_from_vector(envelope, payload=json.dumps(fields).encode()))
    assert result.message.sign_ok is True


def test_sign_counts_an_extra_field_that_has_a_value():
    envelope = _by_name("p4_status_report_gcm")
    fields = dict(envelope["envelope"], note="x")
    result = _decode(message_from_vector(envelope, payload=json.dumps(fields).encode()))
    assert result.message.sign_ok is False


def test_unknown_protocol_is_kept_as_unknown_record():
    inner = {"bizCode": "roomNameUpdate", "bizData": {"name": "Küche"}, "ts": 1700000000000}
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x00" * 12)
    envelope = {"data": base64.b64encode(blob).decode(), "protocol": 34, "pv": "2.0", "t": 1700000000001}
    msg = PulsarMessage(payload=json.dumps(envelope).encode(), properties={"em": "aes_gcm"}, message_id="9", topic="t")
    (record,) = _decode(msg).records
    assert record.kind == "unknown"
    assert record.payload == inner and record.protocol == 34 and record.biz_code == "roomNameUpdate"


def _gcm_message(inner: dict, protocol: int, **fields) -> PulsarMessage:
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x00" * 12)
    envelope = {"data": base64.b64encode(blob).decode(), "protocol": protocol, "pv": "2.0", "t": 1700000000001}
    return PulsarMessage(payload=json.dumps(envelope).encode(), properties={"em": "aes_gcm"}, topic="t", **fields)


@pytest.mark.parametrize("biz_code", [["devicePropertyMessage"], {"a": 1}])
def test_a_biz_code_that_is_no_text_is_kept_as_an_unknown_message(biz_code):
    # it raised TypeError (unhashable) in the routing: an internal_error dead letter, again at every replay
    inner = {"bizCode": biz_code, "bizData": {"devId": "bf1", "properties": []}}
    (record,) = _decode(_gcm_message(inner, 1000, message_id="9")).records
    assert record.kind == "unknown" and record.payload == inner


@pytest.mark.parametrize("publish_time_ms", [10**17, -(10**17)])
def test_a_publish_time_no_datetime_holds_is_left_out_not_raised(publish_time_ms):
    # a record or a `decode` line not written by a broker: decode() raised from its own dead-letter path
    decoder = MessageDecoder(ACCESS_KEY)
    bad = PulsarMessage(payload=b"not json", properties={}, message_id="8", topic="t", publish_time_ms=publish_time_ms)
    letter = decoder.decode(bad)
    assert isinstance(letter, DeadLetter) and letter.published_at is None
    good = _gcm_message({"devId": "bf1", "status": []}, 4, message_id="9", publish_time_ms=publish_time_ms)
    decoded = decoder.decode(good)
    assert isinstance(decoded, Decoded) and decoded.message.published_at is None


def test_running_out_of_memory_retries_the_batch_instead_of_dead_lettering(monkeypatch):
    def exhausted(*_args, **_kwargs):
        raise MemoryError

    monkeypatch.setattr("streams.tuya.decoder.normalize", exhausted)
    with pytest.raises(TransientError, match="out of memory"):
        MessageDecoder(ACCESS_KEY).decode(_gcm_message({"devId": "bf1", "status": []}, 4, message_id="9"))


def test_the_smart_business_platform_envelope_is_kept_as_an_unknown_message():
    # SPEC.md §2.1: encryptPayload instead of data, no protocol, an inner payload of another shape
    inner = {"bizCode": "deviceAdd", "eventType": "device", "data": {"deviceId": "bf1"}}
    blob = Cipherbox(ACCESS_KEY).encrypt_ecb(json.dumps(inner).encode())
    envelope = {
        "encryptType": "aes_ecb",
        "v": "1.0",
        "t": 1700000000000,
        "encryptPayload": base64.b64encode(blob).decode(),
    }
    msg = PulsarMessage(payload=json.dumps(envelope).encode(), properties={}, message_id="7", topic="t")
    (record,) = _decode(msg).records
    assert (record.kind, record.protocol, record.biz_code, record.payload) == ("unknown", 0, "deviceAdd", inner)


def _encrypted(inner: dict, protocol: int) -> PulsarMessage:
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x03" * 12)
    envelope = {"data": base64.b64encode(blob).decode(), "protocol": protocol, "t": 1700000000000}
    return PulsarMessage(payload=json.dumps(envelope).encode(), properties={"em": "aes_gcm"}, message_id="1", topic="t")


@pytest.mark.parametrize(
    ("inner", "protocol"),
    [
        ({"devId": "bf1", "productKey": ["pk"], "dataId": {"a": 1}, "status": [{"code": "c", "value": 1, "t": 1}]}, 4),
        ({"devId": "bf1", "bizCode": "devicePropertyMessage", "bizData": {"productId": 7, "dataId": [1],
          "properties": [{"code": "c", "value": 1, "time": 1}]}}, 1000),
        ({"devId": "bf1", "bizCode": "online", "productKey": 5, "bizData": {"productId": ["x"], "time": 1}}, 20),
    ],
    ids=["status_report", "property_message", "device_event"],
)  # fmt: skip
def test_an_id_field_of_another_type_is_dropped_not_stored(inner, protocol):
    # A list or a number bound where the tables keep text stopped the store, and so the worker, on every redelivery.
    (record,) = _decode(_encrypted(inner, protocol)).records
    assert record.product_key is None and getattr(record, "data_id", None) is None


def test_the_payload_is_kept_as_decrypted_not_encoded_again():
    # Spaces, an escaped ü and a float's trailing zero: JSON that encoding the parsed payload would write otherwise.
    text = '{"bizCode": "nameUpdate", "devId": "bf1", "bizData": {"name": "K\\u00fcche", "t": 21.50}, "ts": 1}'
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(text.encode(), b"\x02" * 12)
    envelope = {"data": base64.b64encode(blob).decode(), "protocol": 20, "t": 1700000000000}
    msg = PulsarMessage(payload=json.dumps(envelope).encode(), properties={"em": "aes_gcm"}, message_id="1", topic="t")
    decoded = _decode(msg)
    assert decoded.message.payload == text
    assert [record.data for record in decoded.records] == [{"name": "Küche", "t": 21.5}]


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=600), em=st.sampled_from([None, "aes_ecb", "aes_gcm", "other"]))
def test_any_bytes_yield_records_or_a_dead_letter(payload, em):
    msg = PulsarMessage(payload=payload, properties={"em": em} if em else {}, message_id="1", topic="t")
    result = MessageDecoder(ACCESS_KEY).decode(msg)
    assert isinstance(result, Decoded | DeadLetter)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())),
    protocol=st.integers(min_value=-5, max_value=2000),
    t=st.integers(min_value=0, max_value=2**62),
    em=st.sampled_from(["aes_ecb", "aes_gcm"]),
)
def test_any_envelope_fields_yield_records_or_a_dead_letter(data, protocol, t, em):
    envelope = json.dumps({"data": data, "protocol": protocol, "t": t, "pv": "2.0"}).encode()
    msg = PulsarMessage(payload=envelope, properties={"em": em}, message_id="1", topic="t")
    assert isinstance(MessageDecoder(ACCESS_KEY).decode(msg), Decoded | DeadLetter)


@settings(max_examples=300, deadline=None)
@given(
    inner=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5),
        max_leaves=20,
    ),
    protocol=st.sampled_from([4, 20, 21, 1000, 1001, 1002, 99]),
)
def test_any_decrypted_json_yields_records_or_a_dead_letter(inner, protocol):
    blob = Cipherbox(ACCESS_KEY).encrypt_gcm(json.dumps(inner).encode(), b"\x01" * 12)
    envelope = {"data": base64.b64encode(blob).decode(), "protocol": protocol, "t": 1700000000000}
    msg = PulsarMessage(payload=json.dumps(envelope).encode(), properties={"em": "aes_gcm"}, message_id="1", topic="t")
    result = MessageDecoder(ACCESS_KEY).decode(msg)
    assert isinstance(result, Decoded | DeadLetter)
    if isinstance(result, DeadLetter):
        assert result.error_kind != "internal_error", result.error
    else:  # what the tables keep as text is text: the store binds it as it is
        for record in result.records:
            for field in ("product_key", "data_id", "code", "device_id"):
                assert type(getattr(record, field, None)) in (str, type(None)), (field, record)
