"""The wait between retries of a loop that must not give up (the worker's receive and commit, its writer process):
exponential, unbounded in count, reset by a success. Imports nothing, so the writer process can use it.

A call to the OpenAPI retries a bounded number of times instead: streams.tuya.ratelimit.Backoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "nap"]

_SLICE_S = 0.5  # how often a nap looks whether it should end


@dataclass
class Backoff:
    """Exponential backoff: ``initial`` doubling up to ``maximum``; ``reset()`` after a success."""

    initial: float = 1.0
    maximum: float = 60.0
    _next: float = 0.0

    def next_delay(self) -> float:
        delay = self._next or self.initial
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = 0.0


def nap(seconds: float, stopping: Callable[[], bool]) -> bool:
    """Sleep ``seconds``, or less once ``stopping()``: in slices, as an event set from a signal handler could
    deadlock against its own wait (a SIGTERM must not wait out a backoff of up to a minute). Whether it stopped."""
    until = time.monotonic() + seconds
    while not stopping() and (left := until - time.monotonic()) > 0:
        time.sleep(min(left, _SLICE_S))
    return stopping()
