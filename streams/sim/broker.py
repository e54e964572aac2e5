"""Control of an embedded Pulsar-protocol broker (pulsar-lite) on loopback, for the demo, the tests and the benchmark.

Owns the broker process: its config file (metrics bound to 127.0.0.1, never pulsar-lite's default 0.0.0.0:8080),
its free ports, its log file, start / stop / kill / restart, and the rule that no broker outlives its owner: the
context manager, a failed start, interpreter exit (atexit) and, on Linux, the death of the starting thread
(``setpriv --pdeathsig``) all end it. Imports no worker code; the only client code is :func:`burn_consumer_ids`.

pulsar-lite's behaviour that callers must plan for (0.2; the first is in ../shared/INFRA.md, the others measured here):

- Two clients (two processes, or two ``pulsar.Client`` objects in one) cannot share a subscription name: each client
  numbers its consumers from 0 and the broker rejects a second "Consumer 0" on the subscription, so the subscribe
  times out. A client that must join a subscription another client holds (a standby worker, a restarted worker in a
  crash test whose predecessor's consumer is still open) first calls :func:`burn_consumer_ids` with more ids than
  the other clients have used.
- A Failover or Exclusive consumer attached while the topic is being written to receives some messages several
  times (same message id; up to hundreds of times when producing unbatched). Nothing is lost, Shared subscriptions
  are not affected, and a consumer that subscribes after publishing sees each message once. Tests count distinct
  message ids, as the worker's idempotent writes must.
- Acks are persisted lazily: after a restart (graceful or a kill) some acknowledged messages may be delivered again.
  With batched publishing an entry is a whole batch, which comes again unless every message in it was acked.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

__all__ = ["BrokerError", "EmbeddedBroker", "broker_binary", "burn_consumer_ids", "free_port"]

_HOST = "127.0.0.1"
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 15.0
_START_ATTEMPTS = 3  # a free port can be taken between choosing it and the broker binding it


class BrokerError(RuntimeError):
    """The broker could not be started, or exited on its own."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        return int(sock.getsockname()[1])


def burn_consumer_ids(client: Any, topic: str, n: int = 16) -> None:
    """Use up the next ``n`` consumer ids of ``client`` so that its next subscribe does not collide (see above).

    Readers are used because they are consumers on a non-durable subscription: they leave no backlog behind.
    """
    import pulsar  # the client library is only needed by callers that have a client already

    for _ in range(n):
        client.create_reader(topic, pulsar.MessageId.latest).close()


class EmbeddedBroker:
    """One pulsar-lite process on ``pulsar://127.0.0.1:PORT`` with its data in ``data_dir``.

    Args:
        data_dir: holds the RocksDB data (``db/``), the config file and, by default, ``broker.log``.
        port: the broker port; a free one is chosen on first start when None. Restarts keep the port.
        log_path: where the broker's output goes (it logs every ack at INFO); ``Path("/dev/null")`` for benchmarks.
        partitions: pulsar-lite's ``default_partitions``: topics are created with this many partitions (Tuya's
            ``event`` topic has 11, SPEC.md §1.2); 0 makes plain topics.
        die_with_parent: on Linux, SIGKILL the broker when the thread that started it dies (so a killed test run
            leaves no broker behind). Start it from a thread that lives as long as the broker should.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        log_path: Path | None = None,
        partitions: int = 0,
        log_level: str = "info",
        die_with_parent: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.log_path = log_path if log_path is not None else self.data_dir / "broker.log"
        self.partitions = partitions
        self.log_level = log_level
        self._port = port
        self._fixed_port = port is not None
        self._die_with_parent = die_with_parent and sys.platform.startswith("linux") and bool(shutil.which("setpriv"))
        self._process: subprocess.Popen[bytes] | None = None
        self._metrics_port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the broker has no port until it is started")
        return self._port

    @property
    def metrics_port(self) -> int | None:
        """The port of the Prometheus endpoint (``http://127.0.0.1:PORT/metrics``) of the last start."""
        return self._metrics_port

    @property
    def url(self) -> str:
        return f"pulsar://{_HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the broker and return once its port accepts connections. Raises BrokerError."""
        if self.running:
            raise BrokerError(f"the broker is already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self._fixed_port else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._fixed_port and (attempt > 1 or self._port is None):
                self._port = free_port()
            try:
                self._launch()
                self._fixed_port = True  # from now on restarts must come back on the same URL
                return self
            except BrokerError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """SIGTERM, then wait for the process to exit (SIGKILL if it has not after ``timeout`` seconds)."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            self._forget()

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; acknowledged and persisted messages survive a restart."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.kill()
            process.wait()
        finally:
            self._forget()

    def restart(self) -> Self:
        """Stop (gracefully) and start again on the same port and data directory."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        return f"EmbeddedBroker({where}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

    def _launch(self) -> None:
        if not _port_is_free(self.port):
            # Checked first: otherwise the readiness probe would connect to whoever holds the port.
            raise BrokerError(f"port {self.port} on {_HOST} is in use")
        config = self._write_config()
        command = [
            broker_binary(),
            "--config",
            str(config),
            "--addr",
            f"{_HOST}:{self.port}",
            "--db-path",
            str(self.data_dir / "db"),
            "--log-level",
            self.log_level,
        ]
        if self._die_with_parent:
            command = ["setpriv", "--pdeathsig", "KILL", "--", *command]
        with _open_log(self.log_path) as log:
            self._process = subprocess.Popen(
                command, cwd=self.data_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def _write_config(self) -> Path:
        # INFRA.md: without a [metrics] addr the broker serves metrics on 0.0.0.0:8080.
        config = self.data_dir / "pulsar-lite.toml"
        self._metrics_port = free_port()
        metrics = f'[metrics]\nenabled = true\naddr = "{_HOST}:{self._metrics_port}"\n'
        config.write_text(f"default_partitions = {int(self.partitions)}\n\n{metrics}", encoding="utf-8")
        return config

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"pulsar-lite exited with status {self._process.returncode} before accepting connections on "
                    f"port {self.port} (see {self.log_path})"
                )
            with contextlib.suppress(OSError), socket.create_connection((_HOST, self.port), timeout=0.25):
                return
            time.sleep(0.02)
        raise BrokerError(f"pulsar-lite did not accept connections on port {self.port} within {_READY_TIMEOUT} s")

    def _forget(self) -> None:
        self._process = None
        atexit.unregister(self.stop)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as the broker binds: a port left in TIME_WAIT by a stopped broker counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def broker_binary() -> str:
    """The pulsar-lite executable. Raises BrokerError when the package or its binary is missing."""
    try:
        from pulsar_lite.binary_finder import find_pulsar_lite_binary

        return find_pulsar_lite_binary()
    except (ImportError, FileNotFoundError) as exc:
        raise BrokerError(f"pulsar-lite binary not found (pip install pulsar-lite): {exc}") from None


@contextlib.contextmanager
def _open_log(path: Path) -> Iterator[IO[bytes]]:
    handle: IO[bytes] = path.open("ab")
    try:
        yield handle
    finally:
        handle.close()  # the child keeps its own copy of the descriptor
