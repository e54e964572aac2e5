"""When a pause of consumption lost messages: Tuya deletes what nobody acknowledged within its retention (2 hours).

Owns the rule, as a pure function of times. The worker last consumed at ``consumed``; it consumes again at
``resumed``. Tuya deleted every message pushed before ``resumed - retention``, so messages pushed between
``consumed`` and then are gone, unless the oldest message received now is older still (Tuya kept more than its
retention said). A stretch shorter than ``margin`` is not a gap: clocks and batches blur that much; a gap starts a
margin before the pause, for values timed just before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Stretch", "lost_stretch"]


@dataclass(frozen=True, slots=True)
class Stretch:
    """``started_at`` … ``ended_at``: pushed then, deleted unread."""

    started_at: datetime
    ended_at: datetime

    @property
    def length(self) -> timedelta:
        return self.ended_at - self.started_at


def lost_stretch(
    consumed: datetime | None,
    resumed: datetime,
    oldest_pushed: datetime | None,
    *,
    retention: timedelta,
    margin: timedelta,
) -> Stretch | None:
    """The stretch a pause lost, or None (no earlier consumption known, a short pause, or less than ``margin``)."""
    if consumed is None:
        return None
    deleted_before = resumed - retention
    end = deleted_before if oldest_pushed is None else min(deleted_before, oldest_pushed)
    if end - consumed <= margin:
        return None
    # A margin earlier: a value is timed a little before the message that carries it, so values timed before the
    # pause may have travelled in messages Tuya deleted (the backfill skips what the stream did archive).
    return Stretch(consumed - margin, end)
