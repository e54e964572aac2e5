"""Partner: streams/demo/ (the demo is its own integration test: broker, emulator, worker and archive all real).

One short demo (20 devices, 12 s) runs once for the module, into a temporary SQLite file; each test checks one
thing the issue promises about its archive, its rules or its clean end. A second one (20 devices, 15 s) has a 6 s
outage (``--outage``): its tests check the gap it leaves and the values the backfill brings back from the emulated
device logs (the mechanism alone, without the demo: test_outage.py).
"""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from rich.console import Console
from sqlalchemy import create_engine, func, select, update
from sqlalchemy.engine import Engine

from models.tables import Command, DataPoint, DeadLetter, Device, DeviceEvent, DeviceStatus, Gap, Message
from streams.demo import DemoOptions, DemoResult, print_summary, run_demo
from tests.fixtures.broker import require_broker_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
_DEMO_THREADS = ("demo-worker", "demo-traffic", "demo-outage", "demo-drain", "demo-webhooks", "tuya-emulator", "outbox")


@dataclass(frozen=True)
class Demo:
    result: DemoResult
    engine: Engine
    children_before: set[int]


def _children(parent: int | None = None) -> set[int]:
    """Pids of the child processes of ``parent`` (this process), from /proc (psutil is not a dependency)."""
    me = str(parent or os.getpid())
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        if stat.rsplit(")", 1)[1].split()[1] == me:
            children.add(int(entry.name))
    return children


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    require_broker_binary()
    url = f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}"
    before = _children()
    options = DemoOptions(devices=20, duration_s=12, rate=200, database_url=url, corrupt=0.01, seed=3)
    result = run_demo(options, Console(file=io.StringIO(), width=120))
    engine = create_engine(url)
    yield Demo(result, engine, before)
    engine.dispose()


@pytest.fixture(scope="module")
def outage_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    require_broker_binary()
    url = f"sqlite:///{tmp_path_factory.mktemp('outage') / 'demo.db'}"
    before = _children()
    options = DemoOptions(devices=20, duration_s=15, rate=200, database_url=url, corrupt=0.01, seed=5, outage_s=6)
    result = run_demo(options, Console(file=io.StringIO(), width=120))
    engine = create_engine(url)
    yield Demo(result, engine, before)
    engine.dispose()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _scalar(engine: Engine, query) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def test_demo_settles_before_its_timeout(demo: Demo) -> None:
    assert demo.result.settled and not demo.result.interrupted


def test_every_valid_message_is_stored_once(demo: Demo) -> None:
    kinds = demo.result.kinds
    valid = sum(n for kind, n in kinds.items() if not kind.startswith("corrupt:"))
    assert demo.result.report is not None and demo.result.report.failed == 0
    assert _scalar(demo.engine, select(func.count()).select_from(Message)) == valid
    assert _scalar(demo.engine, select(func.count(func.distinct(Message.message_id)))) == valid


def test_every_corrupt_message_is_a_dead_letter(demo: Demo) -> None:
    corrupt = sum(n for kind, n in demo.result.kinds.items() if kind.startswith("corrupt:"))
    assert corrupt >= 5  # the scenario sends one of each corruption
    assert _scalar(demo.engine, select(func.count()).select_from(DeadLetter)) == corrupt


def test_scenario_commands_are_sent_and_recorded_by_the_emulator(demo: Demo) -> None:
    scenario = demo.result.scenario
    query = select(Command.rule_id, Command.device_id, Command.commands, Command.status, Command.tuya_tid).where(
        Command.action == "tuya.send_command"
    )
    with demo.engine.connect() as connection:
        rows = {(row.rule_id, row.device_id): row for row in connection.execute(query)}
    accepted = {recorded.tid: recorded for recorded in demo.result.accepted}
    fan, plug = scenario.device_id("greenhouse_fan"), scenario.device_id("kitchen_plug")
    expected = [("greenhouse_fan_on_when_hot", fan), ("plug_overload_off", plug), ("greenhouse_fan_off_when_cool", fan)]
    for key in expected:
        row = rows[key]
        assert row.status == "sent"
        recorded = accepted[row.tuya_tid]
        assert (recorded.device_id, list(recorded.commands)) == (row.device_id, row.commands)


def test_offline_device_webhook_is_delivered(demo: Demo) -> None:
    door = demo.result.scenario.device_id("front_door")
    query = select(Command.status).where(Command.rule_id == "notify_offline", Command.device_id == door)
    with demo.engine.connect() as connection:
        assert list(connection.scalars(query)) == ["sent"]
    assert {"text": f"device {door} offline"} in [hook.body for hook in demo.result.webhooks]


def test_summary_names_the_rules_and_the_history_command(demo: Demo) -> None:
    out = io.StringIO()
    print_summary(Console(file=out, width=160), demo.result)
    text = out.getvalue()
    assert "greenhouse_fan_on_when_hot" in text
    assert 'tuya-archiver history "Greenhouse sensor"' in text


