"""The product types of the simulated fleet: their data points, and how a device's readings drift between reports.

Owns what a smart plug, a temperature/humidity sensor and a wall switch report (standard Tuya codes, DP ids, raw
integer units before the spec's ``scale``, SPEC.md §3.2), how Tuya's specification describes each of them (type,
unit, scale, range: SPEC.md §10.2) and the random walk of their values. Pure: randomness only from the
``random.Random`` passed in; no I/O, no clock. Imports nothing of the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any

__all__ = ["PLUG", "PRODUCTS", "SENSOR", "SWITCH", "Device", "Product", "ProductPoint"]

Readings = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductPoint:
    """How Tuya's specification describes one data point (SPEC.md §10.2).

    ``type`` is Tuya's (``Boolean``, ``Integer``, ``Enum``); an Integer's ``min``/``max``/``step`` bound the raw
    value the simulator reports, whose physical value is raw ÷ 10**``scale`` in ``unit``. ``reported``: the device
    reports it (the specification's ``status``); ``commandable``: it accepts it as a command (``functions``).
    """

    type: str
    unit: str = ""
    min: int = 0
    max: int = 0
    scale: int = 0
    step: int = 1
    range: tuple[str, ...] = ()
    reported: bool = True
    commandable: bool = False


@dataclass(frozen=True, slots=True)
class Product:
    """One product (Tuya ``productKey``): its data points by code, in report order, and their behaviour."""

    kind: str
    product_key: str
    label: str
    dp_ids: dict[str, int] = field(repr=False)
    initial: Callable[[Random], Readings] = field(repr=False)
    step: Callable[[Readings, Random], Readings] = field(repr=False)
    points: Mapping[str, ProductPoint] = field(default_factory=dict, repr=False)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(self.dp_ids)


@dataclass(slots=True)
class Device:
    """A simulated device: fixed identity, plus the state its next messages continue from."""

    device_id: str
    product: Product
    name: str
    uid: str
    owner_id: str
    readings: Readings = field(default_factory=dict)
    online: bool = True
    bound: bool = True

    @property
    def product_key(self) -> str:
        return self.product.product_key


def _clamp(value: int, low: int, high: int) -> int:
    return low if value < low else high if value > high else value


def _flip(value: bool, rng: Random, chance: float) -> bool:
    return not value if rng.random() < chance else value


# --- smart plug with power metering: W×10, mA, V×10, energy in 0.001 kWh ---------------------------------------------


def _plug_initial(rng: Random) -> Readings:
    on = rng.random() < 0.8
    return _plug_derived({"switch_1": on, "add_ele": rng.randrange(0, 50_000)}, rng.randrange(50, 20_000), 2300)


def _plug_derived(readings: Readings, power: int, voltage: int) -> Readings:
    power = power if readings["switch_1"] else 0
    readings.update(cur_power=power, cur_voltage=voltage, cur_current=power * 1000 // voltage)
    return readings


def _plug_step(readings: Readings, rng: Random) -> Readings:
    new = dict(readings)
    new["switch_1"] = _flip(readings["switch_1"], rng, 0.03)
    power = readings["cur_power"] or rng.randrange(50, 20_000)
    power = _clamp(power + rng.randint(-200, 200), 50, 30_000)
    if new["switch_1"]:
        new["add_ele"] = readings["add_ele"] + rng.randint(0, 3)
    return _plug_derived(new, power, _clamp(readings["cur_voltage"] + rng.randint(-5, 5), 2150, 2450))


# --- temperature / humidity sensor: °C×10, %, battery ---------------------------------------------------------------


def _battery_state(percentage: int) -> str:
    return "high" if percentage > 60 else "middle" if percentage > 20 else "low"


def _sensor_initial(rng: Random) -> Readings:
    battery = rng.randint(30, 100)
    return {
        "temp_current": rng.randint(180, 260),
        "humidity_value": rng.randint(35, 65),
        "battery_state": _battery_state(battery),
        "battery_percentage": battery,
        "temp_unit_convert": "c",
    }


def _sensor_step(readings: Readings, rng: Random) -> Readings:
    battery = readings["battery_percentage"]
    battery = 100 if battery <= 5 and rng.random() < 0.1 else battery - int(rng.random() < 0.02)
    unit = readings["temp_unit_convert"]
    return {
        "temp_current": _clamp(readings["temp_current"] + rng.randint(-3, 3), -200, 450),
        "humidity_value": _clamp(readings["humidity_value"] + rng.randint(-1, 1), 5, 95),
        "battery_state": _battery_state(battery),
        "battery_percentage": _clamp(battery, 0, 100),
        "temp_unit_convert": ("f" if unit == "c" else "c") if rng.random() < 0.002 else unit,
    }


# --- two-gang wall switch with countdowns (seconds) ------------------------------------------------------------------


def _switch_initial(rng: Random) -> Readings:
    return {
        "switch_1": rng.random() < 0.5,
        "switch_2": rng.random() < 0.5,
        "countdown_1": 0,
        "countdown_2": 0,
        "relay_status": rng.choice(("power_off", "power_on", "last")),
    }


def _countdown(value: int, rng: Random) -> int:
    return 60 * rng.randint(1, 120) if rng.random() < 0.02 else max(0, value - 30)


def _switch_step(readings: Readings, rng: Random) -> Readings:
    relay = readings["relay_status"]
    return {
        "switch_1": _flip(readings["switch_1"], rng, 0.1),
        "switch_2": _flip(readings["switch_2"], rng, 0.1),
        "countdown_1": _countdown(readings["countdown_1"], rng),
        "countdown_2": _countdown(readings["countdown_2"], rng),
        "relay_status": rng.choice(("power_off", "power_on", "last")) if rng.random() < 0.005 else relay,
    }


_ON_OFF = ProductPoint(type="Boolean", commandable=True)
_PERCENT = ProductPoint(type="Integer", unit="%", min=0, max=100)
_COUNTDOWN = ProductPoint(type="Integer", unit="s", min=0, max=86400, commandable=True)

PLUG = Product(
    kind="plug",
    product_key="keyjup78v54myhan",
    label="Steckdose",
    dp_ids={"switch_1": 1, "cur_power": 19, "cur_current": 18, "cur_voltage": 20, "add_ele": 17},
    initial=_plug_initial,
    step=_plug_step,
    points={
        "switch_1": _ON_OFF,
        "cur_power": ProductPoint(type="Integer", unit="W", min=0, max=99999, scale=1),  # W×10
        "cur_current": ProductPoint(type="Integer", unit="mA", min=0, max=30000),
        "cur_voltage": ProductPoint(type="Integer", unit="V", min=0, max=5000, scale=1),  # V×10
        "add_ele": ProductPoint(type="Integer", unit="kWh", min=0, max=99_999_999, scale=3),  # 0.001 kWh
    },
)
SENSOR = Product(
    kind="sensor",
    product_key="g2y6z3p3ja2qhyav",
    label="Thermomètre",
    dp_ids={
        "temp_current": 1,
        "humidity_value": 2,
        "battery_state": 3,
        "battery_percentage": 4,
        "temp_unit_convert": 9,
    },
    initial=_sensor_initial,
    step=_sensor_step,
    points={
        "temp_current": ProductPoint(type="Integer", unit="℃", min=-200, max=600, scale=1),  # °C×10
        "humidity_value": _PERCENT,
        "battery_state": ProductPoint(type="Enum", range=("low", "middle", "high")),
        "battery_percentage": _PERCENT,
        "temp_unit_convert": ProductPoint(type="Enum", range=("c", "f"), commandable=True),
    },
)
SWITCH = Product(
    kind="switch",
    product_key="oxr2jsxkwbh3nr9l",
    label="开关",
    dp_ids={"switch_1": 1, "switch_2": 2, "countdown_1": 7, "countdown_2": 8, "relay_status": 14},
    initial=_switch_initial,
    step=_switch_step,
    points={
        "switch_1": _ON_OFF,
        "switch_2": _ON_OFF,
        "countdown_1": _COUNTDOWN,
        "countdown_2": _COUNTDOWN,
        "relay_status": ProductPoint(type="Enum", range=("power_off", "power_on", "last"), commandable=True),
    },
)
PRODUCTS: tuple[Product, ...] = (PLUG, SENSOR, SWITCH)
