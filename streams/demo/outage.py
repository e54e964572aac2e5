"""``tuya-archiver demo --outage``: the worker stops for a stretch, Tuya drops what it missed, and the gap is filled.

Owns the outage's order, in a thread of its own. A third of the way into the run the fleet holds its traffic until
the worker has archived everything and sent every command, and the worker stops consuming (as a stopped ``run``:
its gap watch saves when it last consumed). The fleet publishes again, and :class:`Drain`, another client on the
worker's subscription, acknowledges each message once it is older than Tuya's retention, as Tuya deletes what
nobody acknowledged (2 hours; the demo shortens it to seconds). Before the restart the fleet holds again until all
of it is dropped; then a new runner from the wiring consumes again, its gap watch finds the stretch it missed and
the worker's background sync fills it from the emulated device logs, which the traffic keeps.

The fleet is quiet for a moment at both edges so that the gap's edges are sharp: a simulated status item is timed
up to 0.8 s before its message, an online or offline to its whole second; a value reported just before the stop but
sent just after it would otherwise be neither archived nor inside the gap, and one sent just after the restart would
be inside the gap and in the stream. Imports pulsar-client; nothing of the worker's runtime but the demo's worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pulsar

from streams.demo import archive
from streams.demo.traffic import Traffic
from streams.demo.worker import DemoWorker
from streams.sim import burn_consumer_ids
from streams.sources.pulsar import client_options

__all__ = ["EDGE_S", "Drain", "Outage", "OutageReport"]

log = logging.getLogger(__name__)

#: The quiet moment at each edge: longer than a simulated value can be timed before its message (0.8 s for a status
#: item, 1 s for an online or offline, which carries whole seconds).
EDGE_S = 1.2
_POLL_S = 0.05


class Drain:
    """Acknowledges everything on ``subscription`` once it is ``retention_s`` old, as Tuya's deletion does; a
    message younger than that when :meth:`stop` comes stays for the next consumer."""

    def __init__(self, url: str, topic: str, subscription: str, *, retention_s: float) -> None:
        self._url = url
        self._topic = topic
        self._subscription = subscription
        self._retention = retention_s
        self._stop = threading.Event()
        self._ids: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="demo-drain", daemon=True)
        self.error: BaseException | None = None

    @property
    def dropped(self) -> int:
        """Distinct messages acknowledged (the broker may deliver one more than once)."""
        return len(self._ids)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            client = pulsar.Client(self._url, **client_options(self._url, tls_verify=True))
            try:
                # pulsar-lite: a second client on a subscription must not reuse the first one's consumer ids.
                burn_consumer_ids(client, self._topic)
                consumer = client.subscribe(self._topic, self._subscription, consumer_type=pulsar.ConsumerType.Failover)
                try:
                    self._drain(consumer)
                finally:
                    consumer.close()
            finally:
                client.close()
        except Exception as exc:  # the outage waits for the drop no longer; the demo goes on
            log.exception("dropping the messages of the outage failed")
            self.error = exc

    def _drain(self, consumer: Any) -> None:
        while not self._stop.is_set():
            try:
                message = consumer.receive(timeout_millis=100)
            except pulsar.Timeout:
                continue
            due = message.publish_timestamp() / 1000 + self._retention - time.time()
            if due > 0 and self._stop.wait(due):
                return  # not old enough yet: left for the next consumer
            consumer.acknowledge(message)
            self._ids.add(str(message.message_id()))


@dataclass(frozen=True)
class OutageReport:
    """What the outage did, for the summary and the tests. ``lost_*``: what the devices reported meanwhile, which
    only the device logs still have: (device, code, at_ms, value) and (device, online|offline, at_ms)."""

    length_s: float
    retention_s: float
    skipped: str | None
    stopped_at: datetime | None
    resumed_at: datetime | None
    dropped: int
    held_s: float  # the fleet held still at the edges
    dropped_kinds: Counter[str]
    lost_values: frozenset[tuple[str, str, int, Any]]
    lost_events: frozenset[tuple[str, str, int]]


class _Stopped(Exception):
    """The demo is stopping: leave the outage where it is (the demo stops everything)."""


class Outage:
    """Stops ``worker`` ``at_s`` seconds after :meth:`start` for ``length_s`` seconds (see the module docstring).

    Args:
        drain: acknowledges the messages of the outage; started once the worker stopped.
        timeout_s: the most any step waits for (the worker to catch up, the drop, the first receive).
    """

    def __init__(
        self,
        worker: DemoWorker,
        traffic: Traffic,
        drain: Drain,
        *,
        at_s: float,
        length_s: float,
        retention_s: float,
        timeout_s: float,
    ) -> None:
        self._worker = worker
        self._traffic = traffic
        self._drain = drain
        self.at_s = at_s
        self.length_s = length_s
        self._retention = retention_s
        self._timeout = timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-outage", daemon=True)
        self._restart_at = 0.0  # monotonic, set when the worker stops
        self.phase = "pending"  # stopping, stopped, restarting, over; or skipped
        self.skipped: str | None = None  # why it did not happen, or not to the end
        self.stopped_at: datetime | None = None
        self.resumed_at: datetime | None = None

    @property
    def dropped(self) -> int:
        return self._drain.dropped

    def stopped_s(self) -> float | None:
        """How long the worker has been stopped (until it consumed again); None before it stopped."""
        if self.stopped_at is None:
            return None
        return ((self.resumed_at or datetime.now(UTC)) - self.stopped_at).total_seconds()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._drain.stop()

    def report(self) -> OutageReport:
        traffic = self._traffic
        return OutageReport(
            length_s=self.length_s,
            retention_s=self._retention,
            skipped=self.skipped,
            stopped_at=self.stopped_at,
            resumed_at=self.resumed_at,
            dropped=self._drain.dropped,
            held_s=traffic.held_s,
            dropped_kinds=Counter(traffic.dropped_kinds),
            lost_values=frozenset(traffic.lost_values),
            lost_events=frozenset(traffic.lost_events),
        )

    def _run(self) -> None:
        try:
            self._sleep(self.at_s)
            if self._stop_worker():
                self._drop()
                self._restart_worker()
                return
        except _Stopped:
            return  # the demo stops everything
        except Exception as exc:
            log.exception("the outage failed: the demo goes on without it")
            self.skipped = f"the outage failed ({exc}); the demo went on without it"
        self.phase = "skipped"
        self._recover()

    def _recover(self) -> None:
        """Go on as a demo without outage: no drain, the worker consuming, the fleet publishing (not dropped)."""
        try:
            self._drain.stop()
            if self._worker.paused:
                self._worker.resume()
        except Exception:  # the worker's own failure ends the demo, with its error
            log.exception("the worker could not start again after the failed outage")
        self._traffic.release(dropping=False)

    def _stop_worker(self) -> bool:
        """Hold the fleet, let the worker catch up, stop it; False (skipped) when the traffic had ended."""
        self.phase = "stopping"
        if not self._traffic.hold(self._timeout):
            self.skipped = "the traffic had ended before it was due"
            return False
        self._wait(self._caught_up, "the worker to archive everything published")
        self._worker.pause()
        self.stopped_at = datetime.now(UTC)
        stopped = time.monotonic()
        self._restart_at = stopped + self.length_s
        self._sleep(EDGE_S)
        self._drain.start()
        self._traffic.release(dropping=True)
        self.phase = "stopped"
        return True

    def _caught_up(self) -> bool:
        with self._worker.engine.connect() as connection:
            archived = archive.archived_messages(connection)
            return archived >= self._traffic.published and not archive.open_commands(connection)

    def _drop(self) -> None:
        """Publish (dropped) until a retention and an edge before the restart; hold until every message is gone."""
        self._sleep(self._restart_at - self._retention - EDGE_S - time.monotonic())
        self._traffic.hold(self._timeout)  # False: the traffic has ended; nothing more to hold
        drain = self._drain
        self._wait(lambda: drain.dropped >= self._traffic.dropped or drain.error is not None, "the drop")
        self._sleep(self._restart_at - time.monotonic())
        drain.stop()

    def _restart_worker(self) -> None:
        self.phase = "restarting"
        first = self._worker.resume()
        self._wait(first.is_set, "the restarted worker's first receive")
        self.resumed_at = datetime.now(UTC)
        self._traffic.release(dropping=False)
        self.phase = "over"

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self._stop.wait(seconds):
            raise _Stopped

    def _wait(self, condition: Callable[[], bool], what: str) -> None:
        """Until ``condition``; at most ``timeout_s`` (then a warning, and the outage goes on)."""
        deadline = time.monotonic() + self._timeout
        while not condition():
            if time.monotonic() >= deadline:
                log.warning("outage: waited %.0f s for %s; going on", self._timeout, what)
                return
            self._sleep(_POLL_S)
