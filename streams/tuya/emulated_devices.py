"""The devices of the emulated Tuya project: their specifications, state, logs, and how they take commands.

Owns command validation as Tuya answers it (SPEC.md §7.2: ``2008`` unknown code or unsupported value, ``1104``
wrong type, ``2001`` offline, ``2010`` unknown device) and the result JSON of the device endpoints. Used only by
:mod:`streams.tuya.emulator`; pure apart from a lock, no I/O. Must not import the client or httpx.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.tuya.api_errors import CODE_MESSAGES

__all__ = ["DataPoint", "DeviceRegistry", "EmulatedDevice", "Refusal", "sample_devices"]

# Tuya's data point types and the JSON types a command value must have (a string "100" for an Integer is 1104).
_PYTHON_TYPES: dict[str, type] = {
    "Boolean": bool,
    "Integer": int,
    "Enum": str,
    "String": str,
    "Json": str,
    "Raw": str,
    "Bitmap": int,
}


class Refusal(Exception):
    """The emulated OpenAPI refuses the call with Tuya's ``code`` (answered as ``success:false``)."""

    def __init__(self, code: int, msg: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg or CODE_MESSAGES.get(code, "error")


@dataclass(frozen=True, slots=True)
class DataPoint:
    """One data point of a specification: ``type`` and ``values`` (unit, min, max, scale, step, range) as Tuya's."""

    code: str
    type: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def refusal(self, value: Any) -> int:
        """0 when ``value`` may be sent, else Tuya's code: 1104 wrong type, 2008 value not supported."""
        expected = _PYTHON_TYPES.get(self.type, object)
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            return 1104
        low, high, allowed = self.values.get("min"), self.values.get("max"), self.values.get("range")
        if (low is not None and value < low) or (high is not None and value > high):
            return 2008
        return 2008 if allowed is not None and value not in allowed else 0

    def as_spec(self) -> dict[str, Any]:
        """The specification entry; Tuya sends ``values`` as a JSON string."""
        return {"code": self.code, "type": self.type, "values": json.dumps(dict(self.values), separators=(",", ":"))}


@dataclass(slots=True, kw_only=True)
class EmulatedDevice:
    """A device: ``functions`` accept commands, ``reported`` points are read-only; ``status`` is its state."""

    device_id: str
    functions: tuple[DataPoint, ...]
    reported: tuple[DataPoint, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)
    online: bool = True
    name: str = ""
    category: str = ""
    product_id: str = ""
    uid: str = ""
    logs: list[dict[str, Any]] = field(default_factory=list)

    def function(self, code: str) -> DataPoint | None:
        return next((point for point in self.functions if point.code == code), None)


class DeviceRegistry:
    """The project's devices by id; every method is safe to call from the server's threads."""

    def __init__(self, devices: Iterable[EmulatedDevice] = ()) -> None:
        self._devices = {device.device_id: device for device in devices}
        self._lock = threading.Lock()

    def add(self, device: EmulatedDevice) -> None:
        with self._lock:
            self._devices[device.device_id] = device

    def get(self, device_id: str) -> EmulatedDevice:
        """The live device (KeyError if unknown): tests may change ``online`` or ``status``."""
        return self._devices[device_id]

    def report(self, device_id: str, code: str, value: Any, at_ms: int, *, event_from: str = "1") -> None:
        """The device reports ``code=value``: its state changes and its log gets a data point report (type 7)."""
        with self._lock:
            self._report(self._known(device_id), code, value, at_ms, event_from)

    def apply_commands(self, device_id: str, body: bytes, at_ms: int) -> list[dict[str, Any]]:
        """Validate every command of ``body`` and, only if all are valid, apply them; return them."""
        with self._lock:
            device = self._known(device_id)
            commands = parse_commands(body)
            if not device.online:
                raise Refusal(2001)
            for command in commands:
                point = device.function(command["code"])
                refusal = 2008 if point is None else point.refusal(command.get("value"))
                if refusal:
                    raise Refusal(refusal, f"{CODE_MESSAGES[refusal]}: {command['code']}")
            for command in commands:
                self._report(device, command["code"], command.get("value"), at_ms, "4")  # 4: cloud command
            return commands

    def status(self, device_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [{"code": code, "value": value} for code, value in self._known(device_id).status.items()]

    def specification(self, device_id: str) -> dict[str, Any]:
        with self._lock:
            device = self._known(device_id)
            functions = [point.as_spec() for point in device.functions]
            reported = functions + [point.as_spec() for point in device.reported]
            return {"category": device.category, "functions": functions, "status": reported}

    def info(self, device_id: str, now_ms: int) -> dict[str, Any]:
        with self._lock:
            device = self._known(device_id)
            return {
                "id": device.device_id,
                "name": device.name,
                "uid": device.uid,
                "category": device.category,
                "product_id": device.product_id,
                "product_name": device.name,
                "online": device.online,
                "sub": False,
                "time_zone": "+00:00",
                "active_time": now_ms // 1000,
                "update_time": now_ms // 1000,
            }

    def logs(self, device_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A page of ``GET /v1.0/devices/{id}/logs``; ``start_row_key`` is the index of the page's first row."""
        try:
            types = {int(t) for t in params["type"].split(",")}
            start, end = int(params["start_time"]), int(params["end_time"])
            size, first = int(params.get("size") or 20), int(params.get("start_row_key") or 0)
        except (KeyError, ValueError):
            raise Refusal(1109) from None
        codes = set(filter(None, params.get("codes", "").split(",")))
        with self._lock:
            rows = [
                entry
                for entry in self._known(device_id).logs
                if entry["event_id"] in types
                and start <= entry["event_time"] <= end
                and (not codes or entry["code"] in codes)
            ]
        has_next = first + size < len(rows)
        return {
            "device_id": device_id,
            "logs": rows[first : first + size],
            "has_next": has_next,
            "current_row_key": str(first),
            "next_row_key": str(first + size) if has_next else None,
        }

    def _known(self, device_id: str) -> EmulatedDevice:
        device = self._devices.get(device_id)
        if device is None:
            raise Refusal(2010)
        return device

    @staticmethod
    def _report(device: EmulatedDevice, code: str, value: Any, at_ms: int, event_from: str) -> None:
        device.status[code] = value
        entry = {"code": code, "value": value, "event_time": at_ms, "event_id": 7, "event_from": event_from}
        device.logs.append(entry)


def parse_commands(body: bytes) -> list[dict[str, Any]]:
    """``{"commands": [...]}``; the legacy path's ``commands`` may also be a JSON string (SPEC.md §5)."""
    try:
        commands = json.loads(body)["commands"]
        if isinstance(commands, str):
            commands = json.loads(commands)
    except (ValueError, KeyError, TypeError):
        raise Refusal(1109) from None
    if not isinstance(commands, list) or not commands:
        raise Refusal(1100)
    if not all(isinstance(c, dict) and isinstance(c.get("code"), str) for c in commands):
        raise Refusal(1109)
    return commands


def sample_devices() -> list[EmulatedDevice]:
    """A metering plug, a two-gang wall switch (offline) and a climate sensor, for ``emulate-api``."""
    switch = DataPoint("switch_1", "Boolean")
    countdown = DataPoint("countdown_1", "Integer", {"unit": "s", "min": 0, "max": 86400, "scale": 0, "step": 1})
    power = DataPoint("cur_power", "Integer", {"unit": "W", "min": 0, "max": 50000, "scale": 1, "step": 1})
    climate = (
        DataPoint("va_temperature", "Integer", {"unit": "℃", "min": -200, "max": 600, "scale": 1, "step": 1}),
        DataPoint("va_humidity", "Integer", {"unit": "%", "min": 0, "max": 100, "scale": 0, "step": 1}),
    )
    plug = EmulatedDevice(
        device_id="emuplug000000001",
        functions=(switch, countdown),
        reported=(power,),
        status={"switch_1": False, "countdown_1": 0, "cur_power": 0},
        name="Desk plug",
        category="cz",
    )
    wall = EmulatedDevice(
        device_id="emuswitch0000001",
        functions=(switch, DataPoint("switch_2", "Boolean")),
        status={"switch_1": False, "switch_2": False},
        online=False,
        name="Hall switch",
        category="kg",
    )
    sensor = EmulatedDevice(
        device_id="emusensor0000001",
        functions=(),
        reported=climate,
        status={"va_temperature": 215, "va_humidity": 48},
        name="Cellar sensor",
        category="wsdcg",
    )
    return [plug, wall, sensor]
