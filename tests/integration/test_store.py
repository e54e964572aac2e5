"""The batch store on SQLite and PostgreSQL (streams/store/sql.py, drivers.py, statements.py, engine.py); row building
is unit-tested in tests/unit/store/test_rows.py."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Text, cast, func, select
from sqlalchemy.engine import Connection, Engine

from models.records import DeadLetter, PulsarMessage
from models.tables import (
    Base,
    Device,
    DeviceState,
    DeviceStatus,
    Message,
    RuleState,
    StatusMessage,
    device_online_periods,
    latest_status,
)
from streams.errors import DatabaseUnavailable
from streams.sim.seal import Sealer
from streams.store.drivers import SqliteDriver
from streams.store.engine import PAGE_BYTES, WAL_AUTOCHECKPOINT_BYTES, make_engine
from streams.store.facts import DEVICE_COLUMNS
from streams.store.row_writer import RowWriter
from streams.store.rows import sqlite_time
from streams.store.series import online_periods
from streams.store.sql import ArchiveStore, BatchCounts
from streams.store.statements import DEVICES, DEVICES_SEEN, sqlite_insert
from streams.tuya.decoder import Decoded, MessageDecoder
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, NARROW, archive_tables, migrated_engine, scratch_database, truncate_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_database(request, tmp_path_factory.mktemp("store")) as url, migrated_engine(url) as engine:
        yield engine


@pytest.fixture
def store(engine: Engine) -> Iterator[ArchiveStore]:
    yield ArchiveStore(engine)
    truncate_all(engine)


def write(store: ArchiveStore, decoded: Sequence[Decoded], dead: Sequence[DeadLetter] = ()) -> BatchCounts:
    return store.write_batch(decoded, dead, received_at=f.at(1000))


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the history as ``device_status``), in key order, as SQLAlchemy reads them back."""
    with engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.execute(select(table).order_by(*table.primary_key.columns))]
            for name, table in archive_tables().items()
        }


def narrow_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            name: connection.scalar(select(func.count()).select_from(Base.metadata.tables[name])) for name in NARROW
        }


def mixed_batch(first: int, last: int) -> list[Decoded]:
    """Messages ``first``..``last``: status reports, with events, a user event and an unknown message among them."""
    kinds = [
        lambda n: f.status_report(n, {"switch_1": n % 2 == 0, "cur_power": n * 10}),
        lambda n: f.device_event(n, "online" if n % 4 else "offline"),
        lambda n: f.status_report(n, {"cur_power": n}, device="bf-second-device"),
        lambda n: f.user_event(n, "updated"),
        lambda n: f.unknown_message(n),
    ]
    return [kinds[n % len(kinds)](n) for n in range(first, last + 1)]


def test_a_batch_fills_every_table(store: ArchiveStore, engine: Engine) -> None:
    counts = write(store, mixed_batch(1, 10), [f.dead_letter(11)])
    assert counts == BatchCounts(
        messages_inserted=10, duplicates=0, status_rows=6, device_events=2, user_events=2, dead_letters=1
    )
    rows = snapshot(engine)
    assert {name: len(table) for name, table in rows.items()} == {
        "messages": 10,
        "device_status": 6,
        "device_events": 2,
        "devices": 2,
        "device_state": 3,
        "users": 1,
        "user_events": 2,
        "commands": 0,
        "rule_state": 0,
        "dead_letters": 1,
        "data_points": 0,
        "api_paths": 0,
        "api_usage": 0,
        "gaps": 0,
        "backfill_progress": 0,
        "consumers": 0,
    }
    # one series a (device, code): (device, switch_1), (device, cur_power), (second device, cur_power); one key a
    # message with status values; a store that does not settle writes them straight into status_values
    assert narrow_counts(engine) == {"status_series": 3, "status_messages": 4, "status_values": 6, "status_recent": 0}


