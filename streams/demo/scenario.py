"""The demo's script: five named devices whose messages make the demo rules fire, on a timeline of a few seconds.

Owns the scripted devices (the aliases of the rules file's ``devices:`` map, with their products and the data points
the OpenAPI emulator accepts commands for), the timeline of their messages, and the rule firings that timeline must
cause. The random traffic of the rest of the fleet never touches these devices, so no random report can reset a
``for:`` timer. Pure: the messages are built later by the fleet, from the steps defined here; no I/O, no clock.

The timeline, in seconds of a :data:`BASE_SECONDS` run (a longer run stretches it):

- 0.0: every scripted device is renamed to its display name; the door comes online; first reports (the sensor at
  28.5 °C, which neither greenhouse rule minds; the fan off).
- 1.0-5.5: the greenhouse sensor reports above 30.0 °C: ``greenhouse_fan_on_when_hot`` (``for: 3s``) fires 3 s in.
- 1.5: the front door goes offline for good: ``notify_offline`` (``for: 3s``) posts its webhook 3 s later, at the
  worker's next clock tick.
- 2.5: the kitchen plug draws 3125.0 W: ``plug_overload_off`` switches it off at once; at 3.5 it reports off.
- 3.0-4.0: one corrupt message of each kind the simulator knows: five dead letters.
- 6.0 and 11.5: the fan reports the state the rules commanded.
- 6.5-10.0: the sensor reports below 27.0 °C: ``greenhouse_fan_off_when_cool`` fires 3 s in. Then it goes silent.

The ``for:`` durations are the rules file's and are not stretched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any

from streams.sim import CORRUPTIONS, Device, Fleet, Product, SimMessage
from streams.sim.products import PLUG, SENSOR, SWITCH, ProductPoint
from streams.tuya.emulated_devices import EmulatedDevice
from streams.tuya.emulated_sim import sim_emulated_devices

__all__ = ["ALIASES", "BASE_SECONDS", "DOOR", "LIGHT", "Expected", "Scenario", "Step"]

#: The length of the timeline; a demo of ``duration_s`` stretches it by ``duration_s / BASE_SECONDS``.
BASE_SECONDS = 12.0

_HOT = (302, 308, 314, 319, 323, 326, 327, 321, 312, 301)  # from 1.0 every 0.5 s: above 300 for 4.5 s
_COOL = (268, 266, 264, 263, 262, 261, 261, 260)  # from 6.5 every 0.5 s: below 270 for 3.5 s


def _light_initial(rng: Random) -> dict[str, Any]:
    return {"switch_led": False, "bright_value": rng.randint(10, 1000)}


def _door_initial(rng: Random) -> dict[str, Any]:
    return {"doorcontact_state": False, "battery_percentage": rng.randint(40, 100)}


def _unchanged(readings: dict[str, Any], _rng: Random) -> dict[str, Any]:
    return dict(readings)


LIGHT = Product(
    kind="light",
    product_key="ykr3mbhzmbyxaxdd",
    label="Licht",
    dp_ids={"switch_led": 20, "bright_value": 22},
    initial=_light_initial,
    step=_unchanged,
    points={
        "switch_led": ProductPoint(type="Boolean", commandable=True),
        "bright_value": ProductPoint(type="Integer", min=10, max=1000, commandable=True),
    },
)
DOOR = Product(
    kind="door",
    product_key="lgn3dqbjwkzkgqd2",
    label="Tür",
    dp_ids={"doorcontact_state": 1, "battery_percentage": 2},
    initial=_door_initial,
    step=_unchanged,
    points={
        "doorcontact_state": ProductPoint(type="Boolean"),
        "battery_percentage": ProductPoint(type="Integer", unit="%", min=0, max=100),
    },
)


@dataclass(frozen=True, slots=True)
class _Spec:
    """A scripted device: its data points are its product's (as the emulated OpenAPI describes them)."""

    alias: str
    name: str
    product: Product
    status: Mapping[str, Any] = field(default_factory=dict)


_SPECS = (
    _Spec("greenhouse_sensor", "Greenhouse sensor", SENSOR, {"temp_current": 285, "humidity_value": 58}),
    _Spec("greenhouse_fan", "Greenhouse fan", SWITCH, {"switch_1": False}),
    _Spec("kitchen_plug", "Kitchen plug", PLUG, {"switch_1": True, "cur_power": 12000}),
    _Spec("hallway_light", "Hallway light", LIGHT, {"switch_led": False, "bright_value": 500}),
    _Spec("front_door", "Front door", DOOR, {"doorcontact_state": False, "battery_percentage": 90}),
)

