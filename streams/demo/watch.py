"""The demo's main-thread loop: the live display, refreshed while everything runs, and the end of the run.

Owns when the demo ends: once publishing is over, everything published reached the archive (as a message or a
dead letter; the outage's dropped messages aside), every command is settled, the scenario's rules fired, and an
outage's gap is backfilled; or at the settle timeout, a failed worker, or Ctrl-C. Gathers the live display's figures
(the worker's metrics, the publisher's count, the sender, the emulator, the receiver, the outage and the archive's
gaps) for :mod:`streams.demo.progress`. Reads the archive; writes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.live import Live
from sqlalchemy import select
from sqlalchemy.engine import Connection

from models.tables import Command
from streams.demo import archive, progress
from streams.demo.outage import Outage
from streams.demo.scenario import Scenario
from streams.demo.services import Endpoints, WebhookReceiver
from streams.demo.traffic import Traffic
from streams.demo.worker import DemoWorker
from streams.tuya.emulator import Emulator

__all__ = ["Parts", "Watch"]

_REFRESH_S = 0.25


@dataclass(frozen=True, slots=True)
class Parts:
    """Everything the demo started that the loop watches and the result reads."""

    endpoints: Endpoints
    scenario: Scenario
    emulator: Emulator
    hooks: WebhookReceiver
    worker: DemoWorker
    traffic: Traffic
    outage: Outage | None


class Watch:
    """The main thread's loop: refresh the display; end when everything is archived and the scenario has fired."""

    def __init__(self, parts: Parts, *, started: float, duration_s: float | None, settle_timeout_s: float) -> None:
        self._duration = duration_s
        self._settle_timeout = settle_timeout_s
        self._worker = parts.worker
        self._traffic = parts.traffic
        self._emulator = parts.emulator
        self._hooks = parts.hooks
        self._outage = parts.outage
        self._expected = parts.scenario.expected()
        self._started = started
        self._settle_deadline: float | None = None
        self.settled = False
        self.max_lag_s = 0.0

    def run(self, console: Console) -> bool:
        """Loop until done; True when Ctrl-C ended it."""
        with Live(self._render("starting"), console=console, refresh_per_second=4, transient=False) as live:
            try:
                while not self._done():
                    live.update(self._render(self._phase()))
                    time.sleep(_REFRESH_S)
            except KeyboardInterrupt:
                live.update(self._render("interrupted"))
                return True
            live.update(self._render(self._outcome()))
        return False

    def _outcome(self) -> str:
        if self.settled:
            return "done"
        return "timed out" if self._worker.running else "failed"

    def _phase(self) -> str:
        if self._outage is not None and self._outage.phase in ("stopping", "stopped", "restarting"):
            return "outage"
        return "publishing" if self._traffic.running else "settling"

    def _done(self) -> bool:
        if not self._worker.running:
            return True  # it failed: the error is raised once everything is stopped
        if self._traffic.running:
            return False
        now = time.monotonic()
        if self._settle_deadline is None:
            self._settle_deadline = now + self._settle_timeout
        self.settled = self._caught_up()
        return self.settled or now >= self._settle_deadline

    def _caught_up(self) -> bool:
        report = self._traffic.report
        if report is None:
            return True  # publishing failed: nothing to wait for
        reached = report.count - self._traffic.dropped  # the outage's messages were dropped before the worker saw them
        with self._worker.engine.connect() as connection:
            if archive.archived_messages(connection) < reached or archive.open_commands(connection):
                return False
            if not self._backfilled(connection):
                return False
            fired = {tuple(row) for row in connection.execute(select(Command.rule_id, Command.device_id))}
        return all((expected.rule_id, expected.device_id) in fired for expected in self._expected)

    def _backfilled(self, connection: Connection) -> bool:
        """No outage, or it is over and left gaps that are all backfilled (as far as the logs allow)."""
        if self._outage is None or self._outage.phase == "skipped":
            return True
        gaps = archive.gap_rows(connection)
        return self._outage.phase == "over" and bool(gaps) and not any(gap.open for gap in gaps)

    def _render(self, phase: str) -> RenderableType:
        return progress.render(self._snapshot(phase))

    def _snapshot(self, phase: str) -> progress.Progress:
        registry = self._worker.metrics.registry
        lag = progress.metric_total(registry, "tuya_push_to_commit_lag_seconds")
        self.max_lag_s = max(self.max_lag_s, lag)
        sender = self._worker.sender
        return progress.Progress(
            phase=phase,
            elapsed_s=time.monotonic() - self._started,
            duration_s=self._duration,
            published=self._traffic.published,
            received=int(progress.metric_total(registry, "tuya_messages_received_total")),
            stored=int(progress.metric_total(registry, "tuya_messages_stored_total")),
            duplicates=int(progress.metric_total(registry, "tuya_messages_duplicate_total")),
            dead_letters=int(progress.metric_total(registry, "tuya_dead_letters_total")),
            commands_sent=sender.sent if sender else 0,
            commands_failed=sender.failed if sender else 0,
            accepted=len(self._emulator.commands),
            webhooks=len(self._hooks.received),
            lag_s=lag,
            outage=self._outage_progress(),
        )

    def _outage_progress(self) -> progress.OutageProgress | None:
        outage = self._outage
        if outage is None:
            return None
        gaps = []
        if outage.phase in ("restarting", "over"):
            with self._worker.engine.connect() as connection:
                gaps = archive.gap_rows(connection)
        return progress.OutageProgress(
            phase=outage.phase,
            at_s=outage.at_s,
            length_s=outage.length_s,
            dropped=outage.dropped,
            stopped_s=outage.stopped_s(),
            skipped=outage.skipped,
            gap=gaps[-1] if gaps else None,
        )
