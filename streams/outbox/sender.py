"""The outbox sender: delivers pending ``commands`` rows, each at most once, and records the outcome.

Owns the delivery protocol. A row is claimed (``in_flight``, attempts + 1) in its own committed transaction *before*
the call, and finished (``sent`` with Tuya's ``tid``, or ``failed`` with code and message) after it. So a crash can
leave a row ``in_flight``, never send it twice. A row in flight for longer than the lease (longer than any call with
its retries can take) was lost by a sender that died; it is settled by checking the device's reported status
instead of resending: if every commanded value is already reported, it is marked ``sent`` (confirmed), otherwise
``failed`` with an explanation, because resending could repeat a command that did arrive. An in-flight webhook or
log line is marked ``failed`` for the same reason. The lease, not "whatever is in flight at start", is what makes
this safe beside other senders (a standby worker, scale-out processors) that may be inside a call right now.

Transient failures that outlast the client's own retries (Tuya's rate limits, 5xx answers other than a gateway's 502
or 504, which may hide an applied command, network errors before the command left; for webhooks, a connection that
could not be made, or a receiver's 429 or 503) put the row back to ``pending``
for a later pass, up to ``max_attempts``: each waits twice as long as the one before, from ``retry_wait_s`` to two
minutes, so that the default ten tries span about ten minutes of a Tuya outage or rate limit. :meth:`stop` drains
once more, so a bounded run or a SIGTERM does not
leave the commands of its last batch waiting for the next start.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy.engine import Engine

from models.rules import RuleSet, WebhookAction
from streams.backoff import Backoff
from streams.clock import utcnow
from streams.errors import TransientError
from streams.outbox import sql
from streams.tuya.api_errors import TUYA_ERRORS, TuyaServerError

__all__ = ["CommandClient", "OutboxSender"]

log = logging.getLogger(__name__)

_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class CommandClient(Protocol):
    def send_commands(self, device_id: str, commands: Any) -> Any: ...
    def device_status(self, device_id: str) -> Any: ...


#: A webhook receiver's answers that say it did not take the request (a 502 or 504 came from a proxy: the receiver
#: behind it may have).
_NOT_TAKEN = frozenset({429, 503})
#: The longest wait between two tries of a command.
_LONGEST_WAIT_S = 120.0


def retry_waits(max_attempts: int, first_s: float) -> list[timedelta]:
    """The wait after each number of failed tries (index 0: none yet), doubling from ``first_s`` to two minutes."""
    backoff = Backoff(first_s, _LONGEST_WAIT_S)
    return [timedelta(0)] + [timedelta(seconds=backoff.next_delay()) for _ in range(1, max_attempts)]


class OutboxSender:
    """Drains the outbox through the signed OpenAPI client (commands), httpx (webhooks) and logging."""

    def __init__(
        self,
        engine: Engine,
        client: CommandClient | None,
        *,
        http: httpx.Client | None = None,
        max_attempts: int = 10,
        retry_wait_s: float = 5.0,
        poll_s: float = 1.0,
        lease_s: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        rules: RuleSet | None = None,
    ) -> None:
        self._engine = engine
        self._client = client
        self._rules = rules or RuleSet()  # where a webhook's header values are (never stored in the outbox)
        self._owns_http = http is None
        self._http = http or httpx.Client()
        self._max_attempts = max_attempts
        self._waits = retry_waits(max_attempts, retry_wait_s)
        self._poll = poll_s
        self._lease = timedelta(seconds=lease_s)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Outcomes of deliveries the database did not take yet (an outage between the send and its record): written
        # before anything else, so that the row is not settled by its lease as "may have been delivered".
        self._unrecorded: deque[tuple[int, dict[str, Any]]] = deque()
        self.sent = 0
        self.failed = 0

    def _record_outcomes(self) -> None:
        """Write the outcomes not written yet, in order; raises (keeping the rest) when the database still fails."""
        while self._unrecorded:
            command_id, outcome = self._unrecorded[0]
            with self._engine.begin() as connection:
                recorded = sql.finish(connection, command_id, self._clock(), **outcome)
            if not recorded:
                log.warning(
                    "outbox: command %d was settled by another sender meanwhile; it was %s", command_id, outcome
                )
            self._unrecorded.popleft()

    def recover(self) -> None:
        """Settle rows in flight for longer than the lease, without sending anything again (module docstring)."""
        self._record_outcomes()
        now = self._clock()
        with self._engine.begin() as connection:
            rows = sql.in_flight(connection, claimed_before=now - self._lease)
        for row in rows:
            outcome = self._confirm(row)
            with self._engine.begin() as connection:
                settled = sql.settle(connection, row, self._clock(), **outcome)
            if settled:
                log.warning(
                    "outbox: command %s was in flight at a crash: %s", row["idempotency_key"], outcome["status"]
                )

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
        """Deliver every due row once, a device's commands in the order they were written (:func:`sql.due_ids`);
        returns how many were due."""
        self._record_outcomes()
        with self._engine.begin() as connection:
            due = sql.due_ids(connection, self._clock(), self._waits)
        held: set[str] = set()  # devices with a command back to pending or at another sender: the rest wait
        for command_id, attempts, device in due:
            if device in held:
                continue
            with self._engine.begin() as connection:
                row = sql.claim(connection, command_id, attempts, self._clock())
            if row is None and device is not None:  # another sender has it in flight: the device's next ones wait
                held.add(device)
            if row is not None:
                outcome = self._deliver(row)
                self._unrecorded.append((command_id, outcome))
                self._record_outcomes()
                if outcome["status"] == "pending" and device is not None:
                    held.add(device)
        return len(due)

    def _deliver(self, row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self._perform(row)
        except TuyaServerError as exc:
            if exc.maybe_applied:
                self.failed += 1
                log.warning("outbox: %s failed, not resent (it may have been applied): %s", row["idempotency_key"], exc)
                return {
                    "status": "failed",
                    "error_code": exc.code,
                    "error": f"{exc} (may have been applied; not resent)",
                }
            return self._retry_or_fail(row, exc)
        except (TransientError, httpx.ConnectError, httpx.ConnectTimeout) as exc:  # the last two: nothing was sent
            return self._retry_or_fail(row, exc)
        except (*TUYA_ERRORS, httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # InvalidURL: nothing was sent
            self.failed += 1
            log.warning("outbox: %s failed: %s", row["idempotency_key"], exc)
            return {"status": "failed", "error_code": getattr(exc, "code", None), "error": str(exc)}

    def _retry_or_fail(self, row: Mapping[str, Any], exc: Exception) -> dict[str, Any]:
        if row["attempts"] < self._max_attempts:
            log.warning("outbox: %s will be retried: %s", row["idempotency_key"], exc)
            return {"status": "pending", "error": str(exc)}
        self.failed += 1
        log.warning("outbox: %s failed after %d tries: %s", row["idempotency_key"], row["attempts"], exc)
        return {"status": "failed", "error_code": getattr(exc, "code", None), "error": str(exc)}

    def _perform(self, row: Mapping[str, Any]) -> dict[str, Any]:
        action, payload = row["action"], row["commands"]
        if action == "tuya.send_command":
            if self._client is None:
                raise ValueError("no OpenAPI client configured (TUYA_ACCESS_ID/TUYA_ACCESS_KEY)")
            result = self._client.send_commands(row["device_id"], payload)
            if not result.accepted:  # an answer, so not resent: Tuya did not say it took the command
                self.failed += 1
                error = "Tuya answered success, but its result is not true: the device may not have taken it"
                log.warning("outbox: %s failed: %s", row["idempotency_key"], error)
                return {"status": "failed", "tuya_tid": result.tid, "error": error}
            self.sent += 1
            return {"status": "sent", "tuya_tid": result.tid, "sent_at": self._clock(), "error": None}
        if action == "webhook":
            response = self._http.post(
                payload["url"], json=payload["body"], headers=self._headers(row), timeout=payload["timeout_s"]
            )
            if response.status_code in _NOT_TAKEN:
                raise TransientError(f"webhook receiver answered {response.status_code}: not taken, tried again later")
            response.raise_for_status()
            self.sent += 1
            return {"status": "sent", "sent_at": self._clock(), "error": None}
        if action == "log":
            log.log(_LOG_LEVELS.get(payload["level"], logging.INFO), "rule %s: %s", row["rule_id"], payload["message"])
            self.sent += 1
            return {"status": "sent", "sent_at": self._clock(), "error": None}
        raise ValueError(f"unknown action {action!r}")

    def _headers(self, row: Mapping[str, Any]) -> dict[str, str]:
        """A webhook's headers: those of its action in the rules file (the row keeps only their names)."""
        names = row["commands"]["headers"]
        if isinstance(names, dict):  # a row written while the outbox still kept the values
            return names
        if not names:
            return {}
        index = int(row["idempotency_key"].rpartition(":")[2])
        rule = next((rule for rule in self._rules.rules if rule.id == row["rule_id"]), None)
        action = rule.actions[index] if rule is not None and index < len(rule.actions) else None
        # The same names for the same URL: the rule's actions may have been reordered, or its URL changed, and a token
        # must not go where it was not written for.
        if (
            not isinstance(action, WebhookAction)
            or sorted(action.headers) != names
            or action.url != row["commands"]["url"]
        ):
            raise ValueError(
                f"webhook headers {', '.join(names)} of rule {row['rule_id']!r} are no longer in the rules file for "
                "this URL"
            )
        return dict(action.headers)

    def start(self) -> OutboxSender:
        """Drain in a background thread every ``poll_s`` (settling lost in-flight rows first) until ``stop()``."""
        self._thread = threading.Thread(target=self._loop, name="outbox", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self.recover()
                self.drain()
            except Exception:  # the database may be down; the rows stay as they are and the next pass retries
                log.exception("outbox: drain failed; retrying")
            if stopping:
                return
            self._stop.wait(self._poll)

    def stop(self) -> None:
        """Drain once more, then stop and close the HTTP clients; rows still pending wait for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for command_id, outcome in self._unrecorded:  # the database is down: said here, or lost with the process
            log.error(
                "outbox: the outcome of command %d was not recorded (the database was unavailable): %s; the row "
                "stays in flight and is settled after the lease", command_id, outcome,
            )  # fmt: skip
        if self._owns_http:
            self._http.close()
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
