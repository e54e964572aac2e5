"""Options that are refused before a command does anything: a usage line naming the option, exit status 2."""

from __future__ import annotations

import pytest

from streams.cli import main


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(list(argv))
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("port", ["65536", "99999", "-1", "http"])
@pytest.mark.parametrize("command", [("serve",), ("emulate-api",), ("process",)])
def test_a_port_outside_0_to_65535_is_refused(capsys: pytest.CaptureFixture[str], command: tuple[str], port: str):
    flag = "--web-port" if command == ("process",) else "--port"
    assert f"argument {flag}: must be" in refused(capsys, *command, flag, port)


@pytest.mark.parametrize("command", ["run", "bridge", "process"])
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--idle-timeout", "nan", "must be a positive number"),
        ("--idle-timeout", "-1", "must be a positive number"),
        ("--max-messages", "-3", "must be a whole number of at least 1"),
        ("--max-messages", "0", "must be a whole number of at least 1"),
    ],
)
def test_a_bound_of_a_run_that_ends_nothing_or_never_is_refused(
    capsys: pytest.CaptureFixture[str], command: str, option: str, value: str, message: str
):
    assert f"argument {option}: {message}" in refused(capsys, command, option, value)


def test_a_demo_archive_in_a_folder_that_is_not_there_is_refused(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    err = refused(capsys, "demo", "--db", f"sqlite:///{tmp_path}/nowhere/demo.db")
    assert f"argument --db: the folder {tmp_path}/nowhere does not exist" in err


def test_a_demo_archive_that_is_no_database_url_is_refused_naming_the_flag(capsys: pytest.CaptureFixture[str]):
    err = refused(capsys, "demo", "--db", "notaurl")
    assert "argument --db: not a database URL" in err and "DATABASE_URL" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--from", "2026-12-07T12:00", "--until", "2026-12-07T08:00"), "must be before its end"),
        (("--since", "3h", "--until", "2026-12-01"), "--until ends a --from window"),
        (("--since", "yesterday"), "neither a duration"),
        (("--from", "99999999d"), "before year 1"),
        (("--from", "2099-01-01", "--until", "2099-02-01"), "starts ahead of now"),
        (("--gap", "1", "--until", "1h"), "a --gap has its own"),
        (("--from", "10d", "--until", "9d"), "where Tuya's logs begin"),  # they keep 7 days
    ],
)
def test_a_backfill_window_that_is_not_one_is_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    monkeypatch.delenv("TUYA_ACCESS_ID", raising=False)  # it stops before it would need them
    err = refused(capsys, "backfill", *argv)
    assert err.startswith("tuya-archiver backfill: ") and message in err


@pytest.mark.parametrize("command", [("sync", "--device"), ("backfill", "--since", "1h", "--device"), ("command",)])
@pytest.mark.parametrize("device", ["", " ", "a/../b", "a?b", "a\tb", ".", ".."])
def test_a_device_id_that_cannot_be_one_is_refused_before_any_call(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: tuple[str, ...], device: str
) -> None:
    monkeypatch.delenv("TUYA_ACCESS_ID", raising=False)  # it stops before it would need them
    assert "must be a device id" in refused(capsys, *command, device)


@pytest.mark.parametrize("rate", ["nan", "inf", "0", "-1"])
def test_a_simulated_rate_that_is_no_positive_number_is_refused(capsys: pytest.CaptureFixture[str], rate: str):
    assert "argument --rate: must be a positive number" in refused(capsys, "simulate", "--rate", rate)


def test_simulate_to_a_broker_url_that_is_none_says_so_in_a_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TUYA_ACCESS_ID", "simproject")
    monkeypatch.setenv("TUYA_ACCESS_KEY", "0123456789abcdef0123456789abcdef")
    assert main(["simulate", "--url", "notaurl", "--count", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tuya-archiver simulate: nothing published to notaurl: ") and "Traceback" not in err
