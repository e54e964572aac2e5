"""Typed records: what one Tuya message becomes after decoding and normalising.

Owns the shapes that flow from the decoder to the store, the rules and the CLI. Data only: no I/O, never imports
``streams``. Records are frozen msgspec Structs (C-level construction: a status report of five items becomes five
records in well under a microsecond each, which the decode budget of PERFORMANCE.md needs).

Times are ``datetime`` objects in UTC; ids are ``str``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

__all__ = [
    "DEVICE_EVENTS",
    "LONGEST_KEY",
    "USER_EVENTS",
    "DeadLetter",
    "DecodedMessage",
    "DeviceEvent",
    "PulsarMessage",
    "Record",
    "StatusReported",
    "UnknownMessage",
    "UserEvent",
    "key_text",
]

#: The longest text the archive keys or indexes by (device ids, codes, uids, device names, an owner's uid). Tuya's are
#: short (a device id 22 characters); a longer one is no id of Tuya's, and an index entry has a limit (PostgreSQL's
#: B-tree takes 2,704 bytes), so one message with such text would block every batch it is in.
LONGEST_KEY = 255


def key_text(value: Any) -> str | None:
    """``value`` if the archive can key by it: text of 1 to LONGEST_KEY characters, none of them a control character
    (NUL included, which PostgreSQL's text cannot hold); else None."""
    if type(value) is str and 0 < len(value) <= LONGEST_KEY and value.isprintable():
        return value
    return None


#: The one vocabulary of device events, for legacy protocol 20 and IoT-Core 1001/1002 alike (SPEC.md §3.1, §3.3).
DEVICE_EVENTS = frozenset(
    {
        "online",
        "offline",
        "name_updated",
        "dp_name_updated",
        "bound",
        "deleted",
        "upgrade_status",
        "upgrade_progress",
        "shared",
        "signal",
        "dp_command",
        "transferred",
        "frozen",
        "unfrozen",
        "unbound",
    }
)

#: User lifecycle events of protocol 21 (SPEC.md §3.4).
USER_EVENTS = frozenset({"registered", "updated", "deleted"})


class PulsarMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One message as the broker delivered it: the decoder's input.

    ``message_id`` is Pulsar's ``ledger:entry:partition:batch``; ledger ids are unique across a Pulsar cluster and the
    partition is part of the id, so it identifies the message across the partitions of Tuya's topic.
    """

    payload: bytes
    properties: dict[str, str]
    message_id: str
    topic: str
    publish_time_ms: int = 0
    redelivery_count: int = 0


class DecodedMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A message whose envelope was parsed and whose payload was decrypted: one ``messages`` row."""

    message_id: str
    topic: str
    protocol: int
    biz_code: str | None
    device_id: str | None
    encrypt_model: Literal["aes_ecb", "aes_gcm"]
    sign_ok: bool
    pushed_at: datetime
    published_at: datetime | None
    payload: str  # the decrypted JSON text, as Tuya sent it (forensics, ``replay --messages``)
    properties: dict[str, str]


class StatusReported(msgspec.Struct, frozen=True):
    """One status item of a protocol-4 report or an IoT-Core property message: one ``device_status`` row.

    ``value`` keeps Tuya's JSON type and form as sent (bool, int, str, …); integers are raw DP values, before the
    spec's ``scale``. ``code`` is ``None`` when the item carried only a DP id (SPEC.md §3.6): ``dp_id`` is then set,
    and the pipeline names the code from the product's specification where it knows it. ``item_index`` is the item's
    position in the payload, so items skipped as unusable leave gaps and a redelivery gives the same keys.
    Unlike the other records it may be built positionally: it is the hot path (five per report), and positional
    construction costs a third of keyword construction.
    """

    message_id: str
    item_index: int
    device_id: str
    product_key: str | None
    code: str | None
    value: Any
    dp_id: int | None
    reported_at: datetime
    data_id: str | None = None
    kind: Literal["status"] = "status"


class DeviceEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A device lifecycle event (online, rename, bind, …): one ``device_events`` row. ``biz_code`` is Tuya's."""

    message_id: str
    device_id: str
    product_key: str | None
    event: str
    biz_code: str
    protocol: int
    occurred_at: datetime
    data: dict[str, Any]
    kind: Literal["device_event"] = "device_event"

    def __post_init__(self) -> None:
        if self.event not in DEVICE_EVENTS:
            raise ValueError(f"unknown device event {self.event!r}")


class UserEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A user lifecycle event of protocol 21: one ``user_events`` row."""

    message_id: str
    uid: str
    event: str
    biz_code: str
    occurred_at: datetime
    data: dict[str, Any]
    kind: Literal["user_event"] = "user_event"

    def __post_init__(self) -> None:
        if self.event not in USER_EVENTS:
            raise ValueError(f"unknown user event {self.event!r}")


class UnknownMessage(msgspec.Struct, frozen=True, kw_only=True):
    """A decrypted message of a protocol or bizCode we do not model: kept whole, never dropped."""

    message_id: str
    protocol: int
    biz_code: str | None
    device_id: str | None
    occurred_at: datetime
    payload: dict[str, Any]
    kind: Literal["unknown"] = "unknown"


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A message that could not be decoded or normalised: one ``dead_letters`` row, with everything needed to retry.

    ``error_kind`` is a short stable name (``bad_base64``, ``gcm_tag_mismatch``, …) for counting and alerting;
    ``error`` is the readable reason.
    """

    message_id: str
    topic: str
    payload: bytes
    properties: dict[str, str]
    error_kind: str
    error: str
    published_at: datetime | None = None
    kind: Literal["dead_letter"] = "dead_letter"


Record = StatusReported | DeviceEvent | UserEvent | UnknownMessage


class News(msgspec.Struct, frozen=True, array_like=True):
    """What the rules see of a message: its id (they react only to messages new to the archive) and its records."""

    message_id: str
    records: list[Record]
