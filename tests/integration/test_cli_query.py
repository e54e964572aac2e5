"""``tuya-archiver db``, ``devices``, ``history`` and ``purge`` on a seeded SQLite and PostgreSQL archive
(streams/cli/db.py, streams/cli/query.py, streams/store/query.py, streams/store/retention.py)."""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, insert, select, text

from models.tables import (
    Command,
    DataPoint,
    DeadLetter,
    DeviceEvent,
    DeviceState,
    DeviceStatus,
    Gap,
    Message,
    StatusMessage,
)
from streams.cli import main
from streams.outbox.sql import latest_online_events
from streams.store import migrate
from streams.store.compact import ArchiveInUse, compact
from streams.store.engine import make_engine, make_readonly_engine
from streams.store.sql import ArchiveStore
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, scratch_database

pytestmark = pytest.mark.integration

A = f.DEVICE
B = "bf-second-device"


def seed(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        batch = [
            f.status_report(1, {"switch_1": True, "cur_power": 120}),
            f.device_event(2, "name_updated", {"name": "Küche 厨房"}),
            f.device_event(3, "online"),
            f.status_report(4, {"cur_power": 95}),
            f.status_report(5, {"cur_power": 7}, device=B),
            f.device_event(6, "offline", device=B),
        ]
        ArchiveStore(engine).write_batch(batch, [], received_at=f.at(10))
        with engine.begin() as connection:
            connection.execute(insert(DataPoint), [POWER, SWITCH])
    finally:
        engine.dispose()


def _point(code: str, type_: str, **facts: object) -> dict[str, object]:
    base = {"product_id": f.PRODUCT, "code": code, "type": type_, "reported": True, "commandable": False}
    blank = dict.fromkeys(("dp_id", "unit", "min", "max", "step"), None) | {"scale": 0}
    return {**base, **blank, "spec": {}, "synced_at": f.at(9), **facts}


# The product's specification as `sync` stores it: cur_power in W×10.
POWER = _point("cur_power", "Integer", dp_id=19, unit="W", scale=1, min=0, max=50000, step=1)
SWITCH = _point("switch_1", "Boolean", dp_id=1, commandable=True)


@pytest.fixture(scope="module", params=DIALECTS)
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scratch_database(request, tmp_path_factory.mktemp("cli")) as url:
        seed(url)
        yield url


@pytest.fixture(params=DIALECTS)
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with scratch_database(request, tmp_path) as url:
        yield url


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no wrapping in the captured output
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_devices_prints_csv_when_piped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "devices")
    assert status == 0
    assert out.splitlines() == [
        "device_id,name,category,product_key,product_name,online,last_seen_at,report_count,synced_at,deleted_at",
        f"{A},Küche 厨房,,{f.PRODUCT},,true,2026-11-01T12:00:04+00:00,2,,",
        f"{B},,,{f.PRODUCT},,false,2026-11-01T12:00:06+00:00,1,,",
    ]


def test_devices_as_json_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "devices", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert rows[0] == {
        "device_id": A,
        "name": "Küche 厨房",
        "category": None,
        "product_key": f.PRODUCT,
        "product_name": None,
        "online": True,
        "last_seen_at": "2026-11-01T12:00:04+00:00",
        "report_count": 2,
        "synced_at": None,
        "deleted_at": None,
    }
    assert [row["online"] for row in rows] == [True, False]


def test_devices_as_a_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str) -> None:
    status, out = run(monkeypatch, capsys, seeded, "devices", "--format", "table")
    assert status == 0
    assert "2 devices" in out
    assert "Küche 厨房" in out
    assert "2026-11-01 12:00:04.000+00:00" in out


def test_history_by_name_in_time_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "history", "Küche 厨房")
    assert status == 0
    assert out.splitlines() == [
        "reported_at,device_id,device_name,code,value,value_scaled,unit,dp_id,message_id",
        f"2026-11-01T12:00:01+00:00,{A},Küche 厨房,switch_1,true,true,,1,{f.message_id(1)}",
        f"2026-11-01T12:00:01+00:00,{A},Küche 厨房,cur_power,120,12.0,W,2,{f.message_id(1)}",
        f"2026-11-01T12:00:04+00:00,{A},Küche 厨房,cur_power,95,9.5,W,1,{f.message_id(4)}",
    ]


