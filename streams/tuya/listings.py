"""The fleet as the OpenAPI describes it (SPEC.md §10): listed devices, app users, data-point specifications.

Owns reading Tuya's result shapes into plain records: device lists in snake_case or camelCase (the same endpoint
answers either, depending on the doc version and region), times in seconds, and the three specification forms (the
v1.1 ``specifications`` with ``dp_id``, the iot-03 ``specification`` without it, and the thing model whose
properties are a JSON string). Unknown keys are ignored, because Tuya adds keys; the device's ``local_key`` is a
secret and never read. Pure: no I/O, never imports httpx.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from models.points import PointSpec, normalize_unit

__all__ = [
    "ListedDevice",
    "ListedUser",
    "listed_device",
    "listed_user",
    "model_points",
    "specification_points",
]


class ListedDevice(msgspec.Struct, frozen=True, kw_only=True):
    """One device of a device list or a device's details. ``status`` is the inline status some families send."""

    device_id: str
    name: str | None = None
    category: str | None = None
    product_id: str | None = None
    product_name: str | None = None
    online: bool | None = None
    owner_uid: str | None = None
    time_zone: str | None = None
    created_at: datetime | None = None
    activated_at: datetime | None = None
    updated_at: datetime | None = None
    status: tuple[tuple[str, Any], ...] | None = None


class ListedUser(msgspec.Struct, frozen=True, kw_only=True):
    """One user of the app's user list."""

    uid: str
    username: str | None = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    data: dict[str, Any] = {}


def _field(raw: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present with a value (snake_case and camelCase spellings of one field)."""
    for name in names:
        value = raw.get(name)
        if value is not None and value != "":
            return value
    return None


def _text(raw: Mapping[str, Any], *names: str) -> str | None:
    value = _field(raw, *names)
    return str(value) if value is not None else None


def _seconds(raw: Mapping[str, Any], *names: str) -> datetime | None:
    """Tuya's epoch seconds (a number or a digit string) as UTC; a value past 10^11 is read as milliseconds."""
    value = _field(raw, *names)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000 if value >= 10**11 else value, tz=UTC)


def _flag(raw: Mapping[str, Any], *names: str) -> bool | None:
    value = _field(raw, *names)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _inline_status(raw: Mapping[str, Any]) -> tuple[tuple[str, Any], ...] | None:
    items = raw.get("status")
    if not isinstance(items, list):
        return None
    return tuple((item["code"], item.get("value")) for item in items if isinstance(item, dict) and item.get("code"))


def listed_device(raw: Any) -> ListedDevice | None:
    """A device list item (either spelling), or None for an item without an id."""
    if not isinstance(raw, Mapping):
        return None
    device_id = _text(raw, "id", "device_id", "devId")
    if device_id is None:
        return None
    return ListedDevice(
        device_id=device_id,
        name=_text(raw, "name", "custom_name", "customName"),
        category=_text(raw, "category"),
        product_id=_text(raw, "product_id", "productId"),
        product_name=_text(raw, "product_name", "productName"),
        online=_flag(raw, "online", "is_online", "isOnline"),
        # ``owner_id`` is the home (asset) that holds the device, not a user: only ``uid`` names the owner.
        owner_uid=_text(raw, "uid"),
        time_zone=_text(raw, "time_zone", "timeZone"),
        created_at=_seconds(raw, "create_time", "createTime"),
        activated_at=_seconds(raw, "active_time", "activeTime"),
        updated_at=_seconds(raw, "update_time", "updateTime"),
        status=_inline_status(raw),
    )


# What of a user the archive keeps besides the uid (email and mobile are the user's contact data: kept, because
# the archive is the project owner's own record of their users, and never logged).
_USER_DATA = ("username", "email", "mobile", "country_code", "nick_name")


def listed_user(raw: Any) -> ListedUser | None:
    """A user list item, or None for an item without a uid."""
    if not isinstance(raw, Mapping):
        return None
    uid = _text(raw, "uid")
    if uid is None:
        return None
    return ListedUser(
        uid=uid,
        username=_text(raw, "username"),
        registered_at=_seconds(raw, "create_time", "createTime"),
        updated_at=_seconds(raw, "update_time", "updateTime"),
        data={name: raw[name] for name in _USER_DATA if raw.get(name) not in (None, "")},
    )


