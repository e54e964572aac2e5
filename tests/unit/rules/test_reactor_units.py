"""streams/outbox/reactor.py with thresholds with a unit, on a migrated SQLite archive: the catalog is read per batch,
and a value the rule cannot compare is warned about once per (rule, device, code), not once per message.

Partners: test_engine_units.py (the engine alone), tests/integration/test_rules_units.py (the real worker).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from models.records import DecodedMessage
from models.tables import Command, Device, DeviceState
from models.tables import DeviceEvent as DeviceEventRow
from streams.fleet.catalog import Catalog
from streams.outbox.reactor import RulesReactor
from streams.store.engine import make_engine
from streams.store.migrate import upgrade
from streams.tuya.decoder import Decoded
from tests.unit.rules.builders import (
    OTHER_PLUG,
    PLUG,
    PLUG_PRODUCT,
    SENSOR,
    SENSOR_PRODUCT,
    T0,
    catalog,
    device_event,
    make_rules,
    point,
    status,
)

RULES = make_rules("""
- id: hot
  triggers: [{trigger: numeric_state, device: sensor, code: temp_current, above: 30 °C}]
  actions: [{action: log, message: hot}]
""")


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.db'}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def _report(number: int, raw: int) -> Decoded:
    """Message ``m<number>``: the sensor reports ``raw``, ``number`` seconds after T0."""
    when = T0 + timedelta(seconds=number)
    message = DecodedMessage(
        message_id=f"m{number}",
        topic="t",
        protocol=4,
        biz_code=None,
        device_id=SENSOR,
        encrypt_model="aes_gcm",
        sign_ok=True,
        pushed_at=when,
        published_at=None,
        payload="{}",
        properties={},
    )
    return Decoded(message, [status(SENSOR, "temp_current", raw, when, message_id=f"m{number}")])


def _react(archive: Engine, reactor: RulesReactor, *batch: Decoded) -> None:
    hook = reactor.in_transaction([item.news for item in batch], T0 + timedelta(minutes=1))
    assert hook is not None
    with archive.begin() as connection:
        hook(connection)


def _commands(archive: Engine) -> list[str]:
    with archive.connect() as connection:
        return list(connection.scalars(select(Command.__table__.c.idempotency_key)))


def test_an_action_whose_template_failed_is_a_failed_row_logged_as_a_warning(archive, caplog):
    rules = make_rules("""
    - id: plus_one
      triggers: [{trigger: state, code: temp_current}]
      actions: [{action: log, message: "{{ trigger.value + 'x' }}"}]
    """)
    with caplog.at_level(logging.WARNING, logger="streams.outbox.reactor"):
        _react(archive, RulesReactor(rules), _report(1, 310))
    with archive.connect() as connection:
        status, error = connection.execute(select(Command.status, Command.error)).one()
    assert status == "failed" and error.startswith("template failed: ")
    assert [r.getMessage() for r in caplog.records] == [f"outbox: plus_one:m1:0 failed: {error}"]


def test_a_missing_spec_is_warned_about_once_across_batches(archive, caplog):
    reactor = RulesReactor(RULES, Catalog)
    with caplog.at_level(logging.WARNING, logger="streams.outbox.reactor"):
        _react(archive, reactor, _report(1, 310), _report(2, 320))
        _react(archive, reactor, _report(3, 330))
    assert [record.getMessage() for record in caplog.records] == [
        f"rule hot: temp_current of device {SENSOR} not compared with its threshold's unit (the archive has no "
        "specification of this data point yet: run `tuya-archiver sync`); until that changes the rule treats it "
        "as no number, and this is not logged again"
    ]
    assert _commands(archive) == []


def test_the_catalog_is_read_per_batch_so_a_sync_takes_effect_at_the_next(archive):
    current = {"catalog": Catalog()}
    reactor = RulesReactor(RULES, lambda: current["catalog"])
    _react(archive, reactor, _report(1, 310))
    current["catalog"] = catalog(point("temp_current", unit="℃", scale=1, product=SENSOR_PRODUCT))
    _react(archive, reactor, _report(2, 300))
    assert _commands(archive) == []  # 30.0 °C is not above 30 °C
    _react(archive, reactor, _report(3, 301))
    assert _commands(archive) == ["hot:m3:0"]


def test_a_silent_device_of_a_product_rule_is_checked_against_its_own_latest_values(archive):
    rules = make_rules(f"""
    - id: silent_while_on
      triggers: [{{trigger: device_silent, product: {PLUG_PRODUCT}, for: 1h}}]
      conditions: [{{condition: state, code: switch_1, state: true}}]
      actions: [{{action: log, message: "silent while on"}}]
    """)
    with archive.begin() as connection:
        connection.execute(
            insert(Device.__table__).values(
                device_id=PLUG, product_key=PLUG_PRODUCT, first_seen_at=T0, last_seen_at=T0, report_count=1
            )
        )
        connection.execute(
            insert(DeviceState.__table__).values(
                device_id=PLUG, code="switch_1", value=True, reported_at=T0, message_id="m0", source="stream"
            )
        )
    hook = RulesReactor(rules).on_tick(T0 + timedelta(minutes=61))
    assert hook is not None
    with archive.begin() as connection:
        hook(connection)
    assert _commands(archive) == [f"silent_while_on:silent:{PLUG}:{int(T0.timestamp() * 1000)}:for0:0"]


def _tick(reactor: RulesReactor, archive: Engine, minutes: float) -> None:
    hook = reactor.on_tick(T0 + timedelta(minutes=minutes))
    if hook is not None:
        with archive.begin() as connection:
            hook(connection)


NOTIFY_OFFLINE = """
    - id: notify_offline
      triggers: [{trigger: device_event, event: offline, for: 2m}]
      actions: [{action: log, message: offline}]
    """


@pytest.mark.parametrize(
    ("stored", "fires"),
    [
        ([], True),
        ([("online", T0 + timedelta(hours=1))], False),
        # the stream's online, and backfill's copy of the offline timed 200 ms later: that second's online wins
        ([("online", T0), ("offline", T0 + timedelta(milliseconds=200))], False),
    ],
    ids=["nothing stored", "an online since", "an online of the same second"],
)
def test_an_offline_is_ordered_against_the_device_s_events_in_the_archive_not_the_sync_s_time(archive, stored, fires):
    """The device's row as a sync left it (online_changed_at is Tuya's answer time, after the backlog's events):
    the backlog's offline still starts its timer. An online stored since in device_events, or in the same second,
    makes it history."""
    with archive.begin() as connection:
        connection.execute(
            insert(Device.__table__).values(
                device_id=SENSOR,
                first_seen_at=T0,
                last_seen_at=T0,
                online=False,
                online_changed_at=T0 + timedelta(hours=2),
                synced_at=T0 + timedelta(hours=2),
            )
        )
        for number, (event, at) in enumerate(stored):
            connection.execute(
                insert(DeviceEventRow.__table__).values(
                    message_id=f"stored-{number}", device_id=SENSOR, event=event, biz_code=event, protocol=20,
                    occurred_at=at, data={},
                )
            )  # fmt: skip
    reactor = RulesReactor(make_rules(NOTIFY_OFFLINE))
    message = _report(0, 0).message
    _react(archive, reactor, Decoded(message, [device_event(SENSOR, "offline", T0, message_id="m0")]))
    _tick(reactor, archive, 5)
    assert _commands(archive) == (["notify_offline:m0:for0:0"] if fires else [])


def _switched_on(device_id: str, number: int) -> Decoded:
    """Message ``m<number>``: the plug ``device_id`` is switched on at T0."""
    message = DecodedMessage(
        message_id=f"m{number}", topic="t", protocol=4, biz_code=None, device_id=device_id, encrypt_model="aes_gcm",
        sign_ok=True, pushed_at=T0, published_at=None, payload="{}", properties={},
    )  # fmt: skip
    return Decoded(
        message, [status(device_id, "switch_1", True, T0, message_id=f"m{number}", product_key=PLUG_PRODUCT)]
    )


def test_a_processor_s_tick_acts_only_for_the_devices_its_partitions_receive(archive):
    # Another processor's device may sit in the backlog it is still reading, with the report that switches it off
    # or ends its silence: a processor that caught up first fired its timers.
    rules = make_rules(f"""
    - id: on_for_5m
      triggers: [{{trigger: state, product: {PLUG_PRODUCT}, code: switch_1, to: true, for: 5m}}]
      actions: [{{action: log, message: "on for 5 minutes"}}]
    - id: silent
      triggers: [{{trigger: device_silent, product: {PLUG_PRODUCT}, for: 1h}}]
      actions: [{{action: log, message: silent}}]
    """)
    with archive.begin() as connection:
        for device_id in (PLUG, OTHER_PLUG):
            connection.execute(
                insert(Device.__table__).values(
                    device_id=device_id, product_key=PLUG_PRODUCT, first_seen_at=T0, last_seen_at=T0, report_count=1
                )
            )
    reactor = RulesReactor(rules)
    _react(archive, reactor, _switched_on(PLUG, 1), _switched_on(OTHER_PLUG, 2))
    silence = int(T0.timestamp() * 1000)

    def tick(owns) -> None:
        hook = reactor.on_tick(T0 + timedelta(minutes=61), owns)
        assert hook is not None
        with archive.begin() as connection:
            hook(connection)

    tick(lambda subject: subject == PLUG)
    assert sorted(_commands(archive)) == ["on_for_5m:m1:for0:0", f"silent:silent:{PLUG}:{silence}:for0:0"]
    tick(lambda subject: subject == OTHER_PLUG)  # its owner, once caught up
    assert sorted(_commands(archive)) == [
        "on_for_5m:m1:for0:0",
        "on_for_5m:m2:for0:0",
        f"silent:silent:{PLUG}:{silence}:for0:0",
        f"silent:silent:{OTHER_PLUG}:{silence}:for0:0",
    ]
