"""streams/outbox/sender.py against a real, migrated SQLite archive and a fake command client (partner: the real
worker, the real broker and the OpenAPI emulator in tests/integration/test_rules_worker.py)."""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from models.tables import Command
from streams.outbox import sql
from streams.outbox.reactor import outbox_row
from streams.outbox.sender import OutboxSender
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from streams.tuya.api_errors import TuyaApiError, TuyaRateLimited, TuyaServerError
from streams.tuya.results import CommandResult, DeviceStatus
from tests.unit.rules.builders import OTHER_PLUG, PLUG, EngineLoop, at, device_event, make_rules

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
NOTIFY = make_rules("""
- id: notify
  triggers: [{trigger: device_event, event: offline}]
  actions: [{action: webhook, url: "http://hooks.example/alerts", json: {text: plug offline}, headers: {X-Token: abc}}]
""")
LOST = T0 - timedelta(minutes=10)  # claimed longer ago than the default lease (5 min): its sender is gone
SWITCH_OFF = [{"code": "switch_1", "value": False}]


class FakeCommandClient:
    """The CommandClient protocol in memory: records every call, raises the queued failures first, reports ``status``.

    ``on_send`` runs inside ``send_commands`` (after recording the call), so a test can act while a row is in flight;
    ``on_status`` likewise inside ``device_status``.
    """

    def __init__(self, *failures: Exception, status: dict[str, Any] | None = None, accepted: bool = True) -> None:
        self.failures = list(failures)
        self.accepted = accepted
        self.status = dict(status or {})
        self.status_error: Exception | None = None
        self.calls: list[tuple[str, list[dict[str, Any]]]] = []
        self.status_calls: list[str] = []
        self.on_send: Any = None
        self.on_status: Any = None
        self.closed = False
        self._lock = threading.Lock()

    def send_commands(self, device_id: str, commands: Sequence[dict[str, Any]]) -> CommandResult:
        with self._lock:
            self.calls.append((device_id, list(commands)))
            number = len(self.calls)
            failure = self.failures.pop(0) if self.failures else None
        if self.on_send is not None:
            self.on_send()
        if failure is not None:
            raise failure
        return CommandResult(device_id=device_id, accepted=self.accepted, t=1_790_000_000_000, tid=f"tid{number:04d}")

    def device_status(self, device_id: str) -> DeviceStatus:
        self.status_calls.append(device_id)
        if self.on_status is not None:
            self.on_status()
        if self.status_error is not None:
            raise self.status_error
        return DeviceStatus(device_id=device_id, values=dict(self.status), t=1_790_000_000_000, tid="status-tid")

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite archive file migrated to head."""
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def command_row(n: int, **overrides: Any) -> dict[str, Any]:
    """A ``commands`` row as the reactor writes it: a pending switch-off of the plug, fired by message ``m{n}``."""
    row: dict[str, Any] = {
        "idempotency_key": f"plug_off:m{n}:0",
        "rule_id": "plug_off",
        "action": "tuya.send_command",
        "device_id": PLUG,
        "message_id": f"m{n}",
        "commands": SWITCH_OFF,
        "status": "pending",
        "attempts": 0,
        "error": None,
        "created_at": T0,
        "updated_at": T0,
    }
    row.update(overrides)
    return row


def insert(engine: Engine, *rows: dict[str, Any]) -> None:
    with engine.begin() as connection:
        sql.insert_commands(connection, list(rows))


def rows(engine: Engine) -> list[Any]:
    table = Command.__table__
    with engine.connect() as connection:
        return [row._mapping for row in connection.execute(select(table).order_by(table.c.id))]


def only_row(engine: Engine) -> Any:
    (row,) = rows(engine)
    return row


def sender_for(engine: Engine, client: FakeCommandClient | None, **options: Any) -> OutboxSender:
    """A sender on the fixed clock T0 whose webhooks get 204 from an in-memory receiver, unless told otherwise, with
    the NOTIFY rules (where its webhooks' header values are)."""
    options.setdefault("http", httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))))
    options.setdefault("clock", lambda: T0)
    options.setdefault("rules", NOTIFY)
    return OutboxSender(engine, client, **options)


