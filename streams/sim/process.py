"""A broker binary run as a child process on a loopback port: the lifecycle the embedded brokers share.

Owns the port (a free one is chosen on first start, and chosen again when another process takes it between the
choice and the bind; restarts keep it), the wait until it accepts connections, stop (SIGTERM, then SIGKILL) and
kill, and the rule that no broker outlives its owner: the context manager, a failed start, interpreter exit
(atexit) and, on Linux, the death of the thread that started it (``setpriv --pdeathsig``). Subclasses say what to
run (:meth:`LoopbackProcess._command`) and, if they must, where and with which environment.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

__all__ = ["HOST", "BrokerError", "LoopbackProcess", "free_port"]

HOST = "127.0.0.1"
_READY_TIMEOUT = 10.0
_START_ATTEMPTS = 3


class BrokerError(RuntimeError):
    """The broker could not be started, or exited on its own."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as brokers bind: a port left in TIME_WAIT by a stopped broker counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class LoopbackProcess:
    """One child process serving on ``127.0.0.1:PORT``.

    Args:
        port: the port; a free one is chosen on first start when None.
        log_path: where the process's output goes; discarded when None.
        die_with_parent: on Linux, SIGKILL the process when the thread that started it dies (so a killed test run
            leaves nothing behind). Start it from a thread that lives as long as the process should.
    """

    #: What the process is called in errors.
    name: ClassVar[str] = "broker"
    stop_timeout: ClassVar[float] = 15.0

    def __init__(self, port: int | None, *, log_path: Path | None, die_with_parent: bool) -> None:
        self.log_path = log_path
        self._port = port
        self._fixed_port = port is not None
        self._die_with_parent = die_with_parent and sys.platform.startswith("linux") and bool(shutil.which("setpriv"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError(f"{self.name} has no port until it is started")
        return self._port

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the process and return once its port accepts connections. Raises BrokerError."""
        if self.running:
            raise BrokerError(f"{self.name} is already running (pid {self.pid})")
        attempts = 1 if self._fixed_port else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            if not self._fixed_port and (attempt > 1 or self._port is None):
                self._port = free_port()
            try:
                self._launch()
                self._fixed_port = True  # from now on restarts must come back on the same address
                return self
            except BrokerError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then wait for the process to exit (SIGKILL if it has not after ``timeout`` seconds)."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(self.stop_timeout if timeout is None else timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            self._forget()

    def kill(self) -> None:
        """SIGKILL the process, as a crash would."""
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

    def _command(self) -> list[str]:
        """The command line (called before each start)."""
        raise NotImplementedError

    def _cwd(self) -> Path | None:
        return None

    def _env(self) -> dict[str, str] | None:
        return None

    def _launch(self) -> None:
        if not _port_is_free(self.port):
            # Checked first: otherwise the readiness probe would connect to whoever holds the port.
            raise BrokerError(f"port {self.port} on {HOST} is in use")
        command = self._command()
        if self._die_with_parent:
            command = ["setpriv", "--pdeathsig", "KILL", "--", *command]
        log = self.log_path if self.log_path is not None else Path(os.devnull)
        with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
            self._process = subprocess.Popen(
                command,
                cwd=self._cwd(),
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
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
                    f"{self.name} exited with status {self._process.returncode} before accepting connections on "
                    f"port {self.port} (log: {self.log_path or 'discarded'})"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.25):
                return
            time.sleep(0.02)
        raise BrokerError(f"{self.name} did not accept connections on port {self.port} within {_READY_TIMEOUT} s")

    def _forget(self) -> None:
        self._process = None
        atexit.unregister(self.stop)