def test_history_filters_by_code_and_time(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    argv = ("history", A, "--code", "cur_power", "--since", "2026-11-01T12:00:00Z", "--until", "2026-11-01T12:00:03")
    status, out = run(monkeypatch, capsys, seeded, *argv, "--format", "json")
    assert status == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "reported_at": "2026-11-01T12:00:01+00:00",
            "device_id": A,
            "device_name": "Küche 厨房",
            "code": "cur_power",
            "value": 120,
            "value_scaled": 12.0,
            "unit": "W",
            "dp_id": 2,
            "message_id": f.message_id(1),
        }
    ]


def test_history_limit_keeps_the_newest(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "history", A, "--limit", "2")
    assert status == 0
    assert [line.split(",")[3:5] for line in out.splitlines()[1:]] == [["cur_power", "120"], ["cur_power", "95"]]


def test_history_as_a_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str) -> None:
    status, out = run(monkeypatch, capsys, seeded, "history", A, "--format", "table")
    assert status == 0
    assert f"Küche 厨房 ({A}): 3 values" in out
    assert "2026-11-01 12:00:04.000+00:00" in out
    assert "cur_power" in out
    assert "9.5 W" in out  # 95 reported, in W×10
    assert "yes" in out  # switch_1 = true
    status, out = run(monkeypatch, capsys, seeded, "history", A, "--code", "nosuch", "--format", "table")
    title = "".join(out.split())  # rich wraps the title of a narrow table, anywhere
    assert status == 0 and f"Küche厨房({A}):0values" in title  # named when no value is (it read the id alone)
    status, out = run(monkeypatch, capsys, seeded, "history", B, "--code", "nosuch", "--format", "table")
    title = "".join(out.split())
    assert status == 0 and f"{B}:0values" in title and f"({B})" not in title  # no name: the id once


def test_history_as_json_carries_the_raw_and_the_scaled_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "history", B, "--format", "json")
    row = json.loads(out.splitlines()[0])
    assert (status, row["value"], row["value_scaled"], row["unit"]) == (0, 7, 0.7, "W")


def test_one_device_shows_its_latest_values_in_units(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "devices", "Küche 厨房", "--format", "table")
    assert status == 0
    assert f"Küche 厨房 ({A}): latest value of 2 codes" in out
    assert "9.5 W" in out
    status, out = run(monkeypatch, capsys, seeded, "devices", A, "--format", "json")
    latest = {row["code"]: row for row in map(json.loads, out.splitlines())}
    assert (latest["cur_power"]["value"], latest["cur_power"]["value_scaled"]) == (95, 9.5)
    assert (latest["cur_power"]["unit"], latest["cur_power"]["source"]) == ("W", "stream")
    assert (latest["switch_1"]["value"], latest["switch_1"]["value_scaled"], latest["switch_1"]["unit"]) == (
        True,
        True,
        None,
    )


def test_history_of_an_unknown_device_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "history", "Wohnzimmer")
    assert status == 1
    assert "no device has the id or name 'Wohnzimmer' (2 devices known" in out


def test_history_rejects_a_bad_since(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "history", A, "--since", "yesterday")
    assert status == 2
    assert "'yesterday' is neither a duration" in out
    status, out = run(monkeypatch, capsys, seeded, "history", A, "--since", "1h", "--until", "2h")  # both ago
    assert status == 2
    assert "--since (" in out and ") must be before --until (" in out


def test_query_commands_on_an_empty_database_say_to_upgrade(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    status, out = run(monkeypatch, capsys, empty, "devices")
    assert status == 2
    assert "run `tuya-archiver db upgrade`" in out


@pytest.mark.parametrize("command", [("devices",), ("history", A), ("gaps",), ("purge", "--older-than", "30d")])
def test_a_command_on_an_archive_file_that_is_not_there_says_so_and_makes_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.db"
    status, out = run(monkeypatch, capsys, f"sqlite:///{missing}", *command)
    assert (status, missing.exists()) == (2, False)
    assert f"DATABASE_URL: there is no archive at {missing}: run `tuya-archiver db upgrade`" in out


@pytest.mark.parametrize("command", [("current",), ("downgrade", "-1"), ("check",), ("compact",)])
def test_a_db_command_on_an_archive_file_that_is_not_there_says_so_and_makes_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, command: tuple[str, ...]
) -> None:
    missing = tmp_path / "typo.db"
    status, out = run(monkeypatch, capsys, f"sqlite:///{missing}", "db", *command)
    assert (status, missing.exists()) == (2, False)
    assert f"DATABASE_URL: there is no archive at {missing}: run `tuya-archiver db upgrade`" in out


