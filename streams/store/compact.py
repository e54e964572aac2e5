"""Rewriting a SQLite archive in place: the pages ``purge`` freed given back, and the pages at today's size.

Owns ``tuya-archiver db compact``'s work. SQLite keeps the pages a deletion frees for later rows, so a file never
shrinks by itself; and a file keeps the page size it was made with (4 KiB before :data:`~streams.store.engine.
PAGE_BYTES`). ``VACUUM`` rewrites the whole file, which needs it to itself: the WAL is switched off for the rewrite
and on again after, and neither can happen while another connection (a worker, ``serve``) has the file open.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from streams.store.engine import PAGE_BYTES, sqlite_file

__all__ = ["ArchiveInUse", "Compacted", "compact"]


class ArchiveInUse(Exception):
    """Another connection has the archive open: nothing was changed."""


@dataclass(frozen=True, slots=True)
class Compacted:
    """The archive's file (with its WAL) and page size before and after."""

    bytes_before: int
    bytes_after: int
    page_before: int
    page_after: int


def compact(engine: Engine) -> Compacted:
    """Rewrite the SQLite archive of ``engine`` with pages of :data:`~streams.store.engine.PAGE_BYTES` and no free
    pages. Needs free disk about the size of the archive (SQLite writes the new copy beside it).

    Raises:
        ArchiveInUse: another connection has the file open (SQLite's lock, after the engine's busy timeout).
        ValueError: ``engine`` is not on a SQLite file, or the file does not exist (PostgreSQL reuses freed space
            itself: autovacuum), or it cannot be written.
    """
    path = sqlite_file(engine.url)
    if path is None:
        raise ValueError(f"db compact rewrites a SQLite file; {engine.url.render_as_string()} is not one")
    if not path.is_file():  # connecting would make an empty archive
        raise ValueError(f"{path}: no such SQLite file")
    connection = engine.raw_connection()
    try:
        cursor = connection.driver_connection.cursor()  # autocommit: the engine's set-up leaves BEGIN to SQLAlchemy
        (page_before,) = cursor.execute("PRAGMA page_size").fetchone()
        before = _size(path)
        try:
            cursor.execute("PRAGMA journal_mode=DELETE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise ValueError(f"{path} cannot be rewritten (a read-only file, folder or URL?): {exc}") from exc
            message = f"{path} is open elsewhere (a worker, serve): stop them and run it again ({exc})"
            raise ArchiveInUse(message) from exc
        try:
            cursor.execute(f"PRAGMA page_size={PAGE_BYTES}")
            cursor.execute("VACUUM")
        finally:
            cursor.execute("PRAGMA journal_mode=WAL")
        (page_after,) = cursor.execute("PRAGMA page_size").fetchone()
        cursor.close()
    finally:
        connection.close()
    return Compacted(before, _size(path), page_before, page_after)


def _size(path: Path) -> int:
    """The archive's bytes on disk: the file and its WAL."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
