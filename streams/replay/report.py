"""What a replay did, counted as it goes: the figures of its progress line and of the summary it ends with.

Owns the counters of both replays and their wording (``would …`` in a dry run). Pure: no I/O, no SQLAlchemy; the
CLI prints.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from streams.replay.derive import TableChanges

__all__ = ["TABLES", "DeadLetterReport", "MessageReport"]

#: The tables ``replay --messages`` re-derives, in the order its summary lists them.
TABLES = ("device_status", "device_events", "user_events", "device_state", "devices", "users")


def _kinds(counter: Counter[str]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def _window(since: datetime | None, kinds: tuple[str, ...] = ()) -> str:
    parts = [f"received since {since.isoformat(timespec='seconds')}"] if since else []
    if kinds:
        parts.append(f"error kind {' or '.join(kinds)}")
    return f" ({'; '.join(parts)})" if parts else ""


@dataclass
class DeadLetterReport:
    """``replay --dead-letters``: unresolved dead letters read, what became of those that decode now, and the error
    kinds of those that still do not."""

    dry_run: bool = False
    since: datetime | None = None
    error_kinds: tuple[str, ...] = ()
    read: int = 0
    stored: int = 0
    already_stored: int = 0
    status_rows: int = 0
    device_events: int = 0
    user_events: int = 0
    fired: int = 0
    from_log: int = 0  # status values and device events a backfill had stored from the device log: not stored again
    failing: Counter[str] = field(default_factory=Counter)

    def progress_text(self) -> str:
        return (
            f"dead letters {self.read:,} read · {self.stored:,} stored · {self.already_stored:,} already stored · "
            f"{sum(self.failing.values()):,} still failing"
        )

    def summary_lines(self, *, rules: bool = False) -> list[str]:
        lines = [f"dead letters read: {self.read:,} unresolved{_window(self.since, self.error_kinds)}"]
        if not self.read:
            return [*lines, "nothing to replay"]
        history = ", ".join(
            f"{count:,} {what}"
            for count, what in (
                (self.status_rows, "status values"),
                (self.device_events, "device events"),
                (self.user_events, "user events"),
            )
        )
        failing = sum(self.failing.values())
        detail = f" ({_kinds(self.failing)})" if failing else ""
        if self.dry_run:
            lines.append(f"would store: {self.stored:,} messages ({history}) and mark their dead letters resolved")
            lines.append(f"already stored: {self.already_stored:,} (would be marked resolved)")
        else:
            lines.append(f"stored: {self.stored:,} messages ({history}); their dead letters marked resolved")
            lines.append(f"already stored: {self.already_stored:,} (marked resolved)")
        if self.from_log:
            lines.append(
                f"already backfilled from the device log: {self.from_log:,} status values and device events, "
                + ("which would not be stored again" if self.dry_run else "not stored again")
            )
        lines.append(f"still failing: {failing:,}{detail}, left unresolved")
        if rules:
            fired = "not run in a dry run" if self.dry_run else f"{self.fired:,} actions fired"
            lines.append(f"rules: {fired} (the worker's outbox sender delivers what fires)")
        return lines


@dataclass
class MessageReport:
    """``replay --messages``: stored messages read, how many normalised again (and why the others did not), and the
    rows changed per table."""

    dry_run: bool = False
    since: datetime | None = None
    read: int = 0
    failing: Counter[str] = field(default_factory=Counter)
    tables: dict[str, TableChanges] = field(default_factory=lambda: dict.fromkeys(TABLES, TableChanges()))

    @property
    def changed(self) -> int:
        return sum(changes.total for changes in self.tables.values())

    def add(self, changes: dict[str, TableChanges]) -> None:
        for table, counted in changes.items():
            self.tables[table] = self.tables[table] + counted

    def progress_text(self) -> str:
        return f"messages {self.read:,} read · {sum(self.failing.values()):,} failed · {self.changed:,} rows changed"

    def summary_lines(self) -> list[str]:
        failing = sum(self.failing.values())
        lines = [f"messages read: {self.read:,}{_window(self.since)}; normalised again: {self.read - failing:,}"]
        if failing:
            lines.append(f"could not be normalised: {failing:,} ({_kinds(self.failing)}), their rows left as they were")
        for table in TABLES:
            c = self.tables[table]
            if self.dry_run:
                lines.append(f"{table}: would insert {c.inserted:,}, update {c.updated:,}, delete {c.deleted:,}")
            else:
                lines.append(f"{table}: {c.inserted:,} inserted, {c.updated:,} updated, {c.deleted:,} deleted")
        if not self.changed:
            lines.append("nothing to change: the archive is what today's normalisation derives")
        return lines
