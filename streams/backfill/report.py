"""What one backfill did, counted as it goes: read by the CLI's progress and summary, the worker's log and the tests.
Data and wording only; pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streams.fleet.report import Refusal

__all__ = ["API_ERROR", "QUOTA", "BackfillReport"]

#: What stopped a backfill before every device was read (``BackfillReport.stopped``).
QUOTA = "the quota"
API_ERROR = "an OpenAPI error"


@dataclass(slots=True)
class BackfillReport:
    """A gap's backfill: its window, devices read, rows added, calls; ``status`` filled, partly_filled (why:
    ``reasons``), or open again when the day's quota or an error of the whole project stopped it (``stopped``), or
    server errors left devices unread (``unanswered``)."""

    gap_id: int
    started_at: datetime
    ended_at: datetime
    devices: int = 0
    devices_done: int = 0
    rows_added: int = 0
    calls: int = 0
    estimate: int = 0
    family: str | None = None
    status: str = "backfilling"
    waiting: bool = False  # not started: the stream has not been consumed past the gap's end yet
    kept: bool = False  # filled before, and Tuya's logs no longer hold all of its window: left as it was
    stopped: str | None = None  # QUOTA or API_ERROR stopped it: left open, to be resumed
    unanswered: int = 0  # devices whose log answered a server error (or nothing): left open, to be read again
    scope: str | None = None  # some devices only were asked for: the gap stays partly filled for the others
    left_to_stream: datetime | None = None  # the end asked for, past where the stream was consumed (ended_at)
    refused: list[Refusal] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def done_as_asked(self) -> bool:
        """Every device asked for (all, unless ``scope``) was read, with nothing left out (nor the start awaited)."""
        return not self.waiting and self.devices_done == self.devices and not self.reasons

    def summary_lines(self) -> list[str]:
        window = f"{self.started_at.isoformat(timespec='seconds')} → {self.ended_at.isoformat(timespec='seconds')}"
        if self.waiting:
            return [f"gap {self.gap_id} ({window}): waiting until the stream is consumed past its end"]
        if self.kept:
            return [
                f"gap {self.gap_id} ({window}): filled",
                "note: filled earlier; Tuya's logs no longer hold all of its window, so it is left as it was",
            ]
        through = f" through {self.family}" if self.family else ""
        outcome = f"stopped by {self.stopped}" if self.stopped else self.status.replace("_", " ")
        lines = [
            f"gap {self.gap_id} ({window}): {outcome}",
            f"devices: {self.devices_done:,} of {self.devices:,} read{through}; rows added: {self.rows_added:,}",
            f"OpenAPI calls: {self.calls:,} (estimated at least {self.estimate:,} before starting)",
        ]
        lines += [f"refused: {refusal}" for refusal in self.refused]
        lines += [f"not filled: {reason}" for reason in self.reasons]
        lines += [f"note: {self.scope}"] if self.scope else []
        if self.left_to_stream is not None:
            lines.append(
                f"note: up to {self.left_to_stream.isoformat(timespec='seconds')} the window is left to the stream, "
                "which has not been consumed that far yet: the worker stores it from its backlog"
            )
        return lines
