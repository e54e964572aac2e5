"""The demo's traffic: the fleet's random mix with the scenario's steps merged in at their times, published from a
thread of its own, and written into the emulated devices' logs as Tuya keeps them.

Owns the merge (a step goes out as soon as its stretched time has come; the fleet fills the gaps), the pace (``rate``
messages a second, not counting time held), the end of publishing (after the run's duration, or at
:meth:`Traffic.stop`), holding and releasing it for an outage (:meth:`Traffic.hold`, :meth:`Traffic.release`;
while the messages are dropped the scenario waits, so its rules still fire on the stream), what the devices reported
while dropped, and the counts the progress display and the summary read. The fleet and the steps' devices are used
by the publishing thread only. Imports pulsar-client through :func:`streams.sim.publish` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from streams.demo.scenario import BASE_SECONDS, Step
from streams.sim import Fleet, PublishReport, SimMessage, publish

__all__ = ["DeviceLogs", "Traffic"]

log = logging.getLogger(__name__)

_ONLINE_KINDS = ("online", "offline")


class DeviceLogs(Protocol):
    """Where the devices' reports are logged (the emulator: :class:`streams.tuya.emulator.Emulator`)."""

    def record_reports(self, device_id: str, reports: Iterable[tuple[str, Any, int]]) -> None: ...
    def set_online(self, device_id: str, online: bool, *, at_ms: int | None = None) -> None: ...


class _Timeline:
    """The publishing thread's clocks: time publishing (held time left out) and the scenario's (dropped time too)."""

    def __init__(self, now: float) -> None:
        self.started = now
        self.held_s = 0.0
        self.dropped_s = 0.0
        self.dropping_since: float | None = None

    def elapsed(self, now: float) -> float:
        return now - self.started - self.held_s

    def scenario(self, now: float) -> float:
        dropping = now - self.dropping_since if self.dropping_since is not None else 0.0
        return self.elapsed(now) - self.dropped_s - dropping

    def follow(self, dropping: bool, now: float) -> None:
        """Open or close a stretch of dropping (the scenario's clock stands still in it)."""
        if dropping and self.dropping_since is None:
            self.dropping_since = now
        elif not dropping and self.dropping_since is not None:
            self.dropped_s += now - self.dropping_since
            self.dropping_since = None