@pytest.fixture
def closing() -> Iterator[list[tuple[OutboxSender, httpx.Client]]]:
    """Senders to stop, and the HTTP clients given to them to close, at the end of the test."""
    senders: list[tuple[OutboxSender, httpx.Client]] = []
    yield senders
    for sender, http in senders:
        sender.stop()
        http.close()


def make_sender(closing: list, engine: Engine, client: FakeCommandClient | None, **options: Any) -> OutboxSender:
    http = options.setdefault("http", httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204))))
    sender = sender_for(engine, client, **options)
    closing.append((sender, http))
    return sender


# --- delivery ------------------------------------------------------------------------------------------------------


def test_pending_command_sent_with_tuya_tid(archive, closing):
    insert(archive, command_row(1))
    client = FakeCommandClient()
    make_sender(closing, archive, client).drain()
    row = only_row(archive)
    assert client.calls == [(PLUG, SWITCH_OFF)]
    assert (row["status"], row["tuya_tid"], row["attempts"], row["error"]) == ("sent", "tid0001", 1, None)
    assert row["sent_at"] is not None


def test_sent_command_not_sent_again_by_a_later_drain(archive, closing):
    insert(archive, command_row(1))
    client = FakeCommandClient()
    sender = make_sender(closing, archive, client)
    sender.drain()
    sender.drain()
    assert len(client.calls) == 1


def test_commands_sent_oldest_first(archive, closing):
    later = datetime(2026, 11, 1, 12, 5, tzinfo=UTC)
    insert(archive, command_row(2, device_id="second", created_at=later), command_row(1, device_id="first"))
    client = FakeCommandClient()
    make_sender(closing, archive, client).drain()
    assert [device for device, _ in client.calls] == ["first", "second"]


def test_dry_run_and_failed_rows_never_sent(archive, closing):
    insert(archive, command_row(1, status="dry_run"), command_row(2, status="failed", error="template failed: x"))
    client = FakeCommandClient()
    make_sender(closing, archive, client).drain()
    assert client.calls == []
    assert [row["status"] for row in rows(archive)] == ["dry_run", "failed"]


def test_maybe_applied_server_error_marks_failed_and_never_resends(archive, closing):
    insert(archive, command_row(1))
    lost = TuyaServerError(0, "no answer (ReadTimeout): Tuya may have applied it", maybe_applied=True)
    client = FakeCommandClient(lost)
    sender = make_sender(closing, archive, client, max_attempts=5)
    sender.drain()
    sender.drain()
    row = only_row(archive)
    assert len(client.calls) == 1
    assert (row["status"], row["error_code"], row["attempts"]) == ("failed", 0, 1)
    assert "not resent" in row["error"]


def test_an_outcome_the_database_did_not_take_is_written_at_the_next_drain(archive, closing, monkeypatch):
    # It was left in flight, then settled after the lease as "not resent, may have been delivered", its tid lost.
    insert(archive, command_row(1))
    finish, calls = sql.finish, []

    def locked_once(*args: Any, **values: Any) -> None:
        calls.append(values)
        if len(calls) == 1:
            raise OperationalError("UPDATE commands", {}, sqlite3.OperationalError("database is locked"))
        finish(*args, **values)

    monkeypatch.setattr(sql, "finish", locked_once)
    client = FakeCommandClient()
    sender = make_sender(closing, archive, client)
    with pytest.raises(OperationalError):
        sender.drain()
    assert only_row(archive)["status"] == "in_flight"
    sender.drain()
    row = only_row(archive)
    assert (row["status"], row["tuya_tid"], len(client.calls)) == ("sent", "tid0001", 1)