def test_a_file_named_file_colon_is_no_uri_without_uri_true(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # SQLite makes a file named "file:x.db" here
    assert run(monkeypatch, capsys, "sqlite:///file:x.db", "db", "upgrade")[0] == 0
    status, out = run(monkeypatch, capsys, "sqlite:///file:x.db", "db", "current")
    assert status == 0 and "(head)" in out


def test_an_sqlite_uri_flag_is_read_as_sqlalchemy_reads_it_and_mode_only_with_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    made = tmp_path / "made.db"
    assert run(monkeypatch, capsys, f"sqlite:///{made}", "db", "upgrade")[0] == 0
    status, out = run(monkeypatch, capsys, f"sqlite:///file:{made}?uri=1", "db", "current")
    assert status == 0 and "(head)" in out
    missing = tmp_path / "typo.db"
    for query in ("mode=memory", "uri=true&mode=memory"):  # SQLite reads mode only in a file: URI
        with warnings.catch_warnings():  # SQLAlchemy's own, that it ignores mode without uri
            warnings.simplefilter("ignore")
            status, out = run(monkeypatch, capsys, f"sqlite:///{missing}?{query}", "db", "current")
        assert (status, list(tmp_path.iterdir())) == (2, [made])


@pytest.mark.parametrize("uri", ["file:{}", "file://{}", "file://localhost{}"])
def test_a_db_command_on_an_sqlite_uri_naming_no_file_says_so_and_makes_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, uri: str
) -> None:
    missing = tmp_path / "typo.db"
    status, out = run(monkeypatch, capsys, f"sqlite:///{uri.format(missing)}?uri=true", "db", "current")
    assert (status, missing.exists()) == (2, False)
    assert f"there is no archive at {missing}" in out
    made = tmp_path / "made.db"
    assert run(monkeypatch, capsys, f"sqlite:///{uri.format(made)}?uri=true", "db", "upgrade")[0] == 0
    status, out = run(monkeypatch, capsys, f"sqlite:///{uri.format(made)}?uri=true", "db", "current")
    assert status == 0 and "(head)" in out


def test_db_check_of_an_archive_not_at_head_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    assert run(monkeypatch, capsys, empty, "db", "upgrade")[0] == 0
    assert run(monkeypatch, capsys, empty, "db", "downgrade", "-1")[0] == 0
    status, out = run(monkeypatch, capsys, empty, "db", "check")
    lines = [line for line in out.splitlines() if not line.startswith("INFO ")]  # Alembic's progress lines
    assert status == 2 and len(lines) == 1, out
    assert lines[0].startswith("tuya-archiver db check: ") and "tuya-archiver db current" in lines[0]


