"""Benchmark: the writer process's work alone, next to SQLite alone in the same run.

The worker benchmark's fleet (BENCH_WORKER_MESSAGES, default 200,000 status reports × 5 items of 10,000 devices) is
decoded and prepared into the frames the worker sends its writer process (streams.writer.frames), before any
timing. The real writer (streams.writer.child.serve, what ``python -m streams.writer`` runs, with the worker's
default settings) then reads them from a socket pair in this process, as fast as it commits them: a thread here keeps
WRITER_IN_FLIGHT frames unacknowledged, as the worker does. Timed: the writer's wall time from its start to its exit
and its CPU (this process's, less the sending thread's), and the share the garbage collector took (``gc.callbacks``).

The reference, in the same run: SQLite alone (tests.bench.worker.sqlite_ceiling), the writer's SQL for the same fleet
on rows prepared in advance, committing as often as the writer did. What the writer spends beyond it is its own
Python: decoding frames, merging a group's rows (latest state, facts), binding them. Without a worker and a broker
beside it, the writer has a core to itself: this is the most its process can do, and what target 1 of issue 17
leaves the worker's side. Each twice, alternated; the best round counts.

Run alone with ``python -m tests.bench.writer``; ``make bench`` runs it with the other benchmarks.
"""

from __future__ import annotations

import gc
import signal
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection

from streams import wiring
from streams.rules import RuleSet
from streams.settings import Settings
from streams.store import migrate
from streams.store.engine import CACHE_KIB, make_engine
from streams.store.prepared import prepare_batch
from streams.store.rows import sqlite_time
from streams.writer.child import serve
from streams.writer.frames import Stop, Write, decode_reply, encode
from tests.bench.worker import COUNT, DEVICES, ITEMS, decoded_batches, sqlite_ceiling, worker_settings

ROUNDS = 2


@dataclass(frozen=True, slots=True)
class WriterRun:
    seconds: float
    cpu: float  # the writer's: this process's CPU less the sending thread's
    collector: float  # seconds the garbage collector took, every thread of this process
    collections: int
    transactions: int

    def per_message(self, seconds: float) -> float:
        return seconds / COUNT * 1e6


class _Collector:
    """The garbage collector's time and collections while installed (``gc.callbacks``), whichever thread ran it."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._started = 0.0, 0, 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1


def frames(settings: Settings) -> list[bytes]:
    """The fleet's batches as the worker sends them: a Write frame each, ``BATCH_SIZE`` messages."""
    now = datetime.now(UTC)
    return [
        encode(Write(prepare_batch(batch, [], now, sqlite_time), None, now, 0))
        for batch in decoded_batches(settings.batch_size, COUNT)
    ]


def run_writer(sent: list[bytes], settings: Settings) -> WriterRun:
    """The writer as the worker configures it, on a socket pair, fed ``sent`` with at most WRITER_IN_FLIGHT frames not
    reported committed, into ``settings``' database."""
    setup = make_engine(settings.database_url)
    try:
        migrate.upgrade(setup)
    finally:
        setup.dispose()
    config = wiring.writer_config(settings, RuleSet(), "sqlite")
    worker_end, writer_end = (Connection(end.detach()) for end in socket.socketpair())
    transactions, feeding_cpu = [0], [0.0]

    def feed() -> None:
        started, reported = time.thread_time(), 0
        for count, frame in enumerate(sent):
            while count - reported >= settings.writer_in_flight:
                reply = decode_reply(worker_end.recv_bytes())
                reported += reply.batches
                transactions[0] += 1
            worker_end.send_bytes(frame)
        while reported < len(sent):
            reported += decode_reply(worker_end.recv_bytes()).batches
            transactions[0] += 1
        worker_end.send_bytes(encode(Stop()))
        feeding_cpu[0] = time.thread_time() - started

    collector = _Collector()
    gc.callbacks.append(collector)
    feeder = threading.Thread(target=feed, name="bench-feeder")
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}  # serve ignores them
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        feeder.start()
        serve(writer_end, config)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        feeder.join()
    finally:
        gc.callbacks.remove(collector)
        worker_end.close()
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return WriterRun(wall, cpu - feeding_cpu[0], collector.seconds, collector.collections, transactions[0])


def main() -> None:
    settings = worker_settings("bench", "pulsar://127.0.0.1:1", "sqlite://")
    print(
        f"writer alone: {COUNT:,} status reports × {ITEMS} items of {DEVICES:,} devices, prepared into the worker's "
        f"frames of {settings.batch_size:,} messages before timing, fed to the writer process's code over a socket "
        f"pair\n  with {settings.writer_in_flight} frames in flight (default settings), into a fresh SQLite file; "
        f"next to SQLite alone committing as often (best of {ROUNDS} rounds, alternated)"
    )
    sent = frames(settings)
    runs: list[WriterRun] = []
    alone: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as folder:
        for n in range(ROUNDS):
            into = worker_settings("bench", "pulsar://127.0.0.1:1", f"sqlite:///{folder}/writer-{n}.db")
            runs.append(run_writer(sent, into))
            commit = round(COUNT / max(runs[-1].transactions, 1))
            alone.append(sqlite_ceiling(folder, commit, CACHE_KIB, f"writer-{n}"))
    best = min(runs, key=lambda run: run.seconds)
    ceiling = COUNT / min(alone)
    rate = COUNT / best.seconds
    print(
        f"  the writer: {rate:,.0f} msg/s (rounds {' / '.join(f'{COUNT / run.seconds:,.0f}' for run in runs)}), "
        f"{COUNT / best.transactions:,.0f} messages a transaction; CPU a message {best.per_message(best.cpu):.1f} µs, "
        f"of which the garbage collector {best.per_message(best.collector):.1f} ({best.collections} collections)"
    )
    print(
        f"  SQLite alone committing as often: {ceiling:,.0f} msg/s = {1e6 / ceiling:.1f} µs a message "
        f"(rounds {' / '.join(f'{COUNT / seconds:,.0f}' for seconds in alone)})"
    )
    print(
        f"  the writer runs at {rate / ceiling:.2f}x SQLite alone: {best.per_message(best.cpu) - 1e6 / ceiling:.1f} "
        "µs a message of its own Python beyond the SQL (decoding frames, merging a group's rows, binding)"
    )


if __name__ == "__main__":
    main()