def _json_object(value: Any) -> dict[str, Any]:
    """Tuya's ``values``: a JSON object, usually sent as a string of JSON."""
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value or "{}")
        except msgspec.DecodeError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _point(product_id: str, code: str, type_: str, values: Mapping[str, Any], **facts: Any) -> PointSpec:
    enum = values.get("range")
    scale = _number(values.get("scale"))
    return PointSpec(
        product_id=product_id,
        code=code,
        type=type_,
        unit=normalize_unit(values.get("unit")),
        scale=int(scale) if scale is not None and scale >= 0 else 0,
        min=_number(values.get("min")),
        max=_number(values.get("max")),
        step=_number(values.get("step")),
        range=tuple(str(item) for item in enum) if isinstance(enum, list) else None,
        **facts,
    )


def _dp_id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else None


def specification_points(product_id: str, result: Any) -> tuple[list[PointSpec], dict[str, dict[str, Any]]]:
    """The points of a ``…/specification(s)`` result (``functions`` and ``status``), with each one's ``values``.

    A code in both lists is one point, reported and commandable. Raises msgspec.ValidationError on another shape.
    """
    shape = msgspec.convert(result, type=dict[str, Any])
    merged: dict[str, dict[str, Any]] = {}
    for key, flag in (("status", "reported"), ("functions", "commandable")):
        items = shape.get(key) or []
        if not isinstance(items, list):
            raise msgspec.ValidationError(f"'{key}' is not a list")
        for item in items:
            if isinstance(item, Mapping) and isinstance(item.get("code"), str):
                entry = merged.setdefault(item["code"], {"item": item, "reported": False, "commandable": False})
                entry[flag] = True
    points, specs = [], {}
    for code, entry in merged.items():
        item, values = entry["item"], _json_object(entry["item"].get("values"))
        dp_id = _dp_id(item.get("dp_id", item.get("dpId")))
        points.append(
            _point(
                product_id,
                code,
                str(item.get("type") or "Raw"),
                values,
                dp_id=dp_id,
                name=_text(item, "name"),
                reported=entry["reported"],
                commandable=entry["commandable"],
            )
        )
        specs[code] = values
    return points, specs


# The thing model's typeSpec types (SPEC.md §10.2) in the specification's vocabulary.
_MODEL_TYPES = {"value": "Integer", "bool": "Boolean", "enum": "Enum", "string": "String", "raw": "Raw"}
_MODEL_TYPES.update({"bitmap": "Bitmap", "json": "Json", "struct": "Json", "array": "Json"})


def model_points(product_id: str, result: Any) -> tuple[list[PointSpec], dict[str, dict[str, Any]]]:
    """The points of a ``/v2.0/cloud/thing/{id}/model`` result, whose ``model`` is a JSON string.

    ``abilityId`` is the DP id; ``accessMode`` ``ro`` is reported only, ``wr`` commandable only, ``rw`` both.
    """
    model = _json_object(msgspec.convert(result, type=dict[str, Any]).get("model"))
    points, specs = [], {}
    for prop in _properties(model.get("services")):
        spec = _json_object(prop.get("typeSpec"))
        access = str(prop.get("accessMode") or "rw")  # ro: reported only; wr: commands only; rw: both
        points.append(
            _point(
                product_id,
                prop["code"],
                _MODEL_TYPES.get(str(spec.get("type")), "Raw"),
                spec,
                dp_id=_dp_id(prop.get("abilityId")),
                name=_text(prop, "name"),
                reported=access in ("ro", "rw"),
                commandable=access in ("wr", "rw"),
            )
        )
        specs[prop["code"]] = spec
    return points, specs


def _properties(services: Any) -> Iterable[Mapping[str, Any]]:
    if not isinstance(services, list):
        raise msgspec.ValidationError("the thing model has no 'services' list")
    for service in services:
        properties = service.get("properties") if isinstance(service, Mapping) else None
        for prop in properties if isinstance(properties, list) else []:
            if isinstance(prop, Mapping) and isinstance(prop.get("code"), str):
                yield prop
