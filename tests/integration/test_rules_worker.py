"""Rules end to end: simulator → real pulsar-lite → the real ``tuya-archiver run`` → SQLite, with the rules' commands
signed and sent to the OpenAPI emulator on loopback (partner: the sender's unit tests in tests/unit/outbox/).

Each test writes its own rules file and publishes scripted status reports of one simulated plug, so it knows exactly
which rule fires how many times. The emulator checks every signature and records only the commands it accepted, so
"the emulator recorded N commands" means N signed commands arrived, and exactly once each.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from models.tables import Command, RuleState
from streams.sim import Fleet, SimMessage
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from streams.tuya.emulator import DataPoint, EmulatedDevice, Emulator
from tests.integration.worker_harness import (
    ACCESS_KEY,
    ROOT,
    archived,
    publish_all,
    run_worker,
    running_worker,
    unique_access_id,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration

SWITCH_OFF = ({"code": "switch_1", "value": False},)


def overload_rule(
    plug: str, *, rule_id: str = "plug_off_when_overloaded", for_: str = "", dry_run: bool = False
) -> str:
    """A rule that switches ``plug`` off when its power goes above 3000.0 W (raw 30000), optionally after ``for_``."""
    return textwrap.dedent(f"""\
        - id: {rule_id}
          dry_run: {str(dry_run).lower()}
          triggers:
            - trigger: numeric_state
              device: {plug}
              code: cur_power
              above: 30000
              {f"for: {for_}" if for_ else ""}
          actions:
            - action: tuya.send_command
              commands: [{{code: switch_1, value: false}}]
        """)


@dataclass
class Project:
    """One test's Tuya project: its topic, its archive, its emulator and its one simulated plug."""

    access_id: str
    database_url: str
    broker_url: str
    emulator: Emulator
    fleet: Fleet
    rules_file: Path

    @property
    def plug(self) -> str:
        return self.fleet.devices[0].device_id

    def write_rules(self, *rules: str) -> None:
        self.rules_file.write_text("rules:\n" + textwrap.indent("".join(rules), "  "), encoding="utf-8")

    def env(self, **extra: str) -> dict[str, str]:
        """The worker's environment; its background fleet sync is off (SYNC_INTERVAL=0), so the emulator sees the
        rules' traffic only, and the archive's data points are the ones a test stored."""
        return worker_env(
            self.access_id,
            self.broker_url,
            self.database_url,
            **{
                "RULES_FILE": str(self.rules_file),
                "TUYA_OPENAPI_URL": self.emulator.url,
                "SYNC_INTERVAL": "0",
                **extra,
            },
        )

    def power(self, *watts_x10: int) -> list[SimMessage]:
        """One status report of ``cur_power`` per value, timed now (one millisecond apart, in order)."""
        now = int(time.time() * 1000)
        return [self.fleet.status(0, {"cur_power": value}, now + i) for i, value in enumerate(watts_x10)]

    def publish(self, messages: list[SimMessage]) -> None:
        publish_all(self.broker_url, self.access_id, messages)


@pytest.fixture
def project(pulsar_broker, tmp_path) -> Iterator[Project]:
    with open_project(pulsar_broker.url, tmp_path) as opened:
        yield opened


@contextlib.contextmanager
def open_project(broker_url: str, tmp_path: Path) -> Iterator[Project]:
    """A Project in ``tmp_path``: a migrated SQLite archive, and an emulator that knows the plug (also used by
    test_rules_units.py)."""
    database_url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = make_engine(database_url)
    try:
        upgrade(engine)  # in process: the CLI's `db upgrade` runs the same migrations, a second slower
    finally:
        engine.dispose()
    access_id = unique_access_id()
    fleet = Fleet(ACCESS_KEY, 1, clock=lambda: int(time.time() * 1000), seed=11)
    plug = EmulatedDevice(
        device_id=fleet.devices[0].device_id,
        functions=(DataPoint("switch_1", "Boolean"),),
        status={"switch_1": True},
        name="Overload test plug",
        category="cz",
    )
    with Emulator(access_id, ACCESS_KEY, devices=[plug]) as emulator:
        yield Project(access_id, database_url, broker_url, emulator, fleet, tmp_path / "rules.yaml")


