"""The outbox sender: delivers pending ``commands`` rows, each at most once, and records the outcome.

Owns the delivery protocol. A row is claimed (``in_flight``, attempts + 1) in its own committed transaction *before*
the call, and finished (``sent`` with Tuya's ``tid``, or ``failed`` with code and message) after it. So a crash can
leave a row ``in_flight``, never send it twice: on start, an in-flight Tuya command is checked against the device's
reported status instead of being resent. If every commanded value is already reported, it is marked ``sent``
(confirmed); otherwise ``failed`` with an explanation, because resending could repeat a command that did arrive.
An in-flight webhook or log line is marked ``failed`` for the same reason.

Transient failures (rate limits, 5xx, network) that outlast the client's own retries put the row back to ``pending``
for a later pass, up to ``max_attempts``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from sqlalchemy.engine import Engine

from streams.errors import TransientError
from streams.outbox import sql
from streams.tuya.api_errors import TUYA_ERRORS, TuyaServerError

__all__ = ["CommandClient", "OutboxSender"]

log = logging.getLogger(__name__)

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class CommandClient(Protocol):
    def send_commands(self, device_id: str, commands: Any) -> Any: ...
    def device_status(self, device_id: str) -> Any: ...


def _now() -> datetime:
    return datetime.now(UTC)


class OutboxSender:
    """Drains the outbox through the signed OpenAPI client (commands), httpx (webhooks) and logging."""

    def __init__(
        self,
        engine: Engine,
        client: CommandClient | None,
        *,
        http: httpx.Client | None = None,
        max_attempts: int = 5,
        poll_s: float = 1.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._engine = engine
        self._client = client
        self._http = http or httpx.Client()
        self._max_attempts = max_attempts
        self._poll = poll_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0

    def recover(self) -> None:
        """Settle rows a crash left in flight, without sending anything twice (see the module docstring)."""
        with self._engine.begin() as connection:
            rows = sql.in_flight(connection)
        for row in rows:
            outcome = self._confirm(row)
            with self._engine.begin() as connection:
                sql.finish(connection, row["id"], self._clock(), **outcome)
            log.warning("outbox: command %s was in flight at a crash: %s", row["idempotency_key"], outcome["status"])

    def _confirm(self, row: Mapping[str, Any]) -> dict[str, Any]:
        if row["action"] == "tuya.send_command" and self._client is not None:
            try:
                reported = self._client.device_status(row["device_id"]).values
            except (*TUYA_ERRORS, httpx.HTTPError) as exc:
                return {"status": "failed", "error": f"interrupted in flight; status check failed: {exc}"}
            if all(reported.get(c["code"]) == c["value"] for c in row["commands"]):
                return {"status": "sent", "error": "confirmed after restart: the device reports the commanded values"}
        return {"status": "failed", "error": "interrupted in flight; not resent, as it may have been delivered"}

    def drain(self) -> int:
        """Deliver every pending row once; returns how many were attempted."""
        with self._engine.begin() as connection:
            ids = sql.pending_ids(connection, "pending")
        for command_id in ids:
            with self._engine.begin() as connection:
                row = sql.claim(connection, command_id, self._clock())
            if row is not None:
                outcome = self._deliver(row)
                with self._engine.begin() as connection:
                    sql.finish(connection, command_id, self._clock(), **outcome)
        return len(ids)

    def _deliver(self, row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._perform(row)
        except TuyaServerError as exc:
            if exc.maybe_applied:
                self.failed += 1
                return {
                    "status": "failed",
                    "error_code": exc.code,
                    "error": f"{exc} (may have been applied; not resent)",
                }
            return self._retry_or_fail(row, exc)
        except TransientError as exc:
            return self._retry_or_fail(row, exc)
        except (*TUYA_ERRORS, httpx.HTTPError, ValueError) as exc:
            self.failed += 1
            log.warning("outbox: %s failed: %s", row["idempotency_key"], exc)
            return {"status": "failed", "error_code": getattr(exc, "code", None), "error": str(exc)}

    def _retry_or_fail(self, row: Mapping[str, Any], exc: Exception) -> dict[str, Any]:
        if row["attempts"] < self._max_attempts:
            log.warning("outbox: %s will be retried: %s", row["idempotency_key"], exc)
            return {"status": "pending", "error": str(exc)}
        self.failed += 1
        return {"status": "failed", "error_code": getattr(exc, "code", None), "error": str(exc)}

    def _perform(self, row: Mapping[str, Any]) -> dict[str, Any]:
        action, payload = row["action"], row["commands"]
        if action == "tuya.send_command":
            if self._client is None:
                raise ValueError("no OpenAPI client configured (TUYA_ACCESS_ID/TUYA_ACCESS_KEY)")
            result = self._client.send_commands(row["device_id"], payload)
            self.sent += 1
            return {"status": "sent", "tuya_tid": result.tid, "sent_at": self._clock(), "error": None}
        if action == "webhook":
            response = self._http.post(
                payload["url"], json=payload["body"], headers=payload["headers"], timeout=payload["timeout_s"]
            )
            response.raise_for_status()
            self.sent += 1
            return {"status": "sent", "sent_at": self._clock(), "error": None}
        if action == "log":
            log.log(_LOG_LEVELS.get(payload["level"], logging.INFO), "rule %s: %s", row["rule_id"], payload["message"])
            self.sent += 1
            return {"status": "sent", "sent_at": self._clock(), "error": None}
        raise ValueError(f"unknown action {action!r}")

    def start(self) -> OutboxSender:
        """Recover, then drain in a background thread every ``poll_s`` until ``stop()``."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.drain()
            except Exception:  # the database may be down; the rows stay pending and the next pass retries
                log.exception("outbox: drain failed; retrying")
            self._stop.wait(self._poll)

    def stop(self) -> None:
        """Finish the row in hand, then stop and close the HTTP clients; pending rows wait for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._http.close()
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
