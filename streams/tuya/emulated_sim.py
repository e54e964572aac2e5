"""The traffic simulator's fleet as the emulated project knows it, so the demo's emulator serves the demo's devices.

Owns the translation of :mod:`streams.sim` devices (``streams.sim.Fleet.devices``) into
:class:`~streams.tuya.emulated_devices.EmulatedDevice`: category by product kind (plug ``cz``, sensor ``wsdcg``,
switch ``kg``, light ``dj``, door ``mcs``), ``product_id`` the product key, ``product_name`` its label, the owner's
uid and home, the current readings as status, and the data points from each product's
:class:`~streams.sim.products.ProductPoint` (commandable points become functions, the rest reported points; devices
of one product share them). Also the fleet's user uids as :class:`~streams.tuya.emulated_users.AppUser`. Pure; must
not import the client or httpx.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from streams.sim.products import Device, Product, ProductPoint
from streams.tuya.emulated_devices import DataPoint, EmulatedDevice
from streams.tuya.emulated_users import AppUser

__all__ = ["CATEGORIES", "sim_data_points", "sim_emulated_devices", "sim_users"]

#: Tuya's category code of each simulated product kind.
CATEGORIES = {"plug": "cz", "sensor": "wsdcg", "switch": "kg", "light": "dj", "door": "mcs"}
_DAY_S = 24 * 3600


def _data_point(code: str, dp_id: int, spec: ProductPoint) -> DataPoint:
    if spec.type == "Integer":
        values = {"unit": spec.unit, "min": spec.min, "max": spec.max, "scale": spec.scale, "step": spec.step}
    elif spec.type == "Enum":
        values = {"range": list(spec.range)}
    else:
        values = {}
    return DataPoint(code, spec.type, values, dp_id, write_only=spec.commandable and not spec.reported)


def sim_data_points(product: Product) -> tuple[tuple[DataPoint, ...], tuple[DataPoint, ...]]:
    """The product's (functions, read-only reported points), in DP order; a product without specs has neither."""
    points = [(code, dp_id, product.points[code]) for code, dp_id in product.dp_ids.items() if code in product.points]
    points.sort(key=lambda point: point[1])
    functions = tuple(_data_point(*point) for point in points if point[2].commandable)
    reported = tuple(_data_point(*point) for point in points if not point[2].commandable)
    return functions, reported


def _age_s(device_id: str, most_days: int) -> int:
    """A stable age for a device or user, from its id (the simulator keeps no creation times)."""
    digest = hashlib.blake2s(device_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % (most_days * _DAY_S)


def sim_emulated_devices(devices: Iterable[Device], *, now_s: int) -> list[EmulatedDevice]:
    """Each simulated device as an emulated one, with its current readings and online state."""
    shared: dict[str, tuple[tuple[DataPoint, ...], tuple[DataPoint, ...]]] = {}
    emulated = []
    for device in devices:
        product = device.product
        if product.product_key not in shared:
            shared[product.product_key] = sim_data_points(product)
        functions, reported = shared[product.product_key]
        created = now_s - _age_s(device.device_id, 300)
        emulated.append(
            EmulatedDevice(
                device_id=device.device_id,
                functions=functions,
                reported=reported,
                status=dict(device.readings),
                online=device.online,
                name=device.name,
                category=CATEGORIES.get(product.kind, ""),
                product_id=product.product_key,
                product_name=product.label,
                uid=device.uid,
                owner_id=device.owner_id,
                create_time=created,
                active_time=created,
                update_time=now_s,
            )
        )
    return emulated


def sim_users(uids: Iterable[str], *, now_s: int) -> list[AppUser]:
    """The simulated fleet's users (``Fleet.users``) as app users, created within the last 300 days."""
    users = []
    for index, uid in enumerate(uids):
        created = now_s - _age_s(uid, 300)
        email = f"sim{index}@example.com"
        users.append(AppUser(uid=uid, username=email, email=email, create_time=created, update_time=created))
    return users
