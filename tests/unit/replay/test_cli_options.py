"""streams/cli/replay.py: options that do not go together stop before the database is opened (partner:
tests/integration/test_replay.py, which runs the command on real archives)."""

from __future__ import annotations

import pytest

from streams.cli import main

MISSING = "sqlite:////nonexistent/folder/archive.db"  # never opened: each of these stops before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--messages", "--rules"], "--error-kind and --rules go with --dead-letters only"),
        (["--messages", "--error-kind", "bad_base64"], "--error-kind and --rules go with --dead-letters only"),
        (["--dead-letters", "--since", "yesterday"], "--since: 'yesterday' is neither a duration"),
        (["--messages", "--page-size", "0"], "--page-size must be at least 1"),
    ],
    ids=["rules-with-messages", "error-kind-with-messages", "unreadable-since", "page-size"],
)
def test_options_that_do_not_fit_exit_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", MISSING)
    assert main(["replay", *argv]) == 2
    assert f"tuya-archiver replay: {message}" in capsys.readouterr().err


def test_one_of_dead_letters_or_messages_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--dry-run"])
    assert exited.value.code == 2
    assert "one of the arguments --dead-letters --messages is required" in capsys.readouterr().err


def test_dead_letters_need_the_access_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", MISSING)
    monkeypatch.delenv("TUYA_ACCESS_KEY", raising=False)
    monkeypatch.chdir("/")  # no .env of the working copy
    assert main(["replay", "--dead-letters"]) == 2
    assert "TUYA_ACCESS_KEY: not set" in capsys.readouterr().err
