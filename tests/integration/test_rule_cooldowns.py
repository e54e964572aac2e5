"""streams/outbox/reactor.py for processors of several partitions (scale-out) on one PostgreSQL archive: a rule's
cooldown shared by every device holds across them (partner: tests/unit/rules/test_conditions.py, the cooldown alone;
on SQLite one writer at a time keeps every other batch out).
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


def report(device_id: str, number: int) -> Decoded:
    """Message ``m<number>``: the plug ``device_id`` draws 2000 W, ``number`` seconds after T0."""
    when = T0 + timedelta(seconds=number)
    message = DecodedMessage(
        message_id=f"m{number}", topic="t", protocol=4, biz_code=None, device_id=device_id,
        encrypt_model="aes_gcm", sign_ok=True, pushed_at=when, published_at=None, payload="{}", properties={},
    )  # fmt: skip
    record = status(device_id, "cur_power", 2000, when, message_id=f"m{number}", product_key=PLUG_PRODUCT)
    return Decoded(message, [record])


def waiting_for_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        return bool(connection.scalar(text(query)))


def test_two_processors_fire_a_rule_with_a_cooldown_per_rule_once(engine: Engine) -> None:
    now = T0 + timedelta(minutes=1)
    first = RulesReactor(RULES).in_transaction([report(PLUG, 1).news], now)  # the processor of PLUG's partition
    second = RulesReactor(RULES).in_transaction([report(OTHER_PLUG, 2).news], now)  # and of OTHER_PLUG's
    assert first is not None and second is not None
    errors: list[BaseException] = []

    def other_batch() -> None:
        try:
            with engine.begin() as connection:
                second(connection)
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    other = threading.Thread(target=other_batch)
    with engine.begin() as connection:
        first(connection)
        other.start()  # its batch runs while this one's transaction is open
        deadline = time.monotonic() + WAIT_S
        while not waiting_for_a_lock(engine):
            assert time.monotonic() < deadline, "the other processor's batch never waited for this one"
            time.sleep(0.01)
    other.join(WAIT_S)
    assert not other.is_alive() and errors == []
    with engine.connect() as connection:
        fired = connection.scalar(select(func.count()).select_from(Command.__table__))
    assert fired == 1  # the second saw the first's fire once it committed: within the cooldown
