"""Builders of decoded messages and records for the store's tests; deterministic data, keyword overrides.

Used by tests/unit/store, tests/integration/test_store.py and tests/integration/test_cli_query.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models.records import DeadLetter, DecodedMessage, DeviceEvent, StatusReported, UnknownMessage, UserEvent
from streams.store.rows import json_text
from streams.tuya.decoder import Decoded

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TOPIC = "persistent://testaccessid0000/out/event"
DEVICE = "bf1e8a0cd2e4a1b2c3x9kq"
PRODUCT = "keyjup78v54myhan"


def message_id(n: int) -> str:
    """Pulsar's ``ledger:entry:partition:batch``, growing with ``n`` as real ids do."""
    return f"{100 + n // 1000}:{n % 1000}:0:-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def decoded_message(n: int, payload: dict[str, Any], **overrides: Any) -> DecodedMessage:
    fields: dict[str, Any] = {
        "message_id": message_id(n),
        "topic": TOPIC,
        "protocol": 4,
        "biz_code": payload.get("bizCode"),
        "device_id": payload.get("devId"),
        "encrypt_model": "aes_gcm",
        "sign_ok": True,
        "pushed_at": at(n),
        "published_at": at(n),
        "payload": json_text(payload),
        "properties": {"em": "aes_gcm"},
    }
    fields.update(overrides)
    return DecodedMessage(**fields)


def status_report(n: int, values: dict[str, Any], *, device: str = DEVICE, when: datetime | None = None) -> Decoded:
    """A protocol-4 report of ``values`` (code → value) by ``device`` at ``when`` (default: ``n`` seconds past T0)."""
    when = when or at(n)
    items = [{"code": code, "value": value, "t": int(when.timestamp() * 1000)} for code, value in values.items()]
    payload = {"dataId": f"data{n}", "devId": device, "productKey": PRODUCT, "status": items}
    records = [
        StatusReported(message_id(n), index, device, PRODUCT, code, value, index + 1, when, f"data{n}")
        for index, (code, value) in enumerate(values.items())
    ]
    return Decoded(decoded_message(n, payload), records)


def device_event(
    n: int, event: str, data: dict[str, Any] | None = None, *, device: str = DEVICE, when: datetime | None = None
) -> Decoded:
    when = when or at(n)
    biz_code = {"name_updated": "nameUpdate", "bound": "bindUser", "deleted": "delete"}.get(event, event)
    payload = {"bizCode": biz_code, "bizData": data or {}, "devId": device, "productKey": PRODUCT, "ts": 0}
    record = DeviceEvent(
        message_id=message_id(n),
        device_id=device,
        product_key=PRODUCT,
        event=event,
        biz_code=biz_code,
        protocol=20,
        occurred_at=when,
        data=data or {},
    )
    return Decoded(decoded_message(n, payload, protocol=20), [record])


def user_event(n: int, event: str, uid: str = "eu1700000000000AbCdE", *, when: datetime | None = None) -> Decoded:
    when = when or at(n)
    biz_code = {"registered": "userRegister", "updated": "userUpdate", "deleted": "userDelete"}[event]
    data = {"uid": uid, "schema": "app"}
    payload = {"bizCode": biz_code, "bizData": data, "ts": 0}
    record = UserEvent(message_id=message_id(n), uid=uid, event=event, biz_code=biz_code, occurred_at=when, data=data)
    return Decoded(decoded_message(n, payload, protocol=21), [record])


def unknown_message(n: int, *, device: str = DEVICE) -> Decoded:
    payload = {"bizCode": "roomNameUpdate", "devId": device, "bizData": {"name": "Küche"}}
    record = UnknownMessage(
        message_id=message_id(n),
        protocol=34,
        biz_code="roomNameUpdate",
        device_id=device,
        occurred_at=at(n),
        payload=payload,
    )
    return Decoded(decoded_message(n, payload, protocol=34), [record])


def dead_letter(n: int, **overrides: Any) -> DeadLetter:
    fields: dict[str, Any] = {
        "message_id": message_id(n),
        "topic": TOPIC,
        "payload": b'{"data":"%%%not base64","protocol":4}\xff',
        "properties": {"em": "aes_gcm"},
        "error_kind": "bad_base64",
        "error": "data is not base64",
        "published_at": at(n),
    }
    fields.update(overrides)
    return DeadLetter(**fields)
