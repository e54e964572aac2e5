"""``tuya-archiver replay --dead-letters`` on SQLite and PostgreSQL archives (streams/replay/dead_letters.py,
streams/store/replay.py); shared set-up in harness.py and conftest.py, the pure parts in tests/unit/replay/."""

from __future__ import annotations

import re
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from models.records import DeviceEvent, PulsarMessage, StatusReported
from models.tables import Command, Message
from models.tables import DeadLetter as DeadLetterRow
from models.tables import DeviceEvent as DeviceEventRow
from models.tables import DeviceStatus as DeviceStatusRow
from streams.outbox.sender import OutboxSender
from streams.sim import Fleet
from streams.store.backfill import LogEvent, LogValue, record_gap, save_log_page
from streams.tuya.emulator import DataPoint as EmulatedPoint
from streams.tuya.emulator import EmulatedDevice, Emulator
from streams.tuya.openapi import OpenApiClient
from tests.integration.replay.harness import (
    ACCESS_ID,
    DERIVED,
    GOOD,
    WRONG,
    Archive,
    Replay,
    decoded,
    pulsar,
    resolutions,
    traffic,
)
from tests.unit.store.databases import truncate_all

pytestmark = pytest.mark.integration


def test_dead_letters_of_a_wrong_key_are_stored_as_the_right_key_would_have(archive: Archive, replay: Replay) -> None:
    messages = traffic(300)
    archive.store(messages, key=WRONG)
    assert (archive.count(DeadLetterRow), archive.count(Message)) == (300, 0)
    status, out = replay(archive, "--dead-letters", "--page-size", "70")
    assert status == 0, out
    assert "stored: 300 messages" in out
    assert resolutions(archive) == {"replayed: stored": 300}
    assert all(row.resolved_at is not None for row in archive.rows(DeadLetterRow))
    replayed = archive.snapshot("messages", *DERIVED, without=["messages.received_at"])
    truncate_all(archive.engine)
    archive.store(messages, key=GOOD)  # what a worker with the right key would have stored
    assert archive.snapshot("messages", *DERIVED, without=["messages.received_at"]) == replayed


def test_values_a_backfill_took_from_the_device_log_meanwhile_are_not_stored_twice(
    archive: Archive, replay: Replay
) -> None:
    messages = traffic(120)
    archive.store(messages, key=WRONG)  # an hour with the wrong key: dead letters only
    records = [record for item in decoded(messages) for record in item.records]
    values = [r for r in records if isinstance(r, StatusReported) and r.code is not None]
    events = [r for r in records if isinstance(r, DeviceEvent) and r.event in ("online", "offline")]
    assert values and events
    # The hour backfilled from the device logs before the right key came, which held every other value and event.
    logged_values, logged_events = values[::2], events[::2]
    now = datetime.now(UTC)
    times = [v.reported_at for v in values] + [e.occurred_at for e in events]
    with archive.engine.begin() as connection:  # a backfill stores log rows inside its gap's window only
        gap = record_gap(connection, min(times), max(times), now, origin="requested")
        for device_id in {r.device_id for r in (*logged_values, *logged_events)}:
            found = [
                LogValue(v.code, v.value, v.dp_id, v.reported_at) for v in logged_values if v.device_id == device_id
            ]
            online = [LogEvent(e.event, e.occurred_at, {}) for e in logged_events if e.device_id == device_id]
            save_log_page(connection, gap, device_id, found, online, cursor=None, done=True, at=now, calls=1)
    status, out = replay(archive, "--dead-letters")
    assert status == 0, out
    stored = [(row.device_id, row.code, row.reported_at) for row in archive.rows(DeviceStatusRow)]
    assert sorted(stored) == sorted((v.device_id, v.code, v.reported_at) for v in values)  # each once
    happened = [
        (row.device_id, row.event, row.occurred_at.replace(microsecond=0)) for row in archive.rows(DeviceEventRow)
    ]
    online = [(e.device_id, e.event, e.occurred_at.replace(microsecond=0)) for e in events]
    assert sorted(e for e in happened if e[1] in ("online", "offline")) == sorted(online)
    copies = len(logged_values) + len(logged_events)
    assert f"already backfilled from the device log: {copies:,} status values and device events" in out
    assert resolutions(archive) == {"replayed: stored": 120}


