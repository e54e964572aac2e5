"""Engines on DATABASE_URL, the schema-revision gate, and the translation of "cannot reach the database" errors.

Owns connection set-up per dialect: SQLite in WAL mode with ``synchronous=NORMAL``, 16 KiB pages for a new file, a
busy timeout, rare automatic checkpoints, and transactions begun by SQLAlchemy (``BEGIN``, or ``BEGIN IMMEDIATE``
for writers); PostgreSQL through psycopg 3 with the session time zone set to UTC. Read-only engines (``serve``) open
a SQLite file ``mode=ro`` and touch none of its settings, and make every PostgreSQL transaction read-only. Imports no
models and no Alembic environment.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.util import asbool

from streams.errors import ConfigError, DatabaseUnavailable, RowsRejected
from streams.store.revision import current_revision, head_revision, not_at_head

__all__ = [
    "PAGE_BYTES",
    "WAL_AUTOCHECKPOINT_BYTES",
    "WRITE_LOCK",
    "autocheckpoint_pages",
    "ensure_at_head",
    "make_engine",
    "make_readonly_engine",
    "missing_archive",
    "normalize_url",
    "rejected_on_failure",
    "sqlite_file",
    "unavailable_on_failure",
    "write_transaction",
]

BUSY_TIMEOUT_MS = 10_000
#: SQLite's page size for a file it creates (SQLite's default is 4 KiB); a file keeps the size it was made with
#: (``tuya-archiver db compact`` rewrites it). Each commit writes every page it changed, and the history's (series,
#: time) order puts a batch's values in thousands of pages. Against 4 KiB, six alternated pairs each: SQLite alone
#: ran the worker's SQL faster in all six (median 6 %, 3-14 %), the writer's own work took less CPU in four (median
#: 9 % less), and the file took 5 % less disk (1,161 bytes a message against 1,227). Queries on a 10 M-value archive
#: did not slow (a day of one device 75 ms against 79, best of 7).
PAGE_BYTES = 16_384
#: WAL bytes before a commit copies its pages back into the database file (SQLite's default is 1,000 pages). The
#: history's order takes each report into a different page, so a batch dirties thousands of pages, and with the
#: default every commit was also a checkpoint of all of them. Checkpointing every 40,000 pages of 4 KiB writes a page
#: changed by many batches once; it made storing the simulated fleet about 27 % faster (8.5k against 6.7k msg/s).
#: 120,000 pages (about 470 MiB, what this is) stopped a long drain from slowing as the archive grows: each
#: checkpoint's cost grows with it, and every fifth commit of the worker's writer took 1.0-1.5 s instead of 0.4.
#: Side by side, 200,000 messages drained 8,200-8,300 msg/s against 7,300-7,700, and 2 M messages 6,140 against
#: 5,910 (the last quarter 6,210 against 5,700). SQLite counts it in pages: see :func:`autocheckpoint_pages`.
WAL_AUTOCHECKPOINT_BYTES = 120_000 * 4096
#: SQLite's page cache of a writing connection, in KiB (SQLite's default is 2 MB): the index pages a batch touches
#: (the history's and messages' B-trees grow with the archive) stay in memory between commits. It made the worker
#: about 10 % faster on the fleet benchmark; 64 MB gained about 3 % more, which the worker's memory target could not
#: afford. SQLite takes it as it needs it, up to this. 24 MB since the history's narrow format: its pages hold about
#: 1.8 times as many values, and the writer's series cache took the other 8 MB (the 2 M-message drain peaked at
#: 305 MB with 32).
CACHE_KIB = 24_576
CONNECT_TIMEOUT_S = 10

#: Execution option: a connection that will write takes SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``), so a
#: transaction that reads first and writes later cannot fail with SQLITE_BUSY half-way (sqlite.org/lang_transaction).
WRITE_LOCK = "tuya_write_lock"


def _driver_unavailable() -> tuple[type[BaseException], ...]:
    """The driver-level errors that mean "the database cannot be used right now", raised by raw DBAPI cursors
    (COPY, executemany) as well as, wrapped, by SQLAlchemy. psycopg's only once it is loaded: it cannot raise before,
    and a SQLite archive's processes do without its 10 MB."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return (sqlite3.OperationalError,)
    return (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError)


