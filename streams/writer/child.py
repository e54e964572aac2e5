"""The writer process itself: reads batches from the worker's pipe and commits them, in order (see the package).

Owns the transaction side of the worker when it runs in two processes: the store, the rules reactor (rule state and
outbox rows in the batch's transaction), the data-point catalog the rules compare units with (reloaded when the
worker's changed), group commits (the batches waiting, and those arriving within COMMIT_WAIT_MS), retrying a
transaction while the database is down, and keeping a message whose rows it refuses as a dead letter
(streams.store.isolate). It exits when the worker says stop or its pipe ends (the worker is gone).
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sqlalchemy.engine import Engine

from streams.backoff import Backoff
from streams.errors import ConfigError, RowsRejected, TransientError
from streams.fleet.catalog import CatalogRef
from streams.heap import collector_paused, settle_heap
from streams.outbox.reactor import RulesReactor
from streams.rules import RuleSet
from streams.store.engine import make_engine, unavailable_on_failure
from streams.store.fleet import load_catalog
from streams.store.isolate import rules_hooks, write_isolating
from streams.store.prepared import combine, no_rows
from streams.store.sql import ArchiveStore
from streams.writer.frames import Committed, Crashed, Request, Stop, Tick, Write, decode_request, encode

__all__ = ["WriterConfig", "main", "serve"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterConfig:
    """What the writer process is started with (pickled once, never logged: the URL may hold a password)."""

    database_url: str
    rules: RuleSet
    commit_max_messages: int
    commit_wait_s: float
    in_flight: int  # the worker's WRITER_IN_FLIGHT
    settle_every: int | None  # the worker's HISTORY_SETTLE_VALUES (streams.store.settle.settle_every)
    log_level: int = logging.INFO
    log_file: str | None = None  # the file the worker logs to (the demo's), else stderr


class _Gone(Exception):
    """The worker said stop while the database was down, or its pipe ended: exit without committing more."""


def main(argv: list[str]) -> None:
    """``python -m streams.writer FD``: FD is the writer's end of the pipe; the first frame is its WriterConfig."""
    pipe = Connection(int(argv[0]))
    try:
        config = pickle.loads(pipe.recv_bytes())
    except (EOFError, OSError):
        return  # the worker went away before it said anything
    serve(pipe, config)


