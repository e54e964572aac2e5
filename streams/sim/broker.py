"""Control of an embedded Pulsar-protocol broker (pulsar-lite) on loopback, for the demo, the tests and the benchmark.

Owns pulsar-lite's command line and config file (metrics bound to 127.0.0.1, never pulsar-lite's default
0.0.0.0:8080), its data directory and restart; the process's lifecycle (free port, readiness, stop, kill, never
outliving its owner) is :class:`~streams.sim.process.LoopbackProcess`'s. Imports no worker code; the only client
code is :func:`burn_consumer_ids`.

pulsar-lite's behaviour that callers must plan for (0.2; measured on our machines):

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
- On a partitioned topic (``partitions`` > 0) a Failover or Exclusive subscription keeps no acknowledgement once its
  consumer closes (the broker logs "ignored stale ack"): the next consumer gets every message again, from the first.
  Shared subscriptions and plain topics keep them. A test that stops a consumer and starts another uses plain topics.
- Dispatch can stop for good while a backlog waits. A dispatch pass that ends early (for one, when the connection's
  write buffer is past its high-water mark, 64 KB by default, which 128 dispatched messages of 700 bytes pass) is
  not started again until the next FLOW or publish; a consumer whose permits are still granted sends no FLOW, so
  both sides wait. A bare consumer draining 200,000 messages stalled in 12 of 45 rounds (after 1,300 to 20,000
  messages); publishing one more message woke the broker. With the write buffer's marks at 256 / 128 MB no round
  of 42 stalled, at the same rate, so the broker is always started with them (:data:`WRITE_BUFFER_HIGH_BYTES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from streams.sim.process import HOST, BrokerError, LoopbackProcess, free_port

__all__ = [
    "WRITE_BUFFER_HIGH_BYTES",
    "BrokerError",
    "EmbeddedBroker",
    "broker_binary",
    "burn_consumer_ids",
    "free_port",
]

#: pulsar-lite's write-buffer high-water mark per connection (the low one is half): far above what a dispatch burst
#: writes, so that the broker never stops sending on a connection and then forgets to start again (see above).
WRITE_BUFFER_HIGH_BYTES = 256 * 1024 * 1024


def burn_consumer_ids(client: Any, topic: str, n: int = 16) -> None:
    """Use up the next ``n`` consumer ids of ``client`` so that its next subscribe does not collide (see above).

    Readers are used because they are consumers on a non-durable subscription: they leave no backlog behind.
    """
    import pulsar  # the client library is only needed by callers that have a client already

    for _ in range(n):
        client.create_reader(topic, pulsar.MessageId.latest).close()


class EmbeddedBroker(LoopbackProcess):
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

    name = "pulsar-lite"

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
        super().__init__(
            port,
            log_path=log_path if log_path is not None else self.data_dir / "broker.log",
            die_with_parent=die_with_parent,
        )
        self.partitions = partitions
        self.log_level = log_level
        self._metrics_port: int | None = None

    @property
    def metrics_port(self) -> int | None:
        """The port of the Prometheus endpoint (``http://127.0.0.1:PORT/metrics``) of the last start."""
        return self._metrics_port

    @property
    def url(self) -> str:
        return f"pulsar://{HOST}:{self.port}"

    def start(self) -> Self:
        """Start the broker and return once its port accepts connections. Raises BrokerError."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return super().start()

    def restart(self) -> Self:
        """Stop (gracefully) and start again on the same port and data directory (after a kill too: acknowledged
        and persisted messages survive it)."""
        self.stop()
        return self.start()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        return f"EmbeddedBroker({where}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

    def _cwd(self) -> Path:
        return self.data_dir

    def _command(self) -> list[str]:
        return [
            broker_binary(),
            "--config",
            str(self._write_config()),
            "--addr",
            f"{HOST}:{self.port}",
            "--db-path",
            str(self.data_dir / "db"),
            "--log-level",
            self.log_level,
        ]

    def _write_config(self) -> Path:
        # INFRA.md: without a [metrics] addr the broker serves metrics on 0.0.0.0:8080.
        config = self.data_dir / "pulsar-lite.toml"
        self._metrics_port = free_port()
        metrics = f'[metrics]\nenabled = true\naddr = "{HOST}:{self._metrics_port}"\n'
        buffer = (
            f"pulsar_channel_write_buffer_high_water_mark_bytes = {WRITE_BUFFER_HIGH_BYTES}\n"
            f"pulsar_channel_write_buffer_low_water_mark_bytes = {WRITE_BUFFER_HIGH_BYTES // 2}\n"
        )
        config.write_text(f"default_partitions = {int(self.partitions)}\n{buffer}\n{metrics}", encoding="utf-8")
        return config


def broker_binary() -> str:
    """The pulsar-lite executable. Raises BrokerError when the package or its binary is missing."""
    try:
        from pulsar_lite.binary_finder import find_pulsar_lite_binary

        return find_pulsar_lite_binary()
    except (ImportError, FileNotFoundError) as exc:
        raise BrokerError(f"pulsar-lite binary not found (pip install pulsar-lite): {exc}") from None