def normalize_url(url: str) -> URL:
    """The SQLAlchemy URL for DATABASE_URL; ``postgres://`` and ``postgresql://`` mean psycopg 3.

    Raises:
        ConfigError: the text is not a database URL (or an SQLite one whose ``uri`` flag is no boolean).
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        # Not echoed: text too malformed to parse may hold a password no rule can find.
        raise ConfigError(
            "DATABASE_URL: not a database URL (e.g. postgresql+psycopg://user@host/db or sqlite:///archive.db)"
        ) from None
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"DATABASE_URL: {parsed.drivername} is not supported (use sqlite:/// or postgresql://)")
    if parsed.get_backend_name() == "sqlite" and "uri" in parsed.query:
        try:
            asbool(parsed.query["uri"])  # as SQLAlchemy reads it, which raises a bare ValueError
        except ValueError:
            raise ConfigError(f"DATABASE_URL: uri={parsed.query['uri']!r} is neither true nor false") from None
    return parsed


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the archive; no connection is made until first use."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine, parsed.database, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    return _postgresql_engine(parsed, read_only=False, **kwargs)


def make_readonly_engine(url: str, **kwargs: Any) -> Engine:
    """An engine that cannot write to the archive: for readers that must not, such as ``serve``.

    SQLite: the file is opened ``mode=ro`` (a ``file:`` URI; a missing file is an error, not a new empty archive),
    with ``query_only`` as well, and none of the writer's settings (WAL, checkpoints) are touched; a worker may go on
    writing the file meanwhile. PostgreSQL: every transaction of the session is read-only
    (``default_transaction_read_only``).

    Raises:
        ConfigError: the URL is not a database URL, or names an in-memory SQLite database.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database in (None, "", ":memory:") or database.startswith("file:"):
            raise ConfigError(f"DATABASE_URL: a read-only view needs a SQLite file path, not {database or 'memory'!r}")
        path = str(Path(database).absolute())
        read_only = parsed.set(database="file:" + quote(path), query={"mode": "ro", "uri": "true"})
        engine = create_engine(read_only, **kwargs)
        _configure_sqlite(engine, path, in_memory=False, read_only=True)
        return engine
    return _postgresql_engine(parsed, read_only=True, **kwargs)


def _postgresql_engine(url: URL, *, read_only: bool, **kwargs: Any) -> Engine:
    """Sessions in UTC (read-only ones refuse every write), a bounded connect, and a pool that drops dead ones."""
    options = "-c timezone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
    connect_args = {"options": options, "connect_timeout": CONNECT_TIMEOUT_S}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def autocheckpoint_pages(page_bytes: int) -> int:
    """SQLite's ``wal_autocheckpoint`` for a file of ``page_bytes`` pages: :data:`WAL_AUTOCHECKPOINT_BYTES` of WAL."""
    return WAL_AUTOCHECKPOINT_BYTES // page_bytes


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine, path: str | None, *, in_memory: bool, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # SQLAlchemy, not the sqlite3 module, emits BEGIN (see the begin hook): the module's legacy mode skips BEGIN
        # before SELECT and DDL, which breaks transactional DDL and read-then-write transactions.
        dbapi_connection.isolation_level = None
        # SQLite's own lower() folds ASCII only: a device search for "Спальня" or "Çalışma" found nothing.
        dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
        try:
            _set_up_sqlite(dbapi_connection.cursor(), in_memory=in_memory, read_only=read_only)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") not in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise
            # A file of another kind (mistyped path), or a copy cut short: one line, not SQLAlchemy's traceback.
            raise ConfigError(f"DATABASE_URL: {path} is not a usable SQLite database ({exc})") from None

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_LOCK, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _set_up_sqlite(cursor: sqlite3.Cursor, *, in_memory: bool, read_only: bool) -> None:
    """The connection's settings: WAL, page size, checkpoints and cache for the writer; query-only for a reader."""
    try:
        if read_only:  # the journal mode and checkpoints are the writer's to set; a reader leaves them alone
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute(f"PRAGMA page_size={PAGE_BYTES}")  # first, or the new file is made with 4 KiB pages
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not read_only:
            (page_bytes,) = cursor.execute("PRAGMA page_size").fetchone()
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint_pages(page_bytes)}")
            cursor.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    finally:
        cursor.close()


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds SQLite's write lock from its start (WRITE_LOCK); committed when the
    block ends, rolled back when it raises."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK: True})
        with connection.begin():
            yield connection


