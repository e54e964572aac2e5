"""How both replays walk the archive and commit: pages in keyset order, and a page's transaction tried again when
the database was briefly unavailable (a deadlock with the worker on PostgreSQL, SQLite's lock held past its busy
timeout).

Owns the walk and the retry policy only; what a page is and what its transaction does are the callers'. Imports no
database code: the pages come from a function the caller passes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from streams.errors import DatabaseUnavailable

__all__ = ["ATTEMPTS", "pages", "retrying"]

log = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")
R = TypeVar("R")

#: Tries of one page's transaction before the replay stops (a rerun continues where it stopped: it is idempotent).
ATTEMPTS = 3


def pages(read: Callable[[P | None], Sequence[T]], position: Callable[[T], P]) -> Iterator[Sequence[T]]:
    """Every page ``read(after)`` returns, each read after the position of the previous page's last item."""
    after: P | None = None
    while True:
        page = read(after)
        if not page:
            return
        yield page
        after = position(page[-1])


def retrying(
    work: Callable[[], R],
    *,
    attempts: int = ATTEMPTS,
    pause_s: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    """``work()``, tried up to ``attempts`` times while it raises DatabaseUnavailable (its transaction rolled back).

    Raises:
        DatabaseUnavailable: the last attempt's.
    """
    for attempt in range(1, attempts):
        try:
            return work()
        except DatabaseUnavailable as exc:
            log.warning("%s; trying again (%d of %d)", exc, attempt + 1, attempts)
            sleep(pause_s * attempt)
    return work()
