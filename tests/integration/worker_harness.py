"""Helpers of the worker's integration tests: publish a simulated fleet, run the real CLI, read the archive.

Also runnable as ``python -m tests.integration.worker_harness --kill-at-ack N``: the real worker built by the
composition root, except that it SIGKILLs itself on its N-th acknowledgement, that is after a commit and before the
ack reached the broker (the crash point a timed ``kill -9`` cannot aim at).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from models.records import DeadLetter, PulsarMessage
from models.tables import DeadLetter as DeadLetterRow
from models.tables import DeviceStatus, Message
from streams.sim import Fleet, SimMessage, publish
from streams.tuya.decoder import MessageDecoder

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Published:
    """What a test published: counts the archive must match exactly."""

    messages: int
    valid: int
    corrupt: int
    status_rows: int


def unique_access_id() -> str:
    """A project id of its own per test: topic and subscription derive from it (pulsar-lite cannot delete topics)."""
    return f"t{uuid.uuid4().hex[:15]}"


def fleet_messages(count: int, *, corrupt: float = 0.0, seed: int = 7, devices: int = 40) -> list[SimMessage]:
    clock = iter(range(1_700_000_000_000, 1_700_000_000_000 + count * 10, 10))
    fleet = Fleet(ACCESS_KEY, devices, clock=lambda: next(clock), seed=seed)
    return list(fleet.messages(count, items=5, corrupt=corrupt))


def expected(messages: Sequence[SimMessage]) -> Published:
    decoder = MessageDecoder(ACCESS_KEY)
    valid = corrupt = rows = 0
    for index, sim in enumerate(messages):
        result = decoder.decode(
            PulsarMessage(payload=sim.payload, properties=sim.properties, message_id=str(index), topic="t")
        )
        if isinstance(result, DeadLetter):
            corrupt += 1
        else:
            valid += 1
            rows += sum(1 for record in result.records if record.kind == "status")
    return Published(len(messages), valid, corrupt, rows)


def publish_all(url: str, access_id: str, messages: Sequence[SimMessage]) -> Published:
    report = publish(url, f"persistent://{access_id}/out/event", messages)
    assert report.failed == 0, report.errors
    return expected(messages)


def worker_env(access_id: str, pulsar_url: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUYA_", "RULES_"))}
    env.update(
        TUYA_ACCESS_ID=access_id,
        TUYA_ACCESS_KEY=ACCESS_KEY,
        TUYA_PULSAR_URL=pulsar_url,
        DATABASE_URL=database_url,
        METRICS_PORT="0",
        RULES_FILE="",
        BATCH_SIZE="500",
    )
    env.update(extra)
    return env


def cli(*args: str) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "tuya-archiver"), *args]


@contextlib.contextmanager
def running_worker(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``tuya-archiver run`` in the background; killed (and its pipe closed) on the way out if still running."""
    worker = subprocess.Popen(cli("run", *args), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield worker
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.communicate()


def run_worker(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cli("run", *args), env=env, cwd=ROOT, capture_output=True, timeout=timeout, check=False)


def upgrade(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run(cli("db", "upgrade"), env=env, cwd=ROOT, check=True, capture_output=True)


@dataclass(frozen=True)
class Archived:
    messages: int
    distinct_messages: int
    dead_letters: int
    status_rows: int


def archived(database_url: str) -> Archived:
    engine: Engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            messages = connection.scalar(select(func.count()).select_from(Message))
            distinct = connection.scalar(select(func.count(func.distinct(Message.message_id))))
            dead = connection.scalar(select(func.count()).select_from(DeadLetterRow))
            rows = connection.scalar(select(func.count()).select_from(DeviceStatus))
    finally:
        engine.dispose()
    return Archived(messages or 0, distinct or 0, dead or 0, rows or 0)


def assert_exactly_once(database_url: str, published: Published) -> None:
    """Every valid message published stored once, every corrupt one a dead letter once, every item a status row."""
    got = archived(database_url)
    assert got.messages == published.valid
    assert got.dead_letters == published.corrupt
    assert got.status_rows == published.status_rows


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started that still run (its writer process)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _kill_at_ack(n: int) -> int:
    from streams import wiring
    from streams.metrics import WorkerMetrics
    from streams.settings import load_settings

    settings = load_settings()
    engine = wiring.archive_engine(settings)
    runner = wiring.worker(settings, engine, WorkerMetrics(), wiring.rules(settings))
    source = runner._source
    original_ack = source.ack
    acks = {"n": 0}

    def ack_or_die(handles):
        acks["n"] += 1
        if acks["n"] >= n:
            os.kill(os.getpid(), signal.SIGKILL)
        original_ack(handles)

    source.ack = ack_or_die
    runner.run(idle_timeout=30)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--kill-at-ack", type=int, required=True)
    sys.exit(_kill_at_ack(parser.parse_args().kill_at_ack))
