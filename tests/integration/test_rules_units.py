"""Thresholds with a unit end to end: simulator → real pulsar-lite → the real ``tuya-archiver run`` → SQLite, with the
data-point specification in the archive before the worker starts (it loads the catalog at start), and the rules'
commands signed and sent to the OpenAPI emulator (partners: tests/unit/rules/test_engine_units.py, the engine;
test_rules_worker.py, the same worker with raw thresholds).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from models.tables import DataPoint, Device
from streams.store.engine import make_engine
from tests.integration.test_rules_worker import Project, assert_sent_once_each, bounded_run, command_rows, open_project

pytestmark = pytest.mark.integration

RULE = "plug_off_above_3000_w"


def unit_rule(plug: str) -> str:
    """Switch ``plug`` off when its power goes above 3000 W: the raw 30000 with the spec's scale 1."""
    return textwrap.dedent(f"""\
        - id: {RULE}
          triggers:
            - trigger: numeric_state
              device: {plug}
              code: cur_power
              above: 3000 W
          actions:
            - action: tuya.send_command
              commands: [{{code: switch_1, value: false}}]
        """)


@pytest.fixture
def project(pulsar_broker, tmp_path) -> Iterator[Project]:
    with open_project(pulsar_broker.url, tmp_path) as opened:
        yield opened


def store_plug_spec(project: Project, *, unit: str = "W") -> None:
    """What ``sync`` would have stored: the plug's product, and that product's ``cur_power`` (scale 1)."""
    product = project.fleet.devices[0].product_key
    now = datetime.now(UTC)
    engine = make_engine(project.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(DataPoint).values(
                    product_id=product,
                    code="cur_power",
                    dp_id=19,
                    type="Integer",
                    unit=unit,
                    scale=1,
                    reported=True,
                    commandable=False,
                    spec={"unit": unit, "scale": 1, "min": 0, "max": 99999, "step": 1},
                    synced_at=now,
                )
            )
            connection.execute(
                insert(Device).values(device_id=project.plug, product_key=product, first_seen_at=now, last_seen_at=now)
            )
    finally:
        engine.dispose()


def test_unit_threshold_fires_a_command_on_each_edge_of_the_physical_value(project):
    store_plug_spec(project)
    project.write_rules(unit_rule(project.plug))
    # 10.0 W, 3000.0 W (not above), 3100.0 W (fires), 3200.0 W, 10.0 W (re-arms), 3500.0 W (fires)
    project.publish(project.power(100, 30000, 31000, 32000, 100, 35000))
    log = bounded_run(project)
    assert_sent_once_each(project, 2)
    assert "not compared with its threshold's unit" not in log


def test_unit_threshold_without_the_spec_sends_nothing_and_warns_once(project):
    project.write_rules(unit_rule(project.plug))
    project.publish(project.power(31000, 100, 35000))
    log = bounded_run(project)
    assert command_rows(project.database_url) == []
    warnings = [line for line in log.splitlines() if "not compared with its threshold's unit" in line]
    assert len(warnings) == 1, log[-3000:]
    assert f"rule {RULE}: cur_power of device {project.plug}" in warnings[0]
    assert "run `tuya-archiver sync`" in warnings[0]
