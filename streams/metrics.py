"""What the worker tells Prometheus, and the loopback HTTP endpoint that serves ``/metrics`` and ``/healthz``.

Owns the metric names and the health rule (the loop's heartbeat is recent). Holds its own registry, so tests and
several workers in one process do not collide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from streams.errors import ConfigError

if TYPE_CHECKING:
    from streams.pipeline import BatchResult

__all__ = ["MetricsServer", "WorkerMetrics"]


class WorkerMetrics:
    """The worker's counters and gauges; ``heartbeat()`` on every loop feeds ``/healthz``."""

    def __init__(self, *, stale_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("tuya_messages_received", "Messages received from the broker", registry=r)
        self.stored = Counter("tuya_messages_stored", "Messages committed to the archive (new rows)", registry=r)
        self.duplicates = Counter("tuya_messages_duplicate", "Redelivered messages already archived", registry=r)
        self.dead_letters = Counter(
            "tuya_dead_letters",
            "Messages kept as dead letters (not decoded, or rejected by the database)",
            ["error_kind"],
            registry=r,
        )
        self.sign_mismatches = Gauge("tuya_sign_mismatches", "Envelopes whose sign did not match", registry=r)
        self.batches = Counter("tuya_batches", "Batches committed and acknowledged", registry=r)
        self.commit_seconds = Histogram("tuya_commit_seconds", "Time to store one batch", registry=r)
        self.oldest_unacked_age = Gauge(
            "tuya_oldest_unacked_age_seconds", "Age of the oldest received but unacknowledged message", registry=r
        )
        self.push_lag = Gauge(
            "tuya_push_to_commit_lag_seconds",
            "Commit time minus Tuya's push time of the oldest message of the last batch (retention is 2 h)",
            registry=r,
        )
        self.reconnects = Counter("tuya_reconnects", "Reconnections to the broker", ["reason"], registry=r)
        self.gaps_detected = Counter(
            "tuya_gaps_detected",
            "Pauses of consumption longer than Tuya keeps messages (a gap in the history)",
            registry=r,
        )
        self.gaps_open = Gauge(
            "tuya_gaps_open", "Gaps not (yet) filled from Tuya's device logs, partly filled ones included", registry=r
        )
        self._clock = clock
        self.stale_after_s = stale_after_s
        self._beat = clock()

    def record_batch(self, result: BatchResult, sign_mismatches: int) -> float:
        """Count a committed batch; returns its push-to-commit lag (s), which the lag gauge now shows."""
        lag = time.time() - result.oldest_push_ms / 1000 if result.oldest_push_ms else 0.0
        self.push_lag.set(lag)
        self.oldest_unacked_age.set(0)
        self.received.inc(result.received)
        self.stored.inc(result.stored)
        self.duplicates.inc(result.duplicates)
        for kind, n in result.dead_letters.items():
            self.dead_letters.labels(error_kind=kind).inc(n)
        self.sign_mismatches.set(sign_mismatches)
        self.batches.inc()
        return lag

    def heartbeat(self) -> None:
        self._beat = self._clock()

    def healthy(self) -> bool:
        return self._clock() - self._beat < self.stale_after_s


class _Handler(BaseHTTPRequestHandler):
    metrics: WorkerMetrics

    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._reply(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        elif self.path == "/healthz":
            ok = self.metrics.healthy()
            self._reply(200 if ok else 503, b"ok\n" if ok else b"stale\n", "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # quiet: scrapes are not news


class MetricsServer:
    """``/metrics`` and ``/healthz`` on 127.0.0.1 (never another interface) in a daemon thread; a port that cannot be
    had (another process of this host has it, say) is a ConfigError naming METRICS_PORT."""

    def __init__(self, metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_Handler,), {"metrics": metrics})
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(
                f"METRICS_PORT: cannot listen on {host}:{port} ({exc.strerror}); each process on a host needs a port "
                "of its own (0: no metrics server)"
            ) from None
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> MetricsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