def test_an_archive_a_newer_version_upgraded_is_not_sent_to_db_upgrade(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    # Its revision is none of this version's, so `db upgrade` cannot reach it: a user who rolled the code back
    # was told to run it, and it failed.
    assert run(monkeypatch, capsys, empty, "db", "upgrade")[0] == 0
    engine = make_engine(empty)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f0e1d2c3b4a5'"))
    engine.dispose()
    newer = "database is at revision f0e1d2c3b4a5, which this version of tuya-archiver does not know"
    status, out = run(monkeypatch, capsys, empty, "devices")
    assert status == 2 and newer in out and "run `tuya-archiver db upgrade`" not in out
    status, out = run(monkeypatch, capsys, empty, "db", "current")
    assert status == 0 and newer in out


def test_db_upgrade_then_current(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    head = migrate.head_revision()
    not_made = 2 if empty.startswith("sqlite") else 1  # an SQLite file not made yet; an empty PostgreSQL database
    assert run(monkeypatch, capsys, empty, "db", "current", "--check")[0] == not_made
    status, out = run(monkeypatch, capsys, empty, "db", "upgrade")
    assert (status, out.strip().endswith(f"at revision {head} (head)")) == (0, True)
    status, out = run(monkeypatch, capsys, empty, "db", "current", "--check")
    assert (status, out.strip().endswith(f"{head} (head)")) == (0, True)
    status, out = run(monkeypatch, capsys, empty, "db", "check")
    assert (status, "the schema matches models/tables.py" in out) == (0, True)
    status, out = run(monkeypatch, capsys, empty, "db", "downgrade", "base")
    assert (status, "base (empty schema)" in out) == (0, True)


def test_purge_keeps_the_messages_of_the_last_day_that_tell_a_redelivery_from_news(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    now = datetime.now(UTC)
    seed_history(url, [(1, now - timedelta(hours=3)), (2, now - timedelta(days=2))])
    status, out = run(monkeypatch, capsys, url, "purge", "--older-than", "1h", "--table", "messages")
    assert status == 0 and "messages: deleted 1 rows" in out and "those of the last day are kept" in out
    engine = make_engine(url)
    with engine.connect() as connection:
        kept = connection.scalar(select(func.count()).select_from(Message))
    engine.dispose()
    assert kept == 1


@pytest.mark.parametrize("rows", ["0", "-5", "x"])
def test_purge_chunks_of_no_rows_are_refused(capsys: pytest.CaptureFixture[str], rows: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["purge", "--older-than", "90d", "--chunk-rows", rows])
    assert stopped.value.code == 2 and "--chunk-rows: must be a whole number of at least 1" in capsys.readouterr().err


def test_purge_older_than_before_year_one_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], seeded: str
) -> None:
    status, out = run(monkeypatch, capsys, seeded, "purge", "--older-than", "1000000d")
    assert status == 2 and "tuya-archiver purge: --older-than reaches before year 1" in out


def test_gaps_counts_a_partly_filled_gap_as_not_filled_and_overlapping_time_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    engine = make_engine(empty)
    migrate.upgrade(engine)
    hour = timedelta(hours=1)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    starts = {"filled": at, "partly_filled": at + hour / 2, "open": at + 3 * hour}  # the first two overlap
    rows = [
        {"started_at": start, "ended_at": start + hour, "detected_at": at, "status": status, "updated_at": at}
        for status, start in starts.items()
    ]
    with engine.begin() as connection:
        connection.execute(Gap.__table__.insert(), rows)
    engine.dispose()
    status, out = run(monkeypatch, capsys, empty, "gaps", "--format", "table")
    assert status == 0 and "3 gaps (2 not filled yet), 2h30m in all" in out  # an overlap counts once


@pytest.mark.parametrize("argv", [("upgrade", "nosuch"), ("upgrade", "+99"), ("downgrade", "-99")])
def test_db_to_a_revision_that_is_not_there_says_so_in_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str, argv: tuple[str, str]
) -> None:
    assert run(monkeypatch, capsys, empty, "db", "upgrade")[0] == 0
    status, out = run(monkeypatch, capsys, empty, "db", *argv)
    lines = [line for line in out.splitlines() if not line.startswith("INFO ")]  # Alembic's progress lines
    assert status == 2 and len(lines) == 1, out
    assert lines[0].startswith(f"tuya-archiver db {argv[0]}: ") and "tuya-archiver db current" in lines[0]


def test_db_compact_gives_back_what_purge_freed_and_moves_an_old_archive_to_16_kib_pages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "old.db"
    url = archive_with_4_kib_pages(path)
    now = datetime.now(UTC)
    seed_history(url, [(n, now - timedelta(days=100)) for n in range(3000)] + [(3000 + n, now) for n in range(5)])
    assert run(monkeypatch, capsys, url, "purge", "--older-than", "30d")[0] == 0
    rows, before = history(url), path.stat().st_size
    status, out = run(monkeypatch, capsys, url, "db", "compact")
    assert status == 0
    assert out.strip().endswith("pages of 4 KiB → 16 KiB")
    assert path.stat().st_size < before / 2  # the pages of 3,000 purged reports given back
    assert sqlite_pragmas(path, "page_size", "journal_mode") == [16384, "wal"]
    assert history(url) == rows
    assert len(rows) == 10  # the five recent reports' values


def test_db_compact_finds_the_file_an_sqlite_uri_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "uri.db"
    seed_history(archive_with_4_kib_pages(path), [(0, datetime.now(UTC))])
    status, out = run(monkeypatch, capsys, f"sqlite:///file:{path}?uri=true", "db", "compact")
    assert status == 0, out
    assert sqlite_pragmas(path, "page_size") == [16384]


