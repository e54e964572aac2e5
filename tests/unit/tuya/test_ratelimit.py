"""streams/tuya/ratelimit.py with a fake clock: computed waits, quota warnings, backoff bounds (partner:
tests/integration/test_openapi_client.py, which checks the limiter through the client against the emulator)."""

from __future__ import annotations

from random import Random

import pytest

from streams.tuya.ratelimit import Backoff, DailyCallCounter, TokenBucket


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bucket_spaces_back_to_back_calls_by_one_over_rate():
    clock = FakeClock()
    bucket = TokenBucket(5.0, clock=clock)
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0.0, 0.2, 0.4, 0.6])


def test_bucket_holds_rate_when_caller_sleeps_the_waits():
    clock = FakeClock()
    bucket = TokenBucket(4.0, clock=clock)
    start = clock.now
    send_times = []
    for _ in range(21):
        clock.sleep(bucket.reserve())
        send_times.append(clock.now)
    assert send_times[-1] - start == pytest.approx(5.0)  # 20 intervals of 1/4 s
    for first, later in zip(send_times, send_times[4:], strict=False):
        assert later - first >= 1.0 - 1e-9  # never more than 4 calls in any 1-second window


def test_bucket_refills_while_idle_but_not_beyond_burst():
    clock = FakeClock()
    bucket = TokenBucket(2.0, burst=3.0, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.sleep(60)
    waits = [bucket.reserve() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.5])


def test_bucket_rejects_non_positive_rate():
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_quota_warns_once_at_threshold_and_once_at_quota():
    counter = DailyCallCounter(10, warn_fraction=0.8, clock=FakeClock(0.0))
    warnings = [counter.record() for _ in range(12)]
    reached = [(index + 1, w.calls) for index, w in enumerate(warnings) if w is not None]
    assert reached == [(8, 8), (10, 10)]
    assert counter.calls == 12
    assert "8 of the daily quota of 10" in str(warnings[7])
    assert "1970-01-01" in str(warnings[7])


def test_quota_count_restarts_at_utc_midnight():
    clock = FakeClock(86_400 - 1)
    counter = DailyCallCounter(3, clock=clock)
    counter.record()
    counter.record()
    clock.sleep(2)
    assert counter.calls == 0
    assert counter.record() is None
    assert counter.calls == 1


def test_backoff_grows_within_cap_and_jitter_range():
    backoff = Backoff(attempts=10, base_s=1.0, cap_s=4.0, budget_s=1_000)
    rng = Random(7)
    for failures, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)]:
        delays = [backoff.next_delay(failures, 0.0, rng) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # full jitter spreads over the range


def test_backoff_stops_after_attempts_or_budget():
    backoff = Backoff(attempts=3, base_s=1.0, cap_s=8.0, budget_s=2.0)
    rng = Random(1)
    assert backoff.next_delay(3, 0.0, rng) is None
    assert backoff.next_delay(1, 2.0, rng) is None
    assert backoff.next_delay(1, 0.0, rng, at_least=5.0) is None  # Retry-After would overspend the budget


def test_backoff_honours_retry_after_up_to_cap():
    backoff = Backoff(attempts=5, base_s=0.1, cap_s=3.0, budget_s=100)
    assert backoff.next_delay(1, 0.0, Random(0), at_least=2.5) == 2.5
    assert backoff.next_delay(1, 0.0, Random(0), at_least=60) == 3.0
