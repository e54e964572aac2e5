"""A generated fleet for the emulated project: products, devices and app users of any size, from a seed.

Owns the product catalogue the generated devices are made of (a plug, a climate sensor, a thermostat, an energy
meter, a light and a two-gang switch: Integer points of scale 0 to 3 in ℃, %, W, V, kWh…, Enums, Booleans, one
write-only point) and :func:`emulated_fleet`, which draws everything else from ``random.Random(seed)``: product
ids, device ids, names (some not ASCII), owners and homes, time zones, addresses, keys, state, and times in
seconds (users created over about thirteen months, so listing them means walking 30-day windows back).
Deterministic for a seed and ``now_s``, and cheap for 10,000 devices. Must not import the client or httpx.
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass
from random import Random
from typing import Any

from streams.tuya.emulated_devices import DataPoint, EmulatedDevice
from streams.tuya.emulated_users import AppUser

__all__ = ["EmulatedFleet", "EmulatedProduct", "emulated_fleet"]

_DAY_S = 24 * 3600
_USER_SPREAD_S = 400 * _DAY_S
_ID_ALPHABET = string.digits + string.ascii_lowercase


def _integer(code: str, dp_id: int, unit: str, low: int, high: int, scale: int = 0, step: int = 1) -> DataPoint:
    values = {"unit": unit, "min": low, "max": high, "scale": scale, "step": step}
    return DataPoint(code, "Integer", values, dp_id)


def _enum(code: str, dp_id: int, *choices: str) -> DataPoint:
    return DataPoint(code, "Enum", {"range": list(choices)}, dp_id)


def _boolean(code: str, dp_id: int) -> DataPoint:
    return DataPoint(code, "Boolean", {}, dp_id)


@dataclass(frozen=True, slots=True)
class _Template:
    label: str
    category: str
    model: str
    functions: tuple[DataPoint, ...]
    reported: tuple[DataPoint, ...]


_TEMPLATES = (
    _Template(
        "Smart plug",
        "cz",
        "SP-16",
        (_boolean("switch_1", 1), _integer("countdown_1", 9, "s", 0, 86400), _enum("relay_status", 38, "0", "1", "2")),
        (
            _integer("add_ele", 17, "kWh", 0, 50_000_000, scale=3),
            _integer("cur_current", 18, "mA", 0, 30000),
            _integer("cur_power", 19, "W", 0, 99999, scale=1),
            _integer("cur_voltage", 20, "V", 0, 5000, scale=1),
        ),
    ),
    _Template(
        "Climate sensor",
        "wsdcg",
        "TH-01",
        (_enum("temp_unit_convert", 9, "c", "f"),),
        (
            _integer("va_temperature", 1, "℃", -200, 600, scale=1),
            _integer("va_humidity", 2, "%", 0, 100),
            _enum("battery_state", 3, "low", "middle", "high"),
            _integer("battery_percentage", 4, "%", 0, 100),
        ),
    ),
    _Template(
        "Thermostat",
        "wk",
        "TRV-7",
        (
            _boolean("switch", 1),
            _integer("temp_set", 2, "℃", 50, 350, scale=1, step=5),
            _enum("mode", 4, "auto", "manual", "eco"),
            _boolean("child_lock", 6),
            DataPoint("factory_reset", "Boolean", {}, 39, write_only=True),
        ),
        (_integer("temp_current", 3, "℃", -100, 500, scale=1),),
    ),
    _Template(
        "Energy meter",
        "zndb",
        "DDS-238",
        (_boolean("switch", 16),),
        (
            _integer("forward_energy_total", 1, "kWh", 0, 99_999_999, scale=2),
            _integer("total_power", 9, "kW", 0, 99999, scale=3),
            _integer("cur_voltage", 20, "V", 0, 5000, scale=1),
            _integer("supply_frequency", 21, "Hz", 4500, 6500, scale=2),
        ),
    ),
    _Template(
        "Light bulb",
        "dj",
        "A60-RGBW",
        (
            _boolean("switch_led", 20),
            _enum("work_mode", 21, "white", "colour", "scene"),
            _integer("bright_value_v2", 22, "", 10, 1000),
            _integer("temp_value_v2", 23, "", 0, 1000),
            _integer("countdown_1", 26, "s", 0, 86400),
        ),
        (),
    ),
    _Template(
        "Two-gang switch",
        "kg",
        "WS-2",
        (
            _boolean("switch_1", 1),
            _boolean("switch_2", 2),
            _integer("countdown_1", 7, "s", 0, 86400),
            _integer("countdown_2", 8, "s", 0, 86400),
            _enum("relay_status", 14, "power_off", "power_on", "last"),
        ),
        (),
    ),
)
_ROOMS = ("Küche", "Living room", "Salon", "Спальня", "厨房", "Bureau", "Garage", "Baño", "Çalışma odası", "寝室")
_TIME_ZONES = ("+00:00", "+01:00", "+02:00", "+03:00", "+05:30", "+08:00", "+09:00", "-03:00", "-05:00", "-08:00")
_COUNTRY_CODES = ("49", "33", "44", "1", "86", "7", "34", "90", "81", "55")


@dataclass(frozen=True, slots=True)
class EmulatedProduct:
    """A product of the generated fleet; its devices share these data points (one specification per product)."""

    product_id: str
    product_name: str
    category: str
    model: str
    functions: tuple[DataPoint, ...]
    reported: tuple[DataPoint, ...]


@dataclass(frozen=True, slots=True)
class EmulatedFleet:
    """What :func:`emulated_fleet` made: ``Emulator(…, devices=fleet.devices, users=fleet.users)``."""

    products: tuple[EmulatedProduct, ...]
    devices: tuple[EmulatedDevice, ...]
    users: tuple[AppUser, ...]


def emulated_fleet(
    devices: int, *, products: int = len(_TEMPLATES), users: int | None = None, seed: int = 1, now_s: int | None = None
) -> EmulatedFleet:
    """``devices`` devices of ``products`` products, owned by ``users`` app users (default: one per 5 devices).

    Devices take the products in turn. ``now_s`` (default: the current time) is the latest time anything has.
    """
    if devices < 0 or products < 1 or (users is not None and users < 1):
        raise ValueError("a fleet needs devices >= 0, products >= 1 and users >= 1")
    rng, now = Random(seed), int(time.time()) if now_s is None else now_s
    made_products = tuple(_product(rng, index) for index in range(products))
    made_users = tuple(_user(rng, index, now) for index in range(users or max(1, devices // 5)))
    homes = [str(rng.randrange(10_000_000, 100_000_000)) for _ in made_users]
    taken: set[str] = set()
    made_devices = []
    for index in range(devices):
        owner = rng.randrange(len(made_users))
        product = made_products[index % products]
        device = _device(rng, product, made_users[owner], homes[owner], now, taken)
        made_devices.append(device)
    return EmulatedFleet(made_products, tuple(made_devices), made_users)


def _token(rng: Random, length: int, alphabet: str = _ID_ALPHABET) -> str:
    return "".join(rng.choices(alphabet, k=length))


def _product(rng: Random, index: int) -> EmulatedProduct:
    template = _TEMPLATES[index % len(_TEMPLATES)]
    generation = index // len(_TEMPLATES)
    name = template.label if generation == 0 else f"{template.label} v{generation + 1}"
    return EmulatedProduct(
        _token(rng, 16), name, template.category, template.model, template.functions, template.reported
    )


def _user(rng: Random, index: int, now: int) -> AppUser:
    created = now - rng.randrange(_USER_SPREAD_S)
    country = rng.choice(_COUNTRY_CODES)
    by_mail = rng.random() < 0.6
    email = f"user{index}.{_token(rng, 4, string.ascii_lowercase)}@example.com" if by_mail else ""
    mobile = "" if by_mail else f"{rng.randrange(10**9, 10**10)}"
    return AppUser(
        uid=f"eu{rng.randrange(1_600_000_000_000, 1_800_000_000_000)}{_token(rng, 5, string.ascii_letters)}",
        username=email or f"{country}-{mobile}",
        create_time=created,
        update_time=created + rng.randrange(now - created + 1),
        mobile=mobile,
        email=email,
        country_code=country,
    )


def _device(
    rng: Random, product: EmulatedProduct, owner: AppUser, home: str, now: int, taken: set[str]
) -> EmulatedDevice:
    device_id = ""
    while not device_id or device_id in taken:
        device_id = "bf" + _token(rng, 20)  # 22 characters, like Tuya's
    taken.add(device_id)
    created = owner.create_time + rng.randrange(now - owner.create_time + 1)
    active = min(now, created + rng.randrange(3600))
    return EmulatedDevice(
        device_id=device_id,
        functions=product.functions,
        reported=product.reported,
        status=_initial_status(rng, product),
        online=rng.random() < 0.9,
        name=f"{rng.choice(_ROOMS)} {product.product_name} {rng.randint(1, 9)}",
        category=product.category,
        product_id=product.product_id,
        product_name=product.product_name,
        uid=owner.uid,
        owner_id=home,
        time_zone=rng.choice(_TIME_ZONES),
        create_time=created,
        active_time=active,
        update_time=active + rng.randrange(now - active + 1),
        uuid=f"{rng.getrandbits(64):016x}",
        local_key=f"{rng.getrandbits(64):016x}",
        ip=".".join(str(rng.randint(1, 254)) for _ in range(4)),
        lat=f"{rng.uniform(-60, 70):.2f}",
        lon=f"{rng.uniform(-180, 180):.2f}",
        model=product.model,
    )


def _initial_status(rng: Random, product: EmulatedProduct) -> dict[str, Any]:
    status: dict[str, Any] = {}
    for point in (*product.functions, *product.reported):
        if point.write_only:
            continue
        if point.type == "Boolean":
            status[point.code] = rng.random() < 0.5
        elif point.type == "Enum":
            status[point.code] = rng.choice(point.values["range"])
        else:
            low, high, step = point.values["min"], point.values["max"], point.values.get("step") or 1
            status[point.code] = low + step * rng.randrange((high - low) // step + 1)
    return status
