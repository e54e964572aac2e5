"""What differs between SQLite and PostgreSQL for SQLAlchemy Core statements, and id lists kept under their limits.

Owns the choice of the dialect's ``insert`` (both have ``INSERT … ON CONFLICT``, spelled through different
SQLAlchemy constructs) and the chunking of ``IN (…)`` lists. Runs nothing itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["CHUNK", "chunks", "insert"]

CHUNK = 500  # ids per IN (...) list: well under SQLite's and PostgreSQL's parameter limits


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert(connection: Connection, table: Any) -> Any:
    """An INSERT for ``table`` that supports ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    return (postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert)(table)