def test_an_outcome_still_unrecorded_at_the_stop_is_logged_with_its_tid(archive, closing, monkeypatch, caplog):
    insert(archive, command_row(1))

    def down(*_args: Any, **_values: Any) -> bool:
        raise OperationalError("UPDATE commands", {}, sqlite3.OperationalError("unable to open database file"))

    monkeypatch.setattr(sql, "finish", down)
    sender = make_sender(closing, archive, FakeCommandClient())
    with pytest.raises(OperationalError):
        sender.drain()
    sender.stop()
    (said,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert said.startswith(f"outbox: the outcome of command {only_row(archive)['id']} was not recorded")
    assert "'tuya_tid': 'tid0001'" in said and "'status': 'sent'" in said


def test_an_outcome_written_late_leaves_a_row_another_sender_settled_meanwhile(archive):
    # Its lease over, another sender's recovery settled it: a late "pending" made it due again.
    settled = {"status": "failed", "error": "interrupted in flight; not resent, as it may have been delivered"}
    insert(archive, command_row(1, **settled))
    with archive.begin() as connection:
        assert sql.finish(connection, only_row(archive)["id"], T0, status="pending", error="retry") is False
    assert (only_row(archive)["status"], only_row(archive)["error"]) == (settled["status"], settled["error"])


def test_an_answer_that_does_not_say_result_true_marks_failed_with_its_tid(archive, closing, caplog):
    insert(archive, command_row(1))
    client = FakeCommandClient(accepted=False)  # Tuya answered success, but its result is not true
    sender = make_sender(closing, archive, client)
    sender.drain()
    sender.drain()
    row = only_row(archive)
    assert len(client.calls) == 1
    assert (row["status"], row["tuya_tid"], row["sent_at"]) == ("failed", "tid0001", None)
    assert "result" in row["error"] and sender.failed == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"outbox: {row['idempotency_key']} failed: {row['error']}"
    ]  # as every row that ends failed


def test_permanent_tuya_error_marks_failed_with_tuya_code(archive, closing):
    insert(archive, command_row(1))
    client = FakeCommandClient(TuyaApiError(2001, "device is offline", "tid-offline"))
    sender = make_sender(closing, archive, client)
    sender.drain()
    sender.drain()
    row = only_row(archive)
    assert len(client.calls) == 1
    assert (row["status"], row["error_code"]) == ("failed", 2001)
    assert "device is offline" in row["error"]


