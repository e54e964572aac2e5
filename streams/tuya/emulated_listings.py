"""The emulated project's device lists, one per path family, and device details (SPEC.md §10.1).

Owns each family's page rule and record shape:

- ``GET /v1.3/iot-03/devices``: ``page_size`` ≤ 200, opaque ``last_row_key``, ``{has_more, list, last_row_key,
  total}``;
- ``GET /v2.0/cloud/thing/device``: ``page_size`` required, ≤ 20, ``last_id``, filters ``product_ids`` and
  ``categories`` (≤ 5 each); a plain list whose end is a short page; snake_case or camelCase fields; no owner;
- ``GET /v1.0/iot-01/associated-users/devices``: ``size`` ≤ 100, ``{devices, has_more, last_row_key, total}``;
- ``GET /v1.0/users/{uid}/devices``: a plain list of the user's devices with inline ``status``.

Every list runs in device id order, so a device added while a client pages is met once or not at all, never
twice. Times are seconds; ``local_key`` is a fake device secret. Pure: reads the
:class:`~streams.tuya.emulated_devices.DeviceRegistry` under its lock. Must not import the client or httpx.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from streams.tuya.emulated_devices import DeviceRegistry, EmulatedDevice
from streams.tuya.emulated_requests import Refusal, comma_list, decode_cursor, encode_cursor, int_param

__all__ = [
    "associated_user_devices",
    "iot03_details",
    "iot03_devices",
    "thing_details",
    "thing_devices",
    "user_devices",
]

_CATEGORY_NAMES = {
    "cz": "Socket",
    "pc": "Power Strip",
    "kg": "Switch",
    "dj": "Light",
    "wk": "Thermostat",
    "wsdcg": "Temperature and Humidity Sensor",
    "zndb": "Smart Electricity Meter",
    "mcs": "Contact Sensor",
}
_THING_CAMEL = {
    "active_time": "activeTime",
    "create_time": "createTime",
    "custom_name": "customName",
    "is_online": "isOnline",
    "local_key": "localKey",
    "product_id": "productId",
    "product_name": "productName",
    "time_zone": "timeZone",
    "update_time": "updateTime",
}
_PERMISSION_DENY = 1106


def _icon(device: EmulatedDevice) -> str:
    return f"smart/icon/{device.category or 'default'}.png"


def _common(device: EmulatedDevice) -> dict[str, Any]:
    """The fields every family shares, under their snake_case names."""
    return {
        "active_time": device.active_time,
        "category": device.category,
        "create_time": device.create_time,
        "icon": _icon(device),
        "id": device.device_id,
        "ip": device.ip,
        "lat": device.lat,
        "local_key": device.local_key,
        "lon": device.lon,
        "name": device.name,
        "product_id": device.product_id,
        "product_name": device.product_name,
        "sub": False,
        "time_zone": device.time_zone,
        "update_time": device.update_time,
        "uuid": device.uuid,
    }


def _iot03_record(device: EmulatedDevice) -> dict[str, Any]:
    return {
        **_common(device),
        "gateway_id": "",
        "node_id": "",
        "category_name": _CATEGORY_NAMES.get(device.category, device.category),
        "asset_id": device.owner_id,
        "owner_id": device.owner_id,
        "model": device.model,
        "online": device.online,
    }


def _owned_record(device: EmulatedDevice) -> dict[str, Any]:
    """The record of the families that know the owner (associated users, a user's devices)."""
    return {
        **_common(device),
        "uid": device.uid,
        "owner_id": device.owner_id,
        "online": device.online,
        "biz_type": device.biz_type,
        "model": device.model,
    }


def _user_record(device: EmulatedDevice) -> dict[str, Any]:
    status = [{"code": code, "value": value} for code, value in device.status.items()]
    return {**_owned_record(device), "status": status}


def _thing_record(device: EmulatedDevice, camel_case: bool) -> dict[str, Any]:
    record = _common(device)
    record.update(custom_name=device.custom_name, is_online=device.online)
    if camel_case:
        return {_THING_CAMEL.get(name, name): value for name, value in record.items()}
    return record


def _after(params: Mapping[str, str], name: str) -> str:
    """The device id an opaque ``last_row_key`` points after (``""``: the first page)."""
    cursor = params.get(name, "")
    return decode_cursor(cursor, 1)[0] if cursor else ""


def _cursor(items: list[dict[str, Any]], params: Mapping[str, str], name: str) -> str:
    return encode_cursor(items[-1]["id"]) if items else params.get(name, "")


def iot03_devices(registry: DeviceRegistry, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of ``GET /v1.3/iot-03/devices``; ``source_type`` and ``source_id`` are accepted and ignored."""
    size = int_param(params, "page_size", 20, low=1, high=200)
    items, more = registry.page(_after(params, "last_row_key"), size, _iot03_record)
    return {
        "has_more": more,
        "list": items,
        "last_row_key": _cursor(items, params, "last_row_key"),
        "total": len(registry),
    }


def thing_devices(registry: DeviceRegistry, params: Mapping[str, str], *, camel_case: bool) -> list[dict[str, Any]]:
    """A page of ``GET /v2.0/cloud/thing/device``: the devices after ``last_id``, at most ``page_size`` (≤ 20)."""
    size = int_param(params, "page_size", low=1, high=20)
    products = set(comma_list(params, "product_ids", most=5))
    categories = set(comma_list(params, "categories", most=5))
    keep: Callable[[EmulatedDevice], bool] | None = None
    if products or categories:

        def keep(device: EmulatedDevice) -> bool:
            return (not products or device.product_id in products) and (not categories or device.category in categories)

    items, _ = registry.page(params.get("last_id", ""), size, lambda device: _thing_record(device, camel_case), keep)
    return items


def associated_user_devices(registry: DeviceRegistry, params: Mapping[str, str]) -> dict[str, Any]:
    """A page of ``GET /v1.0/iot-01/associated-users/devices`` (``size`` ≤ 100)."""
    size = int_param(params, "size", 20, low=1, high=100)
    items, more = registry.page(_after(params, "last_row_key"), size, _owned_record)
    cursor = _cursor(items, params, "last_row_key")
    return {"devices": items, "has_more": more, "last_row_key": cursor, "total": len(registry)}


def user_devices(
    registry: DeviceRegistry, uid: str, params: Mapping[str, str], known_uids: Collection[str]
) -> list[dict[str, Any]]:
    """``GET /v1.0/users/{uid}/devices``: the user's own devices, or (``from=sharing``) those shared with the user,
    each named by its owner's uid.

    Raises:
        Refusal: 1106 for a uid the project does not know, as Tuya answers a wrong uid.
    """
    if uid not in known_uids and uid not in registry.uids():
        raise Refusal(_PERMISSION_DENY)
    if params.get("from") == "sharing":
        return registry.select(lambda device: uid in device.shared_with, _user_record)
    return registry.select(lambda device: device.uid == uid, _user_record)


def iot03_details(registry: DeviceRegistry, device_id: str) -> dict[str, Any]:
    """``GET /v1.0/iot-03/devices/{id}`` (and ``/v1.0/devices/{id}``): the v1.3 record, its owner and status."""
    return registry.read(device_id, lambda device: {**_iot03_record(device), **_user_record(device)})


def thing_details(registry: DeviceRegistry, device_id: str, *, camel_case: bool) -> dict[str, Any]:
    """``GET /v2.0/cloud/thing/{id}``: the fields of the v2.0 list."""
    return registry.read(device_id, lambda device: _thing_record(device, camel_case))
