"""The worker's expiry of whole messages: ``messages`` rows older than KEEP_MESSAGES go, the history stays.

Owns when it runs: once at start, then every ``every_s`` seconds, in a thread of its own, in the short chunked
transactions of :func:`streams.store.retention.purge_older` (beside the writer's commits). A message row holds the
decrypted payload and properties whole, about as many bytes as the history its report becomes; it serves
``replay --messages`` and forensics, and its id tells a redelivery from news. Tuya redelivers for 2 hours at most,
so a row a day old no longer guards anything (settings: KEEP_MESSAGES is 0 or at least a day). A failed pass is
logged and tried again at the next one; it never stops archiving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from streams.clock import utcnow
from streams.durations import format_duration
from streams.store.retention import POLICIES, purge_older

__all__ = ["EVERY_S", "MessageExpiry"]

log = logging.getLogger(__name__)

EVERY_S = 3_600.0


class MessageExpiry:
    """``start()`` runs a pass at once; ``stop()`` ends the pass under way after its current chunk."""

    def __init__(
        self,
        engine: Engine,
        keep: timedelta,
        *,
        every_s: float = EVERY_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._keep = keep
        self._every_s = every_s
        self._clock = clock
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="message-expiry", daemon=True)
        #: Passes finished, and the messages they deleted (for tests and the log).
        self.passes = 0
        self.expired = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def expire_once(self) -> int:
        """Delete the messages received before now minus KEEP_MESSAGES; returns how many went."""
        cutoff = self._clock() - self._keep
        deleted = purge_older(self._engine, POLICIES["messages"], cutoff, stopping=self._stopping.is_set)
        if deleted:
            log.info(
                "expired %d messages received before %s (KEEP_MESSAGES=%s; their history stays)",
                deleted,
                cutoff.isoformat(timespec="seconds"),
                format_duration(self._keep),
            )
        return deleted

    def _loop(self) -> None:
        while True:
            try:
                self.expired += self.expire_once()
                self.passes += 1
            except Exception as exc:  # a failed pass must not end the thread: the next one retries
                log.warning("expiring old messages failed (%s: %s); trying again later", type(exc).__name__, exc)
            if self._stopping.wait(self._every_s):
                return