def test_storing_the_same_batch_twice_changes_nothing(store: ArchiveStore, engine: Engine) -> None:
    write(store, mixed_batch(1, 20), [f.dead_letter(21)])
    once = snapshot(engine)
    counts = write(store, mixed_batch(1, 20), [f.dead_letter(21)])
    assert (counts.messages_inserted, counts.duplicates, counts.dead_letters, counts.dead_letter_duplicates) == (
        0,
        20,
        0,
        1,
    )
    assert snapshot(engine) == once


def test_overlapping_batches_leave_the_rows_of_storing_each_message_once(store: ArchiveStore, engine: Engine) -> None:
    write(store, mixed_batch(1, 30))
    once = snapshot(engine)
    truncate_all(engine)
    for first, last in ((1, 12), (8, 20), (1, 5), (15, 30), (29, 30)):
        write(store, mixed_batch(first, last))
    assert snapshot(engine) == once


@settings(max_examples=12, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 40)), max_size=5))
def test_any_batches_in_any_order_then_all_equal_storing_all_once(engine: Engine, spans: list[tuple[int, int]]) -> None:
    store = ArchiveStore(engine)
    truncate_all(engine)
    write(store, mixed_batch(1, 40))
    once = snapshot(engine)
    truncate_all(engine)
    for first, last in spans:
        write(store, mixed_batch(min(first, last), max(first, last)))
    write(store, mixed_batch(1, 40))
    assert snapshot(engine) == once
    truncate_all(engine)


def test_a_message_twice_in_one_batch_is_stored_once(store: ArchiveStore, engine: Engine) -> None:
    report = f.status_report(1, {"cur_power": 5})
    counts = write(store, [report, report, f.status_report(2, {"cur_power": 6})], [f.dead_letter(3)] * 2)
    assert (counts.messages_inserted, counts.duplicates, counts.status_rows, counts.dead_letters) == (2, 1, 2, 1)
    assert [row.report_count for row in map_rows(engine, Device)] == [2]


def map_rows(engine: Engine, model: Any) -> list[Any]:
    table = model.__table__
    with engine.connect() as connection:
        return list(connection.execute(select(table).order_by(*table.primary_key.columns)))


def test_a_late_older_report_is_history_but_not_latest_state(store: ArchiveStore, engine: Engine) -> None:
    write(store, [f.status_report(2, {"cur_power": 200}, when=f.at(200))])
    write(store, [f.status_report(1, {"cur_power": 100, "switch_1": True}, when=f.at(100))])
    state = {row.code: (row.value, row.reported_at) for row in map_rows(engine, DeviceState)}
    assert state == {"cur_power": (200, f.at(200)), "switch_1": (True, f.at(100))}
    history = sorted((row.reported_at, row.value) for row in map_rows(engine, DeviceStatus) if row.code == "cur_power")
    assert history == [(f.at(100), 100), (f.at(200), 200)]
    [device] = map_rows(engine, Device)
    assert (device.first_seen_at, device.last_seen_at, device.report_count) == (f.at(100), f.at(200), 2)


def test_a_late_older_event_does_not_change_the_device(store: ArchiveStore, engine: Engine) -> None:
    write(store, [f.device_event(3, "online", when=f.at(30)), f.device_event(4, "name_updated", {"name": "new"})])
    write(store, [f.device_event(1, "offline", when=f.at(10)), f.device_event(2, "name_updated", {"name": "old"})])
    [device] = map_rows(engine, Device)
    assert (device.online, device.online_changed_at, device.name) == (True, f.at(30), "new")


def test_a_device_bound_again_after_deletion_is_not_deleted(store: ArchiveStore, engine: Engine) -> None:
    write(store, [f.device_event(1, "deleted", {"uid": "eu17"}, when=f.at(10))])
    assert map_rows(engine, Device)[0].deleted_at == f.at(10)
    write(store, [f.device_event(2, "bound", {"uid": "eu18"}, when=f.at(20))])
    write(store, [f.device_event(3, "deleted", {"uid": "eu17"}, when=f.at(5))])  # late, older
    [device] = map_rows(engine, Device)
    assert (device.deleted_at, device.owner_uid) == (None, "eu18")


