"""The devices of the emulated Tuya project: their data points, facts, state and logs, and how they take commands.

Owns :class:`DataPoint`, :class:`EmulatedDevice` and the :class:`DeviceRegistry` every server thread reads through
(one lock; devices in id order for the paged listings), command validation as Tuya answers it (SPEC.md §7.2:
``2008`` unknown code or unsupported value, ``1104`` wrong type, ``2001`` offline, ``2010`` unknown device) and
what a device reports (status and log, :mod:`streams.tuya.emulated_logs`). The JSON of each endpoint is rendered
by the callers (``emulated_specs``, ``emulated_listings``) under the registry's lock. Pure apart from that lock,
no I/O. Must not import the client (:mod:`streams.tuya.openapi`) or httpx.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from bisect import bisect_right, insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from streams.tuya.api_errors import CODE_MESSAGES
from streams.tuya.emulated_logs import EVENT_OFFLINE, EVENT_ONLINE, EVENT_REPORT, DeviceLog, Row
from streams.tuya.emulated_requests import Refusal

__all__ = ["DataPoint", "DeviceRegistry", "EmulatedDevice", "Refusal", "sample_devices"]

_T = TypeVar("_T")

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
_WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class DataPoint:
    """One data point of a specification, as Tuya describes it (SPEC.md §10.2).

    ``values`` holds unit, min, max, scale, step (Integer) or range (Enum). ``dp_id`` 0 is numbered by the
    device. ``write_only``: a command the device accepts but never reports (the thing model's ``wr``).
    """

    code: str
    type: str
    values: Mapping[str, Any] = field(default_factory=dict)
    dp_id: int = 0
    name: str = ""
    desc: str = ""
    write_only: bool = False

    def refusal(self, value: Any) -> int:
        """0 when ``value`` may be sent, else Tuya's code: 1104 wrong type, 2008 value not supported."""
        expected = _PYTHON_TYPES.get(self.type, object)
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is int):
            return 1104
        low, high, allowed = self.values.get("min"), self.values.get("max"), self.values.get("range")
        if (low is not None and value < low) or (high is not None and value > high):
            return 2008
        return 2008 if allowed is not None and value not in allowed else 0

    def values_json(self) -> str:
        """``values`` as Tuya sends it: a JSON string (``"{}"`` for a Boolean)."""
        return json.dumps(dict(self.values), separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True, kw_only=True)
class EmulatedDevice:
    """A device: ``functions`` accept commands (and are reported), ``reported`` points are read-only.

    ``status`` is its state by code. Times are Tuya's epoch **seconds**; 0 means "when the emulator got it".
    ``uuid`` and ``local_key`` (a fake device secret) default to values derived from the id.
    """

    device_id: str
    functions: tuple[DataPoint, ...]
    reported: tuple[DataPoint, ...] = ()
    status: dict[str, Any] = field(default_factory=dict)
    online: bool = True
    name: str = ""
    category: str = ""
    product_id: str = ""
    product_name: str = ""
    uid: str = ""
    # the users the owner shared the device with (``GET /v1.0/users/{uid}/devices?from=sharing`` lists it to them)
    shared_with: tuple[str, ...] = ()
    owner_id: str = ""
    custom_name: str = ""
    time_zone: str = "+00:00"
    create_time: int = 0
    active_time: int = 0
    update_time: int = 0
    uuid: str = ""
    local_key: str = field(default="", repr=False)
    ip: str = ""
    lat: str = ""
    lon: str = ""
    model: str = ""
    biz_type: int = 18
    log: DeviceLog = field(default_factory=DeviceLog, repr=False)

    def __post_init__(self) -> None:
        if not (self.uuid and self.local_key):
            digest = hashlib.blake2s(self.device_id.encode(), digest_size=16).hexdigest()
            self.uuid, self.local_key = self.uuid or digest[:16], self.local_key or digest[16:]
        if any(point.dp_id == 0 for point in (*self.functions, *self.reported)):
            self.functions, self.reported = _numbered(self.functions, self.reported)

    def function(self, code: str) -> DataPoint | None:
        return next((point for point in self.functions if point.code == code), None)