def test_db_compact_of_an_archive_it_may_not_write_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "ro.db"
    seed_history(archive_with_4_kib_pages(path), [(0, datetime.now(UTC))])
    status, out = run(monkeypatch, capsys, f"sqlite:///file:{path}?mode=ro&uri=true", "db", "compact")
    assert status == 1 and "cannot be rewritten (a read-only file, folder or URL?)" in out, out  # not "open elsewhere"
    assert sqlite_pragmas(path, "page_size") == [4096]


def test_db_compact_leaves_an_archive_another_connection_has_open(tmp_path: Path) -> None:
    url = archive_with_4_kib_pages(tmp_path / "a.db")
    seed_history(url, [(0, datetime.now(UTC))])
    reader = make_readonly_engine(url)  # as `serve` has it open
    engine = make_engine(url)
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA busy_timeout=50"))
    try:
        with reader.connect() as connection:
            connection.exec_driver_sql("SELECT count(*) FROM status_values").scalar()
            with pytest.raises(ArchiveInUse, match="open elsewhere"):
                compact(engine)
    finally:
        engine.dispose()
        reader.dispose()
    assert sqlite_pragmas(tmp_path / "a.db", "journal_mode", "page_size") == ["wal", 4096]
    assert len(history(url)) == 2


def test_db_compact_is_for_sqlite_files(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg_url: str, tmp_path: Path
) -> None:
    status, out = run(monkeypatch, capsys, pg_url, "db", "compact")
    assert status == 1
    assert "db compact rewrites a SQLite file" in out
    status, out = run(monkeypatch, capsys, f"sqlite:///{tmp_path / 'typo.db'}", "db", "compact")
    assert (status, "there is no archive at" in out) == (2, True)
    assert not (tmp_path / "typo.db").exists()


def archive_with_4_kib_pages(path: Path) -> str:
    """A new SQLite file as SQLite made it before the engine asked for 16 KiB pages; its URL."""
    made = sqlite3.connect(path)
    made.execute("PRAGMA page_size=4096")
    made.execute("PRAGMA journal_mode=WAL")
    made.close()
    return f"sqlite:///{path}"