@pytest.mark.parametrize("bind_first", [False, True])
def test_a_bind_in_the_same_second_as_a_deletion_wins_whatever_the_batches(
    store: ArchiveStore, engine: Engine, bind_first: bool
) -> None:
    deleted = f.device_event(1, "deleted", {"uid": "eu17"}, when=f.at(10))
    bound = f.device_event(2, "bound", {"uid": "eu18"}, when=f.at(10))
    for event in [bound, deleted] if bind_first else [deleted, bound]:
        write(store, [event])  # a batch each: the same rule as within one batch (streams.store.facts)
    [device] = map_rows(engine, Device)
    assert (device.deleted_at, device.owner_uid) == (None, "eu18")


@pytest.mark.parametrize("online_first", [False, True])
@pytest.mark.parametrize("batches", [1, 2])
def test_online_wins_a_tie_with_offline_in_devices_and_the_periods_view(
    store: ArchiveStore, engine: Engine, online_first: bool, batches: int
) -> None:
    """A reconnect reported within one second, in either order, in one batch or two: online, in both places."""
    offline, online = (f.device_event(n, event, when=f.at(10)) for n, event in ((8, "offline"), (9, "online")))
    events = [online, offline] if online_first else [offline, online]
    for batch in [events] if batches == 1 else [[event] for event in events]:
        write(store, batch)
    [device] = map_rows(engine, Device)
    assert (device.online, device.online_changed_at) == (True, f.at(10))
    with engine.connect() as connection:
        periods = connection.execute(select(device_online_periods.c.state, device_online_periods.c.ended_at)).all()
        shown = online_periods(connection, f.DEVICE, f.at(0), f.at(20))
    current = [state for state, ended in periods if ended is None]
    assert (current, [row.state for row in shown][-1]) == (["online"], "online")


def test_ids_no_index_can_take_do_not_block_the_batch_they_are_in(store: ArchiveStore, engine: Engine) -> None:
    """Payloads as Tuya's stream could carry them, sealed, decoded and stored in one batch: a code of 3,000
    characters or with a NUL, a devId with a NUL, a name of 3,000 characters; the good messages are stored, those
    without a usable devId or item are dead letters, and nothing is retried for ever."""
    key = "0123456789abcdef0123456789abcdef"
    sealer, decoder = Sealer(key), MessageDecoder(key)
    payloads = [
        (4, {"devId": "d1", "status": [{"code": "ok1", "value": 1, "t": 1_700_000_000_000}]}),
        (4, {"devId": "d1", "status": [{"code": "c" * 3000, "value": 2, "t": 1_700_000_000_001}]}),
        (4, {"devId": "d1", "status": [{"code": "c\x00x", "2": 3, "value": 3, "t": 1_700_000_000_002}]}),
        (4, {"devId": "d\x001", "status": [{"code": "ok", "value": 4, "t": 1_700_000_000_003}]}),
        (20, {"bizCode": "nameUpdate", "devId": "d1", "bizData": {"name": "n" * 3000, "time": 1_700_000_000}}),
        (4, {"devId": "d1", "status": [{"code": "ok2", "value": 5, "t": 1_700_000_000_004}]}),
    ]
    decoded = []
    for n, (protocol, body) in enumerate(payloads):
        payload, properties = sealer.seal(json.dumps(body).encode(), protocol, 1_700_000_000_000 + n, "ecb", b"")
        message = PulsarMessage(payload=payload, properties=properties, message_id=f"m{n}", topic="t")
        decoded.append(decoder.decode(message))
    good = [item for item in decoded if isinstance(item, Decoded)]
    dead = [item for item in decoded if isinstance(item, DeadLetter)]
    assert [(letter.message_id, letter.error_kind) for letter in dead] == [
        ("m1", "bad_status_report"),
        ("m3", "missing_device_id"),
    ]
    counts = store.write_batch(good, dead, received_at=f.at(1000))
    assert (counts.messages_inserted, counts.dead_letters) == (4, 2)
    with engine.connect() as connection:
        values = connection.execute(select(DeviceStatus.code, DeviceStatus.dp_id, DeviceStatus.message_id)).all()
    assert sorted(values, key=lambda row: row.message_id) == [("ok1", None, "m0"), (None, 2, "m2"), ("ok2", None, "m5")]
    [device] = map_rows(engine, Device)
    assert (device.device_id, device.name) == ("d1", None)  # the name is kept in the event's data only


