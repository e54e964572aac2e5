"""``tuya-archiver replay --messages`` on SQLite and PostgreSQL archives (streams/replay/messages.py,
streams/store/rederive.py); shared set-up in harness.py and conftest.py, the pure parts in tests/unit/replay/.

An older normalisation is simulated by changing the rows it would have derived differently, or by storing a message
with fewer records than today's code makes of it."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text, update

from models.tables import (
    DataPoint,
    Device,
    DeviceEvent,
    DeviceState,
    DeviceStatus,
    Message,
    StatusMessage,
    StatusRecent,
    StatusSeries,
    StatusValue,
    UserEvent,
)
from streams.sim import Fleet
from streams.store.backfill import LogValue, record_gap, save_log_page
from streams.store.row_writer import RowWriter
from streams.store.rows import json_text
from streams.store.sql import ArchiveStore
from streams.tuya.decoder import Decoded
from streams.tuya.normalize import normalize, utc
from tests.integration.replay.harness import (
    DERIVED,
    GOOD,
    WRONG,
    Archive,
    Replay,
    decoded,
    pulsar,
    resolutions,
    table_counts,
    traffic,
)
from tests.unit.store import factories as f

pytestmark = pytest.mark.integration


def add_log_rows(archive: Archive, device_id: str) -> None:
    """History that ``backfill`` took from Tuya's device logs: never the replay's to change."""
    at = utc(1_700_000_000_000)
    with archive.engine.begin() as connection:
        value = (f"log:{device_id}:1", 0, device_id, "cur_power", "5", None, at, None)
        RowWriter(connection).insert_status([value], stored="skip", source="log")
        connection.execute(
            insert(DeviceEvent).values(
                message_id=f"log:{device_id}:2", device_id=device_id, event="online", biz_code="online",
                protocol=20, occurred_at=at, data={}, source="log",
            )
        )  # fmt: skip


def values_of(
    message_id: str, *, item_index: int | None = None, code: str | None = None, table: Any = StatusValue
) -> list[Any]:
    """The conditions that pick ``table``'s rows of a message (one item of it, or the item of a code):
    ``status_values``, or ``status_recent`` for values not settled yet."""
    messages, series = StatusMessage.__table__, StatusSeries.__table__
    key = select(messages.c.message_key).where(messages.c.message_id == message_id).scalar_subquery()
    conditions = [table.message_key == key]
    if item_index is not None:
        conditions.append(table.item_index == item_index)
    if code is not None:
        conditions.append(table.series_id.in_(select(series.c.series_id).where(series.c.code == code)))
    return conditions


def older_normalisation(archive: Archive) -> None:
    """Rows as an older, buggier normalisation would have left them: values missing, wrong (both settled), too many
    (not settled yet)."""
    archive.settle()
    firsts: dict[str, Any] = {}  # the first value of each report
    for row in archive.rows(DeviceStatus):
        if row.source == "stream":
            firsts.setdefault(row.message_id, row)
    values = list(firsts.values())
    missing, wrong, extra = values[:10], values[10:20], values[20:25]
    events = [row for row in archive.rows(DeviceEvent) if row.source == "stream"][:5]
    users = archive.rows(UserEvent)[:2]
    archive.execute(
        *(delete(StatusValue).where(*values_of(r.message_id, item_index=r.item_index)) for r in missing),
        *(update(StatusValue).where(*values_of(r.message_id, item_index=r.item_index)).values(value=-1) for r in wrong),
        *(update(DeviceEvent).where(DeviceEvent.message_id == r.message_id).values(data={}) for r in events),
        *(delete(UserEvent).where(UserEvent.message_id == r.message_id) for r in users),
    )  # fmt: skip
    bogus = [
        (r.message_id, 99, r.device_id, "bogus", json_text(r.value), r.dp_id, r.reported_at, r.data_id) for r in extra
    ]
    with archive.engine.begin() as connection:
        RowWriter(connection).insert_status(bogus, stored="add")
    assert len(users) == 2


def test_replay_messages_derives_the_rows_again_without_duplicates(archive: Archive, replay: Replay) -> None:
    archive.store(traffic(400))
    device_id = archive.rows(Device)[0].device_id
    add_log_rows(archive, device_id)
    expected = archive.snapshot()
    reports = [row.report_count for row in archive.rows(Device)]
    older_normalisation(archive)
    tampered = archive.snapshot()

    status, dry = replay(archive, "--messages", "--dry-run", "--page-size", "60")
    assert status == 0, dry
    assert archive.snapshot() == tampered
    assert "messages read: 400; normalised again: 400" in dry

    status, out = replay(archive, "--messages", "--page-size", "60")
    assert status == 0, out
    assert (
        table_counts(out)
        == table_counts(dry)
        == {
            "device_status": (10, 10, 5),
            "device_events": (0, 5, 0),
            "user_events": (2, 0, 0),
            "device_state": (0, 0, 0),
            "devices": (0, 0, 0),
            "users": (0, 0, 0),
        }
    )
    assert archive.snapshot() == expected  # the log rows included
    assert [row.report_count for row in archive.rows(Device)] == reports

    status, again = replay(archive, "--messages")
    assert status == 0
    assert "nothing to change" in again
    assert archive.snapshot() == expected


def test_a_message_the_old_code_could_not_use_gets_its_rows_and_counts_no_report(
    archive: Archive, replay: Replay
) -> None:
    fleet = Fleet(GOOD, 1, clock=lambda: 0, seed=11)
    first, later = decoded([
        pulsar(fleet.status(0, {"cur_power": 100}, 1_700_000_001_000), 1),
        pulsar(fleet.status(0, {"cur_power": 250, "switch_1": True}, 1_700_000_002_000), 2),
    ])  # fmt: skip
    store = ArchiveStore(archive.engine)
    store.write_batch([first], [], received_at=f.T0)
    store.write_batch([Decoded(later.message, [])], [], received_at=f.T0)  # the old code made no records of it
    archive.execute(update(Message).where(Message.message_id == later.message.message_id).values(unknown=True))
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert {row.message_id: row.unknown for row in archive.rows(Message)} == {"100:1:0:-1": None, "100:2:0:-1": None}
    assert table_counts(out)["device_status"] == (2, 0, 0)
    assert table_counts(out)["device_state"] == (1, 1, 0)
    state = {row.code: (row.value, row.message_id) for row in archive.rows(DeviceState)}
    assert state == {"cur_power": (250, "100:2:0:-1"), "switch_1": (True, "100:2:0:-1")}
    [device] = archive.rows(Device)
    assert (device.report_count, device.last_seen_at) == (1, utc(1_700_000_002_000))
    replay(archive, "--messages")
    assert [row.report_count for row in archive.rows(Device)] == [1]


def test_values_a_backfill_took_from_the_device_log_are_not_derived_a_second_time(
    archive: Archive, replay: Replay
) -> None:
    fleet = Fleet(GOOD, 1, clock=lambda: 0, seed=11)
    at = 1_700_000_002_000
    (message,) = decoded([pulsar(fleet.status(0, {"cur_power": 250, "switch_1": True}, at), 1)])
    ArchiveStore(archive.engine).write_batch([Decoded(message.message, [])], [], received_at=f.T0)  # no records then
    device_id = message.records[0].device_id
    with archive.engine.begin() as connection:  # a backfill found the report's values in the device log
        gap = record_gap(connection, utc(at - 60_000), utc(at + 60_000), f.T0, origin="requested")
        logged = [LogValue("cur_power", 250, 19, utc(at))]
        save_log_page(connection, gap, device_id, logged, [], cursor=None, done=True, at=f.T0, calls=1)
    status, out = replay(archive, "--messages")
    assert status == 0, out
    rows = sorted((row.code, row.source) for row in archive.rows(DeviceStatus))
    assert rows == [("cur_power", "log"), ("switch_1", "stream")]  # each value once
    assert table_counts(out)["device_status"] == (1, 0, 0)


def test_a_message_s_own_row_beside_a_log_copy_is_kept(archive: Archive, replay: Replay) -> None:
    # Both stored before replays left log copies out: the replay deletes neither, and the message keeps its value.
    fleet = Fleet(GOOD, 1, clock=lambda: 0, seed=11)
    at = 1_700_000_002_000
    (message,) = decoded([pulsar(fleet.status(0, {"cur_power": 250}, at), 1)])
    ArchiveStore(archive.engine).write_batch([message], [], received_at=f.T0)
    device_id = message.records[0].device_id
    with archive.engine.begin() as connection:
        record_gap(connection, utc(at - 60_000), utc(at + 60_000), f.T0, origin="requested")
        copy = (f"log:{device_id}:{at}:cur_power", 0, device_id, "cur_power", '"250"', None, utc(at), None)
        RowWriter(connection).insert_status([copy], stored="add", source="log")
    before = archive.snapshot("device_status")
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert table_counts(out)["device_status"] == (0, 0, 0)
    assert archive.snapshot("device_status") == before


def test_a_message_that_derives_no_kind_is_marked_for_retention_to_keep(archive: Archive, replay: Replay) -> None:
    ArchiveStore(archive.engine).write_batch([f.unknown_message(1)], [], received_at=f.T0)
    assert [row.unknown for row in archive.rows(Message)] == [True]
    archive.execute(update(Message).values(unknown=None))  # as if another version had derived rows from it
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert [row.unknown for row in archive.rows(Message)] == [True]


def test_a_renamed_item_moves_its_latest_value(archive: Archive, replay: Replay) -> None:
    fleet = Fleet(GOOD, 1, clock=lambda: 0, seed=11)
    plug = fleet.devices[0].device_id
    archive.store([
        pulsar(fleet.status(0, {"cur_power": 100}, 1_700_000_001_000), 1),
        pulsar(fleet.status(0, {"cur_power": 250}, 1_700_000_002_000), 2),
    ])  # fmt: skip
    expected = archive.snapshot(*DERIVED)
    # An older normalisation called the second report's item power_old: its history (settled) and latest state say so.
    archive.settle()
    power_old = select(StatusSeries.series_id).where(StatusSeries.device_id == plug, StatusSeries.code == "power_old")
    archive.execute(
        insert(StatusSeries).values(device_id=plug, code="power_old"),
        update(StatusValue).where(*values_of("100:2:0:-1")).values(series_id=power_old.scalar_subquery()),
        update(DeviceState).where(DeviceState.code == "cur_power").values(
            value=100, reported_at=utc(1_700_000_001_000), message_id="100:1:0:-1"
        ),
        insert(DeviceState).values(
            device_id=plug, code="power_old", value=250, dp_id=None, reported_at=utc(1_700_000_002_000),
            message_id="100:2:0:-1", source="stream",
        ),
    )  # fmt: skip
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert table_counts(out)["device_status"] == (0, 1, 0)
    assert table_counts(out)["device_state"] == (0, 1, 1)
    assert archive.snapshot(*DERIVED) == expected


def test_a_corrected_value_reaches_the_latest_state(archive: Archive, replay: Replay) -> None:
    fleet = Fleet(GOOD, 1, clock=lambda: 0, seed=11)
    archive.store([
        pulsar(fleet.status(0, {"cur_power": 100}, 1_700_000_001_000), 1),
        pulsar(fleet.status(0, {"cur_power": 250, "switch_1": True}, 1_700_000_002_000), 2),
    ])  # fmt: skip
    expected = archive.snapshot(*DERIVED)
    # An older normalisation read the newest report's power wrong, in its history (not settled yet) and so in the
    # latest state.
    archive.execute(
        update(StatusRecent).where(*values_of("100:2:0:-1", code="cur_power", table=StatusRecent)).values(value=25),
        update(DeviceState).where(DeviceState.code == "cur_power").values(value=25),
    )
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert table_counts(out)["device_status"] == (0, 1, 0)
    assert table_counts(out)["device_state"] == (0, 1, 0)
    assert archive.snapshot(*DERIVED) == expected


def test_a_message_derived_for_another_device_or_data_id_moves_there(archive: Archive, replay: Replay) -> None:
    """An older normalisation gave two messages a wrong device and a wrong data id. Before, the first's values
    vanished from ``device_status`` (their message row kept the old device), and the second's data id stayed wrong
    with every replay counting it updated again."""
    archive.store(traffic(20))
    archive.settle()
    expected = archive.snapshot(*DERIVED)
    moved, renamed = [row for row in archive.rows(StatusMessage)][:2]
    archive.execute(
        text("INSERT INTO status_series (device_id, code) SELECT 'bfolddevice0000000001', code FROM status_series "
             "WHERE device_id = :device").bindparams(device=moved.device_id),
        text("UPDATE status_values SET series_id = (SELECT old.series_id FROM status_series old JOIN status_series s "
             "ON s.code = old.code WHERE old.device_id = 'bfolddevice0000000001' "
             "AND s.series_id = status_values.series_id) WHERE message_key = :key").bindparams(key=moved.message_key),
        update(StatusMessage).where(StatusMessage.message_key == moved.message_key).values(
            device_id="bfolddevice0000000001"
        ),
        update(StatusMessage).where(StatusMessage.message_key == renamed.message_key).values(data_id="WRONG"),
    )  # fmt: skip
    assert archive.snapshot(*DERIVED) != expected
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert archive.snapshot(*DERIVED) == expected
    status, out = replay(archive, "--messages")
    assert status == 0 and table_counts(out)["device_status"] == (0, 0, 0), out


def test_items_with_only_a_dp_id_are_named_once_the_catalog_knows_them(archive: Archive, replay: Replay) -> None:
    ms = 1_700_000_000_000
    payload = {"devId": f.DEVICE, "productKey": f.PRODUCT, "status": [{"dpId": 19, "t": ms, "value": 95}]}
    message = f.decoded_message(1, payload, pushed_at=utc(ms))
    ArchiveStore(archive.engine).write_batch(
        [Decoded(message, normalize(message.message_id, 4, payload, ms))], [], received_at=f.T0
    )
    assert [(row.code, row.dp_id) for row in archive.rows(DeviceStatus)] == [(None, 19)]
    point = {"product_id": f.PRODUCT, "code": "cur_power", "type": "Integer", "dp_id": 19, "reported": True}
    archive.execute(insert(DataPoint).values(**point, commandable=False, spec={}, synced_at=f.T0))
    status, out = replay(archive, "--messages")
    assert status == 0, out
    assert [(row.code, row.value) for row in archive.rows(DeviceStatus)] == [("cur_power", 95)]
    assert [(row.code, row.value) for row in archive.rows(DeviceState)] == [("cur_power", 95)]


# --- beside a running worker; the database away ----------------------------------------------------------------------


def test_replay_beside_a_writer_storing_batches_does_not_fail(archive: Archive, replay: Replay) -> None:
    messages = traffic(600)
    archive.store(messages[:200])
    archive.store(messages[200:300], key=WRONG)
    stop, stored_once, errors = threading.Event(), threading.Event(), []

    def writer() -> None:  # a worker storing batches: the last 300 messages, then their redeliveries until stopped
        batches = [messages[i : i + 20] for i in range(300, 600, 20)]
        try:
            while not stop.is_set():
                for batch in batches:
                    archive.store(batch)
                stored_once.set()
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [replay(archive, *argv, "--page-size", "20") for argv in (["--messages"], ["--dead-letters"])]
        assert stored_once.wait(timeout=60)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert errors == []
    assert [status for status, _out in results] == [0, 0], results
    assert archive.count(Message) == 600
    assert resolutions(archive) == {"replayed: stored": 100}
    assert "nothing to change" in replay(archive, "--messages")[1]


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_database_is_one_line_and_status_1(replay: Replay) -> None:
    unreachable = Archive(f"postgresql://postgres@127.0.0.1:{unused_port()}/app", None)  # type: ignore[arg-type]
    for argv in (["--messages"], ["--dead-letters"]):
        status, out = replay(unreachable, *argv)
        assert status == 1
        assert out.startswith("tuya-archiver replay: database unavailable while checking the schema revision")
