"""``tuya-archiver rules check`` through the real entry point: exit status and output.

Partner: tests/unit/rules/test_loader.py (the problems themselves).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "rules"


@pytest.fixture
def run_check(monkeypatch, capsys):
    monkeypatch.delenv("RULES_FILE", raising=False)
    monkeypatch.delenv("RULES_DRY_RUN", raising=False)
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
    assert "  when  numeric_state temp_current above 300 for 5m on greenhouse_sensor" in out
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
    assert err.strip() == f"{path}: 8 problems"


def test_missing_file_exits_one(run_check, tmp_path):
    status, out, _ = run_check(str(tmp_path / "nope.yaml"))
    assert status == 1 and "cannot read the rules file" in out
