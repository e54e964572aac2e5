"""The replay tests' fixtures: an archive on SQLite or PostgreSQL, and the replay command run against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.cli import main
from tests.integration.replay.harness import GOOD, Archive, Replay
from tests.unit.store.databases import DIALECTS, migrated_engine, scratch_database


@pytest.fixture(params=DIALECTS)
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Archive]:
    with scratch_database(request, tmp_path) as url, migrated_engine(url) as engine:
        yield Archive(url, engine)


@pytest.fixture
def replay(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Replay:
    """``tuya-archiver replay ARGS`` on an archive, with the right key and no rules unless ``env`` says otherwise;
    returns the exit status and everything it printed."""

    def run(archive: Archive, *argv: str, **env: str) -> tuple[int, str]:
        settings = {"DATABASE_URL": archive.url, "TUYA_ACCESS_KEY": GOOD, "RULES_FILE": "", **env}
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        status = main(["replay", *argv])
        captured = capsys.readouterr()
        return status, captured.out + captured.err

    return run
