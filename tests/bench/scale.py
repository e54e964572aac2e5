"""Benchmark: the scale-out path (bridge + 1 and + 2 processors) next to the single-process worker, into PostgreSQL.

The same 200,000 simulated messages (status reports and events of a 2,000-device fleet, both ciphers) are published
to a fresh pulsar-lite topic per run, then archived by: ``tuya-archiver run``; ``bridge`` + 1 ``process``; ``bridge``
+ 2 ``process``. Each run writes a fresh PostgreSQL database (TEST_DATABASE_URL's server; ``make test`` starts it
with fsync=off and synchronous_commit=off) and is timed from the start of the consumer (the worker, or the bridge
once the processors joined their group) until the last row is visible; "steady" is the rate between 10 % and 90 %
of the rows. CPU seconds per process come from /proc, so the figures say where the time goes. Before that, the cost
of keying a message by device id in the bridge against the alternatives, per message, in this process.

Run alone with ``python -m tests.bench.scale``; ``make bench`` runs it with the other benchmarks.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from models.records import PulsarMessage
from streams.bridge import SubjectKeyer
from streams.sim import EmbeddedBroker, free_port
from streams.sim.kafka_broker import EmbeddedKafka
from streams.store import migrate
from streams.store.engine import make_engine
from streams.store.sql import ArchiveStore
from streams.tuya.crypto import Cipherbox
from streams.tuya.decoder import Decoded, MessageDecoder
from streams.tuya.envelope import decode_payload, open_envelope
from streams.tuya.normalize import device_id_of
from tests.bench.traffic import (
    ACCESS_KEY,
    cpu_seconds,
    fleet_messages,
    machine_cpu_seconds,
    new_access_id,
    publish_backlog,
    pulsar_broker,
)
from tests.unit.store.databases import scratch_postgres

COUNT = int(os.environ.get("BENCH_SCALE_MESSAGES", "200000"))
IDLE_S = 30  # a consumer stops when nothing came for this long; the timing ends when the last row is stored
# The consumers' watchdog (TUYA_IDLE_RECONNECT): pulsar-lite 0.2 now and then stops delivering to a subscription (in
# one run a bridge got 1,413 of 200,000 messages, then nothing). After 5 s without a message the consumer subscribes
# again, the worker's own remedy for a silent broker; should that not help, wait_for_rows gives up early.
WATCHDOG_S = 5
ROOT = Path(__file__).resolve().parents[2]
CLI = str(ROOT / ".venv" / "bin" / "tuya-archiver")
_SYNCED = re.compile(r"Successfully synced group \S+ with generation (\d+)")
_STOPPED = re.compile(r"stopped received=(\d+) .* seconds=([\d.]+)")


@dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    steady: float
    cpu: dict[str, float]
    bridge: float | None = None

    @property
    def rate(self) -> float:
        return COUNT / self.seconds


def per_message_us(function: Callable[[], object], count: int, repeat: int = 5) -> float:
    """Median µs per message of ``function`` (which handles ``count`` messages) over ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append((time.perf_counter() - started) / count * 1e6)
    return sorted(runs)[len(runs) // 2]


def keying_costs(messages: Sequence[PulsarMessage]) -> dict[str, float]:
    keyer, box = SubjectKeyer(ACCESS_KEY), Cipherbox(ACCESS_KEY)

    def full_decrypt() -> None:
        for m in messages:
            device_id_of(decode_payload(open_envelope(m.payload, m.properties.get("em"), box, ACCESS_KEY).plaintext))

    decoder = MessageDecoder(ACCESS_KEY)
    return {
        "Pulsar partition key (no decryption)": per_message_us(lambda: [m.properties for m in messages], len(messages)),
        "SubjectKeyer: decrypt, read devId or uid only (chosen)": per_message_us(
            lambda: [keyer.key(m) for m in messages], len(messages)
        ),
        "envelope + full payload parse + device_id_of": per_message_us(full_decrypt, len(messages)),
        "whole decode (what a processor does)": per_message_us(
            lambda: [decoder.decode(m) for m in messages], len(messages)
        ),
    }


def store_cost(server_url: str, messages: Sequence[PulsarMessage]) -> float:
    """µs per message of ArchiveStore.write_batch into a fresh PostgreSQL database, batches of 1,000."""
    decoder = MessageDecoder(ACCESS_KEY)
    decoded = [d for m in messages if isinstance(d := decoder.decode(m), Decoded)]
    with scratch_postgres(server_url) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        store = ArchiveStore(engine)
        started = time.perf_counter()
        for i in range(0, len(decoded), 1000):
            store.write_batch(decoded[i : i + 1000], [], received_at=decoded[0].message.pushed_at)
        seconds = time.perf_counter() - started
        engine.dispose()
    return seconds / len(decoded) * 1e6


class Processes:
    """Subprocesses of one run, each logging to its own file; all killed on exit."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.running[name] = subprocess.Popen(
                [CLI, *args], env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    def generation(self, name: str) -> int | None:
        found = _SYNCED.findall((self.logs / f"{name}.log").read_text(errors="replace"))
        return int(found[-1]) if found else None

    def bridge_rate(self) -> float | None:
        """Messages per second the bridge forwarded, from its own summary line (it stops at --max-messages)."""
        log = self.logs / "bridge.log"
        found = _STOPPED.search(log.read_text(errors="replace")) if log.exists() else None
        return int(found[1]) / float(found[2]) if found else None

    def consuming(self) -> bool:
        """Whether the process reading Pulsar (the worker, or the bridge) is still running."""
        return any(self.running[name].poll() is None for name in ("worker", "bridge") if name in self.running)

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(process.pid) for name, process in self.running.items()}

    def kill_all(self) -> None:
        for process in self.running.values():
            process.kill()
            process.wait()


@contextmanager
def run_environment(pulsar: EmbeddedBroker, kafka: EmbeddedKafka, server_url: str) -> Iterator[Processes]:
    """A fresh topic with COUNT messages on it, a fresh database, and the environment of the CLI."""
    access_id = new_access_id()
    publish_backlog(pulsar.url, f"persistent://{access_id}/out/event", fleet_messages(COUNT))
    with scratch_postgres(server_url) as url, tempfile.TemporaryDirectory(prefix="bench-scale-") as logs:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TUYA_", "RULES_", "KAFKA_", "DATABASE_"))}
        env.update(
            TUYA_ACCESS_ID=access_id, TUYA_ACCESS_KEY=ACCESS_KEY, TUYA_PULSAR_URL=pulsar.url,
            KAFKA_URL=kafka.url, DATABASE_URL=url, METRICS_PORT="0", RULES_FILE="", TUYA_IDLE_RECONNECT=str(WATCHDOG_S),
        )  # fmt: skip
        processes = Processes(env, Path(logs))
        try:
            yield processes
        finally:
            processes.kill_all()


def wait_for_rows(processes: Processes, timeout: float = 900.0) -> tuple[float, float]:
    """Poll until COUNT messages are stored; returns (seconds until then, steady-state msg/s from 10 % to 90 %).

    Gives up when the consumer has ended and no row came for IDLE_S seconds (the processors would have stored
    whatever it forwarded by then), or after ``timeout``.
    """
    engine = make_engine(processes.env["DATABASE_URL"])
    started, marks, last_rows, last_change = time.perf_counter(), {}, -1, 0.0
    try:
        while True:
            with engine.connect() as connection:
                rows = connection.scalar(text("select count(*) from messages")) or 0
            now = time.perf_counter() - started
            for mark in (0.1, 0.9):
                if rows >= mark * COUNT:
                    marks.setdefault(mark, now)
            if rows >= COUNT:
                return now, 0.8 * COUNT / max(marks[0.9] - marks[0.1], 1e-9)
            if rows != last_rows:
                last_rows, last_change = rows, now
            if now > timeout or (not processes.consuming() and now - last_change > IDLE_S):
                raise TimeoutError(f"{rows} of {COUNT} rows after {now:.0f} s (logs: {processes.logs})")
            time.sleep(0.25)
    finally:
        engine.dispose()


def measure(name: str, processes: Processes, start: Callable[[Processes], None], brokers: dict[str, int]) -> Run:
    """Start the path and time it; CPU seconds cover the timed window only (not the processors' group join)."""
    start(processes)

    def cpu_now() -> dict[str, float]:
        busy = processes.cpu() | {label: cpu_seconds(pid) for label, pid in brokers.items()}
        return busy | {"machine": machine_cpu_seconds()}

    before = cpu_now()
    seconds, steady = wait_for_rows(processes)
    cpu = {label: used - before.get(label, 0.0) for label, used in cpu_now().items()}
    return Run(name, seconds, steady, cpu, processes.bridge_rate())


def single_process(processes: Processes) -> None:
    # Bounded by idleness, not --max-messages: pulsar-lite redelivers some messages, and redeliveries count as received.
    processes.start("worker", "run", "--idle-timeout", str(IDLE_S))


def scale_out(n: int, topic: str) -> Callable[[Processes], None]:
    def start(processes: Processes) -> None:
        names = [f"processor-{i}" for i in range(1, n + 1)]
        for name in names:
            processes.start(name, "process", "--topic", topic, "--group", topic, "--web-port", str(free_port()))
        deadline = time.monotonic() + 120
        while len({processes.generation(name) for name in names} - {None}) != 1 or any(
            processes.generation(name) is None for name in names
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("processors did not join one group generation within 120 s")
            time.sleep(0.1)
        processes.start("bridge", "bridge", "--topic", topic, "--idle-timeout", str(IDLE_S))

    return start


def end_to_end(server_url: str) -> list[Run]:
    paths = [("run (single process)", single_process)]
    paths += [
        (f"bridge + {n} processor{'s' * (n > 1)}", scale_out(n, f"bench-{n}-{uuid.uuid4().hex[:8]}")) for n in (1, 2)
    ]
    runs = []
    with EmbeddedKafka() as kafka, pulsar_broker() as pulsar:
        brokers = {"pulsar-lite": pulsar.pid or 0, "tansu": kafka.pid or 0}
        for name, start in paths:
            with run_environment(pulsar, kafka, server_url) as processes:
                runs.append(measure(name, processes, start, brokers))
    return runs


def print_runs(runs: Sequence[Run]) -> None:
    base = runs[0].rate
    print(f"{'path':<26}{'seconds':>8}{'msg/s':>8}{'steady':>8}{'vs run':>8}   CPU seconds in that time (2 cores: 2/s)")
    for run in runs:
        cpu = ", ".join(f"{name} {seconds:.1f}" for name, seconds in run.cpu.items())
        print(f"{run.name:<26}{run.seconds:>8.1f}{run.rate:>8,.0f}{run.steady:>8,.0f}{run.rate / base:>7.2f}x   {cpu}")
    for run in runs:
        if run.bridge is not None:
            print(f"  {run.name}: the bridge alone forwarded {run.bridge:,.0f} msg/s (its summary line)")


def main() -> None:
    print(f"Scale-out: {COUNT:,} messages into PostgreSQL ({os.cpu_count()} cores)")
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        print("  skipped: TEST_DATABASE_URL is not set (make bench starts PostgreSQL)")
        return
    sample = [
        PulsarMessage(payload=m.payload, properties=m.properties, message_id=f"1:{i}:0:-1", topic="t")
        for i, m in enumerate(fleet_messages(20_000))
    ]
    print("keying in the bridge, µs per message (median of 5 runs over 20,000 messages):")
    for name, cost in keying_costs(sample).items():
        print(f"  {name:<50}{cost:>8.2f}")
    print(f"  {'ArchiveStore.write_batch on PostgreSQL (processor)':<50}{store_cost(server_url, sample):>8.2f}")
    print_runs(end_to_end(server_url))


if __name__ == "__main__":
    main()
