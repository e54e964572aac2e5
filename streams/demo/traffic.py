"""The demo's traffic: the fleet's random mix with the scenario's steps merged in at their times, published from a
thread of its own.

Owns the merge (a step goes out as soon as its stretched time has come; the fleet fills the gaps), the end of
publishing (after the run's duration, or at :meth:`Traffic.stop`) and the counts the progress display and the
summary read. The fleet and the steps' devices are used by the publishing thread only. Imports pulsar-client through
:func:`streams.sim.publish` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator

from streams.demo.scenario import BASE_SECONDS, Step
from streams.sim import Fleet, PublishReport, SimMessage, publish

__all__ = ["Traffic"]

log = logging.getLogger(__name__)


class Traffic:
    """Publishes ``fleet``'s traffic with ``steps`` merged in, for ``duration_s`` or, with ``endless``, until stopped.

    Args:
        corrupt: share of the fleet's messages broken on purpose (on top of the scripted corrupt steps).
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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fleet = fleet
        self._steps = deque(sorted(steps, key=lambda step: step.at))
        self._stretch = max(1.0, duration_s / BASE_SECONDS)
        self._duration = duration_s
        self._corrupt = corrupt
        self._endless = endless
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.kinds: Counter[str] = Counter()  # by SimMessage.kind; read it once the thread has ended
        self.published = 0  # messages handed to the producer so far
        self.report: PublishReport | None = None
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def messages(self) -> Iterator[SimMessage]:
        """The merged stream; ends after the duration once every step is out (never, if endless), or when stopped."""
        started = self._clock()
        while not self._stop.is_set():
            elapsed = self._clock() - started
            while self._steps and self._steps[0].at * self._stretch <= elapsed:
                yield self._count(self._steps.popleft().message(self._fleet))
            if elapsed >= self._duration and not self._steps and not self._endless:
                return
            yield self._count(self._fleet.next_message(corrupt=self._corrupt))

    def _count(self, message: SimMessage) -> SimMessage:
        self.kinds[message.kind] += 1
        self.published += 1
        return message

    def start(self, url: str, topic: str, *, rate: float | None) -> Traffic:
        """Publish from a new thread; ``report`` (or ``error``) is set when it ends."""
        self._thread = threading.Thread(target=self._publish, args=(url, topic, rate), name="demo-traffic", daemon=True)
        self._thread.start()
        return self

    def _publish(self, url: str, topic: str, rate: float | None) -> None:
        try:
            self.report = publish(url, topic, self.messages(), rate=rate)
        except BaseException as exc:  # reported by the demo after it stopped everything
            log.exception("publishing failed")
            self.error = exc

    def stop(self, timeout: float = 40.0) -> None:
        """Stop publishing; the messages already handed to the producer are still flushed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
