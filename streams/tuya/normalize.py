"""Normalise a decrypted Tuya payload into typed records (SPEC.md §3).

Owns the routing table of protocols and bizCodes and the timestamp rule. Pure: a dict in, records out,
:class:`~streams.errors.PayloadError` for payloads of a known kind that lack what the kind needs. Anything we do not
model becomes an :class:`~models.records.UnknownMessage` that keeps the whole payload. Never imports httpx, pulsar
or SQLAlchemy.

A status report (or property message) skips the items it cannot use rather than failing for one of them; it is a
dead letter only when its item list is missing or when it has items and none is usable (an empty list is no
records, not an error).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from models.records import LONGEST_KEY, DeviceEvent, Record, StatusReported, UnknownMessage, UserEvent, key_text
from streams.errors import PayloadError

__all__ = [
    "DEVICE_EVENT_NAMES",
    "USER_EVENT_NAMES",
    "device_id_of",
    "normalize",
    "published_at",
    "timestamp_ms",
    "user_id_of",
    "utc",
]

#: (protocol, bizCode) → our device event vocabulary. Legacy protocol 20 and IoT-Core 1001/1002 share it
#: (SPEC.md §3.1: 1001 deviceOnline corresponds to legacy 20 online).
DEVICE_EVENT_NAMES: dict[tuple[int, str], str] = {
    (20, "online"): "online",
    (20, "offline"): "offline",
    (20, "nameUpdate"): "name_updated",
    (20, "dpNameUpdate"): "dp_name_updated",
    (20, "bindUser"): "bound",
    (20, "delete"): "deleted",
    (20, "upgradeStatus"): "upgrade_status",
    (20, "share"): "shared",
    (20, "deviceSignal"): "signal",
    (20, "deviceDpCommand"): "dp_command",
    # SPEC.md §3.6: seen in published payloads though absent from the docs' list; "Process" is Tuya's spelling.
    (20, "upgradeProcess"): "upgrade_progress",
    (1001, "deviceOnline"): "online",
    (1001, "deviceOffline"): "offline",
    (1001, "deviceNameUpdate"): "name_updated",
    (1001, "deviceBindSpace"): "bound",
    (1001, "deviceUnbindSpace"): "unbound",
    (1001, "deviceTransfer"): "transferred",
    (1001, "deviceFreeze"): "frozen",
    (1001, "deviceUnFreeze"): "unfrozen",
    (1002, "deviceOtaProgress"): "upgrade_progress",
    # Not mapped: ``event_notify`` (SPEC.md §3.6), seen by name only, with neither its protocol nor its bizData known.
    # It reads as a device-raised event (a doorbell, an alarm), which none of DEVICE_EVENTS names: those are
    # lifecycle facts about the device. It stays an UnknownMessage, which keeps the whole payload, until a capture
    # shows its shape and a name can be chosen for it.
}

#: Protocol 21 bizCode → user event (SPEC.md §3.4).
USER_EVENT_NAMES: dict[str, str] = {
    "userRegister": "registered",
    "userUpdate": "updated",
    "userDelete": "deleted",
}

# IoT-Core 1000 bizCodes that carry property values (SPEC.md §3.4).
_PROPERTY_BIZ_CODES = frozenset({"devicePropertyMessage", "deviceQueryPropertyMessage"})
# Top-level keys of a protocol 20 payload that are not event data (SPEC.md §3.3).
_EVENT_FRAME_KEYS = frozenset({"bizCode", "bizData", "devId", "productKey", "ts"})

_SECONDS_BELOW = 10**11  # SPEC.md §3.5: below 10^11 a timestamp is in seconds, at or above it in ms
_MS_BELOW = 253_402_300_800_000  # 10000-01-01: a later time is garbage, and no datetime can hold it


def timestamp_ms(value: Any, fallback_ms: int) -> int:
    """A Tuya timestamp (s or ms, int or digit string) in ms; ``fallback_ms`` when it is 0, absent or garbage."""
    if type(value) is int and _SECONDS_BELOW <= value < _MS_BELOW:  # the usual: ms already
        return value
    if isinstance(value, str) and _is_digits(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _MS_BELOW:
        return fallback_ms
    return value * 1000 if value < _SECONDS_BELOW else value


def _is_digits(text: str) -> bool:
    # str.isdigit() accepts digits int() refuses (e.g. "²"); Tuya ids and times are ASCII. No id or time we accept
    # has more than 15 digits, and int() refuses over 4,300 (a ValueError that would cost the whole message).
    return len(text) <= 18 and text.isascii() and text.isdigit()


# SPEC.md §3.2: DP ids are 1-255; their keys are looked up rather than parsed. Ids beyond 255 occur (§3.6) and are
# kept; 0, negatives and ids beyond int32 (the column's type) are not ids.
_DP_IDS = {str(dp_id): dp_id for dp_id in range(1, 256)}
_DP_ID_BELOW = 2**31


def _item_dp_id(item: dict[str, Any]) -> int | None:
    """The DP id of a status item: its key made of digits (``"1": "true"``, SPEC.md §3.2), else its ``dpId``.

    Tuya writes the digit key after code, value and t, so looking from the end finds it first; its place varies
    (§3.6), hence the scan. Its value is never read: it may differ from ``value`` (§3.6).
    """
    for key in reversed(item):
        dp_id = _DP_IDS.get(key)
        if dp_id is not None:
            return dp_id
        if _is_digits(key) and 0 < (dp_id := int(key)) < _DP_ID_BELOW:
            return dp_id
    return _dp_id(item.get("dpId"))


def _dp_id(value: Any) -> int | None:
    """A ``dpId`` field, an int or a digit string (SPEC.md §3.6: both are seen)."""
    if type(value) is str and _is_digits(value):
        value = int(value)
    return value if type(value) is int and 0 < value < _DP_ID_BELOW else None


@lru_cache(maxsize=8192)
def utc(ms: int) -> datetime:
    # Items of one report share their time, and bursts repeat it: caching avoids most datetime constructions.
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def published_at(ms: int) -> datetime | None:
    """Pulsar's publish time of a message, in ms; None when there is none (0) or it is no time a datetime holds (a
    record or a line not written by a broker)."""
    return utc(ms) if 0 < ms < _MS_BELOW else None


def device_id_of(payload: dict[str, Any]) -> str | None:
    """``devId`` at the top level, else in ``bizData`` (SPEC.md §3.3: SDKs read it in either place); only text the
    archive can key by (models.records.key_text)."""
    device_id = payload.get("devId")
    if type(device_id) is str and device_id in _KEYS:  # _key's common case, inline: one a message
        return device_id
    device_id = _key(device_id)
    if device_id is None:
        biz_data = payload.get("bizData")
        if isinstance(biz_data, dict):
            device_id = _key(biz_data.get("devId"))
    return device_id


def user_id_of(payload: dict[str, Any]) -> str | None:
    """A user event's ``uid``: in ``bizData``, else at the top level (SPEC.md §3.4); only text the archive can key
    by (models.records.key_text)."""
    biz_data = payload.get("bizData")
    uid = _key(biz_data.get("uid")) if isinstance(biz_data, dict) else None
    return uid or _key(payload.get("uid"))


def normalize(message_id: str, protocol: int, payload: dict[str, Any], pushed_ms: int) -> list[Record]:
    """Route by protocol first, then bizCode (SPEC.md §3.1), into records; ``pushed_ms`` is the envelope ``t``, which
    is ms on Pulsar but seconds on OpenMQ (SPEC.md §3.6), so it too is read by magnitude."""
    if not _SECONDS_BELOW <= pushed_ms < _MS_BELOW:  # timestamp_ms's common case inline: one a message
        pushed_ms = timestamp_ms(pushed_ms, pushed_ms)
    biz_code = payload.get("bizCode")
    if protocol == 4 and biz_code is None:
        return _status_report(message_id, payload, pushed_ms)
    if protocol == 1000 and isinstance(biz_code, str) and biz_code in _PROPERTY_BIZ_CODES:
        return _property_message(message_id, payload, pushed_ms)
    if isinstance(biz_code, str):
        event = DEVICE_EVENT_NAMES.get((protocol, biz_code))
        if event is not None:
            return [_device_event(message_id, protocol, biz_code, event, payload, pushed_ms)]
        if protocol == 21 and biz_code in USER_EVENT_NAMES:
            return [_user_event(message_id, biz_code, payload, pushed_ms)]
    return [
        UnknownMessage(
            message_id=message_id,
            protocol=protocol,
            biz_code=biz_code if isinstance(biz_code, str) else None,
            device_id=device_id_of(payload),
            occurred_at=utc(_fallback_ms(payload, pushed_ms)),
            payload=payload,
        )
    ]


def _text(value: Any) -> str | None:
    """An id field that is text (``productKey``, ``dataId``: no index holds them); another type is garbage, kept only
    in the payload."""
    return value if type(value) is str and value else None


#: Text found fit to key by (models.records.key_text): device ids and codes repeat, so each is checked once.
_KEYS: set[str] = set()
_KEYS_KEPT = 100_000  # then forgotten, and checked again as they come


def _key(value: Any) -> str | None:
    """``value`` if the archive can key by it (key_text), remembered."""
    if type(value) is not str:
        return None
    if value in _KEYS:
        return value
    if key_text(value) is None:
        return None
    if len(_KEYS) >= _KEYS_KEPT:
        _KEYS.clear()
    _KEYS.add(value)
    return value


def _required_device_id(payload: dict[str, Any]) -> str:
    device_id = device_id_of(payload)
    if device_id is None:
        raise PayloadError(
            f"payload has no devId (neither top level nor bizData) of 1 to {LONGEST_KEY} characters without control "
            "characters",
            kind="missing_device_id",
        )
    return device_id


def _status_report(message_id: str, payload: dict[str, Any], pushed_ms: int) -> list[Record]:
    """Protocol 4 (SPEC.md §3.2): one record per usable item of ``status``, its time in ``t``."""
    device_id = _required_device_id(payload)
    items = payload.get("status")
    if not isinstance(items, list):
        raise PayloadError("status report has no 'status' list", kind="bad_status_report")
    product_key, data_id = _text(payload.get("productKey")), _text(payload.get("dataId"))
    records = _status_records(message_id, items, "t", device_id, product_key, data_id, payload, pushed_ms)
    if items and not records:
        raise PayloadError("status report has no item with a code or a DP id", kind="bad_status_report")
    return records


def _property_message(message_id: str, payload: dict[str, Any], pushed_ms: int) -> list[Record]:
    """IoT-Core 1000 property message (SPEC.md §3.4, §3.6): ``bizData.properties`` as status records, times in
    ``time``; ids sit in ``bizData`` (``productId``, not ``productKey``)."""
    device_id = _required_device_id(payload)
    biz_data = payload.get("bizData")
    properties = biz_data.get("properties") if isinstance(biz_data, dict) else None
    if not isinstance(properties, list):
        raise PayloadError("property message has no 'bizData.properties' list", kind="bad_property_message")
    assert isinstance(biz_data, dict)
    product_key = _text(biz_data.get("productId")) or _text(biz_data.get("productKey"))
    product_key = product_key or _text(payload.get("productKey"))
    data_id = _text(biz_data.get("dataId")) or _text(payload.get("dataId"))
    records = _status_records(message_id, properties, "time", device_id, product_key, data_id, payload, pushed_ms)
    if properties and not records:
        raise PayloadError("property message has no property with a code or a DP id", kind="bad_property_message")
    return records


def _status_records(
    message_id: str,
    items: list[Any],
    time_key: str,
    device_id: str,
    product_key: str | None,
    data_id: str | None,
    payload: dict[str, Any],
    pushed_ms: int,
) -> list[Record]:
    """A report's items as records. An item with a DP id but no code gets ``code=None`` (the pipeline names it later);
    one with neither, or not an object, is skipped: one odd item must not cost the others (SPEC.md §3.6), and the
    messages row keeps the payload whole. ``item_index`` is the position in the payload, skipped items counted, so a
    redelivery gives the same keys. An item's time falls back to ``ts``, then to the envelope ``t`` (SPEC.md §3.5).
    """
    records: list[Record] = []
    append, dp_ids, keys = records.append, _DP_IDS, _KEYS  # the hot loop: five items a report
    last_t, at = None, None  # a report's items usually share their int time: one reading for them all
    latest = pushed_ms + _AHEAD_OF_PUSH_MS if pushed_ms > 0 else _MS_BELOW  # a later time is a wrong clock's
    for index, item in enumerate(items):
        try:  # Tuya's usual item has all three (SPEC.md §3.2); subscripts cost half what get() does
            code, value, t = item["code"], item["value"], item[time_key]
        except (KeyError, TypeError):
            if type(item) is not dict:
                continue
            code, value, t = item.get("code"), item.get("value"), item.get(time_key)
        # Fast path for Tuya's usual order, the digit key last (SPEC.md §3.2); _item_dp_id handles the rest.
        dp_id = dp_ids.get(next(reversed(item), None))
        if dp_id is None:
            dp_id = _item_dp_id(item)
        if type(code) is not str or (code not in keys and _key(code) is None):  # _key, the common case inline
            if dp_id is None:
                continue
            code = None  # named by its DP id later, the payload keeps what came
        if type(t) is not int or t != last_t:  # an int time is read once for the items that share it
            ms = timestamp_ms(t, 0)  # 0: no time of its own
            at = utc(ms if 0 < ms <= latest else _fallback_ms(payload, pushed_ms))
            last_t = t if type(t) is int else None
        # Positional, in field order: message_id, item_index, device_id, product_key, code, value, dp_id, reported_at.
        append(StatusReported(message_id, index, device_id, product_key, code, value, dp_id, at, data_id))
    return records


def _event_data(payload: dict[str, Any]) -> dict[str, Any]:
    biz_data = payload.get("bizData")
    data = dict(biz_data) if isinstance(biz_data, dict) else {}
    data.update((key, value) for key, value in payload.items() if key not in _EVENT_FRAME_KEYS)
    return data


def _fallback_ms(payload: dict[str, Any], pushed_ms: int) -> int:
    """The time of a payload whose parts carry none: ``ts`` (ms or 0), else the envelope ``t`` (SPEC.md §3.5)."""
    return _by_push(timestamp_ms(payload.get("ts"), 0), pushed_ms) or pushed_ms


def _occurred_ms(payload: dict[str, Any], pushed_ms: int) -> int:
    # SPEC.md §3.3/§3.5: bizData.time (often seconds) is the event's own time; ts (ms or 0) next; then envelope t.
    biz_data = payload.get("bizData")
    own = biz_data.get("time") if isinstance(biz_data, dict) else None
    return _by_push(timestamp_ms(own, 0), pushed_ms) or _fallback_ms(payload, pushed_ms)


#: How far after Tuya pushed a message its own times may lie: a clock that far ahead is wrong.
_AHEAD_OF_PUSH_MS = 86_400_000


def _by_push(ms: int, pushed_ms: int) -> int:
    """``ms``, or 0 (no time of its own) when it lies more than a day after Tuya pushed the message: a device whose
    clock is wrong. Taken for its time, such a value would stay the device's latest for good (newer wins). Without a
    push time (0: a line or a record no broker wrote) ``ms`` stands."""
    return ms if pushed_ms <= 0 or ms <= pushed_ms + _AHEAD_OF_PUSH_MS else 0


def _device_event(
    message_id: str, protocol: int, biz_code: str, event: str, payload: dict[str, Any], pushed_ms: int
) -> DeviceEvent:
    biz_data = payload.get("bizData")
    product_key = _text(payload.get("productKey"))
    if product_key is None and isinstance(biz_data, dict):
        product_key = _text(biz_data.get("productId")) or _text(biz_data.get("productKey"))
    return DeviceEvent(
        message_id=message_id,
        device_id=_required_device_id(payload),
        product_key=product_key,
        event=event,
        biz_code=biz_code,
        protocol=protocol,
        occurred_at=utc(_occurred_ms(payload, pushed_ms)),
        data=_event_data(payload),
    )


def _user_event(message_id: str, biz_code: str, payload: dict[str, Any], pushed_ms: int) -> UserEvent:
    uid = user_id_of(payload)
    if uid is None:
        raise PayloadError(f"user event has no uid of 1 to {LONGEST_KEY} characters", kind="missing_uid")
    return UserEvent(
        message_id=message_id,
        uid=uid,
        event=USER_EVENT_NAMES[biz_code],
        biz_code=biz_code,
        occurred_at=utc(_occurred_ms(payload, pushed_ms)),
        data=_event_data(payload),
    )