class Clock:
    """A sender's clock that tests move on."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def after(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_transient_error_retried_once_its_wait_has_passed_then_sent(archive, closing):
    insert(archive, command_row(1))
    client = FakeCommandClient(TuyaRateLimited(1199, "your requests are too frequent"))
    clock = Clock()
    sender = make_sender(closing, archive, client, max_attempts=3, clock=clock)
    sender.drain()
    assert (only_row(archive)["status"], only_row(archive)["attempts"]) == ("pending", 1)
    clock.after(4.9)
    assert sender.drain() == 0  # a rate limit is not answered by asking again at once
    clock.after(0.1)
    sender.drain()
    row = only_row(archive)
    assert len(client.calls) == 2
    assert (row["status"], row["attempts"], row["tuya_tid"], row["error"]) == ("sent", 2, "tid0002", None)


def test_transient_errors_are_retried_ten_times_over_about_ten_minutes_then_failed(archive, closing, caplog):
    insert(archive, command_row(1))
    client = FakeCommandClient(*[TuyaServerError(1111, "system is busy") for _ in range(20)])
    clock = Clock()
    sender = make_sender(closing, archive, client, clock=clock)
    tried_at = []
    while only_row(archive)["status"] == "pending" and clock.now < T0 + timedelta(hours=1):
        if sender.drain():
            tried_at.append((clock.now - T0).total_seconds())
        clock.after(1)
    waits = [later - earlier for earlier, later in itertools.pairwise(tried_at)]
    assert waits == [5, 10, 20, 40, 80, 120, 120, 120, 120]  # seconds, as the README says
    row = only_row(archive)
    assert (row["status"], row["attempts"], row["error_code"]) == ("failed", 10, 1111)
    assert "plug_off:m1:0 failed after 10 tries" in caplog.text


def test_a_command_waiting_for_its_retry_holds_back_its_device_s_newer_ones_only(archive, closing):
    # "on" rate-limited, then "off": sent in turn, the device would end on, the older decision landing last
    waiting = command_row(1, status="pending", attempts=1, commands=[{"code": "switch_1", "value": True}])
    newer = command_row(2, created_at=T0 + timedelta(seconds=1))
    other = command_row(3, device_id=OTHER_PLUG, created_at=T0 + timedelta(seconds=2))
    insert(archive, waiting, newer, other)
    client, clock = FakeCommandClient(), Clock()
    sender = make_sender(closing, archive, client, clock=clock)
    sender.drain()
    assert [row["status"] for row in rows(archive)] == ["pending", "pending", "sent"]
    clock.after(5)
    sender.drain()
    assert [row["status"] for row in rows(archive)] == ["sent", "sent", "sent"]
    assert [commands[0]["value"] for _, commands in client.calls] == [False, True, False]


def test_tuya_command_without_client_marks_failed(archive, closing):
    insert(archive, command_row(1))
    make_sender(closing, archive, None).drain()
    row = only_row(archive)
    assert row["status"] == "failed"
    assert "TUYA_ACCESS_ID" in row["error"]


# --- webhooks and log lines ----------------------------------------------------------------------------------------


def webhook_row(n: int, url: str = "http://hooks.example/alerts", headers: Any = ("X-Token",)) -> dict[str, Any]:
    """The row of NOTIFY's webhook: its headers' names (a row written before 2026-12-07 kept their values)."""
    headers = headers if isinstance(headers, dict) else list(headers)
    payload = {"url": url, "body": {"text": "plug offline"}, "headers": headers, "timeout_s": 5.0}
    return command_row(n, rule_id="notify", idempotency_key=f"notify:m{n}:0", action="webhook", commands=payload)


def _sent_headers(archive: Engine, closing: list, **options: Any) -> list[httpx.Headers]:
    seen: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda request: seen.append(request) or httpx.Response(204)))
    make_sender(closing, archive, FakeCommandClient(), http=http, **options).drain()
    return [request.headers for request in seen]


def test_a_webhooks_header_values_come_from_the_rules_file_not_the_archive(archive, closing):
    (fired,) = EngineLoop(NOTIFY).feed(device_event(PLUG, "offline", at(0)))
    row = outbox_row(fired, T0)
    assert row["commands"]["headers"] == ["X-Token"] and "abc" not in json.dumps(row["commands"])
    insert(archive, row)
    (headers,) = _sent_headers(archive, closing)
    assert headers["X-Token"] == "abc" and only_row(archive)["status"] == "sent"


def test_a_webhook_whose_rule_left_the_rules_file_fails_without_its_headers(archive, closing):
    insert(archive, webhook_row(1))
    assert _sent_headers(archive, closing, rules=make_rules("[]")) == []
    row = only_row(archive)
    assert (
        row["status"] == "failed" and "headers X-Token of rule 'notify' are no longer in the rules file" in row["error"]
    )


def test_a_webhook_whose_action_now_posts_elsewhere_fails_without_its_headers(archive, closing):
    """The actions of a rule swapped (or its URL edited) after the row was written: the row's index now names an
    action with the same header names for another URL, whose token must not go to the row's."""
    insert(archive, webhook_row(1, url="http://partner.example/hook"))
    assert _sent_headers(archive, closing) == []
    row = only_row(archive)
    assert row["status"] == "failed" and "no longer in the rules file for this URL" in row["error"]


def test_a_row_that_kept_its_header_values_is_still_sent_with_them(archive, closing):
    insert(archive, webhook_row(1, headers={"X-Token": "old"}))
    (headers,) = _sent_headers(archive, closing, rules=make_rules("[]"))
    assert headers["X-Token"] == "old"


def test_webhook_posts_body_and_headers_then_marks_sent(archive, closing):
    insert(archive, webhook_row(1))
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    make_sender(closing, archive, FakeCommandClient(), http=http).drain()
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "http://hooks.example/alerts")
    assert request.headers["X-Token"] == "abc"
    assert request.read() == b'{"text":"plug offline"}'
    row = only_row(archive)
    assert (row["status"], row["tuya_tid"]) == ("sent", None)


def test_a_webhook_to_an_address_httpx_cannot_use_fails_saying_why_and_the_others_are_sent(archive, closing):
    # A row of a rules file an earlier version accepted: the drain raised, the row stayed in flight and ended
    # "failed: may have been delivered" after the lease, though nothing had been sent.
    insert(archive, webhook_row(1, url="http://[::1/alerts", headers=()), webhook_row(2, headers=()))
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    make_sender(closing, archive, FakeCommandClient(), http=http).drain()
    first, second = rows(archive)
    assert (first["status"], second["status"]) == ("failed", "sent")
    assert "IPv6" in first["error"] or "Invalid" in first["error"]


