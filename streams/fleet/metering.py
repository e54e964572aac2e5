"""Bulk OpenAPI work (sync, backfill) within the day's quota, with every call it made recorded in the archive.

Owns the budget of one run (``TUYA_API_DAILY_QUOTA`` less the calls ``api_usage`` recorded today, by any process)
and the short write transactions the runs store through: each also adds the calls made since the last one to
``api_usage``, so an interrupted run has recorded what it spent. Used by one thread at a time (the client is).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from streams.clock import utcnow
from streams.store import api_usage
from streams.store.engine import write_transaction
from streams.tuya.openapi import OpenApiClient
from streams.tuya.results import ApiAnswer

__all__ = ["MeteredArchive", "QuotaReached"]

_T = TypeVar("_T")


class QuotaReached(Exception):
    """The day's quota would be exceeded by the next call: the run stops, keeping what it stored."""


class MeteredArchive:
    """The client's ``request`` (for the path families) that refuses to start a call once the budget is spent, and
    the archive's short transactions that record the calls made."""

    def __init__(self, engine: Engine, client: OpenApiClient, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.client = client
        self._clock = clock
        self._start = client.calls_made
        self._recorded = 0
        quota = client.daily_quota
        self.allowed: int | None = None
        if quota is not None:
            with engine.connect() as connection:
                self.allowed = max(0, quota - api_usage.calls_on(connection, clock().date()))

    @property
    def used(self) -> int:
        """Calls made since this run started (token calls and retries included)."""
        return self.client.calls_made - self._start

    @property
    def left(self) -> int | None:
        return None if self.allowed is None else max(0, self.allowed - self.used)

    def check(self) -> None:
        """Raise QuotaReached when the next call would go past this run's budget: the call itself, and the token
        grant or refresh it makes first."""
        needed = 1 + self.client.auth.token_calls_due
        if self.allowed is not None and self.used + needed > self.allowed:
            raise QuotaReached(f"today's OpenAPI quota is spent ({self.allowed:,} calls were left at the start)")

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> ApiAnswer:
        self.check()
        return self.client.request(method, path, params=params)

    def write(self, step: Callable[[Connection], _T]) -> _T:
        """Run ``step`` in a short write transaction that also records the calls made since the last one."""
        with write_transaction(self.engine) as connection:
            result = step(connection)
            unrecorded = self.used - self._recorded
            api_usage.add_calls(connection, self._clock().date(), unrecorded)
        self._recorded += unrecorded
        return result

    def read(self, query: Callable[[Connection], _T]) -> _T:
        with self.engine.connect() as connection:
            return query(connection)