def test_unicode_names_and_values_round_trip(store: ArchiveStore, engine: Engine) -> None:
    name = "Küche Steckdose 厨房 🔌 Ωμέγα"
    write(store, [f.device_event(1, "name_updated", {"name": name}), f.status_report(2, {"mode": "夜间 🌙"})])
    with engine.connect() as connection:
        row = connection.execute(select(latest_status)).one()
    assert (row.device_name, row.code, row.value) == (name, "mode", "夜间 🌙")


def test_a_nul_character_in_a_name_does_not_block_the_batch(store: ArchiveStore, engine: Engine) -> None:
    counts = write(store, [f.device_event(1, "name_updated", {"name": "Kü\x00che"}), f.status_report(2, {"a": 1})])
    assert counts.messages_inserted == 2
    [device] = map_rows(engine, Device)
    # PostgreSQL text cannot hold NUL: it becomes U+FFFD there; the messages row keeps the payload as sent.
    assert device.name == ("Kü\ufffdche" if engine.dialect.name == "postgresql" else "Kü\x00che")
    payloads = [row.payload for row in map_rows(engine, Message)]
    assert {"name": "Kü\x00che"} in [payload.get("bizData") for payload in payloads]


@pytest.mark.parametrize(
    "value",
    [
        "x" * (1 << 20),
        2**64 + 1,
        -(2**70),
        12345678901234567890.5,
        {"deep": [[[[{"k": "v" * 1000}]]]] * 50},
        None,
    ],
    ids=["1MiB-string", "int-above-64-bits", "negative-int", "float", "nested", "null"],
)
def test_very_large_values_round_trip(store: ArchiveStore, engine: Engine, value: Any) -> None:
    write(store, [f.status_report(1, {"raw": value})])
    [status] = map_rows(engine, DeviceStatus)
    [state] = map_rows(engine, DeviceState)
    assert status.value == value
    assert state.value == value


def test_a_message_keeps_its_payload_text_as_decrypted(store: ArchiveStore, engine: Engine) -> None:
    text = '{"bizCode": "nameUpdate", "devId": "bf1", "bizData": {"name": "K\\u00fcche", "t": 21.50}, "ts": 1}'
    write(store, [Decoded(msgspec.structs.replace(f.decoded_message(1, {}), payload=text), [])])
    with engine.connect() as connection:
        assert connection.scalar(select(cast(Message.payload, Text))) == text


def test_a_large_dead_letter_payload_is_kept_byte_for_byte(store: ArchiveStore, engine: Engine) -> None:
    payload = bytes(range(256)) * 4096
    write(store, [], [f.dead_letter(1, payload=payload, error="Ungültig: 解密失败")])
    [letter] = snapshot(engine)["dead_letters"]
    assert (letter[2], letter[5]) == (payload, "Ungültig: 解密失败")


def test_times_read_back_as_aware_utc(store: ArchiveStore, engine: Engine) -> None:
    write(store, [f.status_report(1, {"a": 1})])
    [status] = map_rows(engine, DeviceStatus)
    assert status.reported_at == f.at(1)
    assert status.reported_at.tzinfo is UTC