def test_webhook_refused_by_receiver_marks_failed(archive, closing):
    insert(archive, webhook_row(1))
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(404)))
    make_sender(closing, archive, FakeCommandClient(), http=http).drain()
    row = only_row(archive)
    assert row["status"] == "failed"
    assert "404" in row["error"]


@pytest.mark.parametrize(
    "refusal", [httpx.ConnectError("connection refused"), httpx.Response(429), httpx.Response(503)], ids=str
)
def test_webhook_not_taken_by_its_receiver_is_retried_once_its_wait_has_passed(archive, closing, refusal):
    insert(archive, webhook_row(1))
    answers = iter([refusal, httpx.Response(200)])

    def answer(request: httpx.Request) -> httpx.Response:
        outcome = next(answers)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    clock = Clock()
    http = httpx.Client(transport=httpx.MockTransport(answer))
    sender = make_sender(closing, archive, FakeCommandClient(), http=http, clock=clock)
    sender.drain()
    assert (only_row(archive)["status"], only_row(archive)["attempts"]) == ("pending", 1)
    clock.after(5)
    sender.drain()
    assert (only_row(archive)["status"], only_row(archive)["attempts"]) == ("sent", 2)


def test_log_action_writes_the_message_at_its_level(archive, closing, caplog):
    payload = {"level": "warning", "message": "plug drew 31000 (raw), switched off"}
    insert(archive, command_row(1, rule_id="plug_log", idempotency_key="plug_log:m1:1", action="log", commands=payload))
    client = FakeCommandClient()
    with caplog.at_level(logging.INFO, logger="streams.outbox.sender"):
        make_sender(closing, archive, client).drain()
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "rule plug_log: plug drew 31000 (raw), switched off")
    ]
    assert only_row(archive)["status"] == "sent"
    assert client.calls == []


def test_unknown_action_marks_failed(archive, closing):
    insert(archive, command_row(1, action="sms", commands={"to": "+1"}))
    make_sender(closing, archive, FakeCommandClient()).drain()
    row = only_row(archive)
    assert row["status"] == "failed"
    assert "unknown action" in row["error"]


# --- rows a crash left in flight ---------------------------------------------------------------------------------


def settle_lost_command(archive: Engine, closing: list, client: FakeCommandClient) -> Any:
    """A command a crashed sender left in flight past the lease, after a restarted sender recovered and drained."""
    insert(archive, command_row(1, status="in_flight", attempts=1, updated_at=LOST))
    sender = make_sender(closing, archive, client)
    sender.recover()
    sender.drain()
    return only_row(archive)


def test_in_flight_command_confirmed_sent_when_device_reports_commanded_values(archive, closing):
    client = FakeCommandClient(status={"switch_1": False, "cur_power": 0})
    row = settle_lost_command(archive, closing, client)
    assert client.calls == []
    assert client.status_calls == [PLUG]
    assert row["status"] == "sent"
    assert "confirmed after restart" in row["error"]


def test_in_flight_command_failed_and_not_resent_when_device_reports_otherwise(archive, closing):
    client = FakeCommandClient(status={"switch_1": True})
    row = settle_lost_command(archive, closing, client)
    assert client.calls == []
    assert row["status"] == "failed"
    assert "not resent" in row["error"]


def test_in_flight_command_failed_when_status_check_fails(archive, closing):
    client = FakeCommandClient()
    client.status_error = TuyaApiError(2001, "device is offline")
    row = settle_lost_command(archive, closing, client)
    assert client.calls == []
    assert row["status"] == "failed"
    assert "status check failed" in row["error"]


def test_in_flight_webhook_failed_and_not_resent(archive, closing):
    insert(archive, {**webhook_row(1), "status": "in_flight", "attempts": 1, "updated_at": LOST})
    posted: list[httpx.Request] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda request: posted.append(request) or httpx.Response(200)))
    sender = make_sender(closing, archive, FakeCommandClient(), http=http)
    sender.recover()
    sender.drain()
    assert posted == []
    assert only_row(archive)["status"] == "failed"


def test_recover_leaves_pending_rows_for_drain(archive, closing):
    insert(archive, command_row(1))
    client = FakeCommandClient()
    make_sender(closing, archive, client).recover()
    assert only_row(archive)["status"] == "pending"
    assert client.status_calls == []


