"""How fast and how often the worker may call Tuya's OpenAPI: a token bucket, a daily call counter, retry backoff.

Owns the arithmetic only. Pure apart from a lock: the clock and the random source are injected, nothing sleeps
here (the caller sleeps for the waits these objects compute), nothing logs. Must not import httpx or the settings.

Why client-side limits: Tuya limits calls per API and per project (SPEC.md §5, "Rate limits"; the per-API figures
for the v1.0 command APIs are unknown, U7), and a project has a daily quota. Staying well below them is cheaper
than being answered 1199 and backing off.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random

__all__ = ["ApiPace", "Backoff", "DailyCallCounter", "QuotaWarning", "TokenBucket"]

_DAY_S = 86_400


class TokenBucket:
    """At most ``rate`` calls per second on average, in bursts of at most ``burst`` calls.

    :meth:`reserve` takes a token now and says how long the caller must wait before using it, so concurrent
    callers queue in order and a test can check the waits without sleeping.
    """

    def __init__(self, rate: float, *, burst: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self._burst
        self._updated = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before the call (0.0 when a token was free)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


@dataclass(frozen=True, slots=True)
class QuotaWarning:
    """The day's call count reached a warning threshold of the project's daily quota."""

    day: str
    calls: int
    quota: int

    def __str__(self) -> str:
        share = 100 * self.calls / self.quota
        return (
            f"Tuya OpenAPI calls on {self.day} (UTC): {self.calls} of the daily quota of {self.quota} "
            f"({share:.0f}%); set TUYA_API_DAILY_QUOTA to the project's quota, or slow the rules down"
        )


class DailyCallCounter:
    """Counts calls per UTC day and reports when the count reaches ``warn_fraction`` of the quota, then the quota.

    Tuya's quota day boundary is not documented; UTC midnight is an assumption.
    """

    def __init__(self, quota: int, *, warn_fraction: float = 0.8, clock: Callable[[], float] = time.time) -> None:
        if quota < 1 or not 0 < warn_fraction <= 1:
            raise ValueError("quota must be positive and warn_fraction in (0, 1]")
        self.quota = quota
        self._thresholds = frozenset({math.ceil(quota * warn_fraction), quota})
        self._clock = clock
        self._day = -1
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        """Calls counted so far today."""
        with self._lock:
            return self._calls if self._day == self._today() else 0

    def record(self) -> QuotaWarning | None:
        """Count one call; return a warning when this call reaches a threshold, else None."""
        with self._lock:
            today = self._today()
            if today != self._day:
                self._day, self._calls = today, 0
            self._calls += 1
            if self._calls not in self._thresholds:
                return None
            day = datetime.fromtimestamp(today * _DAY_S, UTC).date().isoformat()
            return QuotaWarning(day=day, calls=self._calls, quota=self.quota)

    def _today(self) -> int:
        return int(self._clock() // _DAY_S)


@dataclass(frozen=True, slots=True)
class ApiPace:
    """The rate and the daily count of one process's OpenAPI calls: every client of the process shares one, so the
    process as a whole keeps to the rate and counts its calls against one quota (both thread-safe)."""

    limiter: TokenBucket
    quota: DailyCallCounter


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Exponential backoff with full jitter, bounded by a number of attempts and by total time asleep.

    ``attempts`` counts every try, the first included; ``budget_s`` caps the sum of the waits.
    """

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 8.0
    budget_s: float = 30.0

    def next_delay(self, failures: int, slept_s: float, rng: Random, *, at_least: float = 0.0) -> float | None:
        """The wait before the next try after ``failures`` failed tries, or None when the budget is spent.

        Args:
            at_least: the server's ``Retry-After``, honoured up to ``cap_s``.
        """
        if failures >= self.attempts:
            return None
        ceiling = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        delay = max(rng.uniform(0.0, ceiling), min(at_least, self.cap_s))
        if slept_s + delay > self.budget_s:
            return None
        return delay
