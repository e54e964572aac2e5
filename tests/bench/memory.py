"""Benchmark: the worker's resident memory while it drains a large backlog, with default settings.

BENCH_MEMORY_MESSAGES (default 2,000,000) status reports of a 10,000-device fleet are published unbatched to an
embedded pulsar-lite (generated as they are sent, so this process stays small); then ``tuya-archiver run`` drains
them into a fresh SQLite archive as a user would start it (its own process, default settings, no rules, no sync).
The resident memory of the worker and of its writer process is read from /proc twice a second. Printed: the peak,
the last reading before the worker went idle, and the growth after warm-up (the highest reading of the last three
quarters of the drain against the reading at its first quarter), next to the 300 MB target; and a warning when the
archive does not hold every message (the worker stops after IDLE_S seconds without one, so a pause of the broker
would pass for a fast drain). Then how long issue 17's 7.2 M-message backlog would take at this drain's rate: its
archive grows from empty to 10 M status values, as a backlog's does. Last, whether the drain slows as the archive
grows in the writer's transactions or around them: the worker's /metrics (messages committed, the writer's
transaction seconds) are read with each sample, and the first and last quarter of the messages compared.

Run alone with ``python -m tests.bench.memory``; ``make bench`` runs it with the other benchmarks.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from streams.sim import Fleet, free_port, publish
from streams.sources.pulsar import topic_name
from streams.store import migrate
from streams.store.engine import make_engine
from tests.bench.traffic import ACCESS_KEY, new_access_id, pulsar_broker
from tests.bench.worker import BACKLOG, BACKLOG_TARGET_MIN, verdict
from tests.integration.worker_harness import child_pids, cli, worker_env

COUNT = int(os.environ.get("BENCH_MEMORY_MESSAGES", "2000000"))
DEVICES = 10_000
LIMIT_MB = 300
SAMPLE_S = 0.5
IDLE_S = 10


@dataclass(frozen=True)
class Sample:
    at: float
    worker_kb: int
    writer_kb: int
    received: float  # the worker's tuya_messages_received and tuya_commit_seconds_sum, read from its /metrics
    commit_s: float

    @property
    def total_mb(self) -> float:
        return (self.worker_kb + self.writer_kb) / 1024


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    line = next((line for line in status.splitlines() if line.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1])


def committed(metrics_url: str) -> tuple[float, float]:
    """Messages the worker received (and committed) so far, and its writer's transaction seconds; zeros until its
    metrics server answers."""
    try:
        page = httpx.get(metrics_url, timeout=SAMPLE_S).text
    except httpx.HTTPError:
        return 0.0, 0.0
    values = {sample.name: sample.value for family in text_string_to_metric_families(page) for sample in family.samples}
    return values.get("tuya_messages_received_total", 0.0), values.get("tuya_commit_seconds_sum", 0.0)


def drain(broker_url: str, access_id: str, database_url: str) -> list[Sample]:
    """Run the worker until it idles out; its memory and its writer's, and what it committed, sampled while it
    drains."""
    port = free_port()
    env = worker_env(access_id, broker_url, database_url, SYNC_INTERVAL="0", METRICS_PORT=str(port))
    env.pop("BATCH_SIZE")  # the harness's setting for tests: this measures the defaults
    worker = subprocess.Popen(cli("run", "--idle-timeout", str(IDLE_S)), env=env, stderr=subprocess.DEVNULL)
    samples: list[Sample] = []
    try:
        while worker.poll() is None:
            writers = child_pids(worker.pid)
            memory = rss_kb(worker.pid), sum(rss_kb(pid) for pid in writers)
            samples.append(Sample(time.monotonic(), *memory, *committed(f"http://127.0.0.1:{port}/metrics")))
            time.sleep(SAMPLE_S)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.wait()
    if worker.returncode != 0:
        raise RuntimeError(f"the worker exited with {worker.returncode}")
    return samples[: max(1, len(samples) - int(IDLE_S / SAMPLE_S))]  # without the idle wait at the end


def main() -> None:
    print(
        f"memory: tuya-archiver run (default settings) draining {COUNT:,} status reports × 5 items of {DEVICES:,} "
        f"devices into SQLite; resident memory of the worker and its writer process, every {SAMPLE_S} s"
    )
    with pulsar_broker() as broker, tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        access_id = new_access_id()
        clock = itertools.count(1_700_000_000_000, 3)
        fleet = Fleet(ACCESS_KEY, DEVICES, clock=lambda: next(clock), seed=42, mix={"status": 1.0})
        topic = topic_name(access_id, "event")
        report = publish(broker.url, topic, fleet.messages(COUNT, items=5), batching=False)
        if report.failed or report.count != COUNT:
            raise RuntimeError(f"publishing {COUNT:,} messages failed: {report}")
        database_url = f"sqlite:///{folder}/archive.db"
        engine = make_engine(database_url)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        started = time.monotonic()
        samples = drain(broker.url, access_id, database_url)
        seconds = time.monotonic() - started - IDLE_S
        stored = stored_messages(database_url)
    peak = max(samples, key=lambda sample: sample.total_mb)
    end = samples[-1]
    warm = samples[len(samples) // 4]
    later = max(sample.total_mb for sample in samples[len(samples) // 4 :])
    print(
        f"  drained in {seconds:,.0f} s ({COUNT / seconds:,.0f} msg/s); peak {peak.total_mb:,.0f} MB "
        f"(worker {peak.worker_kb / 1024:,.0f} + writer {peak.writer_kb / 1024:,.0f}), at the end "
        f"{end.total_mb:,.0f} MB (worker {end.worker_kb / 1024:,.0f} + writer {end.writer_kb / 1024:,.0f})"
    )
    print(
        f"  after warm-up (a quarter in: {warm.total_mb:,.0f} MB) the highest reading was {later:,.0f} MB: "
        f"{later - warm.total_mb:+,.0f} MB"
    )
    print(f"  target: under {LIMIT_MB} MB with default settings: {verdict(peak.total_mb < LIMIT_MB)}")
    minutes = BACKLOG / (COUNT / seconds) / 60
    print(
        f"  a backlog of {BACKLOG / 1e6:.1f} M messages at this drain's rate (its archive grows as a backlog's does, "
        f"unlike the worker section's 200,000): {minutes:.1f} min (target <= {BACKLOG_TARGET_MIN:.0f} min: "
        f"{verdict(minutes <= BACKLOG_TARGET_MIN)})"
    )
    print_slowdown(samples)
    if stored != COUNT:
        print(
            f"  WARNING: the archive holds {stored:,} of the {COUNT:,} messages: the worker stopped after {IDLE_S} s "
            "without one before the end, so the figures above are not those of a whole drain"
        )


def print_slowdown(samples: list[Sample]) -> None:
    """Whether the drain slowed in its writer's transactions or around them: the first and the last quarter of the
    messages, each with the rate of the writer's transactions while they ran and their share of the time."""
    total = samples[-1].received  # COUNT unless the drain was partial (warned about below)
    if not total:
        return
    parts = []
    for (low, high), name in zip([(0.0, 0.25), (0.75, 1.0)], ("first", "last"), strict=True):
        start = next(sample for sample in samples if sample.received > low * total)
        end = next(sample for sample in samples if sample.received >= high * total)
        messages, seconds = end.received - start.received, end.at - start.at
        committing = end.commit_s - start.commit_s
        if not messages or not committing:
            return  # a drain too short for quarters between samples
        parts.append(
            f"{name} quarter {messages / seconds:,.0f} msg/s = transactions at {messages / committing:,.0f} msg/s "
            f"× {committing / seconds:.2f} of the time"
        )
    print(f"  the writer's transactions while the archive grows: {'; '.join(parts)}")


def stored_messages(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(text("SELECT count(*) FROM messages")) or 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