def test_crash_after_claim_leaves_row_in_flight_not_pending(archive, closing):
    """The claim commits before the call: a sender that dies in the call leaves in_flight, which recover() settles."""
    insert(archive, command_row(1))
    client = FakeCommandClient()

    def die() -> None:  # the process ends inside the call, as under kill -9: nothing after the claim runs
        raise SystemExit("killed in the call")

    client.on_send = die
    with pytest.raises(SystemExit):
        make_sender(closing, archive, client).drain()
    assert (only_row(archive)["status"], only_row(archive)["attempts"]) == ("in_flight", 1)
    restarted = FakeCommandClient(status={"switch_1": True})
    make_sender(closing, archive, restarted, clock=lambda: T0 + timedelta(minutes=6)).recover()
    assert restarted.calls == []
    assert only_row(archive)["status"] == "failed"


def test_recover_leaves_a_row_claimed_within_the_lease_to_the_sender_in_the_call(archive, closing):
    """Another sender (a standby worker, a processor) may be inside the call: its result must stand."""
    insert(archive, command_row(1))
    client, other = FakeCommandClient(), FakeCommandClient(status={"switch_1": True})
    recovering = make_sender(closing, archive, other, clock=lambda: T0 + timedelta(minutes=4))
    client.on_send = recovering.recover  # the other sender recovers while this one is in the call
    make_sender(closing, archive, client).drain()
    assert other.status_calls == []
    row = only_row(archive)
    assert (row["status"], row["error"], row["attempts"]) == ("sent", None, 1)


def test_recovery_does_not_overwrite_a_row_finished_after_it_was_read(archive, closing):
    insert(archive, command_row(1, status="in_flight", attempts=1, updated_at=LOST))
    late = FakeCommandClient(status={"switch_1": True})
    sender = make_sender(closing, archive, late)

    def finished_meanwhile() -> None:  # the original sender's answer arrives during the status check
        with archive.begin() as connection:
            sql.finish(connection, 1, T0, status="sent", tuya_tid="tid-late", error=None)

    late.on_status = finished_meanwhile
    sender.recover()
    row = only_row(archive)
    assert (row["status"], row["tuya_tid"], row["error"]) == ("sent", "tid-late", None)


# --- two senders on one archive ----------------------------------------------------------------------------------


def test_a_device_s_newer_command_waits_while_another_sender_has_its_older_one_in_flight(archive, closing):
    insert(archive, command_row(1), command_row(2, created_at=T0 + timedelta(seconds=1)))
    first_client, second_client = FakeCommandClient(), FakeCommandClient()
    first = make_sender(closing, archive, first_client)
    second = make_sender(closing, archive, second_client)
    first_client.on_send = lambda: (setattr(first_client, "on_send", None), second.drain())
    first.drain()
    assert (len(first_client.calls), len(second_client.calls)) == (2, 0)  # the first sent both, in their order


def test_a_device_s_newer_command_waits_when_another_sender_claims_its_older_one_first(archive, closing):
    # Both senders listed the two rows; the other claimed the older between this one's listing and its claim.
    insert(archive, command_row(1), command_row(2, created_at=T0 + timedelta(seconds=1)))
    client = FakeCommandClient()
    sender = make_sender(closing, archive, client)
    listed = sql.due_ids

    def listed_then_claimed_elsewhere(connection, *args, **kwargs):
        due = listed(connection, *args, **kwargs)
        sql.claim(connection, due[0][0], due[0][1], T0)  # in flight at the other sender
        return due

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql, "due_ids", listed_then_claimed_elsewhere)
        sender.drain()
    assert client.calls == []  # the newer one waits for the older, in flight at the other sender


def test_a_row_another_sender_tried_since_it_was_listed_waits_for_its_next_try(archive, closing):
    # claimed again at once, the row went to Tuya a second time in the same second, its back-off ignored
    insert(archive, command_row(1))
    client = FakeCommandClient()
    sender = make_sender(closing, archive, client)
    listed = sql.due_ids

    def listed_then_tried_elsewhere(connection, *args, **kwargs):
        due = listed(connection, *args, **kwargs)
        sql.claim(connection, due[0][0], due[0][1], T0)
        sql.finish(connection, due[0][0], T0, status="pending", error="rate-limited")  # the other sender's try
        return due

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sql, "due_ids", listed_then_tried_elsewhere)
        sender.drain()
    assert client.calls == []
    assert (only_row(archive)["status"], only_row(archive)["attempts"]) == ("pending", 1)