#: The aliases the rules file must map to device ids.
ALIASES = tuple(spec.alias for spec in _SPECS)


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted message: ``kind`` is ``status``, a protocol-20 bizCode, or ``corrupt`` (``data["reason"]``)."""

    at: float
    device: Device | None
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)

    def message(self, fleet: Fleet) -> SimMessage:
        """The step's message, sealed by ``fleet`` at the fleet clock's time."""
        if self.kind == "corrupt":
            return fleet.corrupt(self.data["reason"])
        assert self.device is not None
        if self.kind == "status":
            return fleet.status(self.device, self.data)
        return fleet.event(self.device, self.kind, **self.data)


@dataclass(frozen=True, slots=True)
class Expected:
    """A rule firing the timeline causes: a ``commands`` row of ``rule_id`` for ``device_id``."""

    rule_id: str
    device_id: str


class Scenario:
    """The scripted devices of the demo, by alias, with the ids of a rules file's ``devices:`` map.

    Raises:
        ValueError: the map lacks one of :data:`ALIASES`.
    """

    def __init__(self, aliases: Mapping[str, str], *, uid: str) -> None:
        missing = [alias for alias in ALIASES if alias not in aliases]
        if missing:
            raise ValueError(f"the demo rules file has no device alias {', '.join(missing)}")
        self.devices: dict[str, Device] = {
            spec.alias: Device(
                device_id=aliases[spec.alias],
                product=spec.product,
                name=spec.name,
                uid=uid,
                owner_id="demo",
                readings=dict(spec.status),
            )
            for spec in _SPECS
        }

    def device_id(self, alias: str) -> str:
        return self.devices[alias].device_id

    def emulated_devices(self, *, now_s: int) -> list[EmulatedDevice]:
        """The scripted devices as the OpenAPI emulator knows them, online, accepting commands for their functions."""
        return sim_emulated_devices(self.devices.values(), now_s=now_s)

    def expected(self) -> tuple[Expected, ...]:
        """The firings the timeline causes whatever the day and time (the dry-run and silence rules may add more)."""
        fan, plug, door = (self.device_id(alias) for alias in ("greenhouse_fan", "kitchen_plug", "front_door"))
        return (
            Expected("greenhouse_fan_on_when_hot", fan),
            Expected("notify_offline", door),
            Expected("plug_overload_off", plug),
            Expected("greenhouse_fan_off_when_cool", fan),
        )

    def steps(self) -> list[Step]:
        """The timeline (see the module docstring), in time order."""
        steps = [*self._introductions(), *self._greenhouse(), *self._kitchen_and_door()]
        steps += [
            Step(3.0 + 0.25 * index, None, "corrupt", {"reason": reason}) for index, reason in enumerate(CORRUPTIONS)
        ]
        return sorted(steps, key=lambda step: step.at)

    def _introductions(self) -> list[Step]:
        steps = [Step(0.0, device, "nameUpdate", {"name": device.name}) for device in self.devices.values()]
        steps.append(Step(0.0, self.devices["front_door"], "online"))
        steps += [Step(0.1, self.devices[spec.alias], "status", dict(spec.status)) for spec in _SPECS]
        return steps

    def _greenhouse(self) -> list[Step]:
        sensor, fan = self.devices["greenhouse_sensor"], self.devices["greenhouse_fan"]
        readings = [(1.0 + 0.5 * i, t) for i, t in enumerate(_HOT)] + [(6.5 + 0.5 * i, t) for i, t in enumerate(_COOL)]
        steps = [Step(at, sensor, "status", {"temp_current": t, "humidity_value": 60}) for at, t in readings]
        # The fan reports the state the rules commanded, as a real device would after the command.
        steps += [Step(6.0, fan, "status", {"switch_1": True}), Step(11.5, fan, "status", {"switch_1": False})]
        return steps

    def _kitchen_and_door(self) -> list[Step]:
        plug, door = self.devices["kitchen_plug"], self.devices["front_door"]
        overload = {"cur_power": 31250, "cur_current": 13580, "cur_voltage": 2301}
        return [
            Step(1.5, door, "offline"),
            Step(2.5, plug, "status", overload),
            Step(3.5, plug, "status", {"switch_1": False, "cur_power": 0, "cur_current": 0, "cur_voltage": 2302}),
        ]
