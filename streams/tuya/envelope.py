"""Tuya's message envelope (SPEC.md §2): parse it, choose the cipher by ``em``, decrypt, check the ``sign``.

Owns the first layer of a message and the Pulsar WebSocket frame format (SPEC.md §1.4). Pure: bytes and dicts in,
:class:`~models.records.DecodedMessage` out, :class:`~streams.errors.DecodeError` on bad input. Never imports
httpx, pulsar or SQLAlchemy.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Annotated, Any

import msgspec

from models.records import DecodedMessage, PulsarMessage
from streams.errors import DecryptError, EnvelopeError, PayloadError
from streams.tuya.crypto import Cipherbox
from streams.tuya.normalize import published_at, utc

__all__ = ["Envelope", "envelope_sign", "message_id_from_websocket", "open_envelope", "parse_websocket_frame"]

_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()

# SPEC.md §2.2: anything but "aes_gcm", absence included, is ECB in every official SDK.
GCM = "aes_gcm"
ECB = "aes_ecb"
#: Tuya's protocols are small numbers (SPEC.md §3.1); the messages row keeps one in a 32-bit integer.
PROTOCOL_BELOW = 2**31


class Envelope(msgspec.Struct, frozen=True):
    """The decrypted view of the envelope fields the rest of the worker needs."""

    protocol: int
    t: int
    sign: str
    encrypt_model: str
    plaintext: bytes
    sign_ok: bool


class _Standard(msgspec.Struct, forbid_unknown_fields=True):
    """The standard envelope (SPEC.md §2.1), exactly these fields of these types: nearly every message. msgspec reads
    and type-checks it in C; anything else (an extra, missing or mistyped field) takes the general path."""

    data: str
    protocol: Annotated[int, msgspec.Meta(ge=0, lt=PROTOCOL_BELOW)]
    pv: str
    t: int
    sign: str


_standard = msgspec.json.Decoder(_Standard)


def envelope_sign(fields: dict[str, Any], access_key: str) -> str:
    """The documented anti-counterfeiting MD5 (SPEC.md §2.6): sorted ``k=v`` of non-empty fields but ``sign``.

    ``md5("data=<b64>||protocol=<n>||pv=2.0||t=<t>||<accessKey>")`` for the standard envelope. The rule is
    [UNCERTAIN] against live traffic, so a mismatch is recorded and counted, never a reason to drop a message.
    """
    parts = [
        f"{key}={value if type(value) is str or type(value) is int else _sign_text(value)}"
        for key, value in sorted(fields.items())
        if key != "sign" and value is not None and value != ""
    ]
    parts.append(access_key)
    return hashlib.md5("||".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def _standard_sign(envelope: _Standard, access_key: str) -> str:
    """:func:`envelope_sign` of a standard envelope whose fields are all non-empty: its text built directly, in
    sorted order, without sorting (half the cost of the general rule, the largest part of decoding after JSON and
    AES)."""
    text = f"data={envelope.data}||protocol={envelope.protocol}||pv={envelope.pv}||t={envelope.t}||{access_key}"
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _sign_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _encode.encode(value).decode("utf-8")


def open_envelope(payload: bytes, em: str | None, box: Cipherbox, access_key: str) -> Envelope:
    """Parse the envelope JSON, strictly base64-decode ``data``, decrypt by ``em``, check ``sign``.

    Raises:
        EnvelopeError: not JSON, or ``data``/``protocol`` missing or mistyped.
        DecryptError: bad base64, wrong length, bad padding, GCM tag mismatch.
    """
    try:
        standard: _Standard | None = _standard.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError):  # another shape, or not JSON: the general path says which
        standard = None
    if standard is not None and standard.data and standard.pv and standard.sign:
        data, protocol, t, sign = standard.data, standard.protocol, standard.t, standard.sign
        expected = _standard_sign(standard, access_key)
    else:
        try:
            fields = _json.decode(payload)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise EnvelopeError(f"envelope is not JSON: {exc}", kind="bad_envelope_json") from None
        data, protocol, t, sign = _checked_fields(fields)
        expected = envelope_sign(fields, access_key) if sign else ""
    try:
        blob = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise DecryptError(f"'data' is not strict base64: {exc}", kind="bad_base64") from None
    model = GCM if em == GCM else ECB
    plaintext = box.decrypt_gcm(blob) if model == GCM else box.decrypt_ecb(blob)
    return Envelope(protocol, t, sign, model, plaintext, bool(sign) and expected == sign)


def _checked_fields(fields: Any) -> tuple[str, int, int, str]:
    """``data``, ``protocol``, ``t`` and ``sign`` (``""`` when absent) of an envelope of any other shape."""
    # JSON decodes to exact types, so ``type() is`` checks suffice (and keep booleans out of the integers).
    if type(fields) is not dict:
        raise EnvelopeError("envelope is not a JSON object")
    data, protocol, t, sign = fields.get("data"), fields.get("protocol"), fields.get("t", 0), fields.get("sign")
    if type(data) is not str:
        # The Smart Business Platform variant names it encryptPayload and has no protocol (SPEC.md §2.1): 0, so
        # its payload is kept as an unknown message rather than refused.
        data = fields.get("encryptPayload")
        if type(data) is not str:
            raise EnvelopeError("envelope has no string field 'data'", kind="bad_envelope")
        if protocol is None:
            protocol = 0
    if type(protocol) is not int:
        raise EnvelopeError("envelope has no integer field 'protocol'", kind="bad_envelope")
    if not 0 <= protocol < PROTOCOL_BELOW:  # the messages row's protocol is a 32-bit integer on both databases
        raise EnvelopeError(f"envelope field 'protocol' is no protocol number: {protocol}", kind="bad_envelope")
    if type(t) is not int:
        raise EnvelopeError("envelope field 't' is not an integer", kind="bad_envelope")
    return data, protocol, t, sign if type(sign) is str else ""


def decode_payload(plaintext: bytes) -> dict[str, Any]:
    """The decrypted second layer as a dict. Raises PayloadError if it is not UTF-8 JSON of an object."""
    try:
        payload = _json.decode(plaintext)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"decrypted payload is not UTF-8 JSON: {exc}", kind="bad_payload_json") from None
    if not isinstance(payload, dict):
        raise PayloadError("decrypted payload is not a JSON object", kind="bad_payload_json")
    return payload


def decoded_message(
    msg: PulsarMessage, env: Envelope, payload: dict[str, Any], device_id: str | None, pushed_ms: int
) -> DecodedMessage:
    """The ``messages`` row, which keeps the plaintext itself as its payload text (UTF-8, as decode_payload found
    when it parsed it into ``payload``); ``pushed_ms`` is Tuya's push time (the envelope ``t`` read as ms, else
    Pulsar's)."""
    biz_code = payload.get("bizCode")
    return DecodedMessage(
        message_id=msg.message_id,
        topic=msg.topic,
        protocol=env.protocol,
        biz_code=biz_code if isinstance(biz_code, str) else None,
        device_id=device_id,
        encrypt_model=env.encrypt_model,  # type: ignore[arg-type]
        sign_ok=env.sign_ok,
        pushed_at=utc(pushed_ms),
        published_at=published_at(msg.publish_time_ms),
        payload=env.plaintext.decode(),
        properties=msg.properties,
    )