def test_every_device_is_known_from_the_api_before_its_first_message(demo: Demo) -> None:
    first_message = (
        select(Message.device_id, func.min(Message.pushed_at).label("first")).group_by(Message.device_id).subquery()
    )
    # first_seen_at: when the archive first knew the device (the sync's answer, or else its first message).
    query = select(Device.device_id, Device.name, Device.category, Device.first_seen_at, first_message.c.first).join(
        first_message, first_message.c.device_id == Device.device_id
    )
    with demo.engine.connect() as connection:
        devices = connection.execute(query).all()
        points = connection.execute(select(DataPoint.code, DataPoint.unit, DataPoint.scale)).all()
    assert len(devices) == 25  # the 20 devices of the fleet and the scenario's 5
    assert all(row.name and row.category and row.first_seen_at < row.first for row in devices), devices
    assert ("temp_current", "°C", 1) in points


def test_summary_and_example_queries_show_physical_units(demo: Demo) -> None:
    out = io.StringIO()
    print_summary(Console(file=out, width=160), demo.result)
    text = out.getvalue()
    assert "From the OpenAPI (the emulator), before the first message: 25 devices" in text
    assert "value_scaled" in text and "°C" in text


def test_no_process_thread_or_port_is_left_behind(demo: Demo) -> None:
    assert _children() <= demo.children_before
    assert not [thread.name for thread in threading.enumerate() if thread.name in _DEMO_THREADS]
    endpoints = demo.result.endpoints
    for url in (endpoints.broker, endpoints.openapi, endpoints.webhooks):
        address = urlsplit(url)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address.hostname, address.port), timeout=1).close()


# The CLI module alone, so that the test does not depend on the subcommand list of streams.cli.
# The demo as a terminal starts it: with Python's Ctrl-C handler even when this test run was started with SIGINT
# ignored (a shell's background job is; Python then installs no handler, and the child would inherit that).
_DEMO_COMMAND = """
import argparse, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from streams.cli import demo
parser = argparse.ArgumentParser()
demo.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args, None))
"""


@pytest.mark.parametrize(
    ("options", "after_s"),
    [((), 2.0), (("--minutes", "0.1", "--outage", "6"), 4.0)],  # the outage: from 2 s, its messages being dropped
    ids=["publishing", "outage"],
)
def test_ctrl_c_stops_everything_and_exits_130(tmp_path: Path, options: tuple[str, ...], after_s: float) -> None:
    require_broker_binary()
    output = tmp_path / "output.txt"
    command = [sys.executable, "-c", _DEMO_COMMAND, "demo", "--devices", "10", "--db", f"sqlite:///{tmp_path}/d.db"]
    command += options
    with output.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "  log " not in output.read_text(errors="replace"):  # the banner's last line: everything runs
            assert process.poll() is None, output.read_text(errors="replace")
            if time.monotonic() > deadline:  # a hang guard, not a speed check
                pytest.fail(f"the demo did not come up within 30 s: {output.read_text(errors='replace')}")
            time.sleep(0.1)
        started = _children(process.pid)
        assert started  # the broker
        time.sleep(after_s)
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: the whole process group
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not [pid for pid in started if _alive(pid)]
    assert "Interrupted with Ctrl-C" in output.read_text(errors="replace")


def test_keep_running_serves_the_archive_on_the_url_it_prints(tmp_path: Path) -> None:
    require_broker_binary()
    output = tmp_path / "output.txt"
    database = f"sqlite:///{tmp_path}/d.db"
    command = [sys.executable, "-c", _DEMO_COMMAND, "demo", "--devices", "10", "--keep-running", "--db", database]
    with output.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "  log " not in output.read_text(errors="replace"):
            assert process.poll() is None, output.read_text(errors="replace")
            if time.monotonic() > deadline:  # a hang guard, not a speed check
                pytest.fail(f"the demo did not come up within 30 s: {output.read_text(errors='replace')}")
            time.sleep(0.1)
        web = re.search(r"web\s+(http://127\.0\.0\.1:\d+)/", output.read_text(errors="replace"))
        assert web is not None, output.read_text(errors="replace")
        devices = httpx.get(f"{web.group(1)}/devices.json", timeout=10).json()
        assert devices["total"] == 15  # the fleet's 10 and the scenario's 5, known from the sync
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0  # with --keep-running, Ctrl-C is how it ends
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- the outage (--outage) ------------------------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    """Milliseconds since the epoch of an archived time (SQLite gives it back without its zone, UTC)."""
    return round(moment.replace(tzinfo=UTC).timestamp() * 1000)