class Traffic:
    """Publishes ``fleet``'s traffic with ``steps`` merged in, for ``duration_s`` or, with ``endless``, until stopped.

    Args:
        corrupt: share of the fleet's messages broken on purpose (on top of the scripted corrupt steps).
        scenario_s: the time the steps are stretched over (default ``duration_s``; at least :data:`BASE_SECONDS`).
        logs: every status report, property message, online and offline is also recorded there, as the device's
            log at Tuya has it (None: no logs are kept).
        clock: monotonic seconds; the steps' times count from the first message.
    """

    def __init__(
        self,
        fleet: Fleet,
        steps: Iterable[Step],
        *,
        duration_s: float,
        corrupt: float = 0.0,
        endless: bool = False,
        scenario_s: float | None = None,
        logs: DeviceLogs | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fleet = fleet
        self._steps = deque(sorted(steps, key=lambda step: step.at))
        self._stretch = max(1.0, (duration_s if scenario_s is None else scenario_s) / BASE_SECONDS)
        self._duration = duration_s
        self._corrupt = corrupt
        self._endless = endless
        self._logs = logs
        self._clock = clock
        self._rate: float | None = None
        self._stop = threading.Event()
        self._state = threading.Condition()
        self._held = self._parked = self._dropping = False
        self._thread: threading.Thread | None = None
        self.kinds: Counter[str] = Counter()  # by SimMessage.kind; read it once the thread has ended
        self.published = 0  # messages handed to the producer so far
        self.dropped_kinds: Counter[str] = Counter()  # published while released with dropping=True
        self.dropped = 0
        self.held_s = 0.0  # time held still by hold()
        #: What the devices reported while dropping: (device, code, at_ms, value) and (device, online|offline, at_ms).
        self.lost_values: set[tuple[str, str, int, Any]] = set()
        self.lost_events: set[tuple[str, str, int]] = set()
        self.report: PublishReport | None = None
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def messages(self) -> Iterator[SimMessage]:
        """The merged stream; ends after the duration once every step is out (never, if endless), or when stopped."""
        timeline = _Timeline(self._clock())
        while not self._stop.is_set():
            self._park(timeline)
            now = self._clock()
            timeline.follow(self._dropping, now)
            elapsed = timeline.elapsed(now)
            ahead = self.published / self._rate - elapsed if self._rate else 0.0
            if ahead > 0:
                self._stop.wait(ahead)
                continue
            scenario = timeline.scenario(now)
            while self._steps and self._steps[0].at * self._stretch <= scenario:
                yield self._count(self._steps.popleft().message(self._fleet))
            if elapsed >= self._duration and not self._steps and not self._endless:
                return
            yield self._count(self._fleet.next_message(corrupt=self._corrupt))

    def _count(self, message: SimMessage) -> SimMessage:
        self.kinds[message.kind] += 1
        self.published += 1
        if self._logs is not None and message.device_id is not None:
            self._log(message.device_id, message)
        if self._dropping:
            self._lose(message)
        return message

    def _log(self, device_id: str, message: SimMessage) -> None:
        assert self._logs is not None
        if message.reports:
            self._logs.record_reports(device_id, message.reports)
        elif message.kind in _ONLINE_KINDS:
            self._logs.set_online(device_id, message.kind == "online", at_ms=_whole_second(message.t_ms))

    def _lose(self, message: SimMessage) -> None:
        self.dropped_kinds[message.kind] += 1
        self.dropped += 1
        device_id = message.device_id
        if device_id is None:
            return
        self.lost_values.update((device_id, code, at_ms, value) for code, value, at_ms in message.reports)
        if message.kind in _ONLINE_KINDS:
            self.lost_events.add((device_id, message.kind, _whole_second(message.t_ms)))

    def hold(self, timeout: float) -> bool:
        """Stop publishing after the message in hand; True once the publishing thread waits, False if it has ended
        (or did not wait within ``timeout`` seconds)."""
        with self._state:
            self._held = True
            return self._state.wait_for(lambda: self._parked or not self.running, timeout) and self._parked

    def release(self, *, dropping: bool) -> None:
        """Publish again; with ``dropping`` the messages count as dropped (and the scenario waits) until the next
        release."""
        with self._state:
            self._held = False
            self._dropping = dropping
            self._state.notify_all()

    def _park(self, timeline: _Timeline) -> None:
        """Wait while held (publishing thread); keep the timeline's account of time held."""
        with self._state:
            if not self._held:
                return
            held_at = self._clock()
            timeline.follow(False, held_at)  # time held is left out of the scenario's clock once, as time held
            self._parked = True
            self._state.notify_all()
            while self._held and not self._stop.is_set():
                self._state.wait(0.1)
            self._parked = False
            now = self._clock()
            timeline.held_s += now - held_at
            self.held_s = timeline.held_s

    def start(self, url: str, topic: str, *, rate: float | None) -> Traffic:
        """Publish from a new thread; ``report`` (or ``error``) is set when it ends."""
        self._rate = rate
        self._thread = threading.Thread(target=self._publish, args=(url, topic), name="demo-traffic", daemon=True)
        self._thread.start()
        return self

    def _publish(self, url: str, topic: str) -> None:
        try:
            self.report = publish(url, topic, self.messages())  # paced by messages(), which knows the time held
        except BaseException as exc:  # reported by the demo after it stopped everything
            log.exception("publishing failed")
            self.error = exc
        finally:
            with self._state:
                self._state.notify_all()  # a hold() waiting for a thread that ended

    def stop(self, timeout: float = 40.0) -> None:
        """Stop publishing; the messages already handed to the producer are still flushed."""
        self._stop.set()
        with self._state:
            self._state.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)


def _whole_second(t_ms: int) -> int:
    """Online and offline carry whole seconds (``bizData.time``, SPEC.md §3.3): their log rows are where the stream's
    archive puts them."""
    return t_ms // 1000 * 1000
