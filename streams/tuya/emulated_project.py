"""What stands behind the emulator's front door: the project's devices and app users, and the data endpoints.

Owns the route table of every read endpoint (device lists of each family, details, specifications, thing model,
status, logs, app users) and which module answers each: :mod:`~streams.tuya.emulated_listings`,
:mod:`~streams.tuya.emulated_specs`, :mod:`~streams.tuya.emulated_logs`, :mod:`~streams.tuya.emulated_users`.
Authentication, tokens, commands, faults and refused families stay in :mod:`streams.tuya.emulator`. Pure apart
from the registry's lock; must not import the client (:mod:`streams.tuya.openapi`) or httpx.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from streams.tuya import emulated_listings as listings
from streams.tuya.emulated_devices import DeviceRegistry, EmulatedDevice
from streams.tuya.emulated_logs import Row, log_page, report_log_page
from streams.tuya.emulated_requests import Refusal
from streams.tuya.emulated_specs import specification, thing_model
from streams.tuya.emulated_users import AppUser, users_page

__all__ = ["ApiCall", "EmulatedProject"]

_WRONG_SCHEMA = 1106  # SPEC.md §10.4: "1106 here means a wrong schema"


@dataclass(frozen=True, slots=True)
class ApiCall:
    """A request that passed authentication, as the route handlers see it (query decoded, one value a key)."""

    match: re.Match[str]
    params: dict[str, str]
    body: bytes
    now_ms: int
    tid: str


_Handler = Callable[["EmulatedProject", ApiCall], Any]
_DEVICE = r"(?P<device>[^/?]+)"


class EmulatedProject:
    """The devices and app users of one emulated project, answering the read endpoints.

    Args:
        schema: the app whose users ``/v2.0/apps/{schema}/users`` lists (another schema: 1106).
        camel_case: the v2.0 device list and details use camelCase field names (one of Tuya's doc versions).
        retention_ms: how far back device logs reach on the emulator's clock.
        now_s: the time given to devices whose create/active/update times are 0.
    """

    def __init__(
        self,
        devices: Iterable[EmulatedDevice] = (),
        *,
        users: Iterable[AppUser] = (),
        schema: str = "",
        camel_case: bool = False,
        retention_ms: int,
        now_s: int = 0,
    ) -> None:
        self.devices = DeviceRegistry(devices, retention_ms=retention_ms, now_s=now_s)
        self.users: tuple[AppUser, ...] = tuple(sorted(users, key=lambda user: (user.create_time, user.uid)))
        self._uids = frozenset(user.uid for user in self.users)
        self.schema = schema
        self.camel_case = camel_case

    def route(self, method: str, path: str) -> tuple[_Handler, re.Match[str]] | None:
        """The handler of ``method path`` and its match, or None when this project serves no such endpoint."""
        for route_method, pattern, handler in _ROUTES:
            if route_method == method and (match := pattern.fullmatch(path)):
                return handler, match
        return None

    def _status(self, call: ApiCall) -> list[dict[str, Any]]:
        return self.devices.status(call.match["device"])

    def _specification(self, call: ApiCall) -> dict[str, Any]:
        return self.devices.read(call.match["device"], lambda device: specification(device, with_dp_id=False))

    def _specification_with_dp_ids(self, call: ApiCall) -> dict[str, Any]:
        return self.devices.read(call.match["device"], lambda device: specification(device, with_dp_id=True))

    def _thing_model(self, call: ApiCall) -> dict[str, Any]:
        return self.devices.read(call.match["device"], thing_model)

    def _iot03_details(self, call: ApiCall) -> dict[str, Any]:
        return listings.iot03_details(self.devices, call.match["device"])

    def _thing_details(self, call: ApiCall) -> dict[str, Any]:
        return listings.thing_details(self.devices, call.match["device"], camel_case=self.camel_case)

    def _logs(self, call: ApiCall) -> dict[str, Any]:
        device_id = call.match["device"]
        return self.devices.log_rows(device_id, call.now_ms, lambda rows: log_page(device_id, rows, call.params))

    def _report_logs(self, call: ApiCall) -> dict[str, Any]:
        device_id = call.match["device"]

        def answer(rows: list[Row]) -> dict[str, Any]:
            return report_log_page(device_id, rows, call.params, call.now_ms)

        return self.devices.log_rows(device_id, call.now_ms, answer)

    def _iot03_devices(self, call: ApiCall) -> dict[str, Any]:
        return listings.iot03_devices(self.devices, call.params)

    def _thing_devices(self, call: ApiCall) -> list[dict[str, Any]]:
        return listings.thing_devices(self.devices, call.params, camel_case=self.camel_case)

    def _associated_user_devices(self, call: ApiCall) -> dict[str, Any]:
        return listings.associated_user_devices(self.devices, call.params)

    def _user_devices(self, call: ApiCall) -> list[dict[str, Any]]:
        return listings.user_devices(self.devices, call.match["uid"], call.params, self._uids)

    def _users(self, call: ApiCall) -> dict[str, Any]:
        if call.match["schema"] != self.schema:
            raise Refusal(_WRONG_SCHEMA)
        return users_page(self.users, call.params, call.now_ms // 1000)


# Order matters where one pattern would also match another's path: the v2.0 device list before a device's details.
_ROUTES: tuple[tuple[str, re.Pattern[str], _Handler], ...] = tuple(
    ("GET", re.compile(pattern), handler)
    for pattern, handler in (
        (r"/v1\.3/iot-03/devices", EmulatedProject._iot03_devices),
        (r"/v2\.0/cloud/thing/device", EmulatedProject._thing_devices),
        (r"/v1\.0/iot-01/associated-users/devices", EmulatedProject._associated_user_devices),
        (r"/v1\.0/users/(?P<uid>[^/?]+)/devices", EmulatedProject._user_devices),
        (r"/v2\.0/apps/(?P<schema>[^/?]+)/users", EmulatedProject._users),
        (rf"/v1\.0/(?:iot-03/)?devices/{_DEVICE}/status", EmulatedProject._status),
        (rf"/v1\.0/iot-03/devices/{_DEVICE}/specification", EmulatedProject._specification),
        (rf"/v1\.0/devices/{_DEVICE}/specifications", EmulatedProject._specification),
        (rf"/v1\.1/devices/{_DEVICE}/specifications", EmulatedProject._specification_with_dp_ids),
        (rf"/v2\.0/cloud/thing/{_DEVICE}/model", EmulatedProject._thing_model),
        (rf"/v1\.0/devices/{_DEVICE}/logs", EmulatedProject._logs),
        (rf"/v2\.0/cloud/thing/{_DEVICE}/report-logs", EmulatedProject._report_logs),
        (rf"/v2\.0/cloud/thing/{_DEVICE}", EmulatedProject._thing_details),
        (rf"/v1\.0/(?:iot-03/)?devices/{_DEVICE}", EmulatedProject._iot03_details),
    )
)