def _numbered(
    functions: tuple[DataPoint, ...], reported: tuple[DataPoint, ...]
) -> tuple[tuple[DataPoint, ...], tuple[DataPoint, ...]]:
    """The points with every ``dp_id`` 0 given the next unused id, in order (one code, one id)."""
    ids = {point.code: point.dp_id for point in (*functions, *reported) if point.dp_id}
    next_id = 1
    for point in (*functions, *reported):
        if point.code not in ids:
            while next_id in ids.values():
                next_id += 1
            ids[point.code] = next_id

    def number(points: tuple[DataPoint, ...]) -> tuple[DataPoint, ...]:
        return tuple(point if point.dp_id else dataclasses.replace(point, dp_id=ids[point.code]) for point in points)

    return number(functions), number(reported)


class DeviceRegistry:
    """The project's devices by id; every method is safe to call from the server's threads.

    Args:
        retention_ms: log rows older than this, on the caller's clock, are never answered (Tuya keeps ~7 days).
        now_s: the time given to devices whose create/active/update times are 0.
    """

    def __init__(self, devices: Iterable[EmulatedDevice] = (), *, retention_ms: int = _WEEK_MS, now_s: int = 0) -> None:
        self._devices: dict[str, EmulatedDevice] = {}
        self._lock = threading.Lock()
        self.retention_ms = retention_ms
        for device in devices:
            self._devices[device.device_id] = device
            _stamp(device, now_s)
        self._ids: list[str] = sorted(self._devices)  # the order of every paged listing

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, device: EmulatedDevice, now_s: int = 0) -> None:
        """Add or replace ``device``; its times still 0 become ``now_s`` (if given)."""
        with self._lock:
            self._add(device, now_s)

    def _add(self, device: EmulatedDevice, now_s: int) -> None:
        if device.device_id not in self._devices:
            insort(self._ids, device.device_id)
        self._devices[device.device_id] = device
        _stamp(device, now_s)

    def remove(self, device_id: str) -> None:
        """The device leaves the project (deleted in the app): no endpoint knows it any more."""
        with self._lock:
            del self._devices[device_id]
            self._ids.remove(device_id)

    def get(self, device_id: str) -> EmulatedDevice:
        """The live device (KeyError if unknown): tests may change ``online`` or ``status``."""
        return self._devices[device_id]

    def read(self, device_id: str, render: Callable[[EmulatedDevice], _T]) -> _T:
        """``render(device)`` under the lock; Refusal 2010 for an unknown device."""
        with self._lock:
            return render(self._known(device_id))

    def page(
        self,
        after_id: str,
        size: int,
        render: Callable[[EmulatedDevice], _T],
        keep: Callable[[EmulatedDevice], bool] | None = None,
    ) -> tuple[list[_T], bool]:
        """Up to ``size`` devices (``keep`` ones) with ids after ``after_id``, rendered, and whether more follow."""
        picked: list[_T] = []
        with self._lock:
            for index in range(bisect_right(self._ids, after_id), len(self._ids)):
                device = self._devices[self._ids[index]]
                if keep is None or keep(device):
                    if len(picked) == size:
                        return picked, True
                    picked.append(render(device))
        return picked, False

    def select(self, keep: Callable[[EmulatedDevice], bool], render: Callable[[EmulatedDevice], _T]) -> list[_T]:
        """Every ``keep`` device, in id order, rendered."""
        with self._lock:
            return [render(device) for device_id in self._ids if keep(device := self._devices[device_id])]

    def uids(self) -> set[str]:
        with self._lock:
            return {uid for device in self._devices.values() for uid in (device.uid, *device.shared_with) if uid}

    def report(self, device_id: str, code: str, value: Any, at_ms: int, *, event_from: str = "1") -> None:
        """The device reports ``code=value``: its state changes and its log gets a data point report (type 7)."""
        with self._lock:
            device = self._devices[device_id]
            device.status[code] = value
            device.log.append(at_ms, EVENT_REPORT, code, value, event_from)

    def record_reports(self, device_id: str, reports: Iterable[tuple[str, Any, int]]) -> None:
        """Data point reports ``(code, value, at_ms)`` of one device, as :meth:`report` but in one lock.

        Raises:
            KeyError: the device is unknown.
        """
        reports = reports if isinstance(reports, list | tuple) else list(reports)
        with self._lock:
            device = self._devices[device_id]
            status = device.status
            for code, value, _ in reports:
                status[code] = value
            device.log.append_reports(reports)

    def set_online(self, device_id: str, online: bool, at_ms: int) -> None:
        """The device went online or offline at ``at_ms``: its state, and a log row of type 1 or 2."""
        with self._lock:
            device = self._devices[device_id]
            device.online = online
            event_id, code = (EVENT_ONLINE, "online") if online else (EVENT_OFFLINE, "offline")
            device.log.append(at_ms, event_id, code, "", "1")

    def log_rows(self, device_id: str, now_ms: int, answer: Callable[[list[Row]], _T]) -> _T:
        """``answer(rows)`` under the lock: the device's log rows within retention, oldest first."""
        with self._lock:
            return answer(self._known(device_id).log.rows(now_ms - self.retention_ms))

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
                device.status[command["code"]] = command.get("value")
                device.log.append(at_ms, EVENT_REPORT, command["code"], command.get("value"), "4")  # 4: cloud
            return commands

    def status(self, device_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [{"code": code, "value": value} for code, value in self._known(device_id).status.items()]

    def _known(self, device_id: str) -> EmulatedDevice:
        device = self._devices.get(device_id)
        if device is None:
            raise Refusal(2010)
        return device


def _stamp(device: EmulatedDevice, now_s: int) -> None:
    if now_s:
        device.create_time = device.create_time or now_s
        device.active_time = device.active_time or device.create_time
        device.update_time = device.update_time or now_s


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
    switch = DataPoint("switch_1", "Boolean", dp_id=1)
    countdown = DataPoint("countdown_1", "Integer", {"unit": "s", "min": 0, "max": 86400, "scale": 0, "step": 1}, 9)
    power = DataPoint("cur_power", "Integer", {"unit": "W", "min": 0, "max": 50000, "scale": 1, "step": 1}, 19)
    climate = (
        DataPoint("va_temperature", "Integer", {"unit": "℃", "min": -200, "max": 600, "scale": 1, "step": 1}, 1),
        DataPoint("va_humidity", "Integer", {"unit": "%", "min": 0, "max": 100, "scale": 0, "step": 1}, 2),
    )
    plug = EmulatedDevice(
        device_id="emuplug000000001",
        functions=(switch, countdown),
        reported=(power,),
        status={"switch_1": False, "countdown_1": 0, "cur_power": 0},
        name="Desk plug",
        category="cz",
        **_sample_product("emuplugproduct01", "Metering plug"),
    )
    wall = EmulatedDevice(
        device_id="emuswitch0000001",
        functions=(switch, DataPoint("switch_2", "Boolean", dp_id=2)),
        status={"switch_1": False, "switch_2": False},
        online=False,
        name="Hall switch",
        category="kg",
        **_sample_product("emuswitchproduct", "Two-gang switch"),
    )
    sensor = EmulatedDevice(
        device_id="emusensor0000001",
        functions=(),
        reported=climate,
        status={"va_temperature": 215, "va_humidity": 48},
        name="Cellar sensor",
        category="wsdcg",
        **_sample_product("emusensorproduct", "Climate sensor"),
    )
    return [plug, wall, sensor]


def _sample_product(product_id: str, product_name: str) -> dict[str, str]:
    return {"product_id": product_id, "product_name": product_name, "uid": "emuuser000000001"}