# --- Pulsar WebSocket frames (SPEC.md §1.4) ---------------------------------------------------------------------


def message_id_from_websocket(encoded: str) -> str:
    """Turn a WebSocket ``messageId`` (base64 of Pulsar's MessageIdData protobuf) into ``ledger:entry:part:batch``.

    The same message then has the same id whether it came over the binary protocol or a WebSocket capture, so a
    replayed capture never duplicates an archived message. Unparseable ids are kept as given.
    """
    try:
        raw = base64.b64decode(encoded, validate=True)
        fields = _protobuf_varints(raw)
    except (binascii.Error, ValueError):
        return encoded
    if 1 not in fields or 2 not in fields:
        return encoded
    # MessageIdData: 1 ledgerId, 2 entryId, 3 partition (default -1), 4 batch_index (default -1).
    return f"{fields[1]}:{fields[2]}:{_signed(fields.get(3, -1))}:{_signed(fields.get(4, -1))}"


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _protobuf_varints(raw: bytes) -> dict[int, int]:
    fields: dict[int, int] = {}
    pos = 0
    while pos < len(raw):
        key, pos = _varint(raw, pos)
        if key & 7 != 0:  # only varint fields are of interest; anything else ends the parse
            break
        value, pos = _varint(raw, pos)
        fields[key >> 3] = value
    return fields


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(raw) or shift > 63:
            raise ValueError("truncated varint")
        byte = raw[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def parse_websocket_frame(frame: dict[str, Any], topic: str) -> PulsarMessage:
    """A Pulsar WebSocket consumer frame as a :class:`PulsarMessage` (the payload is base64 of the envelope)."""
    try:
        payload = base64.b64decode(frame["payload"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise EnvelopeError(f"WebSocket frame has no base64 'payload': {exc}", kind="bad_websocket_frame") from None
    properties = frame.get("properties") or {}
    message_id = frame.get("messageId")
    return PulsarMessage(
        payload=payload,
        properties={str(k): str(v) for k, v in properties.items()},
        message_id=message_id_from_websocket(message_id) if isinstance(message_id, str) else "",
        topic=topic,
        publish_time_ms=_iso_ms(frame.get("publishTime")),
        redelivery_count=int(frame.get("redeliveryCount") or 0),
    )


def _iso_ms(text: Any) -> int:
    # SPEC.md §1.4: the format and zone of publishTime are [UNCERTAIN]; the envelope t is authoritative.
    if not isinstance(text, str):
        return 0
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, OverflowError):  # not ISO 8601, or beyond a datetime once shifted to UTC
        return 0
