"""One Pulsar message → its ``messages`` row and typed records, or a dead letter. Raises only when the machine runs out
of memory (TransientError: the batch is retried, not dead-lettered).

Owns the composition of envelope, cipher and normalisation, and the rule that bad input of any kind becomes a
:class:`~models.records.DeadLetter` (DESIGN.md §7). Pure; never imports httpx, pulsar or SQLAlchemy.
"""

from __future__ import annotations

import logging

import msgspec

from models.records import DeadLetter, DecodedMessage, News, PulsarMessage, Record, StatusReported
from streams.errors import DecodeError, TransientError
from streams.tuya.crypto import Cipherbox
from streams.tuya.envelope import decode_payload, decoded_message, open_envelope
from streams.tuya.normalize import device_id_of, normalize, published_at, timestamp_ms

__all__ = ["Decoded", "MessageDecoder"]

log = logging.getLogger(__name__)


class Decoded(msgspec.Struct, frozen=True):
    """A message that decoded: its archive row and its records (in payload order)."""

    message: DecodedMessage
    records: list[Record]

    @property
    def news(self) -> News:
        """What the rules see of this message."""
        return News(self.message.message_id, self.records)

    @property
    def unresolved(self) -> bool:
        """Whether a status record carried only a DP id (no code): the catalog may name it."""
        return any(type(record) is StatusReported and record.code is None for record in self.records)


class MessageDecoder:
    """Decodes messages of one Tuya project (one Access Secret). Not thread-safe (see Cipherbox)."""

    def __init__(self, access_key: str) -> None:
        self._access_key = access_key
        self._box = Cipherbox(access_key)
        self.sign_mismatches = 0

    def decode(self, msg: PulsarMessage) -> Decoded | DeadLetter:
        try:
            env = open_envelope(msg.payload, msg.properties.get("em"), self._box, self._access_key)
            payload = decode_payload(env.plaintext)
            # The envelope's t: ms on Pulsar, seconds on OpenMQ (SPEC.md §3.6); else Pulsar's publish time.
            pushed_ms = timestamp_ms(env.t, msg.publish_time_ms)
            records = normalize(msg.message_id, env.protocol, payload, pushed_ms)
            message = decoded_message(msg, env, payload, device_id_of(payload), pushed_ms)
        except DecodeError as exc:
            return self._dead_letter(msg, exc.kind, str(exc))
        except MemoryError as exc:  # the machine's, not the message's: the batch is retried, nothing acknowledged
            raise TransientError(f"out of memory decoding message {msg.message_id}") from exc
        except Exception as exc:  # a bug must not stop the stream: keep the message and say what happened
            log.exception("unexpected error decoding message %s", msg.message_id)
            return self._dead_letter(msg, "internal_error", f"{type(exc).__name__}: {exc}")
        if not env.sign_ok:
            self.sign_mismatches += 1
            log.debug("envelope sign mismatch on message %s (recorded, not dropped)", msg.message_id)
        return Decoded(message, records)

    @staticmethod
    def _dead_letter(msg: PulsarMessage, kind: str, reason: str) -> DeadLetter:
        return DeadLetter(
            message_id=msg.message_id,
            topic=msg.topic,
            payload=msg.payload,
            properties=msg.properties,
            error_kind=kind,
            error=reason,
            published_at=published_at(msg.publish_time_ms),
        )
