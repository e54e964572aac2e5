"""Recent status values settled into the history (streams/store/settle.py) on SQLite and PostgreSQL: what moves,
when the store settles, that a settle is one transaction, and that a value committed beside a settle stays."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from models.tables import Base, DeviceStatus
from streams.store.settle import Settler, settle
from streams.store.sql import ArchiveStore
from tests.unit.store import factories as f
from tests.unit.store.databases import DIALECTS, migrated_engine, scratch_database, truncate_all

pytestmark = pytest.mark.integration

NEVER_DUE = 1_000_000  # values wait in status_recent; these tests settle them themselves


@pytest.fixture(scope="module", params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with scratch_database(request, tmp_path_factory.mktemp("settle")) as url, migrated_engine(url) as engine:
        yield engine


@pytest.fixture(autouse=True)
def emptied(engine: Engine) -> Iterator[None]:
    yield
    truncate_all(engine)


def counts(engine: Engine) -> tuple[int, int]:
    """(values in status_recent, values in status_values)."""
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.scalar(select(func.count()).select_from(Base.metadata.tables[name]))
            for name in ("status_recent", "status_values")
        )


def history(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        view = DeviceStatus.__table__
        return [tuple(row) for row in connection.execute(select(view).order_by(view.c.message_id, view.c.item_index))]


def reports(first: int, last: int) -> list:
    """Status reports of two devices, three values each."""
    return [
        f.status_report(n, {"switch_1": n % 2 == 0, "cur_power": n, "cur_voltage": 2300 + n}, device=f"dev{n % 2}")
        for n in range(first, last + 1)
    ]


def test_settling_moves_every_recent_value_into_the_history_and_the_view_reads_the_same(engine: Engine) -> None:
    store = ArchiveStore(engine, settle_every=NEVER_DUE)
    store.write_batch(reports(1, 4), [], received_at=f.at(100))
    before = history(engine)
    assert len(before) == 12
    assert counts(engine) == (12, 0)
    with engine.begin() as connection:
        assert settle(connection) == 12
    assert counts(engine) == (0, 12)
    assert history(engine) == before
    store.write_batch(reports(5, 6), [], received_at=f.at(100))  # settled and recent values, read together
    assert counts(engine) == (6, 12)
    assert len(history(engine)) == 18


def test_the_store_settles_once_enough_values_wait(engine: Engine) -> None:
    store = ArchiveStore(engine, settle_every=9)
    store.write_batch(reports(1, 2), [], received_at=f.at(100))
    assert store.settle_when_due() == 0  # 6 values wait
    assert counts(engine) == (6, 0)
    store.write_batch(reports(3, 3), [], received_at=f.at(100))
    assert store.settle_when_due() == 9
    assert counts(engine) == (0, 9)
    store.write_batch(reports(1, 3), [], received_at=f.at(100))  # a redelivery: nothing new waits
    assert store.settle_when_due() == 0
    assert counts(engine) == (0, 9)


def test_a_store_that_does_not_settle_writes_straight_into_the_history(engine: Engine) -> None:
    ArchiveStore(engine).write_batch(reports(1, 2), [], received_at=f.at(100))  # replay, backfill; PostgreSQL's worker
    assert counts(engine) == (0, 6)
    assert len(history(engine)) == 6


def test_a_new_store_counts_the_values_left_waiting_before_it(engine: Engine) -> None:
    ArchiveStore(engine, settle_every=NEVER_DUE).write_batch(reports(1, 3), [], received_at=f.at(100))  # stopped
    assert ArchiveStore(engine, settle_every=10).settle_when_due() == 0
    assert ArchiveStore(engine, settle_every=9).settle_when_due() == 9
    assert counts(engine) == (0, 9)


def test_a_store_that_does_not_settle_settles_what_an_earlier_one_left_waiting_once(engine: Engine) -> None:
    ArchiveStore(engine, settle_every=NEVER_DUE).write_batch(reports(1, 2), [], received_at=f.at(100))
    store = ArchiveStore(engine)  # HISTORY_SETTLE_VALUES=0 since
    store.write_batch(reports(3, 3), [], received_at=f.at(200))
    assert counts(engine) == (6, 3)
    assert store.settle_when_due() == 6
    assert counts(engine) == (0, 9)
    ArchiveStore(engine, settle_every=NEVER_DUE).write_batch(reports(4, 4), [], received_at=f.at(300))
    assert store.settle_when_due() == 0  # once: what waits now is another store's
    assert counts(engine) == (3, 9)


def test_a_settle_rolled_back_leaves_every_value_where_it_was(engine: Engine) -> None:
    ArchiveStore(engine, settle_every=NEVER_DUE).write_batch(reports(1, 2), [], received_at=f.at(100))
    before = history(engine)
    with engine.connect() as connection, connection.begin() as transaction:
        assert settle(connection) == 6
        transaction.rollback()  # as a kill -9 would leave it: the transaction never commits
    assert counts(engine) == (6, 0)
    assert history(engine) == before


def test_a_value_another_worker_commits_while_a_settle_is_open_stays_recent(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock keeps every other writer out of a settle's transaction")
    ArchiveStore(engine, settle_every=NEVER_DUE).write_batch(reports(1, 2), [], received_at=f.at(100))
    with engine.connect() as connection, connection.begin():
        assert settle(connection) == 6
        another_worker = ArchiveStore(engine, settle_every=NEVER_DUE)
        another_worker.write_batch(reports(3, 3), [], received_at=f.at(100))
    assert counts(engine) == (3, 6)
    assert len(history(engine)) == 9


def test_a_settle_moves_a_range_of_series_a_check_until_it_reached_the_last(engine: Engine) -> None:
    store = ArchiveStore(engine, settle_every=NEVER_DUE)
    store.write_batch(reports(1, 4), [], received_at=f.at(100))  # six series, two values each
    before = history(engine)
    settler = Settler(engine, every=9, chunk=4)
    moved = []
    for _ in range(4):
        moved.append(settler.when_due())
        assert history(engine) == before  # a range at a time changes nothing a query sees
    assert moved == [4, 4, 4, 0]  # two series of two values a range; then none due
    assert counts(engine) == (0, 12)
    store.write_batch(reports(5, 5), [], received_at=f.at(200))
    settler.wrote(3)
    assert settler.when_due() == 0  # counted from the settle's start: 3 of 9
    assert counts(engine) == (3, 12)


def test_a_series_with_more_values_than_a_range_holds_moves_whole(engine: Engine) -> None:
    ArchiveStore(engine, settle_every=NEVER_DUE).write_batch(reports(1, 4), [], received_at=f.at(100))
    settler = Settler(engine, every=1, chunk=1)
    assert [settler.when_due() for _ in range(7)] == [2, 2, 2, 2, 2, 2, 0]  # the last range found none left
    assert counts(engine) == (0, 12)


def test_values_written_while_a_settle_is_under_way_wait_where_it_has_passed(engine: Engine) -> None:
    store = ArchiveStore(engine, settle_every=NEVER_DUE)
    store.write_batch(reports(1, 2), [], received_at=f.at(100))  # six series, a value each
    settler = Settler(engine, every=6, chunk=3)
    assert settler.when_due() == 3  # the first three series
    store.write_batch(reports(3, 4), [], received_at=f.at(200))  # a new value for each of the six
    settler.wrote(6)  # as the store counts what it commits
    assert [settler.when_due() for _ in range(3)] == [2, 2, 2]  # the others: the value each had and the new one
    assert counts(engine) == (3, 9)  # the first three's new values wait for the next settle
    assert settler.when_due() == 3  # due at once: six values were written since this settle began
    assert counts(engine) == (0, 12)
