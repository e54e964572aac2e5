"""Plain builders of valid inputs from the known-answer vectors; keyword overrides, deterministic data."""

from __future__ import annotations

import json
from typing import Any

from models.records import PulsarMessage


def message_from_vector(envelope: dict[str, Any], **overrides: Any) -> PulsarMessage:
    """The binary-protocol Pulsar message of a ``vectors.json`` envelope."""
    pulsar = envelope["pulsar"]
    fields: dict[str, Any] = {
        "payload": pulsar["payload_utf8"].encode("utf-8"),
        "properties": dict(pulsar["properties"]),
        "message_id": pulsar["message_id"]["as_string"],
        "topic": pulsar["topic"],
        "publish_time_ms": pulsar["publish_time_ms"],
    }
    fields.update(overrides)
    return PulsarMessage(**fields)


def message_from_negative(case: dict[str, Any], **overrides: Any) -> PulsarMessage:
    """A message whose envelope carries a ``vectors.json`` negative case's ``data``."""
    envelope = {"data": case["data"], "protocol": 4, "pv": "2.0", "t": 1700000000000}
    fields: dict[str, Any] = {
        "payload": json.dumps(envelope).encode("utf-8"),
        "properties": {"em": case["encrypt_model"]},
        "message_id": f"negative:{case['name']}",
        "topic": "persistent://testaccessid0000/out/event",
    }
    fields.update(overrides)
    return PulsarMessage(**fields)
