"""The worker's end of its writer process: start it, send it batches in order, read what it committed.

Owns the process's lifetime and the batches it has not reported committed yet: when the writer dies (kill -9, out
of memory), a new one is started and those batches are sent to it again, in order; the archive ignores what the
dead one had committed, so nothing is stored twice and the rules do not react twice.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection

from models.records import News
from streams.backoff import Backoff, nap
from streams.errors import ConfigError, WorkerError
from streams.store.prepared import PreparedBatch
from streams.writer.child import WriterConfig
from streams.writer.frames import Committed, Crashed, Stop, Tick, Write, decode_reply, encode

__all__ = ["WriterFailed", "WriterProcess"]

log = logging.getLogger(__name__)

_STOP_GRACE_S = 10.0  # after its pipe closed, how long the writer may take to finish a transaction before it is killed
#: On stop, how long the writer may take to commit what it was sent: a database that holds its transaction on a lock
#: must not keep the worker past a service manager's patience (Heroku's 30 s) and have it killed mid-way.
STOP_WAIT_S = 15.0


class WriterFailed(WorkerError):
    """The writer process met an error it cannot retry; the worker stops (nothing of the batches in flight acked)."""


class WriterProcess:
    def __init__(self, config: WriterConfig, *, stop_wait_s: float = STOP_WAIT_S) -> None:
        self._config = config
        self._stop_wait = stop_wait_s
        self._rules = bool(config.rules.rules)
        self._process: subprocess.Popen[bytes] | None = None
        self._pipe: Connection | None = None
        self._unreported: deque[bytes] = deque()  # Write frames sent and not reported committed, oldest first
        self._restarts = Backoff()  # a writer that dies again before it commits anything is restarted ever later
        self._early: list[Committed] = []  # reports read from a writer that died, for the next committed()
        # The worker is stopping: a dead writer is not replaced (a plain flag, set from a signal handler: see nap).
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """A new interpreter (never a fork of this process and its pulsar-client threads), its pipe a socket pair."""
        ours, theirs = socket.socketpair()
        with ours, theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "streams.writer", str(theirs.fileno())], pass_fds=(theirs.fileno(),)
            )
            pipe = Connection(ours.detach())
        pipe.send_bytes(pickle.dumps(self._config, pickle.HIGHEST_PROTOCOL))
        self._process, self._pipe = process, pipe
        log.info("writer process started pid=%s", process.pid)

    def write(self, rows: PreparedBatch, news: Sequence[News], now: datetime, catalog: int) -> None:
        """Send a batch to be committed after those sent before it."""
        frame = encode(Write(rows, pickle.dumps(news, pickle.HIGHEST_PROTOCOL) if self._rules else None, now, catalog))
        self._unreported.append(frame)
        self._send(frame)

    def tick(self, now: datetime, catalog: int) -> None:
        self._send(encode(Tick(now, catalog)))

    def stopping(self) -> None:
        """The worker is stopping (safe from a signal handler): a writer that died is not replaced any more, and a
        restart's wait ends; the batches it had not reported stay unacknowledged."""
        self._stopping = True

    def committed(self, timeout: float) -> list[Committed]:
        """What the writer committed since last asked, waiting up to ``timeout`` s for the first report."""
        reports, self._early = self._early, []
        if self._pipe is None:  # it died while the worker was stopping
            return reports
        while self._pipe.poll(0 if reports else timeout):
            try:
                reply = decode_reply(self._pipe.recv_bytes())
            except (EOFError, OSError):
                self._restart()
                break
            reports.append(self._reported(reply))
        return reports

    def stop(self) -> list[Committed]:
        """Let the writer commit what it was sent (it gives up if the database is down) and exit, within
        ``stop_wait_s``; its last reports. What it did not report by then stays unacknowledged."""
        reports, self._early = self._early, []
        if self._pipe is None:
            return reports
        deadline = time.monotonic() + self._stop_wait
        try:
            self._pipe.send_bytes(encode(Stop()))
            while self._pipe.poll(max(0.0, deadline - time.monotonic())):
                reports.append(self._reported(decode_reply(self._pipe.recv_bytes())))
            log.warning(
                "the writer did not finish within %.0f s of the stop (a lock, a database that does not answer): "
                "ending it; its batches in hand stay unacknowledged", self._stop_wait,
            )  # fmt: skip
            self._kill()
        except (EOFError, OSError):  # the writer exited: what it reported is read, the rest stays unacknowledged
            self._read_last_words()
            reports.extend(self._early)
            self._early = []
        finally:
            self.close()
        return reports

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def close(self) -> None:
        """End the writer: it sees its pipe close and exits once its transaction ended; killed if that takes long."""
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("writer process pid=%s did not exit: killing it", self._process.pid)
                self._process.kill()
                self._process.wait()
            self._process = None

    def _read_last_words(self) -> None:
        """What a writer that ended left in its pipe: reports of commits (for the next committed()), or its failure."""
        while self._pipe is not None and self._pipe.poll(0):
            try:
                reply = decode_reply(self._pipe.recv_bytes())
            except (EOFError, OSError):
                return
            self._early.append(self._reported(reply))

    def _reported(self, reply: Committed | Crashed) -> Committed:
        if isinstance(reply, Crashed):
            if reply.config:
                raise ConfigError(reply.error)
            raise WriterFailed(f"the writer process failed: {reply.error}")
        for _ in range(reply.batches):
            self._unreported.popleft()
        self._restarts.reset()
        return reply

    def _send(self, frame: bytes) -> None:
        if self._pipe is None:  # it died while the worker was stopping: the frame stays unreported
            return
        try:
            self._pipe.send_bytes(frame)
        except OSError:
            self._restart()  # sends every unreported batch again, this one included if it is a Write

    def _restart(self) -> None:
        """Start a new writer and send it every unreported batch, in order; again, ever later, while the new one dies
        before it has them. What the dead one still said is read first: a failure it reported stops the worker
        (WriterFailed), as if read in turn, instead of being replaced over and over. Not while stopping."""
        while True:
            exitcode = None
            if self._process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    exitcode = self._process.wait(_STOP_GRACE_S)
            self._read_last_words()
            delay = self._restarts.next_delay()
            if self._pipe is not None:
                self._pipe.close()
            self._pipe = self._process = None
            if self._stopping:
                left = len(self._unreported)
                log.warning("writer process ended while stopping: its %d batches stay unacknowledged", left)
                return
            log.warning(
                "writer process ended (exit code %s) with %d batches not reported committed: "
                "starting a new one in %.0f s and sending them again",
                exitcode, len(self._unreported), delay,
            )  # fmt: skip
            if nap(delay, lambda: self._stopping):
                log.warning("stopping: no new writer process; %d batches stay unacknowledged", len(self._unreported))
                return
            try:
                self.start()
                assert self._pipe is not None
                for frame in self._unreported:
                    self._pipe.send_bytes(frame)
                return
            except OSError:  # the new writer ended too (the out-of-memory killer again): a broken pipe
                continue