def test_extra_runs_first_in_the_same_transaction(store: ArchiveStore, engine: Engine) -> None:
    write(store, [f.status_report(1, {"a": 1})])
    seen: list[tuple[int, int]] = []

    def extra(connection: Connection) -> None:
        messages = connection.execute(select(Message.__table__)).all()
        state = connection.execute(select(DeviceState.__table__)).all()
        seen.append((len(messages), len(state)))
        connection.execute(RuleState.__table__.insert(), [{"rule_id": "r", "device_id": f.DEVICE, "data": {}}])

    write_with(store, [f.status_report(2, {"a": 2, "b": 3})], extra)
    assert seen == [(1, 1)]  # the archive before this batch
    assert [row.rule_id for row in map_rows(engine, RuleState)] == ["r"]
    assert len(map_rows(engine, DeviceState)) == 2


def write_with(store: ArchiveStore, decoded: Sequence[Decoded], extra: Any) -> BatchCounts:
    return store.write_batch(decoded, [], received_at=f.at(1000), extra=extra)


def test_a_failing_extra_stores_nothing(store: ArchiveStore, engine: Engine) -> None:
    def extra(connection: Connection) -> None:
        raise RuntimeError("rules failed")

    with pytest.raises(RuntimeError, match="rules failed"):
        write_with(store, mixed_batch(1, 5), extra)
    assert all(rows == [] for rows in snapshot(engine).values())


def test_history_kept_past_its_message_is_not_duplicated(store: ArchiveStore, engine: Engine) -> None:
    write(store, mixed_batch(1, 10))
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM messages")  # as `purge --table messages` would
    before = snapshot(engine)
    write(store, mixed_batch(1, 10))
    after = snapshot(engine)
    for table in ("device_status", "device_events", "user_events", "device_state"):
        assert after[table] == before[table]
    assert len(after["messages"]) == 10


def test_extra_of_a_retried_batch_commits_once(store: ArchiveStore, engine: Engine) -> None:
    write(store, mixed_batch(1, 10))
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM messages")  # PostgreSQL's COPY now meets stored history: a retry
    calls: list[int] = []

    def extra(connection: Connection) -> None:
        calls.append(1)
        connection.execute(RuleState.__table__.insert(), [{"rule_id": "r", "device_id": "", "data": {}}])

    write_with(store, mixed_batch(1, 10), extra)
    assert len(calls) == (2 if engine.dialect.name == "postgresql" else 1)
    assert len(map_rows(engine, RuleState)) == 1


