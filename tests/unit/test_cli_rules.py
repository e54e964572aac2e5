"""``tuya-archiver rules check`` through the real entry point: exit status and output, without an archive and with a
SQLite one whose data points check the units of thresholds.

Partners: tests/unit/rules/test_loader.py (the problems themselves), tests/unit/rules/test_fleet_checks.py (units).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert

from models.tables import DataPoint, Device
from streams.cli import main
from streams.store.engine import make_engine
from streams.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "rules"
SENSOR, SENSOR_PRODUCT, PLUG_PRODUCT = "demo0000greenhouse01", "sensorproduct0001", "keyjup78v54myhan"
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def no_archive(tmp_path) -> Path:
    return tmp_path / "absent.db"


@pytest.fixture
def run_check(monkeypatch, capsys, no_archive):
    monkeypatch.delenv("RULES_FILE", raising=False)
    monkeypatch.delenv("RULES_DRY_RUN", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{no_archive}")
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> tuple[int, str, str]:
        status = main(["rules", "check", *args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_valid_file_exits_zero_with_a_summary(run_check):
    status, out, _ = run_check(str(DATA / "bare_list.yaml"))
    assert status == 0
    assert out.splitlines() == [
        f"{DATA / 'bare_list.yaml'}: OK, 1 rule (1 enabled), 0 device aliases, dry run off",
        "",
        "plug_on",
        "  when  state switch_1 changes to true on bf1e8a0cd2e4a1b2c3x9kq",
        "  then  log info: plug on at {{ trigger.time }}",
    ]


def test_without_file_checks_the_configured_rules_file(run_check):
    status, out, _ = run_check()
    assert status == 0
    assert out.startswith("config/rules.yaml: OK, 8 rules (8 enabled), 5 device aliases")
    assert "  when  numeric_state temp_current above 30 °C for 5m on greenhouse_sensor" in out
    assert "  when  numeric_state cur_power above 30000 on product keyjup78v54myhan" in out
    assert "  cooldown 30m per device" in out


def test_rules_file_setting_names_the_default(run_check, monkeypatch):
    monkeypatch.setenv("RULES_FILE", str(DATA / "bare_list.yaml"))
    monkeypatch.setenv("RULES_DRY_RUN", "true")
    status, out, _ = run_check()
    assert status == 0 and "1 rule (1 enabled), 0 device aliases, dry run on" in out


def test_empty_rules_file_setting_means_no_rules(run_check, monkeypatch):
    monkeypatch.setenv("RULES_FILE", "")
    assert run_check() == (0, "RULES_FILE is set but empty: no rules to check\n", "")


def test_invalid_file_exits_one_printing_every_problem(run_check):
    path = DATA / "many_problems.yaml"
    status, out, err = run_check(str(path))
    assert status == 1
    lines = out.splitlines()
    assert len(lines) == 8 and all(line.startswith(f"{path}:") for line in lines)
    assert f"{path}:7: rule 'first': triggers[0].trigger: unknown trigger kind 'numeric_sate'" in out
    assert err.splitlines()[-1] == f"{path}: 8 problems"


def test_missing_file_exits_one(run_check, tmp_path):
    status, out, _ = run_check(str(tmp_path / "nope.yaml"))
    assert status == 1 and "cannot read the rules file" in out


# --- units, checked against an archive ------------------------------------------------------------------------------


def _point(product_id: str, code: str, unit: str, scale: int) -> dict[str, object]:
    return {
        "product_id": product_id,
        "code": code,
        "type": "Integer",
        "unit": unit,
        "scale": scale,
        "reported": True,
        "commandable": False,
        "spec": {"unit": unit, "scale": scale},
        "synced_at": T0,
    }


@pytest.fixture
def archive(tmp_path, monkeypatch) -> Iterator[Path]:
    """A migrated SQLite archive that knows the sensor's product and the specifications of it and of the plugs."""
    path = tmp_path / "archive.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.execute(
                insert(DataPoint),
                [
                    _point(SENSOR_PRODUCT, "temp_current", "℃", 1),
                    _point(SENSOR_PRODUCT, "humidity_value", "%", 0),
                    _point(PLUG_PRODUCT, "cur_power", "W", 1),
                    _point(PLUG_PRODUCT, "switch_1", None, 0) | {"type": "Boolean", "commandable": True},
                ],
            )
            row = {"device_id": SENSOR, "product_key": SENSOR_PRODUCT, "first_seen_at": T0, "last_seen_at": T0}
            connection.execute(insert(Device), [row])
    finally:
        engine.dispose()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    yield path


