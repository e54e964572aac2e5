"""What one sync did, counted as it goes: the shape the CLI's progress and summary, the worker's log and the tests
read. Data and wording only; pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Refusal", "SyncReport"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A path Tuya refused for this project, and what the project would need to use it."""

    purpose: str
    path: str
    code: int
    msg: str
    needs: str

    def __str__(self) -> str:
        return f"{self.path}: Tuya answered {self.code} {self.msg!r} ({self.needs})"


@dataclass(slots=True)
class SyncReport:
    """Counts of one sync; ``complete`` when the device listing reached its end (only then are devices "gone")."""

    family: str | None = None
    complete: bool = False
    devices_listed: int = 0
    devices_new: int = 0
    devices_changed: int = 0
    devices_gone: int = 0
    products: int = 0
    specifications: int = 0
    spec_family: str | None = None
    points: int = 0
    items_named: int = 0
    users_new: int = 0
    users_changed: int = 0
    states_filled: int = 0
    calls: int = 0
    calls_left: int | None = None
    stopped: str | None = None
    refused: list[Refusal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def summary_lines(self) -> list[str]:
        """The summary a person reads after ``tuya-archiver sync`` (and the worker logs)."""
        listed_by = f" through {self.family}" if self.family else ""
        lines = [
            f"devices: {self.devices_listed:,} listed{listed_by}: {self.devices_new:,} new, "
            f"{self.devices_changed:,} updated, {self.devices_gone:,} gone"
            + ("" if self.complete else " (listing incomplete: none marked gone)"),
            f"products: {self.products:,}, specifications fetched: {self.specifications:,} "
            f"({self.points:,} data points{', through ' + self.spec_family if self.spec_family else ''})",
            f"users: {self.users_new:,} new, {self.users_changed:,} updated",
            f"latest values from the API for devices that never reported: {self.states_filled:,}",
            f"OpenAPI calls: {self.calls:,} made"
            + (f", {self.calls_left:,} left in today's quota" if self.calls_left is not None else ""),
        ]
        if self.items_named:
            lines.append(f"status items named from their DP id: {self.items_named:,}")
        lines += [f"refused: {refusal}" for refusal in self.refused]
        lines += [f"problem: {problem}" for problem in self.problems]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        return lines
