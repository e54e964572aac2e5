"""Serving the web view: the read-only engine and app for a DATABASE_URL, the listening socket, and uvicorn.

Owns the start and stop of a server: ``open_view`` checks the bind rule (loopback, or SERVE_TOKEN) before anything
else, opens the archive read-only and checks its schema; ``listen`` binds the socket (so a port in use is an error
the caller sees, and port 0 picks a free one); ``serve_in_thread`` runs it all in a thread for the demo and the
tests (``start_in_thread`` for an app made otherwise), ``serve_forever`` in the foreground for ``tuya-archiver
serve``. uvicorn logs through the root logger.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType

import uvicorn
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.applications import Starlette

from streams.errors import DatabaseUnavailable
from streams.store.engine import ensure_at_head, make_readonly_engine, sqlite_file
from streams.web.app import DEFAULT_RETENTION, create_app
from streams.web.operations import RulesSource
from streams.web.security import require_token_for

__all__ = ["RunningServer", "listen", "open_view", "serve_forever", "serve_in_thread", "start_in_thread", "url_of"]

START_TIMEOUT_S = 10.0


def open_view(
    database_url: str,
    *,
    host: str,
    token: SecretStr | None = None,
    rules: RulesSource | None = None,
    retention: timedelta = DEFAULT_RETENTION,
) -> tuple[Starlette, Engine]:
    """The app over the archive at ``database_url``, opened read-only, and its engine (the caller disposes of it).

    Raises:
        ConfigError: ``host`` is beyond loopback and there is no token; the URL is unusable; the schema is not at
            head.
        DatabaseUnavailable: the archive cannot be opened.
    """
    require_token_for(host, token)
    engine = make_readonly_engine(database_url)
    try:
        ensure_at_head(engine)
    except DatabaseUnavailable as exc:
        engine.dispose()
        journal = sqlite_file(engine.url)
        journal = journal and journal.with_name(journal.name + "-journal")
        code = getattr(getattr(exc.__cause__, "orig", None), "sqlite_errorcode", 0)
        if journal is None or not journal.exists() or code & 0xFF != sqlite3.SQLITE_READONLY:
            raise  # not a journal left to roll back (one of a compact under way: locked, and it says so)
        raise DatabaseUnavailable(
            f"{exc}: {journal} is what an interrupted write (a stopped `db compact`) left to roll back, which a "
            "read-only view cannot do: run `tuya-archiver db current` once, then serve again (do not delete the file)"
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return create_app(engine, token=token, rules=rules, retention=retention), engine


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (0: a free port), for uvicorn to listen on.

    Raises:
        OSError: the address is in use or not this machine's.
    """
    family, kind, protocol, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app: Starlette, *, access_log: bool) -> uvicorn.Server:
    # No websockets, no lifespan: the app has neither. log_config=None: the program's logging configuration stays.
    config = uvicorn.Config(app, ws="none", lifespan="off", log_config=None, access_log=access_log, server_header=False)
    return uvicorn.Server(config)


def serve_forever(app: Starlette, sock: socket.socket) -> None:
    """Serve on ``sock`` until SIGINT or SIGTERM.

    uvicorn shuts down gracefully on either, then raises the signal again for the handler it found: a no-op one for
    SIGTERM makes a stop by SIGTERM (a process manager's) a normal return; SIGINT stays KeyboardInterrupt.
    """
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        _server(app, access_log=True).run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class RunningServer:
    """A web view serving in a thread: ``url`` (``http://127.0.0.1:PORT``); ``stop()`` ends it and closes the
    archive. A context manager too."""

    url: str
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _engine: Engine = field(repr=False)
    _socket: socket.socket = field(repr=False)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)
        self._socket.close()
        self._engine.dispose()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def serve_in_thread(
    database_url: str,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    token: str | None = None,
    rules_file: Path | None = None,
) -> RunningServer:
    """Serve the archive at ``database_url`` read-only from a daemon thread, on ``port`` (0: a free one); returns
    once it answers. The same rules as ``tuya-archiver serve``: beyond loopback only with a ``token``.

    Raises:
        ConfigError, DatabaseUnavailable: as ``open_view``.
        OSError: the address cannot be bound.
        RuntimeError: the server did not start within START_TIMEOUT_S.
    """
    secret = SecretStr(token) if token else None
    app, engine = open_view(database_url, host=host, token=secret, rules=RulesSource(rules_file))
    try:
        sock = listen(host, port)
    except OSError:
        engine.dispose()
        raise
    return start_in_thread(app, engine, sock)


def start_in_thread(app: Starlette, engine: Engine, sock: socket.socket) -> RunningServer:
    """Serve ``app`` on ``sock`` from a daemon thread; returns once it answers. ``stop()`` closes ``sock`` and
    disposes of ``engine``.

    Raises:
        RuntimeError: the server did not start within START_TIMEOUT_S.
    """
    server = _server(app, access_log=False)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web-view", daemon=True)
    running = RunningServer(url_of(sock), server, thread, engine, sock)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"the web view did not start on {running.url}")
        time.sleep(0.01)
    return running
