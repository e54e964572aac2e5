"""The decrypted payloads (second layer) the simulator sends, in the shapes of SPEC.md §3 and ``vectors.json``.

Owns one builder per protocol: 4 status report, 20 device event, 21 user event, 1000 property message. Pure: ids,
values and times come in as arguments, a dict comes out; no randomness, no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.sim.products import Device

__all__ = [
    "DEVICE_BIZ_CODES",
    "PROTOCOL_DEVICE_EVENT",
    "PROTOCOL_PROPERTY",
    "PROTOCOL_STATUS",
    "PROTOCOL_USER_EVENT",
    "USER_BIZ_CODES",
    "device_event",
    "property_message",
    "status_report",
    "user_event",
]

PROTOCOL_STATUS = 4
PROTOCOL_DEVICE_EVENT = 20
PROTOCOL_USER_EVENT = 21
PROTOCOL_PROPERTY = 1000

DEVICE_BIZ_CODES = frozenset({"online", "offline", "nameUpdate", "dpNameUpdate", "bindUser", "delete", "upgradeStatus"})
USER_BIZ_CODES = frozenset({"userRegister", "userUpdate", "userDelete"})


def _dp_text(value: Any) -> str:
    # The "<dpId>": "<value as string>" twin of each status item (SPEC.md §3.2: "1": "true").
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def status_report(device: Device, values: Mapping[str, Any], item_t_ms: int, data_id: str) -> dict[str, Any]:
    """Protocol 4 (SPEC.md §3.2): ``{dataId, devId, productKey, status: [{code, value, t, "<dpId>": text}]}``."""
    dp_ids = device.product.dp_ids
    items = []
    for code, value in values.items():
        item: dict[str, Any] = {"code": code, "value": value, "t": item_t_ms}
        dp_id = dp_ids.get(code)
        if dp_id is not None:
            item[str(dp_id)] = _dp_text(value)
        items.append(item)
    return {"dataId": data_id, "devId": device.device_id, "productKey": device.product_key, "status": items}


def property_message(device: Device, values: Mapping[str, Any], t_ms: int, data_id: str) -> dict[str, Any]:
    """Protocol 1000 ``devicePropertyMessage`` (SPEC.md §3.4, shape of ``p1000_device_property_gcm``)."""
    dp_ids = device.product.dp_ids
    properties = []
    for code, value in values.items():
        prop: dict[str, Any] = {"code": code, "time": t_ms, "value": value}
        if code in dp_ids:
            prop["dpId"] = dp_ids[code]
        properties.append(prop)
    biz_data = {"devId": device.device_id, "productId": device.product_key, "dataId": data_id, "properties": properties}
    return {"bizCode": "devicePropertyMessage", "bizData": biz_data, "ts": t_ms}


def device_event(device: Device, biz_code: str, t_ms: int, uuid: str, **biz_data: Any) -> dict[str, Any]:
    """Protocol 20 (SPEC.md §3.3). ``biz_data`` overrides or adds ``bizData`` fields (``name=``, ``dpId=`` …).

    online/offline carry ``bizData.time`` in seconds and ``ts: 0``, as in the captures; the others carry ``ts`` in
    ms and a ``uuid``.
    """
    if biz_code not in DEVICE_BIZ_CODES:
        raise ValueError(f"the simulator has no protocol-20 bizCode {biz_code!r}")
    frame: dict[str, Any] = {"bizCode": biz_code}
    if biz_code in ("online", "offline"):
        frame["bizData"] = {"time": t_ms // 1000, **biz_data}
        frame.update(devId=device.device_id, productKey=device.product_key, ts=0)
        return frame
    frame["bizData"] = {"devId": device.device_id, **_event_defaults(device, biz_code, uuid), **biz_data}
    frame.update(devId=device.device_id, productKey=device.product_key, ts=t_ms, uuid=uuid)
    return frame


def _event_defaults(device: Device, biz_code: str, uuid: str) -> dict[str, Any]:
    if biz_code == "nameUpdate":
        return {"uid": device.uid, "name": device.name}
    if biz_code == "dpNameUpdate":
        return {"name": device.name, "dpId": "1"}
    if biz_code == "bindUser":
        return {"uid": device.uid, "ownerId": device.owner_id, "uuid": uuid, "token": uuid[:8]}
    if biz_code == "delete":
        return {"uid": device.uid, "ownerId": device.owner_id}
    return {"upgradeStatus": "2", "moduleType": "0", "description": ""}


def user_event(uid: str, biz_code: str, t_ms: int, schema: str) -> dict[str, Any]:
    """Protocol 21 (SPEC.md §3.4, shape of ``p21_user_register_gcm``): ``bizData.time`` in seconds, ``ts`` in ms."""
    if biz_code not in USER_BIZ_CODES:
        raise ValueError(f"the simulator has no protocol-21 bizCode {biz_code!r}")
    return {"bizCode": biz_code, "bizData": {"uid": uid, "schema": schema, "time": t_ms // 1000}, "ts": t_ms}
