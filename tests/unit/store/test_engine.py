"""DATABASE_URL handling and SQL text that needs no database (streams/store/engine.py, statements.py); engines on
real databases are in tests/integration/test_store.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.cli import main
from streams.errors import ConfigError
from streams.store.engine import normalize_url
from streams.store.statements import DEVICE_STATE, MESSAGES, postgres_copy_types, sqlite_insert


@pytest.mark.parametrize(
    "url",
    ["postgres://u:p@db/app", "postgresql://u:p@db/app", "postgresql+psycopg://u:p@db/app"],
)
def test_postgres_urls_mean_psycopg_3(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_sqlite_url_is_kept() -> None:
    assert normalize_url("sqlite:///tuya-archive.db").database == "tuya-archive.db"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "not a database URL"),
        ("mysql://db/app", "not supported"),
        ("sqlite:///file:a.db?uri=maybe", "uri='maybe' is neither true nor false"),  # was SQLAlchemy's traceback
    ],
)
def test_bad_database_url_names_the_variable(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=f"DATABASE_URL: .*{reason}"):
        normalize_url(url)


def _junk(path: Path) -> str:
    path.write_bytes(b"not a database, but a file all the same" * 100)
    return "file is not a database"


def _cut_short(path: Path) -> str:
    """An archive copied only half-way."""
    whole = path.with_suffix(".whole")
    with sqlite3.connect(whole) as connection:
        connection.execute("CREATE TABLE t (x TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    connection.close()
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    return "database disk image is malformed"


@pytest.mark.parametrize("make", [_junk, _cut_short])
@pytest.mark.parametrize("argv", [["db", "current"], ["db", "upgrade"], ["devices"], ["serve", "--port", "0"]])
def test_a_file_that_is_no_usable_sqlite_database_is_one_line_naming_the_variable(
    argv: list[str],
    make: Callable[[Path], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    archive = tmp_path / "archive.db"
    why = make(archive)
    before = archive.read_bytes()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{archive}")
    assert main(argv) == 2
    said = f"DATABASE_URL: {archive} is not a usable SQLite database ({why})"
    assert capsys.readouterr().err == f"tuya-archiver: configuration error: {said}\n"
    assert archive.read_bytes() == before  # left as it was


def test_sqlite_insert_has_one_placeholder_per_column_and_the_conflict_clause() -> None:
    statement = sqlite_insert(DEVICE_STATE)
    assert statement.count("?") == len(DEVICE_STATE.columns)
    assert "WHERE excluded.reported_at > device_state.reported_at" in statement


def test_postgres_copy_sends_json_and_strings_as_text_and_times_as_timestamptz() -> None:
    types = dict(zip(MESSAGES.columns, postgres_copy_types(MESSAGES), strict=True))
    assert (types["payload"], types["topic"], types["pushed_at"], types["sign_ok"]) == (
        "text",
        "text",
        "timestamptz",
        "bool",
    )