def serve(pipe: Connection, config: WriterConfig) -> None:
    """Commit what arrives on ``pipe`` until told to stop or the pipe ends."""
    # Ctrl-C and a platform's SIGTERM reach the whole process group: the worker decides when the writer stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", filename=config.log_file
    )
    engine = make_engine(config.database_url)
    try:
        writer = Writer(pipe, ArchiveStore(engine, settle_every=config.settle_every), engine, config)
        settle_heap()  # as the worker does before its loop
        writer.run()
    except _Gone:
        pass
    except ConfigError as exc:
        log.error("the writer process stopped: %s", exc)
        with contextlib.suppress(_Gone):
            _reply(pipe, Crashed(str(exc), config=True))
    except Exception as exc:
        log.exception("the writer process failed")
        with contextlib.suppress(_Gone):
            _reply(pipe, Crashed(f"{type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()
        pipe.close()


def _reply(pipe: Connection, frame: Committed | Crashed) -> None:
    try:
        pipe.send_bytes(encode(frame))
    except OSError as exc:  # the worker is gone: its batches are unacknowledged and will be redelivered
        raise _Gone from exc


class Writer:
    def __init__(self, pipe: Connection, store: ArchiveStore, engine: Engine, config: WriterConfig) -> None:
        self._pipe = pipe
        # A thread empties the pipe as frames arrive (those that arrived together, handed over together), so the worker
        # never waits to send and the batches that arrived during a transaction are there to be committed together.
        self._frames: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        threading.Thread(target=self._receive, name="writer-pipe", daemon=True).start()
        self._store = store
        self._engine = engine
        self._max = config.commit_max_messages
        self._wait_s = config.commit_wait_s
        self._in_flight = config.in_flight
        self._catalog = CatalogRef()
        self._generation = -1
        rules = config.rules
        self._reactor = RulesReactor(rules, self._catalog.get) if rules.rules else None
        self._waiting: deque[Request] = deque()  # read ahead while waiting to retry, or past a group's end

    def run(self) -> None:
        while True:
            request = self._next()
            if isinstance(request, Stop):
                return
            if isinstance(request, Tick):
                self._tick(request)
            else:
                with collector_paused():  # the group's rows die as its transaction ends (streams.heap)
                    self._commit(self._group(request))

    def _next(self, timeout: float | None = None) -> Request | None:
        """The next request; None if none came within ``timeout`` (None: wait for ever). _Gone when the pipe ends."""
        if not self._waiting:
            self._waiting.extend(self._read(timeout))
        return self._waiting.popleft() if self._waiting else None

    def _read(self, timeout: float | None) -> list[Request]:
        """The requests that arrived together next, waiting up to ``timeout``; _Gone when the pipe ended."""
        try:
            frames = self._frames.get(timeout=timeout) if timeout != 0 else self._frames.get_nowait()
        except queue.Empty:
            return []
        if frames is None:
            raise _Gone
        return [decode_request(frame) for frame in frames]

    def _receive(self) -> None:
        try:
            while True:
                frames = [self._pipe.recv_bytes()]
                while self._pipe.poll(0):
                    frames.append(self._pipe.recv_bytes())
                self._frames.put(frames)
        except (EOFError, OSError):
            self._frames.put(None)

    def _group(self, first: Write) -> list[Write]:
        """``first`` and the batches behind it: those waiting, and those that arrive within COMMIT_WAIT_MS, up to
        COMMIT_MAX_MESSAGES messages. The group also ends when it holds every batch the worker may have in flight
        (the worker waits for this commit before it sends more) and at any request that is not a batch."""
        group = [first]
        size = len(first.rows.messages)
        deadline = time.monotonic() + self._wait_s
        while size < self._max and len(group) < self._in_flight:
            request = self._next(timeout=max(0.0, deadline - time.monotonic()))
            if request is None:
                break
            if not isinstance(request, Write):
                self._waiting.appendleft(request)
                break
            group.append(request)
            size += len(request.rows.messages)
        return group

    def _commit(self, group: list[Write]) -> None:
        rows = combine([write.rows for write in group])
        news = [item for write in group if write.news is not None for item in pickle.loads(write.news)]
        backoff = Backoff()
        while True:
            started = time.perf_counter()
            try:
                self._refresh_catalog(group[-1].catalog)
                counts = write_isolating(self._store, rows, rules_hooks(self._reactor, news, group[-1].now))
            except TransientError as exc:
                delay = max(backoff.next_delay(), exc.retry_after)
                log.warning("%s: nothing acknowledged, retrying %d batches in %.0f s", exc, len(group), delay)
                self._wait(delay)
                continue
            _reply(self._pipe, Committed(len(group), counts, time.perf_counter() - started))
            self._store.settle_when_due()  # after the reply: the worker acknowledges while it runs
            return

    def _wait(self, seconds: float) -> None:
        """Sleep before a retry, reading what the worker sends meanwhile; _Gone if it says stop (now, or before the
        retries began: a Stop read while the group was gathered waits in ``_waiting``)."""
        deadline = time.monotonic() + seconds
        while True:
            if any(isinstance(request, Stop) for request in self._waiting):
                log.warning("stopping while the database is down: leaving the batches in hand unacknowledged")
                raise _Gone
            if (left := deadline - time.monotonic()) <= 0:
                return
            self._waiting.extend(self._read(left))

    def _tick(self, tick: Tick) -> None:
        if self._reactor is None:
            return
        try:
            self._refresh_catalog(tick.catalog)
            hook = self._reactor.on_tick(tick.now)
            if hook is not None:
                self._store.write_prepared(no_rows(), extra=hook)
        except (TransientError, RowsRejected) as exc:
            log.warning("clock tick skipped: %s", exc)

    def _refresh_catalog(self, generation: int) -> None:
        if self._reactor is None or generation == self._generation:
            return
        with unavailable_on_failure("reading the data-point catalog"), self._engine.connect() as connection:
            self._catalog.set(load_catalog(connection))
        self._generation = generation
