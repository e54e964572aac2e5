"""The Kafka leg of the scale-out path: how a Tuya message travels from the bridge to the processors.

Owns the record format both sides agree on, so that a processor rebuilds exactly the
:class:`~models.records.PulsarMessage` the single-process worker would have received, same ``message_id`` and
``topic`` included (storage is idempotent on them, so the two paths can even overlap):

- key: the device id (UTF-8), or the Pulsar message id when the bridge could not find one;
- value: the Pulsar payload, byte for byte (still encrypted);
- headers: ``pulsar.message_id``, ``pulsar.topic``, ``pulsar.publish_time`` (ms, decimal), ``pulsar.redelivery_count``,
  and each Pulsar property as ``property.<name>``. The prefixes keep Tuya's property names from ever colliding with
  ours.

Also owns KAFKA_URL parsing. Pure: imports neither aiokafka nor faust.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from models.records import PulsarMessage
from streams.errors import ConfigError
from streams.urls import hide_password

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_TOPIC",
    "KafkaRecord",
    "bootstrap_servers",
    "message_from_record",
    "record_from_message",
]

#: The topic the bridge writes and the processors read.
DEFAULT_TOPIC = "tuya-archiver.messages"
#: Partitions of that topic when the bridge or a processor creates it: more than Tuya's 11, so that any number of
#: processors up to 12 gets work, and divisible by 2, 3, 4 and 6 so that small groups get even shares.
DEFAULT_PARTITIONS = 12

_MESSAGE_ID = "pulsar.message_id"
_TOPIC = "pulsar.topic"
_PUBLISH_TIME = "pulsar.publish_time"
_REDELIVERY = "pulsar.redelivery_count"
_PROPERTY = "property."

Headers = Iterable[tuple[str, bytes | None]] | Mapping[str, bytes | None]


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """What the bridge produces for one Pulsar message."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def record_from_message(message: PulsarMessage, key: str | None) -> KafkaRecord:
    """The Kafka record for ``message``, keyed by ``key`` (its device or user; by its message id when there is
    none)."""
    headers = [
        (_MESSAGE_ID, message.message_id.encode()),
        (_TOPIC, message.topic.encode()),
        (_PUBLISH_TIME, str(message.publish_time_ms).encode()),
        (_REDELIVERY, str(message.redelivery_count).encode()),
    ]
    headers.extend((_PROPERTY + name, value.encode()) for name, value in message.properties.items())
    return KafkaRecord((key or message.message_id).encode(), message.payload, headers)


def message_from_record(
    value: bytes | None, headers: Headers, *, fallback_id: str, fallback_topic: str
) -> PulsarMessage:
    """The PulsarMessage a record carries.

    A record that did not come from the bridge (no ``pulsar.message_id`` header) is not dropped: it gets
    ``fallback_id`` (the caller passes the Kafka coordinates) and ``fallback_topic``, and the decoder stores or
    dead-letters it like any other message.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    fields: dict[str, str] = {}
    properties: dict[str, str] = {}
    for name, raw in pairs:
        text = (raw or b"").decode("utf-8", errors="replace")
        if name.startswith(_PROPERTY):
            properties[name[len(_PROPERTY) :]] = text
        else:
            fields[name] = text
    return PulsarMessage(
        payload=value or b"",
        properties=properties,
        message_id=fields.get(_MESSAGE_ID) or fallback_id,
        topic=fields.get(_TOPIC) or fallback_topic,
        publish_time_ms=_int(fields.get(_PUBLISH_TIME)),
        redelivery_count=_int(fields.get(_REDELIVERY)),
    )


def _int(text: str | None) -> int:
    # ASCII digits int() takes (str.isdigit() also accepts "²"), and no more than a publish time in ms needs.
    return int(text) if text and len(text) <= 18 and text.isascii() and text.isdigit() else 0


def bootstrap_servers(url: str) -> str:
    """KAFKA_URL (``kafka://host:port``, several separated by ``,`` or ``;``, scheme optional) → ``host:port,…``.

    Raises:
        ConfigError: no host, a missing or non-numeric port, or another scheme.
    """
    servers = []
    for part in url.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        scheme, sep, rest = part.partition("://")
        if sep and scheme != "kafka":
            raise ConfigError(f"KAFKA_URL: scheme {scheme}:// is not supported (use kafka://host:port)")
        address = (rest if sep else part).rstrip("/")
        if "@" in address or "?" in address:  # aiokafka would take "user:password@host" for a host name
            shown = address.rpartition("@")[2].partition("?")[0]  # never what came before the host, nor the query
            raise ConfigError(
                f"KAFKA_URL: credentials and options are not supported (for {shown!r}: give host:port; the brokers "
                "must accept plain connections from the workers)"
            )
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ConfigError(f"KAFKA_URL: {hide_password(part)!r} is not host:port")
        servers.append(f"{host}:{port}")
    if not servers:
        raise ConfigError("KAFKA_URL: no broker address")
    return ",".join(servers)
