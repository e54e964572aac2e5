"""A device's data-point specification in each of the shapes Tuya answers it (SPEC.md §10.2).

Owns the result JSON of ``GET /v1.1/devices/{id}/specifications`` (with ``dp_id``), of
``/v1.0/iot-03/devices/{id}/specification`` and ``/v1.0/devices/{id}/specifications`` (without), and of
``GET /v2.0/cloud/thing/{id}/model`` (the thing model, itself a JSON string). ``functions`` are the commandable
points, ``status`` the reported ones; a code may be in both. Pure: an
:class:`~streams.tuya.emulated_devices.EmulatedDevice` in, dicts out. Must not import the client or httpx.
"""

from __future__ import annotations

import json
from typing import Any

from streams.tuya.emulated_devices import DataPoint, EmulatedDevice

__all__ = ["reported_points", "specification", "thing_model"]

# The thing model's typeSpec.type for each of Tuya's data point types.
_MODEL_TYPES = {
    "Boolean": "bool",
    "Integer": "value",
    "Enum": "enum",
    "String": "string",
    "Json": "string",
    "Raw": "raw",
    "Bitmap": "bitmap",
}
_INTEGER_KEYS = ("min", "max", "scale", "step", "unit")


def reported_points(device: EmulatedDevice) -> tuple[DataPoint, ...]:
    """What the device reports: its functions (unless write-only), then its read-only points."""
    return (*(point for point in device.functions if not point.write_only), *device.reported)


def specification(device: EmulatedDevice, *, with_dp_id: bool) -> dict[str, Any]:
    """``{"category", "functions", "status"}``; ``values`` a JSON string, ``dp_id`` only in the v1.1 shape."""
    return {
        "category": device.category,
        "functions": [_entry(point, with_dp_id) for point in device.functions],
        "status": [_entry(point, with_dp_id) for point in reported_points(device)],
    }


def _entry(point: DataPoint, with_dp_id: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": point.code}
    if with_dp_id:
        entry["dp_id"] = point.dp_id
    entry.update(type=point.type, values=point.values_json(), name=point.name or point.code, desc=point.desc)
    return entry


def thing_model(device: EmulatedDevice) -> dict[str, Any]:
    """``{"model": "<JSON>"}``: one service whose properties carry ``abilityId`` (the dp id) and ``accessMode``."""
    commandable = {point.code for point in device.functions}
    reported = {point.code for point in reported_points(device)}
    points = {point.code: point for point in (*device.functions, *device.reported)}
    properties = [
        {
            "abilityId": point.dp_id,
            "code": point.code,
            "name": point.name or point.code,
            "description": point.desc,
            "accessMode": _access_mode(point.code in commandable, point.code in reported),
            "typeSpec": _type_spec(point),
        }
        for point in sorted(points.values(), key=lambda point: point.dp_id)
    ]
    service = {"code": "", "name": "", "description": "", "properties": properties, "actions": [], "events": []}
    model = {"modelId": device.product_id, "services": [service]}
    return {"model": json.dumps(model, separators=(",", ":"), ensure_ascii=False)}


def _access_mode(commandable: bool, reported: bool) -> str:
    if commandable:
        return "rw" if reported else "wr"
    return "ro"


def _type_spec(point: DataPoint) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": _MODEL_TYPES.get(point.type, "string")}
    values = point.values
    if point.type == "Integer":
        spec.update({key: values[key] for key in _INTEGER_KEYS if key in values})
        spec.setdefault("scale", 0)
        spec.setdefault("unit", "")
    elif point.type == "Enum":
        spec["range"] = list(values.get("range", ()))
    elif point.type == "Bitmap":
        spec.update(label=list(values.get("label", ())), maxlen=values.get("maxlen", 0))
    elif point.type in ("String", "Json", "Raw"):
        spec["maxlen"] = values.get("maxlen", 255)
    return spec
