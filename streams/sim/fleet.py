"""A simulated fleet of Tuya devices and the encrypted messages it sends: scripted one by one, or as a traffic mix.

Owns the devices (ids, names, owners, state), the traffic mix, the choice of cipher per message and the share of
corrupt messages. Pure and deterministic: given the seed and the clock's values, the same calls return the same
bytes (GCM nonces come from the seeded generator too). No I/O; the clock (ms) is injected.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from random import Random
from typing import Any

import msgspec

from streams.sim import payloads
from streams.sim.products import PRODUCTS, Device, Product
from streams.sim.seal import CORRUPTIONS, Cipher, Corruption, Sealer

__all__ = ["DEFAULT_MIX", "KINDS", "MAX_ITEMS", "Fleet", "SimMessage"]

#: What a message is, by ``SimMessage.kind``: (protocol, bizCode). Corrupt messages are ``corrupt:<reason>``.
KINDS: dict[str, tuple[int, str | None]] = {
    "status": (payloads.PROTOCOL_STATUS, None),
    "devicePropertyMessage": (payloads.PROTOCOL_PROPERTY, "devicePropertyMessage"),
    **{code: (payloads.PROTOCOL_DEVICE_EVENT, code) for code in sorted(payloads.DEVICE_BIZ_CODES)},
    **{code: (payloads.PROTOCOL_USER_EVENT, code) for code in sorted(payloads.USER_BIZ_CODES)},
}

#: Relative weights of the kinds in generated traffic: mostly status reports, events now and then.
DEFAULT_MIX: dict[str, float] = {
    "status": 85.0,
    "devicePropertyMessage": 4.0,
    "online": 3.0,
    "offline": 3.0,
    "nameUpdate": 1.0,
    "dpNameUpdate": 1.0,
    "bindUser": 0.5,
    "delete": 0.5,
    "upgradeStatus": 0.5,
    "userRegister": 1.5,
}

#: Items per report are capped by the data points of the smallest product (each code once per report).
MAX_ITEMS = min(len(product.codes) for product in PRODUCTS)

_ROOMS = (
    "Küche",
    "Wohnzimmer",
    "Salon",
    "Спальня",
    "厨房",
    "Bureau",
    "Garage",
    "Baño",
    "Çalışma odası",
    "Kinderzimmer",
)
_DP_NAMES = ("Tischlampe", "Ventilateur", "Heizung", "Чайник", "台灯", "Lámpara", "Aquarium ☀")
_ID_ALPHABET = string.digits + string.ascii_lowercase
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message to publish: the Pulsar payload and properties, what it is, and its device (the partition key).

    ``t_ms`` is the message's time. ``reports`` are the data-point values a status report or property message
    carries, ``(code, value, at_ms)`` each, as the device's log at Tuya records them (empty for other kinds), so
    that a caller can keep such a log without decrypting the message again.
    """

    payload: bytes
    properties: dict[str, str]
    kind: str
    device_id: str | None
    t_ms: int = 0
    reports: tuple[tuple[str, Any, int], ...] = ()


