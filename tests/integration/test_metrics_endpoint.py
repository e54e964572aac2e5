"""streams/metrics.py served over real HTTP on loopback: /metrics text, /healthz following the heartbeat."""

from __future__ import annotations

import httpx
import pytest

from streams.errors import ConfigError
from streams.metrics import MetricsServer, WorkerMetrics

pytestmark = pytest.mark.integration


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_metrics_and_health_on_loopback():
    clock = Clock()
    metrics = WorkerMetrics(stale_after_s=30, clock=clock)
    metrics.received.inc(7)
    metrics.dead_letters.labels(error_kind="bad_base64").inc()
    with MetricsServer(metrics, port=0) as server, httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as http:
        body = http.get("/metrics").text
        assert "tuya_messages_received_total 7.0" in body
        assert 'tuya_dead_letters_total{error_kind="bad_base64"} 1.0' in body
        assert "tuya_push_to_commit_lag_seconds" in body and "tuya_oldest_unacked_age_seconds" in body
        assert http.get("/healthz").status_code == 200
        clock.now += 31
        assert http.get("/healthz").status_code == 503
        metrics.heartbeat()
        assert http.get("/healthz").status_code == 200
        assert http.get("/other").status_code == 404


def test_a_port_another_process_has_stops_startup_naming_the_setting():
    # the README's two processors on one host: the second died with a traceback from the socket
    with MetricsServer(WorkerMetrics(), port=0) as first, pytest.raises(ConfigError) as refused:
        MetricsServer(WorkerMetrics(), port=first.port)
    assert str(refused.value).startswith(f"METRICS_PORT: cannot listen on 127.0.0.1:{first.port} ")
    assert "a port of its own" in str(refused.value)