def test_a_device_s_command_sent_back_to_pending_holds_back_its_newer_ones_in_the_same_pass(archive, closing):
    on = command_row(1, commands=[{"code": "switch_1", "value": True}])
    insert(archive, on, command_row(2, created_at=T0 + timedelta(seconds=1)))
    client, clock = FakeCommandClient(TuyaRateLimited(1199, "your requests are too frequent")), Clock()
    sender = make_sender(closing, archive, client, clock=clock)
    sender.drain()
    assert [row["status"] for row in rows(archive)] == ["pending", "pending"]
    clock.after(5)
    sender.drain()
    assert [commands[0]["value"] for _, commands in client.calls] == [True, True, False]  # the device ends off


def test_row_claimed_once_when_another_sender_drains_during_a_send(archive, closing):
    insert(archive, *(command_row(n, device_id=f"dev{n}") for n in (1, 2, 3)))
    first_client, second_client = FakeCommandClient(), FakeCommandClient()
    first = make_sender(closing, archive, first_client)
    second = make_sender(closing, archive, second_client)
    # While the first sender is in its first call (having listed all three ids), the second drains the rest.
    first_client.on_send = lambda: (setattr(first_client, "on_send", None), second.drain())
    first.drain()
    assert len(first_client.calls) == 1
    assert len(second_client.calls) == 2
    assert [(row["status"], row["attempts"]) for row in rows(archive)] == [("sent", 1)] * 3


def test_concurrent_senders_send_every_row_exactly_once(archive, closing, tmp_path):
    insert(archive, *(command_row(n, device_id=f"dev{n:02d}") for n in range(40)))
    clients = [FakeCommandClient(), FakeCommandClient()]
    engines = [make_engine(f"sqlite:///{tmp_path / 'archive.db'}") for _ in clients]
    try:
        senders = [make_sender(closing, engine, client) for engine, client in zip(engines, clients, strict=True)]
        start = threading.Barrier(len(senders))
        errors: list[BaseException] = []

        def drain(sender: OutboxSender) -> None:
            try:
                start.wait()
                sender.drain()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=drain, args=(sender,)) for sender in senders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for engine in engines:
            engine.dispose()
    assert errors == []
    devices = sorted(device for client in clients for device, _ in client.calls)
    assert devices == [f"dev{n:02d}" for n in range(40)]
    assert {(row["status"], row["attempts"]) for row in rows(archive)} == {("sent", 1)}


# --- lifecycle -----------------------------------------------------------------------------------------------------


def test_start_recovers_then_drains_in_the_background_and_stop_closes_clients(archive):
    insert(archive, command_row(1, status="in_flight", attempts=1, updated_at=LOST), command_row(2))
    client = FakeCommandClient(status={"switch_1": False})
    drained = threading.Event()
    client.on_send = drained.set
    sender = OutboxSender(archive, client, poll_s=0.01, lease_s=60, clock=lambda: T0)  # its own HTTP client
    sender.start()
    try:
        assert drained.wait(10)
    finally:
        sender.stop()
    assert client.closed
    assert [row["status"] for row in rows(archive)] == ["sent", "sent"]
    assert len(client.calls) == 1


def test_stop_drains_what_the_last_batch_wrote(archive):
    """A bounded run or a SIGTERM commits a batch and stops the sender: the batch's commands still go out."""
    passes = threading.Event()

    def clock() -> datetime:
        passes.set()
        return T0

    client = FakeCommandClient()
    sender = OutboxSender(archive, client, poll_s=3600, clock=clock).start()
    try:
        assert passes.wait(10)  # the first pass ran; the next would be an hour away
        time.sleep(0.1)
        insert(archive, command_row(1))
    finally:
        sender.stop()
    assert [device for device, _ in client.calls] == [PLUG]
    assert only_row(archive)["status"] == "sent"