def test_a_second_replay_stores_nothing_and_changes_nothing(archive: Archive, replay: Replay) -> None:
    result = archive.store(traffic(150, corrupt=0.2), key=WRONG)  # some broken on the way: no key decodes them
    status, first = replay(archive, "--dead-letters")
    once = archive.snapshot()
    status_again, second = replay(archive, "--dead-letters")
    assert (status, status_again) == (0, 0)
    assert archive.snapshot() == once
    failing = re.search(r"still failing: (\d+)", first)
    assert failing is not None and 0 < int(failing[1]) < result.dead == 150
    assert f"dead letters read: {failing[1]} unresolved" in second
    assert "stored: 0 messages" in second


def test_a_dead_letter_whose_message_is_stored_is_marked_already_stored(archive: Archive, replay: Replay) -> None:
    messages = traffic(40)
    archive.store(messages, key=GOOD)
    archive.store(messages[:10], key=WRONG)  # a worker that had the wrong key saw some of them too
    before = archive.snapshot("messages", *DERIVED)
    status, out = replay(archive, "--dead-letters")
    assert status == 0, out
    assert "already stored: 10 (marked resolved)" in out
    assert resolutions(archive) == {"replayed: already stored": 10}
    assert archive.snapshot("messages", *DERIVED) == before  # report_count too: nothing counted again


def test_error_kind_selects_dead_letters_by_kind(archive: Archive, replay: Replay) -> None:
    archive.store(traffic(200), key=WRONG)
    kinds = Counter(row.error_kind for row in archive.rows(DeadLetterRow))
    assert {"gcm_tag_mismatch", "bad_padding"} <= set(kinds), kinds  # GCM and ECB with the wrong key
    status, out = replay(archive, "--dead-letters", "--error-kind", "gcm_tag_mismatch")
    assert status == 0, out
    resolved = Counter(row.error_kind for row in archive.rows(DeadLetterRow) if row.resolved_at is not None)
    assert resolved == {"gcm_tag_mismatch": kinds["gcm_tag_mismatch"]}
    assert archive.count(Message) == kinds["gcm_tag_mismatch"]
    others = [arg for kind in sorted(set(kinds) - {"gcm_tag_mismatch"}) for arg in ("--error-kind", kind)]
    replay(archive, "--dead-letters", *others)
    assert resolutions(archive) == {"replayed: stored": 200}


def test_since_selects_dead_letters_by_received_at(archive: Archive, replay: Replay) -> None:
    now = datetime.now(UTC)
    old, recent = traffic(30, ledger=100), traffic(30, ledger=200, seed=5)
    archive.store(old, key=WRONG, at=now - timedelta(days=3))
    archive.store(recent, key=WRONG, at=now - timedelta(minutes=5))
    status, out = replay(archive, "--dead-letters", "--since", "1d")
    assert status == 0, out
    resolved = {row.message_id for row in archive.rows(DeadLetterRow) if row.resolved_at is not None}
    assert resolved == {message.message_id for message in recent}
    since = (now - timedelta(days=4)).date().isoformat()
    status, out = replay(archive, "--dead-letters", "--since", since)
    assert f"received since {since}T00:00:00+00:00" in out
    assert resolutions(archive) == {"replayed: stored": 60}


def test_a_dry_run_of_dead_letters_writes_nothing(archive: Archive, replay: Replay) -> None:
    result = archive.store(traffic(80, corrupt=0.1), key=WRONG)
    before = archive.snapshot()
    status, out = replay(archive, "--dead-letters", "--dry-run")
    assert status == 0, out
    assert archive.snapshot() == before
    assert out.startswith("dry run: nothing was changed")
    decodable = int(re.search(r"would store: (\d+) messages", out)[1])  # type: ignore[index]
    failing = int(re.search(r"still failing: (\d+)", out)[1])  # type: ignore[index]
    assert decodable + failing == result.dead == 80
    replay(archive, "--dead-letters")
    assert archive.count(Message) == decodable


def test_the_access_key_never_appears_in_output_or_logs(
    archive: Archive, replay: Replay, caplog: pytest.LogCaptureFixture
) -> None:
    archive.store(traffic(60, corrupt=0.3), key=WRONG)
    caplog.set_level("DEBUG")
    status, out = replay(archive, "--dead-letters")
    assert status == 0
    assert GOOD not in out and GOOD not in caplog.text
    assert GOOD[8:24] not in out and GOOD[8:24] not in caplog.text  # nor the AES key derived from it


# --- replay --dead-letters --rules ------------------------------------------------------------------------------------