class Fleet:
    """``size`` devices of the three product types, owned by a few users, sending encrypted Tuya messages.

    Args:
        access_key: the project's Access Secret (32 characters) the messages are encrypted and signed with.
        clock: current time in ms since the epoch; called once per message whose time is not given.
        gcm_share: share of generated messages sent with AES-GCM; the rest is ECB, alternately with
            ``em=aes_ecb`` and with no ``em`` property.
        mix: relative weights by kind (keys of :data:`KINDS`) for :meth:`messages`.
    """

    def __init__(
        self,
        access_key: str,
        size: int = 50,
        *,
        clock: Callable[[], int],
        seed: int = 1,
        gcm_share: float = 0.5,
        mix: Mapping[str, float] | None = None,
        schema: str = "simapp",
    ) -> None:
        if size < 1:
            raise ValueError("a fleet needs at least one device")
        if not 0.0 <= gcm_share <= 1.0:
            raise ValueError("gcm_share must be between 0 and 1")
        self._rng = Random(seed)
        self._clock = clock
        self._sealer = Sealer(access_key)
        self._gcm_share = gcm_share
        self._schema = schema
        self._ecb_with_em = False
        self._salt = self._rng.randbytes(5)
        self._sequence = 0
        self._event_keys: dict[tuple[str, str], int] = {}
        self._kinds, self._cum_weights = _mix(mix if mix is not None else DEFAULT_MIX)
        self.users: list[str] = [self._new_uid() for _ in range(max(1, size // 5))]
        taken: set[str] = set()
        self.devices: tuple[Device, ...] = tuple(self._new_device(index, taken) for index in range(size))
        self._by_id = {device.device_id: device for device in self.devices}

    def device(self, key: int | str | Device) -> Device:
        """A device by index in :attr:`devices`, by device id, or the device itself."""
        if isinstance(key, Device):
            return key
        return self.devices[key] if isinstance(key, int) else self._by_id[key]

    # --- scripted messages ---------------------------------------------------------------------------------------

    def status(
        self,
        device: int | str | Device,
        values: Mapping[str, Any],
        t_ms: int | None = None,
        *,
        cipher: Cipher | None = None,
    ) -> SimMessage:
        """A protocol-4 status report of ``values`` (code → raw value), every item timed ``t_ms``."""
        t = self._now(t_ms)
        return self._status(self.device(device), values, t, t, cipher)

    def property(
        self,
        device: int | str | Device,
        values: Mapping[str, Any],
        t_ms: int | None = None,
        *,
        cipher: Cipher | None = None,
    ) -> SimMessage:
        """A protocol-1000 ``devicePropertyMessage`` of ``values``."""
        dev, t = self.device(device), self._now(t_ms)
        dev.readings.update(values)
        payload = payloads.property_message(dev, values, t, self._data_id(t))
        reports = tuple((code, value, t) for code, value in values.items())
        return self._seal(payload, t, "devicePropertyMessage", dev.device_id, cipher, reports)

    def event(
        self,
        device: int | str | Device,
        biz_code: str,
        t_ms: int | None = None,
        *,
        cipher: Cipher | None = None,
        **biz_data: Any,
    ) -> SimMessage:
        """A protocol-20 event (``online``, ``nameUpdate`` …); ``biz_data`` sets fields such as ``name=``/``uid=``.

        The device's state follows the event: online/offline, its name, its owner, bound or deleted.
        """
        dev, t = self.device(device), self._now(t_ms)
        self._event_defaults(dev, biz_code, biz_data)
        _apply_event(dev, biz_code, biz_data)
        self._event_keys[dev.device_id, biz_code] = _event_key_time(biz_code, t)
        payload = payloads.device_event(dev, biz_code, t, self._hex(16), **biz_data)
        return self._seal(payload, t, biz_code, dev.device_id, cipher)

    def user_event(
        self,
        biz_code: str = "userRegister",
        t_ms: int | None = None,
        *,
        uid: str | None = None,
        cipher: Cipher | None = None,
    ) -> SimMessage:
        """A protocol-21 user event; ``userRegister`` without ``uid`` registers a new user of the fleet."""
        t = self._now(t_ms)
        if uid is None:
            uid = self._new_uid() if biz_code == "userRegister" else self._rng.choice(self.users)
        if biz_code == "userRegister" and uid not in self.users:
            self.users.append(uid)
        return self._seal(payloads.user_event(uid, biz_code, t, self._schema), t, biz_code, None, cipher)

    def corrupt(
        self,
        reason: Corruption,
        t_ms: int | None = None,
        *,
        device: int | str | Device | None = None,
        cipher: Cipher | None = None,
    ) -> SimMessage:
        """A status report broken by ``reason`` (see :meth:`Sealer.corrupt`), of kind ``corrupt:<reason>``."""
        t = self._now(t_ms)
        dev = self.device(device) if device is not None else self._rng.choice(self.devices)
        report = payloads.status_report(dev, self._report_values(dev, None), t, self._data_id(t))
        chosen = self._cipher(cipher)
        payload, properties = self._sealer.corrupt(
            reason, _encode(report), payloads.PROTOCOL_STATUS, t, chosen, self._rng.randbytes(12)
        )
        properties["tid"] = self._hex(32)
        return SimMessage(payload, properties, f"corrupt:{reason}", dev.device_id, t)

    # --- generated traffic ---------------------------------------------------------------------------------------

    def messages(
        self, count: int | None = None, *, items: int | None = None, corrupt: float = 0.0
    ) -> Iterator[SimMessage]:
        """``count`` messages of the traffic mix (endless when None), timed by the clock.

        Args:
            items: items per status report and property message (1 to :data:`MAX_ITEMS`); None varies it (1-3).
            corrupt: share of messages, 0 to 1, broken by a corruption the generator picks (kind ``corrupt:…``).
        """
        produced = 0
        while count is None or produced < count:
            yield self.next_message(items=items, corrupt=corrupt)
            produced += 1

    def next_message(self, *, items: int | None = None, corrupt: float = 0.0) -> SimMessage:
        """One message of the traffic mix at the clock's time (see :meth:`messages`)."""
        if items is not None and not 1 <= items <= MAX_ITEMS:
            raise ValueError(f"items must be between 1 and {MAX_ITEMS}")
        if not 0.0 <= corrupt <= 1.0:
            raise ValueError("corrupt must be between 0 and 1")
        t = self._clock()
        rng = self._rng
        if corrupt and rng.random() < corrupt:
            return self.corrupt(rng.choice(CORRUPTIONS), t)
        kind = rng.choices(self._kinds, cum_weights=self._cum_weights)[0]
        if KINDS[kind][0] == payloads.PROTOCOL_USER_EVENT:
            return self.user_event(kind, t)
        device = rng.choice(self.devices)
        if not device.bound:
            return self._fresh_event(device, "bindUser", t, uid=rng.choice(self.users))
        if kind in ("online", "offline"):
            kind = "offline" if device.online else "online"
        elif not device.online:
            kind = "online"
        if kind == "devicePropertyMessage":
            return self.property(device, self._report_values(device, items), t)
        if kind != "status":
            return self._fresh_event(device, kind, t)
        return self._status(device, self._report_values(device, items), t, t - rng.randint(20, 800), None)

    # --- internals -----------------------------------------------------------------------------------------------

    def _fresh_event(self, device: Device, biz_code: str, t: int, **biz_data: Any) -> SimMessage:
        # An event whose (device, bizCode, time) equals an earlier one would be a duplicate to an archive that keys
        # events that way (online/offline times are in seconds, SPEC.md §3.3); send a status report instead.
        if self._event_keys.get((device.device_id, biz_code)) == _event_key_time(biz_code, t):
            device.online = device.bound = True
            return self._status(device, self._report_values(device, None), t, t, None)
        return self.event(device, biz_code, t, **biz_data)

    def _status(
        self, device: Device, values: Mapping[str, Any], t: int, item_t: int, cipher: Cipher | None
    ) -> SimMessage:
        device.readings.update(values)
        payload = payloads.status_report(device, values, item_t, self._data_id(t))
        reports = tuple((code, value, item_t) for code, value in values.items())
        return self._seal(payload, t, "status", device.device_id, cipher, reports)

    def _seal(
        self,
        payload: dict[str, Any],
        t: int,
        kind: str,
        device_id: str | None,
        cipher: Cipher | None,
        reports: tuple[tuple[str, Any, int], ...] = (),
    ) -> SimMessage:
        protocol = KINDS[kind][0]
        body, properties = self._sealer.seal(
            _encode(payload), protocol, t, self._cipher(cipher), self._rng.randbytes(12)
        )
        properties["tid"] = self._hex(32)
        return SimMessage(body, properties, kind, device_id, t, reports)

    def _cipher(self, cipher: Cipher | None) -> Cipher:
        if cipher is not None:
            return cipher
        if self._rng.random() < self._gcm_share:
            return "gcm"
        self._ecb_with_em = not self._ecb_with_em
        return "ecb" if self._ecb_with_em else "ecb-no-em"

    def _report_values(self, device: Device, items: int | None) -> dict[str, Any]:
        """The device's next readings, ``items`` of them in product order (1-3 when None)."""
        device.readings = device.product.step(device.readings, self._rng)
        codes = device.product.codes
        if items is None:
            chosen = sorted(self._rng.sample(range(len(codes)), self._rng.randint(1, 3)))
        else:
            chosen = list(range(items))
        return {codes[index]: device.readings[codes[index]] for index in chosen}

    def _event_defaults(self, device: Device, biz_code: str, biz_data: dict[str, Any]) -> None:
        if biz_code == "nameUpdate":
            biz_data.setdefault("name", self._name(device.product))
        elif biz_code == "dpNameUpdate":
            biz_data.setdefault("name", self._rng.choice(_DP_NAMES))
            biz_data.setdefault("dpId", str(self._rng.choice(tuple(device.product.dp_ids.values()))))

    def _now(self, t_ms: int | None) -> int:
        return self._clock() if t_ms is None else t_ms

    def _data_id(self, t: int) -> str:
        # 20 characters like Tuya's ("AAYJ7Q8s3kq1yC0bAAAA"): time, fleet salt, sequence. Unique within a run, and
        # across runs with a real clock, since the archive deduplicates status reports by dataId (SPEC.md §3.2).
        self._sequence += 1
        raw = (t & 0xFFFF_FFFF_FFFF).to_bytes(6, "big") + self._salt + (self._sequence & 0xFFFF_FFFF).to_bytes(4, "big")
        return base64.b64encode(raw).decode("ascii")

    def _hex(self, digits: int) -> str:
        return f"{self._rng.getrandbits(digits * 4):0{digits}x}"

    def _name(self, product: Product) -> str:
        return f"{self._rng.choice(_ROOMS)} {product.label} {self._rng.randint(1, 9)}"

    def _new_uid(self) -> str:
        letters = "".join(self._rng.choices(string.ascii_letters, k=5))
        return f"eu{self._rng.randrange(1_600_000_000_000, 1_800_000_000_000)}{letters}"

    def _new_device(self, index: int, taken: set[str]) -> Device:
        product = PRODUCTS[index % len(PRODUCTS)]
        device_id = ""
        while not device_id or device_id in taken:
            device_id = "bf" + "".join(self._rng.choices(_ID_ALPHABET, k=20))  # 22 characters, like Tuya's
        taken.add(device_id)
        return Device(
            device_id=device_id,
            product=product,
            name=self._name(product),
            uid=self.users[index % len(self.users)],
            owner_id=str(self._rng.randrange(10_000_000, 100_000_000)),
            readings=product.initial(self._rng),
        )


def _event_key_time(biz_code: str, t: int) -> int:
    return t // 1000 if biz_code in ("online", "offline") else t


def _apply_event(device: Device, biz_code: str, biz_data: Mapping[str, Any]) -> None:
    if biz_code in ("online", "offline"):
        device.online = biz_code == "online"
    elif biz_code == "nameUpdate":
        device.name = biz_data["name"]
    elif biz_code == "bindUser":
        device.bound = True
        device.uid = biz_data.get("uid", device.uid)
    elif biz_code == "delete":
        device.bound = device.online = False


def _mix(mix: Mapping[str, float]) -> tuple[tuple[str, ...], list[float]]:
    unknown = sorted(set(mix) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown message kinds in the mix: {', '.join(unknown)}")
    if any(weight < 0 for weight in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError("mix weights must be non-negative and not all zero")
    return tuple(mix), list(accumulate(mix.values()))
