"""SQL of what the archive remembers about the OpenAPI: which path families answered, and the calls made per day.

Owns ``api_paths`` (per purpose: the path that worked, the paths Tuya refused and why) and ``api_usage`` (calls
per UTC day, added by every command that calls Tuya in bulk, so that one process sees what the others spent of
the project's daily quota). SQLAlchemy Core; small volumes.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from models.tables import ApiPath, ApiUsage
from streams.store.dialect import insert

__all__ = ["PathMemory", "add_calls", "calls_on", "path_memory", "refusals", "remember_path"]

_PATHS = ApiPath.__table__
_USAGE = ApiUsage.__table__

PathMemory = dict[str, tuple[str, int | None, str | None]]
"""path → (status, error_code, error) of one purpose."""


def path_memory(connection: Connection, purpose: str) -> PathMemory:
    """What Tuya answered last time on each path tried for ``purpose``."""
    query = select(_PATHS.c.path, _PATHS.c.status, _PATHS.c.error_code, _PATHS.c.error).where(
        _PATHS.c.purpose == purpose
    )
    return {path: (status, code, error) for path, status, code, error in connection.execute(query)}


def refusals(connection: Connection, purpose: str) -> dict[str, datetime]:
    """The paths of ``purpose`` whose last answer was a refusal, with when it came."""
    query = select(_PATHS.c.path, _PATHS.c.checked_at).where(_PATHS.c.purpose == purpose, _PATHS.c.status == "refused")
    return {path: at for path, at in connection.execute(query)}


def remember_path(
    connection: Connection,
    purpose: str,
    path: str,
    at: datetime,
    *,
    error_code: int | None = None,
    error: str | None = None,
) -> None:
    """Record that ``path`` worked (no error) or was refused (``error_code`` and ``error``) for ``purpose``."""
    row = {
        "purpose": purpose,
        "path": path,
        "status": "ok" if error_code is None else "refused",
        "error_code": error_code,
        "error": error,
        "checked_at": at,
    }
    statement = insert(connection, _PATHS)
    statement = statement.on_conflict_do_update(
        index_elements=[_PATHS.c.purpose, _PATHS.c.path],
        set_={name: statement.excluded[name] for name in ("status", "error_code", "error", "checked_at")},
    )
    connection.execute(statement, row)


def calls_on(connection: Connection, day: date) -> int:
    """The OpenAPI calls recorded for ``day`` (UTC) by every command of this archive."""
    return int(connection.scalar(select(_USAGE.c.calls).where(_USAGE.c.day == day)) or 0)


def add_calls(connection: Connection, day: date, calls: int) -> None:
    if calls <= 0:
        return
    statement = insert(connection, _USAGE)
    statement = statement.on_conflict_do_update(
        index_elements=[_USAGE.c.day], set_={"calls": _USAGE.c.calls + statement.excluded.calls}
    )
    connection.execute(statement, {"day": day, "calls": calls})