SWITCH_OFF = ({"code": "switch_1", "value": False},)


@dataclass
class Plug:
    """One simulated plug, a rule that switches it off above 3000.0 W, and the OpenAPI emulator that knows it."""

    fleet: Fleet
    rules_file: Path
    emulator: Emulator

    @property
    def device_id(self) -> str:
        return self.fleet.devices[0].device_id

    def power(self, *watts_x10: int) -> list[PulsarMessage]:
        now = int(time.time() * 1000)
        return [pulsar(self.fleet.status(0, {"cur_power": w}, now + i), i) for i, w in enumerate(watts_x10)]

    def deliver(self, engine: Engine) -> int:
        """What the worker's outbox sender does: send every pending command, signed, to the emulator."""
        with OpenApiClient(self.emulator.url, ACCESS_ID, GOOD) as client:
            return OutboxSender(engine, client).drain()


@pytest.fixture
def plug(tmp_path: Path) -> Iterator[Plug]:
    fleet = Fleet(GOOD, 1, clock=lambda: int(time.time() * 1000), seed=11)
    device_id = fleet.devices[0].device_id
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        textwrap.dedent(f"""\
            rules:
              - id: plug_off_when_overloaded
                triggers:
                  - trigger: numeric_state
                    device: {device_id}
                    code: cur_power
                    above: 30000
                actions:
                  - action: tuya.send_command
                    commands: [{{code: switch_1, value: false}}]
            """),
        encoding="utf-8",
    )
    device = EmulatedDevice(
        device_id=device_id,
        functions=(EmulatedPoint("switch_1", "Boolean"),),
        status={"switch_1": True},
        name="Replayed plug",
        category="cz",
    )
    with Emulator(ACCESS_ID, GOOD, devices=[device]) as emulator:
        yield Plug(fleet, rules_file, emulator)


def test_rules_fire_on_replayed_messages_once(archive: Archive, replay: Replay, plug: Plug) -> None:
    archive.store(plug.power(100, 31000), key=WRONG)
    status, out = replay(archive, "--dead-letters", "--rules", RULES_FILE=str(plug.rules_file))
    assert status == 0, out
    assert "rules: 1 actions fired" in out
    [command] = archive.rows(Command)
    assert (command.rule_id, command.device_id, command.status) == (
        "plug_off_when_overloaded",
        plug.device_id,
        "pending",
    )
    replay(archive, "--dead-letters", "--rules", RULES_FILE=str(plug.rules_file))  # nothing left to replay
    assert archive.count(Command) == 1
    assert plug.deliver(archive.engine) == 1
    assert [(c.device_id, c.commands) for c in plug.emulator.commands] == [(plug.device_id, SWITCH_OFF)]
    assert [row.status for row in archive.rows(Command)] == ["sent"]


def test_rules_do_not_see_values_a_backfill_took_from_the_log(archive: Archive, replay: Replay, plug: Plug) -> None:
    messages = plug.power(100, 31000)
    archive.store(messages, key=WRONG)
    values = [r for item in decoded(messages) for r in item.records if isinstance(r, StatusReported)]
    now = datetime.now(UTC)
    with archive.engine.begin() as connection:  # the hour backfilled from the device log before the key was fixed
        gap = record_gap(connection, now - timedelta(hours=1), now + timedelta(minutes=1), now, origin="requested")
        logged = [LogValue(v.code, v.value, v.dp_id, v.reported_at) for v in values if v.code == "cur_power"]  # type: ignore[arg-type]
        save_log_page(connection, gap, plug.device_id, logged, [], cursor=None, done=True, at=now, calls=1)
    status, out = replay(archive, "--dead-letters", "--rules", RULES_FILE=str(plug.rules_file))
    assert status == 0, out
    assert "already backfilled from the device log: 2 status values and device events" in out
    assert "rules: 0 actions fired" in out and archive.count(Command) == 0  # history, not news: the log's


def test_without_rules_nothing_fires(archive: Archive, replay: Replay, plug: Plug) -> None:
    archive.store(plug.power(100, 31000), key=WRONG)
    status, out = replay(archive, "--dead-letters", RULES_FILE=str(plug.rules_file))
    assert status == 0, out
    assert "rules:" not in out
    assert archive.count(Message) == 2
    assert archive.count(Command) == 0
    assert plug.deliver(archive.engine) == 0
    assert plug.emulator.commands == []


# --- replay --messages ------------------------------------------------------------------------------------------------
