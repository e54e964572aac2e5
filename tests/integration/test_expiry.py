"""Expiry of whole messages past KEEP_MESSAGES (streams/store/expiry.py) on SQLite and PostgreSQL, and in the worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from models.tables import DeviceEvent, DeviceStatus, Message
from streams.store import migrate
from streams.store.engine import make_engine
from streams.store.expiry import MessageExpiry
from streams.store.retention import POLICIES, purge_older
from streams.store.sql import ArchiveStore
from tests.integration.worker_harness import (
    fleet_messages,
    publish_all,
    run_worker,
    unique_access_id,
    wait_for,
    worker_env,
)
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, migrated_engine, scratch_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:
    with scratch_database(request, tmp_path) as url, migrated_engine(url) as engine:
        yield engine


def archive(engine: Engine, first: int, last: int, received_at: datetime) -> None:
    """Messages ``first``..``last``: a status report and a device event each, received at ``received_at``."""
    batch = []
    for n in range(first, last + 1, 2):
        batch += [f.status_report(n, {"cur_power": n}), f.device_event(n + 1, "online")]
    ArchiveStore(engine).write_batch(batch, [], received_at=received_at)


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            model.__tablename__: connection.scalar(select(func.count()).select_from(model)) or 0
            for model in (Message, DeviceStatus, DeviceEvent)
        }


def message_ids(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.scalars(select(Message.message_id)))


def test_messages_past_the_window_go_and_their_history_stays(engine: Engine) -> None:
    archive(engine, 1, 40, received_at=NOW - timedelta(days=20))
    archive(engine, 101, 110, received_at=NOW - timedelta(days=13, hours=23))
    expiry = MessageExpiry(engine, timedelta(days=14), clock=lambda: NOW)
    expiry.start()
    expiry.stop()
    assert (expiry.passes, expiry.expired) == (1, 40)
    assert message_ids(engine) == {f.message_id(n) for n in range(101, 111)}
    assert counts(engine) == {"messages": 10, "device_status": 25, "device_events": 25}


def test_a_message_of_no_known_kind_is_kept_past_the_window(engine: Engine) -> None:
    # Its messages row is its only record: a version that knows its kind derives it from there (replay --messages).
    batch = [f.unknown_message(1), f.status_report(2, {"cur_power": 5}), f.user_event(3, "registered")]
    ArchiveStore(engine).write_batch(batch, [], received_at=NOW - timedelta(days=20))
    MessageExpiry(engine, timedelta(days=14), clock=lambda: NOW).expire_once()
    assert message_ids(engine) == {f.message_id(1)}
    purge_older(engine, POLICIES["messages"], NOW)  # `purge --table messages`: the same policy
    assert message_ids(engine) == {f.message_id(1)}


def test_a_redelivered_expired_message_adds_no_history(engine: Engine) -> None:
    archive(engine, 1, 20, received_at=NOW - timedelta(days=20))
    MessageExpiry(engine, timedelta(days=14), clock=lambda: NOW).expire_once()
    before = counts(engine)
    archive(engine, 1, 20, received_at=NOW)
    assert counts(engine) == {**before, "messages": 20}


def test_a_pass_stops_between_chunks_when_asked(tmp_path) -> None:
    with migrated_engine(f"sqlite:///{tmp_path / 'archive.db'}") as engine:
        archive(engine, 1, 20, received_at=NOW - timedelta(days=20))
        asked = iter([False, True])
        deleted = purge_older(engine, POLICIES["messages"], NOW, chunk_rows=5, stopping=lambda: next(asked, True))
        assert deleted == 10
        assert counts(engine)["messages"] == 10


def test_the_worker_expires_old_messages_while_it_archives(pulsar_broker, sqlite_url) -> None:
    engine = make_engine(sqlite_url)
    try:
        archive(engine, 1, 30, received_at=datetime.now(UTC) - timedelta(days=3))
    finally:
        engine.dispose()
    access_id = unique_access_id()
    published = publish_all(pulsar_broker.url, access_id, fleet_messages(200))
    env = worker_env(access_id, pulsar_broker.url, sqlite_url, KEEP_MESSAGES="2d", SYNC_INTERVAL="0")
    result = run_worker(env, "--idle-timeout", "3")
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"expired 30 messages received before" in result.stderr
    engine = make_engine(sqlite_url)
    try:
        kept = message_ids(engine)
        assert len(kept) == published.valid
        assert not kept & {f.message_id(n) for n in range(1, 31)}
        assert counts(engine)["device_status"] == 15 + published.status_rows
    finally:
        engine.dispose()


def test_a_failed_pass_is_logged_and_the_next_one_runs(tmp_path, caplog) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.db'}")  # no tables yet: the first pass fails
    expiry = MessageExpiry(engine, timedelta(days=14), every_s=0.05, clock=lambda: NOW)
    try:
        expiry.start()
        assert wait_for(lambda: "expiring old messages failed (OperationalError" in caplog.text, timeout=10)
        migrate.upgrade(engine)
        archive(engine, 1, 10, received_at=NOW - timedelta(days=20))
        assert wait_for(lambda: expiry.expired == 10, timeout=10)
    finally:
        expiry.stop()
        engine.dispose()
