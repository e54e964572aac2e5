"""Simulated traffic on an embedded pulsar-lite, shared by the end-to-end benchmarks (``worker`` and ``scale``).

Owns the benchmark fleet (seeded, clock stepping 3 ms per message), the broker they publish to (loopback, free port,
its log thrown away: pulsar-lite logs every ack at INFO, about 180 MB per 300,000 messages), publishing a backlog
to a topic with every send checked, and CPU seconds read from /proc: a process's (the broker's, a worker's) and
the whole machine's.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from streams.sim import EmbeddedBroker, Fleet, PublishReport, SimMessage, publish

__all__ = [
    "ACCESS_KEY",
    "cpu_seconds",
    "fleet_messages",
    "fleet_stream",
    "machine_cpu_seconds",
    "new_access_id",
    "publish_backlog",
    "pulsar_broker",
]

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
_TICK = os.sysconf("SC_CLK_TCK")


def fleet_stream(
    count: int, *, devices: int = 2000, items: int = 5, mix: Mapping[str, float] | None = None
) -> Iterator[SimMessage]:
    """``count`` messages of a seeded fleet, half GCM and half ECB, made as they are asked for; ``mix`` as
    :class:`Fleet` (None: its default)."""
    clock = itertools.count(1_700_000_000_000, 3)
    fleet = Fleet(ACCESS_KEY, devices, clock=lambda: next(clock), seed=42, mix=mix)
    return fleet.messages(count, items=items)


def fleet_messages(
    count: int, *, devices: int = 2000, items: int = 5, mix: Mapping[str, float] | None = None
) -> list[SimMessage]:
    """The messages of :func:`fleet_stream`, all at once."""
    return list(fleet_stream(count, devices=devices, items=items, mix=mix))


def new_access_id() -> str:
    """A Tuya access id never used before, so its topic and ``{id}-sub`` subscription start empty.

    pulsar-lite has no admin API to delete topics: every measurement takes a fresh one.
    """
    return f"b{uuid.uuid4().hex[:15]}"


@contextmanager
def pulsar_broker() -> Iterator[EmbeddedBroker]:
    """pulsar-lite on a free loopback port, with its data in a temporary folder and its log in /dev/null."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-pulsar-") as data,
        EmbeddedBroker(Path(data), log_path=Path(os.devnull)) as broker,
    ):
        yield broker


def publish_backlog(url: str, topic: str, messages: Sequence[SimMessage]) -> PublishReport:
    """Publish ``messages`` to ``topic``, one message per entry; raises RuntimeError unless the broker took each one.

    Unbatched on purpose. On a backlog of producer batches (≤ 1,000 messages) pulsar-lite 0.2 delivered some
    entries several times (same message id, same payload: 2-22 % extra deliveries, varying from run to run), and a
    consumer with a receiver queue of 20,000 stopped receiving after about 7,500 of 20,000 messages. Unbatched
    backlogs have far fewer extra deliveries, but some: 387 of 30,000 to a bare batch-receiving consumer (same
    message id, redelivery count 0), right after its first acknowledgements. The worker stores each once and its
    benchmark says how many it saw.
    """
    report = publish(url, topic, messages, batching=False)
    if report.failed or report.count != len(messages):
        raise RuntimeError(f"publishing {len(messages):,} messages to {topic} failed: {report}")
    return report


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has been busy so far (all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4)) / _TICK