def _only_in_the_logs(demo: Demo) -> frozenset[tuple[str, str, int, Any]]:
    """What the device logs hold of the gap that the stream never carried, as (device, code, at_ms, value): the
    values reported while the worker was stopped, and those of commands the emulator took inside the gap. Tuya logs a
    commanded value when the device takes it; a rule's command sent after the worker's last receive and before it
    stopped lands in the gap, and the demo's fan reports that value on the stream only later, at a time of its own."""
    outage = demo.result.outage
    assert outage is not None
    with demo.engine.connect() as connection:
        started, ended = (_ms(at) for at in connection.execute(select(Gap.started_at, Gap.ended_at)).one())
    commanded = {
        (command.device_id, item["code"], command.at_ms, item.get("value"))
        for command in demo.result.accepted
        if started <= command.at_ms <= ended
        for item in command.commands
    }
    return outage.lost_values | commanded


def test_outage_demo_settles_once_the_gap_is_backfilled(outage_demo: Demo) -> None:
    result = outage_demo.result
    assert result.outage is not None and result.outage.skipped is None
    assert result.settled and not result.interrupted


def test_outage_leaves_one_gap_filled_from_the_device_logs(outage_demo: Demo) -> None:
    outage = outage_demo.result.outage
    assert outage is not None
    with outage_demo.engine.connect() as connection:
        gaps = connection.execute(select(Gap)).all()
    assert [(gap.status, gap.origin, gap.reason) for gap in gaps] == [("filled", "detected", None)]
    reported = {value[:3] for value in _only_in_the_logs(outage_demo)}
    assert gaps[0].rows_added == len(reported) + len(outage.lost_events) > 0


def test_outage_messages_are_dropped_and_the_others_stored_once(outage_demo: Demo) -> None:
    result = outage_demo.result
    assert result.outage is not None and result.report is not None and result.report.failed == 0
    dropped = result.outage.dropped_kinds
    assert result.outage.dropped == sum(dropped.values()) > 0
    valid = sum(n for kind, n in (result.kinds - dropped).items() if not kind.startswith("corrupt:"))
    assert _scalar(outage_demo.engine, select(func.count()).select_from(Message)) == valid
    assert _scalar(outage_demo.engine, select(func.count(func.distinct(Message.message_id)))) == valid


def test_every_value_reported_during_the_outage_is_archived_once_from_the_log(outage_demo: Demo) -> None:
    outage = outage_demo.result.outage
    assert outage is not None
    columns = (DeviceStatus.device_id, DeviceStatus.code, DeviceStatus.reported_at, DeviceStatus.value)
    with outage_demo.engine.connect() as connection:
        logged = [
            (d, c, _ms(at), v)
            for d, c, at, v in connection.execute(select(*columns).where(DeviceStatus.source == "log"))
        ]
        streamed = {
            (d, c, _ms(at))
            for d, c, at, _v in connection.execute(select(*columns).where(DeviceStatus.source == "stream"))
        }
    only_logged = _only_in_the_logs(outage_demo)
    reported = {value[:3] for value in only_logged}  # a device may report a code twice in one millisecond
    keys = [row[:3] for row in logged]
    assert len(keys) == len(set(keys)) and set(keys) == reported
    assert not reported & streamed
    assert set(logged) <= only_logged  # each with a value the device reported then


def test_online_and_offline_during_the_outage_come_back_from_the_log(outage_demo: Demo) -> None:
    outage = outage_demo.result.outage
    assert outage is not None and outage.lost_events
    query = select(DeviceEvent.device_id, DeviceEvent.event, DeviceEvent.occurred_at).where(DeviceEvent.source == "log")
    with outage_demo.engine.connect() as connection:
        logged = [(device, event, _ms(at)) for device, event, at in connection.execute(query)]
    assert len(logged) == len(set(logged)) and set(logged) == outage.lost_events


def test_outage_scenario_rules_still_fire(outage_demo: Demo) -> None:
    with outage_demo.engine.connect() as connection:
        fired = {tuple(row) for row in connection.execute(select(Command.rule_id, Command.device_id))}
    assert all((e.rule_id, e.device_id) in fired for e in outage_demo.result.scenario.expected())


def test_outage_summary_shows_the_gap_and_where_values_came_from(outage_demo: Demo) -> None:
    out = io.StringIO()
    print_summary(Console(file=out, width=160), outage_demo.result)
    text = " ".join(out.getvalue().split())
    assert "The outage and its backfill" in text and "filled" in text
    assert "from the stream" in text and "from the device logs" in text
    assert "its background sync backfilled it from the device logs" in text


def test_outage_summary_says_so_when_the_demo_ended_before_the_gap_was_filled(outage_demo: Demo) -> None:
    # A stop no longer waits for a backfill under way: the demo's end may cut one off (its settle timed out).
    with outage_demo.engine.begin() as connection:
        connection.execute(update(Gap).values(status="backfilling"))
    try:
        out = io.StringIO()
        print_summary(Console(file=out, width=160), outage_demo.result)
    finally:
        with outage_demo.engine.begin() as connection:
            connection.execute(update(Gap).values(status="filled"))
    text = " ".join(out.getvalue().split())
    assert "had not filled it from the device logs when the demo ended" in text
    assert "backfilled it from the device logs" not in text
