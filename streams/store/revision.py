"""Which revision the archive's schema is at, and the newest one in ``migrations/versions``, without Alembic.

The worker checks its database at start (streams.store.engine.ensure_at_head) and runs for months. Importing Alembic
for that one comparison kept 8 MB of its modules resident in every worker; the memory benchmark's 300 MB bound is
shared with the batches in flight. So the newest revision is read from the revision files' own ``revision`` and
``down_revision`` assignments (parsed, never imported), and the database's from Alembic's version table. Alembic
(streams.store.migrate) still makes every change; its own reading of the same files is the tests' reference.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

__all__ = ["MIGRATIONS_DIR", "VERSION_TABLE", "current_revision", "head_revision", "not_at_head"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"


def head_revision(versions: Path = MIGRATIONS_DIR / "versions") -> str:
    """The revision no other revision revises.

    Raises:
        RuntimeError: no revision, or more than one head (the project keeps one line of migrations).
    """
    revises = _revisions(versions)
    heads = set(revises) - set().union(*revises.values())
    if len(heads) != 1:
        found = ", ".join(sorted(heads)) or "none"
        raise RuntimeError(f"{versions} must hold exactly one head revision (found: {found})")
    return heads.pop()


def not_at_head(current: str | None, head: str, versions: Path = MIGRATIONS_DIR / "versions") -> str:
    """Why a database at ``current`` is not at ``head``, and what to run: ``db upgrade``, unless a newer version of
    the project upgraded it past every revision this one knows (its upgrade would fail)."""
    if current is not None and current not in _revisions(versions):
        return (
            f"database is at revision {current}, which this version of tuya-archiver does not know: a newer version "
            f"upgraded it. Run that version, or step the archive back with its `tuya-archiver db downgrade {head}`"
        )
    shown = current or "none (empty database)"
    return f"database is at revision {shown}, not at head {head}: run `tuya-archiver db upgrade`"


def _revisions(versions: Path) -> dict[str, set[str]]:
    """Each revision of the files in ``versions``, with the revisions it revises."""
    return dict(_revision_of(path) for path in sorted(versions.glob("*.py")))


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at; None for a database Alembic never touched.

    Reads Alembic's version table directly: ``MigrationContext`` would log its set-up at INFO on every query command.
    """
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    versions = connection.scalars(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    if len(versions) > 1:
        raise RuntimeError(f"the database has several Alembic heads ({', '.join(versions)}); the project has one")
    return versions[0] if versions else None


def _revision_of(path: Path) -> tuple[str, set[str]]:
    """A revision file's ``revision`` and the revisions its ``down_revision`` names (none, one or a tuple)."""
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                values[target.id] = ast.literal_eval(value)
    revision, down = values.get("revision"), values.get("down_revision")
    if not isinstance(revision, str):
        raise RuntimeError(f'{path}: no `revision = "..."` assignment')
    if down is None:
        return revision, set()
    return revision, {down} if isinstance(down, str) else set(down)  # type: ignore[call-overload]