def command_rows(database_url: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            table = Command.__table__
            return [dict(row._mapping) for row in connection.execute(select(table).order_by(table.c.id))]
    finally:
        engine.dispose()


def pending_timers(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            table = RuleState.__table__
            query = select(table.c.rule_id).where(table.c.pending_since.is_not(None))
            return list(connection.scalars(query))
    finally:
        engine.dispose()


def bounded_run(project: Project, *args: str, **env: str) -> str:
    """``tuya-archiver run`` until idle (3 s by default); asserts a clean exit and returns its log."""
    result = run_worker(project.env(**env), *(args or ("--idle-timeout", "3")), timeout=60)
    log = result.stderr.decode()
    assert result.returncode == 0, log[-3000:]
    return log


def run_totals(log: str) -> tuple[int, int]:
    """(received, stored) of the worker's final "stopped" line."""
    match = re.search(r"stopped received=(\d+) stored=(\d+)", log)
    assert match, log[-2000:]
    return int(match[1]), int(match[2])


def crash_at_first_ack(project: Project) -> None:
    """The worker of the composition root, SIGKILLed after its first commit and before that batch's ack.

    The harness starts no outbox sender, so what the batch wrote to the outbox was committed and never sent: the
    state a kill -9 between commit and send leaves (the real worker's sender polls once a second).
    """
    crashed = subprocess.run(
        [sys.executable, "-m", "tests.integration.worker_harness", "--kill-at-ack", "1"],
        env=project.env(), cwd=ROOT, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-3000:]


def assert_sent_once_each(project: Project, expected_commands: int) -> None:
    """The emulator accepted exactly the expected switch-offs, each ``commands`` row is ``sent`` with its tid."""
    accepted = project.emulator.commands
    assert [(c.device_id, c.commands) for c in accepted] == [(project.plug, SWITCH_OFF)] * expected_commands
    assert all(call.code == 0 for call in project.emulator.calls), project.emulator.calls  # no bad signature
    rows = command_rows(project.database_url)
    assert [(row["status"], row["attempts"]) for row in rows] == [("sent", 1)] * expected_commands
    assert [row["tuya_tid"] for row in rows] == [c.tid for c in accepted]


# --- a: commands arrive once, signed, with Tuya's tid recorded ------------------------------------------------------


def test_each_edge_sends_one_signed_command_and_records_tid(project):
    project.write_rules(overload_rule(project.plug))
    # below, above (fires), still above, below (re-arms), above (fires): two commands
    project.publish(project.power(100, 31000, 32000, 100, 35000))
    bounded_run(project)
    assert_sent_once_each(project, 2)
    assert len({row["idempotency_key"] for row in command_rows(project.database_url)}) == 2


# --- b: redelivery creates no second command ------------------------------------------------------------------------


def test_republished_reports_send_no_second_command(project):
    project.write_rules(overload_rule(project.plug))
    reports = project.power(100, 31000, 32000, 100, 35000)
    project.publish(reports)
    bounded_run(project)
    project.publish(reports)  # the same messages again (new Pulsar ids): old news to the rules
    received, stored = run_totals(bounded_run(project))
    assert (received, stored) == (5, 5)
    assert_sent_once_each(project, 2)


def test_kill_between_commit_and_ack_redelivers_without_second_command(project):
    project.write_rules(overload_rule(project.plug))
    project.publish(project.power(100, 31000, 32000, 100, 35000))
    crash_at_first_ack(project)
    committed = archived(project.database_url).messages
    assert committed > 0
    received, stored = run_totals(bounded_run(project))
    assert (received, stored) == (5, 5 - committed)  # the committed batch came again, and was ignored
    assert_sent_once_each(project, 2)


# --- c: a crash before or during the send ---------------------------------------------------------------------------


def test_kill_between_commit_and_send_then_restart_sends_pending_command_once(project):
    project.write_rules(overload_rule(project.plug))
    project.publish(project.power(31000))
    crash_at_first_ack(project)
    assert [(row["status"], row["attempts"]) for row in command_rows(project.database_url)] == [("pending", 0)]
    assert project.emulator.commands == []
    bounded_run(project)
    assert_sent_once_each(project, 1)


@pytest.mark.parametrize(
    ("switched_back_on", "outcome"),
    [(False, "sent"), (True, "failed")],
    ids=["device_reports_command", "device_reports_otherwise"],
)
def test_kill_while_command_in_flight_then_restart_settles_without_resending(project, switched_back_on, outcome):
    project.write_rules(overload_rule(project.plug))
    # Tuya applies the command but its answer is slow: the worker dies waiting for it.
    project.emulator.delay_next(1, 30.0, path_prefix=f"/v1.0/iot-03/devices/{project.plug}/commands")
    project.publish(project.power(31000))
    with running_worker(project.env(), "--idle-timeout", "30") as worker:
        assert wait_for(lambda: len(project.emulator.commands) == 1, timeout=20)
        worker.kill()
        worker.wait(timeout=10)
    assert [row["status"] for row in command_rows(project.database_url)] == ["in_flight"]
    if switched_back_on:
        project.emulator.report(project.plug, "switch_1", True)
    # The restarted worker takes a row in flight for longer than the lease as lost in the crash (the default, 5 min,
    # outlasts any call with its retries; a second here, as the dead worker's call is certainly over).
    time.sleep(1.0)
    log = bounded_run(project, "--idle-timeout", "2", RULES_IN_FLIGHT_LEASE="1")
    (row,) = command_rows(project.database_url)
    assert (row["status"], row["attempts"]) == (outcome, 1)
    assert len(project.emulator.commands) == 1
    assert "was in flight at a crash" in log


# --- d: a for: timer survives a restart -----------------------------------------------------------------------------


def test_for_timer_pending_at_stop_fires_on_clock_tick_after_restart(project):
    project.write_rules(overload_rule(project.plug, for_="3s"))
    with running_worker(project.env(), "--idle-timeout", "30") as worker:
        project.publish(project.power(100))  # below the threshold: proves the worker is consuming
        assert wait_for(lambda: archived(project.database_url).messages == 1, timeout=20)
        (report,) = project.power(31000)
        started = time.time()
        project.publish([report])
        assert wait_for(lambda: pending_timers(project.database_url) == ["plug_off_when_overloaded"], timeout=3)
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=20)
    assert worker.returncode == 0, stderr.decode()[-3000:]
    assert command_rows(project.database_url) == []  # stopped before the timer was due
    time.sleep(max(0.0, started + 3.5 - time.time()))  # the timer comes due while no worker runs
    received, _ = run_totals(bounded_run(project, "--idle-timeout", "3"))
    assert received == 0  # the clock tick alone fired it
    assert_sent_once_each(project, 1)
    assert pending_timers(project.database_url) == []


# --- e: dry run -----------------------------------------------------------------------------------------------------


def test_rules_dry_run_records_commands_and_sends_nothing(project):
    project.write_rules(overload_rule(project.plug))
    project.publish(project.power(31000, 100, 35000))
    bounded_run(project, RULES_DRY_RUN="true")
    rows = command_rows(project.database_url)
    assert [(row["status"], row["commands"]) for row in rows] == [("dry_run", list(SWITCH_OFF))] * 2
    assert project.emulator.calls == []  # not even a token was asked for


def test_dry_run_rule_recorded_while_other_rules_send(project):
    project.write_rules(
        overload_rule(project.plug),
        overload_rule(project.plug, rule_id="plug_off_rehearsal", dry_run=True),
    )
    project.publish(project.power(31000))
    bounded_run(project)
    rows = {row["rule_id"]: row for row in command_rows(project.database_url)}
    assert {rule: row["status"] for rule, row in rows.items()} == {
        "plug_off_when_overloaded": "sent",
        "plug_off_rehearsal": "dry_run",
    }
    assert [c.tid for c in project.emulator.commands] == [rows["plug_off_when_overloaded"]["tuya_tid"]]