@contextlib.contextmanager
def unavailable_on_failure(doing: str) -> Iterator[None]:
    """Turn "the database cannot be reached or refused the commit" into DatabaseUnavailable; the rest propagates."""
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        raise DatabaseUnavailable(f"database unavailable while {doing}: {exc.orig or exc}") from exc
    except sa_exc.DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise DatabaseUnavailable(f"database connection lost while {doing}: {exc.orig or exc}") from exc
    except _driver_unavailable() as exc:
        raise DatabaseUnavailable(f"database unavailable while {doing}: {exc}") from exc


#: SQLSTATE classes of the errors that rows cause by what they hold, whatever the database's state: data exceptions
#: (22: a value out of range, text it cannot hold), integrity constraint violations (23) and program limits (54: a key
#: longer than an index takes). SQLite's counterparts are its IntegrityError and DataError (a string or blob too big).
_REJECTING_CLASSES = ("22", "23", "54")


def _rejects_rows(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        exc = exc.orig
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError)):
        return True
    sqlstate = getattr(exc, "sqlstate", None)  # psycopg's
    return isinstance(sqlstate, str) and sqlstate[:2] in _REJECTING_CLASSES


@contextlib.contextmanager
def rejected_on_failure(doing: str) -> Iterator[None]:
    """Turn "the database refused these rows for what they hold" into RowsRejected; the rest propagates. Inside
    :func:`unavailable_on_failure`: psycopg counts a program limit among its OperationalErrors."""
    try:
        yield
    except Exception as exc:
        if not _rejects_rows(exc):
            raise
        refusal = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
        reason = next(iter(str(refusal).splitlines()), type(refusal).__name__)  # its first line: no DETAIL
        raise RowsRejected(f"the database refused rows while {doing}: {reason}") from exc


def ensure_at_head(engine: Engine) -> None:
    """Check that the database's schema is at the newest migration.

    Raises:
        ConfigError: the database is at another revision (or empty, or an SQLite file that is not there, which
            is not made); the message says to run ``db upgrade``.
        DatabaseUnavailable: the database cannot be reached.
    """
    missing = missing_archive(engine)
    if missing is not None:
        raise ConfigError(missing)
    with unavailable_on_failure("checking the schema revision"), engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise ConfigError(not_at_head(current, head))


def sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL names; None for another database, or an SQLite one in memory."""
    database = url.database or ""
    # An SQLite URI (file:x.db, file:///x.db, file://localhost/x.db, %-escaped) names its file in its path.
    # An SQLite URI only with uri (as SQLAlchemy reads it) and "file:": else the name is a file's, whatever follows.
    uri = asbool(url.query.get("uri", False)) and database.startswith("file:")
    path = unquote(urlsplit(database).path) if uri else database
    in_a_file = path not in ("", ":memory:") and not (uri and url.query.get("mode") == "memory")
    return Path(path) if url.get_backend_name() == "sqlite" and in_a_file else None


def missing_archive(engine: Engine) -> str | None:
    """What to say when ``engine`` names an SQLite file that is not there (connecting would make an empty one, which
    then reads as an archive no migration ran on); None when there is one, or the database is not such a file."""
    path = sqlite_file(engine.url)
    if path is not None and not path.exists():
        return f"DATABASE_URL: there is no archive at {path}: run `tuya-archiver db upgrade` to make one"
    return None
