"""The demo's live display: what was published, received, stored, dead-lettered and sent, refreshed while it runs.

Owns the snapshot the display shows and how it looks (a rich renderable for ``rich.live.Live``). The figures come
from the worker's own Prometheus registry (the counters ``/metrics`` would serve), the publisher's count, the outbox
sender, the emulator, the webhook receiver, and with ``--outage`` the outage and the archive's gaps; gathering them
is the caller's job. No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from streams.demo.archive import GapRow

__all__ = ["OutageProgress", "Progress", "metric_total", "render"]


def metric_total(registry: CollectorRegistry, name: str) -> float:
    """The sum of a metric's samples over all its labels (0 before the first increment)."""
    return sum(sample.value for metric in registry.collect() for sample in metric.samples if sample.name == name)


@dataclass(frozen=True, slots=True)
class OutageProgress:
    """Where the outage is (``phase``: pending, stopping, stopped, restarting, over, skipped), how long the worker
    has been stopped (None: not yet), and the newest gap."""

    phase: str
    at_s: float
    length_s: float
    dropped: int
    stopped_s: float | None
    skipped: str | None
    gap: GapRow | None


@dataclass(frozen=True, slots=True)
class Progress:
    """One snapshot of the run; ``duration_s`` is None for a run that goes on until Ctrl-C."""

    phase: str
    elapsed_s: float
    duration_s: float | None
    published: int
    received: int
    stored: int
    duplicates: int
    dead_letters: int
    commands_sent: int
    commands_failed: int
    accepted: int
    webhooks: int
    lag_s: float
    outage: OutageProgress | None = None

    @property
    def backlog(self) -> int:
        """Published but not archived yet (as a message or a dead letter), nor dropped in an outage."""
        dropped = self.outage.dropped if self.outage is not None else 0
        return max(0, self.published - self.stored - self.dead_letters - dropped)


def render(progress: Progress) -> RenderableType:
    """The panel ``Live`` shows."""
    return Panel(
        Group(_timeline(progress), Text(""), _figures(progress)),
        title="tuya-archiver demo",
        subtitle="Ctrl-C stops everything cleanly",
        expand=False,
    )


def _timeline(progress: Progress) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    if progress.duration_s is None:
        grid.add_row(Text(progress.phase, style="bold"), f"{progress.elapsed_s:5.1f} s, until Ctrl-C")
        return grid
    done = min(progress.elapsed_s, progress.duration_s)
    bar = ProgressBar(total=progress.duration_s, completed=done, width=40)
    grid.add_row(Text(f"{progress.phase:<11}", style="bold"), bar, f"{done:5.1f} / {progress.duration_s:.0f} s")
    return grid


def _figures(progress: Progress) -> RenderableType:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="cyan")
    table.add_column(justify="right", style="bold")
    table.add_column(style="dim")
    table.add_row("published", f"{progress.published:,}", "encrypted Tuya envelopes sent to the broker")
    table.add_row("received", f"{progress.received:,}", f"{progress.duplicates:,} redelivered by the broker, ignored")
    table.add_row("stored", f"{progress.stored:,}", "new messages committed to the archive")
    table.add_row("dead letters", f"{progress.dead_letters:,}", "messages that could not be decoded")
    table.add_row("backlog", f"{progress.backlog:,}", f"push → commit lag {progress.lag_s:.1f} s")
    sent = f"{progress.commands_sent:,}"
    detail = f"{progress.accepted} Tuya commands accepted by the emulator, {progress.webhooks} webhooks received"
    if progress.commands_failed:
        detail += f", {progress.commands_failed} failed"
    table.add_row("rule actions", sent, detail)
    if progress.outage is not None:
        _outage_rows(table, progress.outage)
    return table


def _outage_rows(table: Table, outage: OutageProgress) -> None:
    table.add_row("outage", f"{outage.dropped:,}", _outage_detail(outage))
    gap = outage.gap
    if gap is not None:
        length = (gap.ended_at - gap.started_at).total_seconds()
        state = "backfilling" if gap.open else gap.status.replace("_", " ")
        devices = f"{gap.devices_done:,} devices read"
        detail = f"rows added to gap {gap.id} ({length:.1f} s) from the device logs: {state}, {devices}"
        table.add_row("gap", f"{gap.rows_added:,}", detail)


def _outage_detail(outage: OutageProgress) -> str:
    if outage.phase == "skipped":
        return f"not as planned: {outage.skipped}"
    if outage.stopped_s is None:
        if outage.phase == "stopping":
            return "stopping the worker once it has caught up"
        return f"at {outage.at_s:.0f} s the worker stops for {outage.length_s:.0f} s"
    stopped = f"worker stopped {outage.stopped_s:.0f} s"
    if outage.phase == "over":
        return f"{stopped}, then consumed again; messages dropped as Tuya would"
    if outage.phase == "restarting":
        return f"{stopped}, starting again; messages dropped as Tuya would"
    return f"{stopped}, messages dropped as Tuya would (once older than its retention)"
