"""Tuya's message service over the binary Pulsar protocol, with the official ``pulsar-client``.

Owns the connection (``auth1`` credentials, TLS), the subscription (Failover, ``{accessId}-sub``), batch receive and
individual acks. Knows nothing about decoding or storage: it hands out :class:`~models.records.PulsarMessage` values
with an opaque handle to ack them by. The pure parts (password, auth data, topic and subscription names, client
options) are module functions, tested without a broker.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulsar

from models.records import PulsarMessage

__all__ = [
    "PulsarSource",
    "Received",
    "auth_data",
    "client_options",
    "pulsar_password",
    "subscription_name",
    "topic_name",
]

log = logging.getLogger(__name__)


def pulsar_password(access_id: str, access_key: str) -> str:
    """SPEC.md §1.3: ``md5hex(accessId + md5hex(accessKey))[8:24]``, lower-case hex, 16 characters."""
    inner = hashlib.md5(access_key.encode("utf-8"), usedforsecurity=False).hexdigest()
    return hashlib.md5((access_id + inner).encode("utf-8"), usedforsecurity=False).hexdigest()[8:24]


def auth_data(access_id: str, access_key: str) -> str:
    """The ``auth1`` auth data: compact JSON ``{"username":…,"password":…}`` as Tuya's Java and Go SDKs send it."""
    return f'{{"username":"{access_id}","password":"{pulsar_password(access_id, access_key)}"}}'


def _authentication(access_id: str, access_key: str) -> pulsar.AuthenticationBasic:
    # The C++ core sends ``username + ":" + password`` as the auth data of method auth1 (SPEC.md §1.3), so splitting the
    # JSON at the colon before the password value reproduces auth_data() byte for byte.
    username, password = auth_data(access_id, access_key).rsplit(":", 1)
    return pulsar.AuthenticationBasic(username=username, password=password, method="auth1")


def topic_name(access_id: str, mq_env: str) -> str:
    """``persistent://{accessId}/out/{event|event-test}`` (SPEC.md §1.2); ``event`` is partitioned (11 partitions)."""
    return f"persistent://{access_id}/out/{mq_env}"


def subscription_name(access_id: str) -> str:
    return f"{access_id}-sub"


def client_options(url: str, *, tls_verify: bool, operation_timeout_s: int = 30) -> dict[str, Any]:
    """Keyword arguments for ``pulsar.Client`` besides the URL and authentication.

    TLS: every official Tuya SDK turns certificate checks off (SPEC.md §1.1); we keep them on unless the operator turns
    them off with ``TUYA_PULSAR_TLS_VERIFY=false`` for a data centre whose certificate does not verify.
    """
    options: dict[str, Any] = {
        "operation_timeout_seconds": operation_timeout_s,
        "connection_timeout_ms": 10_000,
        # The client's own logger (warnings and errors, on stdout), not a Python logger: with a Python logger the
        # process sometimes aborts at exit ("terminate called without an active exception", exit -6) after
        # everything was committed and closed (apache/pulsar-client-python#256, seen here in a worker test).
        "logger": pulsar.ConsoleLogger(pulsar.LoggerLevel.Warn),
    }
    if url.startswith("pulsar+ssl://"):
        import certifi

        options.update(
            use_tls=True,
            tls_trust_certs_file_path=certifi.where(),
            tls_allow_insecure_connection=not tls_verify,
            tls_validate_hostname=tls_verify,
        )
    return options


@dataclass(frozen=True, slots=True)
class Received:
    """A received message and the handle the source needs to acknowledge it: Pulsar's message id, all an ack needs
    (the received message itself would keep its payload in memory until the ack)."""

    message: PulsarMessage
    handle: Any = field(repr=False)


def _received(msg: pulsar.Message) -> Received:
    # Pulsar's message id is read once: it is both the archive's message_id (as text) and the ack handle.
    handle = msg.message_id()
    message = PulsarMessage(
        payload=msg.data(),
        properties=msg.properties(),
        message_id=f"{handle.ledger_id()}:{handle.entry_id()}:{handle.partition()}:{handle.batch_index()}",
        topic=msg.topic_name(),
        publish_time_ms=msg.publish_timestamp(),
        redelivery_count=msg.redelivery_count(),
    )
    return Received(message, handle)


class PulsarSource:
    """One Failover consumer on Tuya's topic; ``receive_batch`` is bounded by count and by time."""

    def __init__(
        self,
        url: str,
        *,
        access_id: str,
        access_key: str,
        topic: str,
        subscription: str,
        tls_verify: bool = True,
        batch_size: int = 1000,
        batch_timeout_ms: int = 200,
        operation_timeout_s: int = 30,
    ) -> None:
        self._url = url
        self._auth = (access_id, access_key)
        self._topic = topic
        self._subscription = subscription
        self._tls_verify = tls_verify
        self._operation_timeout = operation_timeout_s
        self._policy = pulsar.ConsumerBatchReceivePolicy(batch_size, -1, batch_timeout_ms)
        self._queue = max(1000, batch_size * 2)
        self._client: pulsar.Client | None = None
        self._consumer: pulsar.Consumer | None = None

    def connect(self) -> None:
        """Create the client and subscribe. Raises pulsar exceptions when the broker cannot be reached."""
        self.close()
        self._client = pulsar.Client(
            self._url,
            authentication=_authentication(*self._auth),
            **client_options(self._url, tls_verify=self._tls_verify, operation_timeout_s=self._operation_timeout),
        )
        try:
            self._consumer = self._client.subscribe(
                self._topic,
                self._subscription,
                consumer_type=pulsar.ConsumerType.Failover,
                receiver_queue_size=self._queue,
                batch_receive_policy=self._policy,
                initial_position=pulsar.InitialPosition.Earliest,
            )
        except Exception:
            self.close()
            raise
        log.info("subscribed topic=%s subscription=%s url=%s", self._topic, self._subscription, self._url)

    def receive_batch(self) -> list[Received]:
        """Up to ``batch_size`` messages, waiting at most ``batch_timeout_ms`` for them."""
        if self._consumer is None:
            raise RuntimeError("receive_batch() before connect()")
        return [_received(msg) for msg in self._consumer.batch_receive()]

    def ack(self, handles: Sequence[Any]) -> None:
        """Acknowledge each message (by the ``handle`` of its Received) individually, never cumulatively: SPEC.md
        §1.6 lists the loss bugs of that."""
        if self._consumer is None:
            raise RuntimeError("ack() before connect()")
        for handle in handles:
            self._consumer.acknowledge(handle)

    def close(self) -> None:
        consumer, client = self._consumer, self._client
        self._consumer = self._client = None
        for closable in (consumer, client):
            if closable is not None:
                try:
                    closable.close()
                except Exception as exc:  # closing a dead connection fails; the next connect starts clean
                    log.debug("ignoring error while closing %s: %s", type(closable).__name__, exc)
