"""The demo's archive: a fresh database at the schema's head before every run.

Owns the one destructive act of the demo: an SQLite file from an earlier demo run is replaced, because the new
broker numbers its messages from the start again and the archive would take them for redeliveries. Any other
database (PostgreSQL) is never emptied: it must hold no archived message yet.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from models.tables import Message
from streams.store.engine import make_engine, normalize_url, sqlite_file
from streams.store.migrate import upgrade

__all__ = ["display_url", "prepare_database", "sqlite_path"]

_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def display_url(url: str) -> str:
    """The database URL fit for the terminal: its password hidden."""
    return normalize_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL; None for another database or an in-memory one."""
    return sqlite_file(normalize_url(url))


def prepare_database(url: str) -> None:
    """Replace an SQLite file (with its WAL files), upgrade the schema to head, check there is no archive in it.

    Raises:
        ValueError: an in-memory SQLite URL (the worker and the summary need one database), or a database that
            already holds archived messages.
    """
    path = sqlite_path(url)
    if path is None and normalize_url(url).get_backend_name() == "sqlite":
        raise ValueError("the demo needs an SQLite file or a PostgreSQL database, not an in-memory one")
    if path is not None:
        for suffix in _SQLITE_COMPANIONS:
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            archived = connection.scalar(select(func.count()).select_from(Message))
    finally:
        engine.dispose()
    if archived:
        raise ValueError(f"{display_url(url)} already holds {archived} archived messages: the demo needs an empty one")