def test_summary_shows_raw_and_physical_sides_of_thresholds_with_an_archive(run_check, archive):
    status, out, err = run_check(str(DATA / "units.yaml"))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert "  when  numeric_state temp_current above 30 °C (300 raw) for 5m on greenhouse_sensor" in lines
    assert "  if    humidity_value below 85 (85 %) on greenhouse_sensor" in lines
    assert "  when  numeric_state temp_current above 300 (30.0 °C) for 5m on greenhouse_sensor" in lines
    assert "  when  numeric_state cur_power above 3000 W (30000 raw) on product keyjup78v54myhan" in lines


def test_units_the_archive_cannot_compare_are_problems_with_file_line_rule_and_key(run_check, archive):
    path = DATA / "units_mismatch.yaml"
    status, out, err = run_check(str(path))
    assert status == 1
    assert out.splitlines() == [
        f"{path}:11: rule 'greenhouse_hot_in_fahrenheit': triggers[0].above: temp_current of product "
        f"{SENSOR_PRODUCT}: unit °F is not the data point's unit (°C)",
    ]
    assert err.splitlines() == [
        f"{path}:21: rule 'kitchen_plug_overload': triggers[0].above: cannot check the unit: the archive does not "
        "know device bf1e8a0cd2e4a1b2c3x9kq's product yet (run `tuya-archiver sync`) (not a problem: the worker "
        "runs the rule)",
        f"{path}: 1 problem",
    ]


def test_units_of_devices_the_archive_does_not_know_yet_are_said_but_pass(run_check, archive, tmp_path):
    # An archive before its first sync: the worker runs such a rule (it warns at run time), so a CI step checking
    # the rules file must not fail on it.
    path = tmp_path / "unsynced.yaml"
    path.write_text((DATA / "units_mismatch.yaml").read_text().replace("86 °F", "30 °C"))
    status, out, err = run_check(str(path))
    assert status == 0
    assert "kitchen_plug_overload" in out
    assert err.splitlines() == [
        f"{path}:21: rule 'kitchen_plug_overload': triggers[0].above: cannot check the unit: the archive does not "
        "know device bf1e8a0cd2e4a1b2c3x9kq's product yet (run `tuya-archiver sync`) (not a problem: the worker "
        "runs the rule)",
    ]


def test_without_an_archive_units_are_not_checked_and_the_rest_is(run_check, no_archive):
    status, out, err = run_check(str(DATA / "units_mismatch.yaml"))
    assert status == 0
    why = f"no archive at {no_archive} (DATABASE_URL)"
    assert err == f"{DATA / 'units_mismatch.yaml'}: codes and units not checked: {why}\n"
    assert "  when  numeric_state temp_current above 86 °F on greenhouse_sensor" in out.splitlines()
    assert not no_archive.exists()  # checking did not create an empty archive


def test_an_archive_not_at_head_is_one_line_saying_why(run_check, monkeypatch, tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()  # a SQLite database no migration ran on
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{empty}")
    status, _, err = run_check(str(DATA / "units.yaml"))
    assert status == 0
    assert err.startswith(
        f"{DATA / 'units.yaml'}: codes and units not checked: database is at revision none (empty database)"
    )
    assert len(err.splitlines()) == 1 and "run `tuya-archiver db upgrade`" in err


def test_a_file_without_units_says_its_codes_were_not_checked_either(run_check, no_archive):
    # It said nothing, so a misspelt code looked checked.
    status, _, err = run_check(str(DATA / "bare_list.yaml"))
    why = f"no archive at {no_archive} (DATABASE_URL)"
    assert (status, err) == (0, f"{DATA / 'bare_list.yaml'}: codes and units not checked: {why}\n")