def seed_history(url: str, reports: list[tuple[int, datetime]]) -> None:
    """One two-value status report for each (number, time), stored as the worker stores them."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        store = ArchiveStore(engine)
        for when in sorted({when for _, when in reports}):
            batch = [f.status_report(n, {"a": n, "b": n}, when=when) for n, at in reports if at == when]
            store.write_batch(batch, [], received_at=when)
    finally:
        engine.dispose()


def history(url: str) -> list[tuple[object, ...]]:
    """Every value, as users read them (``device_status``)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            query = select(DeviceStatus.__table__).order_by(DeviceStatus.message_id, DeviceStatus.item_index)
            return [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()


def sqlite_pragmas(path: Path, *names: str) -> list[object]:
    connection = sqlite3.connect(path)
    try:
        return [connection.execute(f"PRAGMA {name}").fetchone()[0] for name in names]
    finally:
        connection.close()


def seed_for_purge(url: str, now: datetime) -> None:
    """Messages, history, dead letters and commands 100 days old and 1 day old; of each age a message of no known
    kind and a dead letter not replayed, the only records of their messages, which purge keeps."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        store = ArchiveStore(engine)
        for base, age in ((0, timedelta(days=100)), (100, timedelta(days=1))):
            when = now - age
            batch = [f.status_report(base + n, {"a": n, "b": n}, when=when) for n in range(5)]
            batch += [
                f.device_event(base + 5, "name_updated", {"name": "lamp"}, when=when),
                f.unknown_message(base + 8),
            ]
            store.write_batch(batch, [f.dead_letter(base + 6), f.dead_letter(base + 7)], received_at=when)
        with engine.begin() as connection:
            dead_letters = DeadLetter.__table__
            replayed = dead_letters.c.message_id.in_([f.message_id(6), f.message_id(106)])
            connection.execute(dead_letters.update().where(replayed).values(resolved_at=now, resolution="stored"))
            connection.execute(
                Command.__table__.insert(),
                [
                    command(key, status, now - timedelta(days=days))
                    for key, status, days in (("a", "sent", 100), ("b", "pending", 100), ("c", "sent", 1))
                ],
            )
    finally:
        engine.dispose()


def command(key: str, status: str, created_at: datetime) -> dict[str, object]:
    return {
        "idempotency_key": key,
        "rule_id": "r",
        "action": "tuya.send_command",
        "device_id": A,
        "commands": [{"code": "switch_1", "value": False}],
        "status": status,
        "created_at": created_at,
        "updated_at": created_at,
    }


def test_purge_deletes_old_rows_in_chunks_and_reports_counts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    seed_for_purge(empty, datetime.now(UTC))
    status, out = run(monkeypatch, capsys, empty, "purge", "--older-than", "30d", "--dry-run")
    assert status == 0
    expected = [
        "messages: {} 6 rows",
        "device_status: {} 10 rows",
        "device_events: {} 1 rows",
        "user_events: {} 0 rows",
        "dead_letters: {} 1 rows",
        "commands: {} 1 rows",
    ]
    assert out.splitlines()[:6] == [line.format("would delete") for line in expected]
    status, out = run(monkeypatch, capsys, empty, "purge", "--older-than", "30d", "--chunk-rows", "3")
    assert status == 0
    assert out.splitlines()[:6] == [line.format("deleted") for line in expected]
    assert out.splitlines()[6].startswith("deleted 19 rows older than ")
    # the purged values' messages leave status_messages too: five reports of two values each are left
    assert counts(empty) == {
        "messages": 8,  # the day-old batch's seven, and the old message of no known kind
        "device_status": 10,
        "status_messages": 5,
        "device_state": 2,
        "commands": 2,
        "dead_letters": 3,  # the day-old batch's two, and the old one not replayed
    }


def test_purge_of_one_table_leaves_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    seed_for_purge(empty, datetime.now(UTC))
    status, out = run(monkeypatch, capsys, empty, "purge", "--older-than", "2d", "--table", "device_status")
    assert (status, out.splitlines()[0]) == (0, "device_status: deleted 10 rows")
    assert counts(empty) == {
        "messages": 14,
        "device_status": 10,
        "status_messages": 5,
        "device_state": 2,
        "commands": 3,
        "dead_letters": 4,
    }


def test_purge_keeps_each_device_s_newest_online_and_offline_events_that_tell_a_late_one_from_news(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    # A device steady for weeks: without its last online event, replay --rules of an old offline fired as news.
    engine = make_engine(empty)
    migrate.upgrade(engine)
    old = datetime.now(UTC) - timedelta(days=100)
    events = [f.device_event(n, ("online", "offline")[n % 2], when=old + timedelta(minutes=n)) for n in range(9)]
    renamed = f.device_event(9, "name_updated", {"name": "lamp"}, when=old)
    # A device silent for longer, whose kept events come first in time: chunks go on past them.
    silent = [
        f.device_event(10 + n, "online", device="silent", when=old - timedelta(days=9, minutes=n)) for n in range(4)
    ]
    ArchiveStore(engine).write_batch([*events, renamed, *silent], [], received_at=old)
    with engine.connect() as connection:
        guard = latest_online_events(connection, [f.DEVICE, "silent"])
    assert guard[f.DEVICE][1] is True  # the last event, an online
    purge = ("purge", "--older-than", "30d", "--table", "device_events", "--chunk-rows", "2")
    status, out = run(monkeypatch, capsys, empty, *purge)
    assert (status, out.splitlines()[0]) == (0, "device_events: deleted 4 rows")  # 3 of 9, and the rename
    with engine.connect() as connection:
        assert latest_online_events(connection, [f.DEVICE, "silent"]) == guard
        kept = connection.scalars(select(DeviceEvent.message_id).order_by(DeviceEvent.message_id)).all()
    engine.dispose()
    assert kept == sorted([f.message_id(n) for n in range(3, 9)] + [f.message_id(10 + n) for n in range(4)])


def counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {
                model.__tablename__: connection.scalar(select(func.count()).select_from(model)) or 0
                for model in (Message, DeviceStatus, StatusMessage, DeviceState, Command, DeadLetter)
            }
    finally:
        engine.dispose()


def test_purge_needs_a_duration(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["purge", "--older-than", "ninety days"])
    assert exit_.value.code == 2
    assert "--older-than: 'ninety days' is not a duration" in capsys.readouterr().err