def test_concurrent_writers_of_one_batch_store_it_once(store: ArchiveStore, engine: Engine) -> None:
    batch = mixed_batch(1, 200)
    results: list[BatchCounts] = []
    writers = [threading.Thread(target=lambda: results.append(write(ArchiveStore(engine), batch))) for _ in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert sorted(counts.messages_inserted for counts in results) == [0, 200]
    once = snapshot(engine)
    truncate_all(engine)
    write(ArchiveStore(engine), batch)  # a new store: the series it knew are gone
    assert snapshot(engine) == once


def test_an_empty_batch_touches_nothing(store: ArchiveStore) -> None:
    assert write(store, []) == BatchCounts()


def test_unreachable_database_raises_database_unavailable(tmp_path: Path) -> None:
    engines = [make_engine(f"sqlite:///{tmp_path}/missing/folder/a.db"), make_engine(unused_postgres_url())]
    try:
        for engine in engines:
            with pytest.raises(DatabaseUnavailable, match="storing a batch"):
                ArchiveStore(engine).write_batch([f.status_report(1, {"a": 1})], [], received_at=f.T0)
    finally:
        for engine in engines:
            engine.dispose()


def unused_postgres_url() -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/app"


def _device(device_id: str, first: int, last: int, reports: int, **facts: Any) -> tuple[Any, ...]:
    """A ``devices`` row (DEVICE_COLUMNS) with times as SQLite's driver writes them; ``facts``: the other columns."""
    row = {column: None for column in DEVICE_COLUMNS} | facts
    row |= {"device_id": device_id, "first_seen_at": f.at(first), "last_seen_at": f.at(last), "report_count": reports}
    return tuple(sqlite_time(value) if isinstance(value, datetime) else value for value in row.values())


def _devices_after(path: Path, stored: list[tuple[Any, ...]], upsert: Callable[[sqlite3.Cursor], None]) -> list[Any]:
    """The ``devices`` rows of a new SQLite archive holding ``stored`` once ``upsert`` ran in a transaction."""
    with migrated_engine(f"sqlite:///{path}") as engine:
        connection = engine.raw_connection()
        cursor = connection.cursor()
        cursor.executemany(sqlite_insert(DEVICES), stored)
        upsert(cursor)
        connection.commit()
        rows = cursor.execute("SELECT * FROM devices ORDER BY device_id").fetchall()
        connection.close()
    return rows


def test_sqlite_upserts_devices_that_only_reported_as_the_whole_statement_would(tmp_path: Path) -> None:
    stored = [
        _device("bf-plain", 10, 20, 3),
        _device("bf-told", 10, 20, 3, product_key="p1", name="Kitchen", name_updated_at=f.at(5), online=True,
                online_changed_at=f.at(6), owner_uid="eu1", owner_updated_at=f.at(7)),
        _device("bf-deleted", 10, 20, 3, owner_uid="eu1", owner_updated_at=f.at(4), deleted_at=f.at(8)),
        # as a sync may leave it: marked deleted before the bind it had not heard of; the upsert clears the deletion
        _device("bf-bound-later", 10, 20, 3, owner_uid="eu1", owner_updated_at=f.at(9), deleted_at=f.at(8)),
    ]  # fmt: skip
    reports = [
        _device("bf-plain", 5, 15, 2, product_key="p2"),
        _device("bf-told", 12, 30, 1),
        _device("bf-deleted", 15, 25, 4, product_key="p3"),
        _device("bf-bound-later", 30, 40, 1),
        _device("bf-new", 1, 2, 1, product_key="p4"),
    ]
    named = _device("bf-told", 25, 25, 0, name="Hall", name_updated_at=f.at(25))
    statements: list[str] = []

    def split(cursor: sqlite3.Cursor) -> None:
        cursor.connection.set_trace_callback(statements.append)
        SqliteDriver().upsert(cursor, DEVICES, [*reports, named])

    def whole(cursor: sqlite3.Cursor) -> None:
        cursor.executemany(sqlite_insert(DEVICES), reports)
        cursor.executemany(sqlite_insert(DEVICES), [named])

    split_rows = _devices_after(tmp_path / "split.db", stored, split)
    assert split_rows == _devices_after(tmp_path / "whole.db", stored, whole)
    by_id = {row[0]: row for row in split_rows}
    assert (by_id["bf-plain"][1], by_id["bf-told"][2], by_id["bf-deleted"][1]) == ("p2", "Hall", "p3")
    assert [row[10] for row in split_rows] == [None, sqlite_time(f.at(8)), None, None, None]  # bound-later cleared
    # the five reports went through the statement of five columns, the rename through the whole one (the trace shows
    # each row's statement with its values bound: compared up to its VALUES)
    ran = [statement.split(" VALUES")[0] for statement in statements]
    assert ran.count(sqlite_insert(DEVICES_SEEN).split(" VALUES")[0]) == len(reports)
    assert ran.count(sqlite_insert(DEVICES).split(" VALUES")[0]) == 1


def _pragmas(url: str, *names: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return [connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in names]
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_rare_checkpoints(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    pragmas = _pragmas(url, "journal_mode", "synchronous", "busy_timeout", "page_size", "wal_autocheckpoint")
    journal, synchronous, busy, page_bytes, checkpoint = pragmas
    assert (journal, synchronous) == ("wal", 1)  # synchronous=NORMAL
    assert busy is not None and busy >= 5000
    assert page_bytes == PAGE_BYTES > 4096  # SQLite's default, which wrote more pages a commit
    # SQLite's default (1,000 pages) made every commit a checkpoint
    assert checkpoint * page_bytes == WAL_AUTOCHECKPOINT_BYTES > 1000 * 4096


def test_an_archive_made_with_4_kib_pages_keeps_them_and_checkpoints_at_the_same_wal_size(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    made = sqlite3.connect(path)
    made.execute("PRAGMA journal_mode=WAL")  # what an archive made before 16 KiB pages has
    made.close()
    page_bytes, checkpoint = _pragmas(f"sqlite:///{path}", "page_size", "wal_autocheckpoint")
    assert page_bytes == 4096
    assert checkpoint * 4096 == WAL_AUTOCHECKPOINT_BYTES


def test_a_series_created_by_a_rolled_back_attempt_is_created_again(store: ArchiveStore, engine: Engine) -> None:
    write(store, mixed_batch(1, 10))
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM messages")  # PostgreSQL's COPY now meets stored history: a retry
    write(store, [*mixed_batch(1, 10), f.status_report(50, {"new_code": 1})])
    write(store, [f.status_report(51, {"new_code": 2})])  # the series as the store now knows it
    values = [row.value for row in map_rows(engine, DeviceStatus) if row.code == "new_code"]
    assert sorted(values) == [1, 2]


def test_named_and_unnamed_values_of_one_device_in_one_write(engine: Engine) -> None:
    rows = [  # status rows as the store builds them; the second item carried only a DP id
        ("m1", 0, f.DEVICE, "cur_power", "5", 19, f.at(1), None),
        ("m1", 1, f.DEVICE, None, "7", 101, f.at(1), None),
    ]
    with engine.begin() as connection:
        RowWriter(connection).insert_status(rows, stored="add")  # on PostgreSQL through the stage tables
    stored = sorted((row.code or "", row.dp_id, row.value) for row in map_rows(engine, DeviceStatus))
    assert stored == [("", 101, 7), ("cur_power", 19, 5)]


def test_a_message_keeps_a_time_its_values_share_once_and_widens_it_when_values_are_added(engine: Engine) -> None:
    truncate_all(engine)  # the module's archive: tests without the store fixture leave their rows
    messages = StatusMessage.__table__
    first = [
        ("m1", 0, f.DEVICE, "cur_power", "5", 19, f.at(1), None),
        ("m1", 1, f.DEVICE, "switch_1", "true", 1, f.at(1), None),
        ("m2", 0, f.DEVICE, "cur_power", "6", 19, f.at(2), None),
        ("m2", 1, f.DEVICE, "switch_1", "false", 1, f.at(3), None),
    ]
    with engine.begin() as connection:
        RowWriter(connection).insert_status(first, stored="add")
    places = select(messages.c.message_id, messages.c.first_at, messages.c.last_at)
    with engine.connect() as connection:
        assert sorted(map(tuple, connection.execute(places))) == [("m1", f.at(1), None), ("m2", f.at(2), f.at(3))]
    with engine.begin() as connection:  # as replay stores a value its new reading of m1 adds
        RowWriter(connection).insert_status([("m1", 2, f.DEVICE, "temp", "21", 3, f.at(5), None)], stored="add")
    with engine.connect() as connection:
        times = connection.execute(places).all()
        m1 = connection.execute(select(DeviceStatus.item_index).where(DeviceStatus.message_id == "m1")).scalars()
        assert sorted(m1) == [0, 1, 2]
    assert sorted(map(tuple, times)) == [("m1", f.at(1), f.at(5)), ("m2", f.at(2), f.at(3))]
