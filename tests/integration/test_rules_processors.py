"""streams/outbox/reactor.py for processors of several partitions (scale-out) on one PostgreSQL archive: a rule's
cooldown shared by every device holds across them, one processor's clock tick does not act on a rule state
another's batch is changing, and two processors holding one device's messages in a rebalance react to them once
(partners: tests/unit/rules/, the engine alone; on SQLite one writer at a time keeps every other batch out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from models.records import DecodedMessage
from models.tables import Command
from streams.outbox.reactor import RulesReactor
from streams.store.sql import ArchiveStore
from streams.tuya.decoder import Decoded
from tests.unit.rules.builders import OTHER_PLUG, PLUG, PLUG_PRODUCT, T0, make_rules, status
from tests.unit.store.databases import DIALECTS, migrated_engine, scratch_database

pytestmark = pytest.mark.integration

RULES = make_rules(f"""
- id: any_plug_busy
  triggers: [{{trigger: numeric_state, product: {PLUG_PRODUCT}, code: cur_power, above: 1000}}]
  actions: [{{action: log, message: busy}}]
  cooldown: 1h
""")
WAIT_S = 10.0  # bound of every wait; reaching it fails the test


@pytest.fixture(params=DIALECTS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param != "postgresql":
        pytest.skip("SQLite's write lock keeps every other batch out of a batch's transaction")
    with scratch_database(request, tmp_path) as url, migrated_engine(url) as engine:
        yield engine


def report(device_id: str, number: int, watts: int = 2000) -> Decoded:
    """Message ``m<number>``: the plug ``device_id`` draws ``watts``, ``number`` seconds after T0."""
    when = T0 + timedelta(seconds=number)
    message = DecodedMessage(
        message_id=f"m{number}", topic="t", protocol=4, biz_code=None, device_id=device_id,
        encrypt_model="aes_gcm", sign_ok=True, pushed_at=when, published_at=None, payload="{}", properties={},
    )  # fmt: skip
    record = status(device_id, "cur_power", watts, when, message_id=f"m{number}", product_key=PLUG_PRODUCT)
    return Decoded(message, [record])


def in_another_thread(step) -> tuple[threading.Thread, list[BaseException]]:
    """``step()`` in a thread (another processor); its errors are kept."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            step()
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def in_another_transaction(engine: Engine, step) -> tuple[threading.Thread, list[BaseException]]:
    """``step(connection)`` in a transaction of its own, in a thread (another processor); its errors are kept."""

    def transaction() -> None:
        with engine.begin() as connection:
            step(connection)

    return in_another_thread(transaction)


def until_it_waits_for_a_lock(engine: Engine) -> None:
    deadline = time.monotonic() + WAIT_S
    while not waiting_for_a_lock(engine):
        assert time.monotonic() < deadline, "the other processor never waited for this one"
        time.sleep(0.01)


def commands(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Command.__table__)) or 0


def waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        return bool(connection.scalar(text(query)))


def test_two_processors_fire_a_rule_with_a_cooldown_per_rule_once(engine: Engine) -> None:
    now = T0 + timedelta(minutes=1)
    first = RulesReactor(RULES).in_transaction([report(PLUG, 1).news], now)  # the processor of PLUG's partition
    second = RulesReactor(RULES).in_transaction([report(OTHER_PLUG, 2).news], now)  # and of OTHER_PLUG's
    assert first is not None and second is not None
    with engine.begin() as connection:
        first(connection)
        other, errors = in_another_transaction(engine, second)  # its batch runs while this one's is open
        until_it_waits_for_a_lock(engine)
    other.join(WAIT_S)
    assert not other.is_alive() and errors == []
    assert commands(engine) == 1  # the second saw the first's fire once it committed: within the cooldown


BUSY_FOR_A_MINUTE = make_rules("""
- id: busy_for_a_minute
  triggers: [{trigger: numeric_state, device: plug, code: cur_power, above: 1000, for: 1m}]
  actions: [{action: log, message: busy}]
""")


def test_a_tick_does_not_fire_a_timer_another_processor_s_batch_is_cancelling(engine: Engine) -> None:
    batches = RulesReactor(BUSY_FOR_A_MINUTE)  # the processor of the plug's partition
    pending = batches.in_transaction([report(PLUG, 0, watts=2000).news], T0)
    assert pending is not None
    with engine.begin() as connection:
        pending(connection)  # 2000 W: the timer runs, due a minute later
    cancel = batches.in_transaction([report(PLUG, 30, watts=10).news], T0 + timedelta(seconds=30))
    tick = RulesReactor(BUSY_FOR_A_MINUTE).on_tick(T0 + timedelta(minutes=2))  # another processor's clock
    assert cancel is not None and tick is not None
    with engine.begin() as connection:
        cancel(connection)  # 10 W, thirty seconds in: the timer is cancelled, not committed yet
        other, errors = in_another_transaction(engine, tick)
        until_it_waits_for_a_lock(engine)
    other.join(WAIT_S)
    assert not other.is_alive() and errors == []
    assert commands(engine) == 0  # the tick saw the cancelled timer, not the one it would have read before


EDGE = make_rules("""
- id: busy
  triggers: [{trigger: numeric_state, device: plug, code: cur_power, above: 1000}]
  actions: [{action: log, message: busy}]
""")


def test_a_rebalance_s_two_owners_of_a_device_react_to_its_messages_once(engine: Engine) -> None:
    store, now = ArchiveStore(engine), T0 + timedelta(minutes=1)

    def batch(*reports: Decoded, then=lambda: None) -> None:  # a processor's batch: the rules, then the messages
        hook = RulesReactor(EDGE).in_transaction([decoded.news for decoded in reports], now)

        def rules(connection):
            reacted = hook(connection)
            then()
            return reacted

        store.write_batch(list(reports), [], received_at=now, extra=rules)

    batch(report(PLUG, 1, watts=2000))  # fires: busy
    # The old owner of the plug's partition still commits its batch in hand (m2) while the new owner, reading from
    # the committed offset, has m2 and m3 in its own: m2 re-arms the edge, m3 fires it again. The old owner's rules
    # read the archive before the new owner committed, and wait for its rule state's row.
    released = threading.Event()
    new_owner = (report(PLUG, 2, watts=10), report(PLUG, 3, watts=2000))
    first, errors = in_another_thread(lambda: batch(*new_owner, then=lambda: released.wait(WAIT_S)))
    until_it_holds_the_rule_state(engine)
    old, old_errors = in_another_thread(lambda: batch(report(PLUG, 2, watts=10)))
    until_it_waits_for_a_lock(engine)
    released.set()
    for thread in (first, old):
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert errors == [] and old_errors == []
    assert commands(engine) == 2
    batch(report(PLUG, 4, watts=2000))  # still above: no edge
    assert commands(engine) == 2  # the old owner had re-armed the edge with m2, read before m3: a third fire


def until_it_holds_the_rule_state(engine: Engine) -> None:
    deadline = time.monotonic() + WAIT_S
    query = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'rule_state'"
    while True:
        with engine.connect() as connection:
            if connection.scalar(text(query + " AND l.mode = 'RowExclusiveLock'")):
                return
        assert time.monotonic() < deadline, "the new owner never wrote its rule state"
        time.sleep(0.01)
