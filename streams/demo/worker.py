"""The real worker, in a thread of the demo: the composition of ``tuya-archiver run``, from the same wiring.

Owns only what differs from ``streams.cli.run``: the runner loops in a thread (so the demo's main thread keeps the
display and Ctrl-C), it is stopped with :meth:`Runner.stop` instead of a signal, it can stop consuming for an outage
and start again as a restarted ``run`` would (:meth:`DemoWorker.pause`, :meth:`DemoWorker.resume`), and its metrics
are read in-process instead of over HTTP. Everything else (engine at head, rules, catalog, pipeline, reactor, outbox
sender, background sync, gap watch, runner) comes from :mod:`streams.wiring`, as for ``run``.
"""

from __future__ import annotations

import logging
import threading

from streams import wiring
from streams.fleet.background import BackgroundSync
from streams.metrics import WorkerMetrics
from streams.outbox.sender import OutboxSender
from streams.pipeline import BatchResult
from streams.runner import Runner, RunSummary
from streams.settings import Settings
from streams.tuya.openapi import OpenApiClient

__all__ = ["DemoWorker"]

log = logging.getLogger(__name__)


class _FirstReceive:
    """An observer of the runner that notes its first receive (by then the gap watch has looked for a gap)."""

    def __init__(self) -> None:
        self.done = threading.Event()

    def on_connected(self) -> None:
        """Connected, not received yet."""

    def on_committed(self, result: BatchResult) -> None:
        self.done.set()

    def on_idle(self) -> None:
        self.done.set()


class DemoWorker:
    """``tuya-archiver run`` with ``settings``, started by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.metrics = WorkerMetrics()
        self.rules = wiring.rules(settings)
        self.engine = wiring.archive_engine(settings)
        try:
            self._catalog = wiring.catalog(self.engine)
            pace = OpenApiClient.pace_of(settings)
            self.syncer: BackgroundSync | None = wiring.fleet_sync(settings, self.engine, self._catalog, pace)
            self.sender: OutboxSender | None = wiring.outbox_sender(settings, self.engine, self.rules, pace)
            self._build()
        except BaseException:
            self.engine.dispose()
            raise
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self.paused = False

    def _build(self) -> threading.Event:
        """A gap watch, a runner and its thread, as ``run`` builds them at its start; the event is set at the first
        receive."""
        self.watcher = wiring.gap_watch(self._settings, self.engine, self.metrics, self.syncer)
        first = _FirstReceive()
        observers = [self.watcher, *([self.syncer] if self.syncer else []), first]
        self.runner = wiring.worker(self._settings, self.engine, self.metrics, self.rules, self._catalog, observers)
        self._thread = threading.Thread(target=self._run, args=(self.runner,), name="demo-worker", daemon=True)
        return first.done

    def start(self) -> DemoWorker:
        if self.sender is not None:
            self.sender.start()
        if self.syncer is not None:
            self.syncer.start()
        self.watcher.start()
        self._thread.start()
        return self

    def wait_for_sync(self, timeout: float) -> bool:
        """Whether the background sync finished its first full sync within ``timeout`` seconds."""
        return self.syncer is not None and self.syncer.wait_for_sync(timeout)

    @property
    def running(self) -> bool:
        """Consuming, or stopped on purpose by :meth:`pause`; False once the runner ended by itself (it failed)."""
        return self.paused or self._thread.is_alive()

    def _run(self, runner: Runner) -> None:
        try:
            self.summary = runner.run()
        except BaseException as exc:  # reported by the demo after it stopped everything
            log.exception("the worker stopped with an error")
            self.error = exc

    def pause(self, timeout: float = 30.0) -> None:
        """Stop consuming as a stopped ``run`` does: the batch in hand is committed, the consumer closed, and the gap
        watch saves when it last consumed. The engine, the outbox sender and the background sync go on."""
        self.paused = True
        self.runner.stop()
        self._thread.join(timeout)
        self.watcher.close()

    def resume(self) -> threading.Event:
        """Consume again with a new gap watch and runner from the wiring, as ``run`` after a restart (the watch reads
        when the last one consumed from the archive); the event is set at the first receive."""
        first = self._build()
        self.watcher.start()
        self._thread.start()
        self.paused = False
        return first

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, stop the outbox sender after its row in hand, close the engine."""
        self.paused = False
        self.runner.stop()
        try:
            if self._thread.is_alive():
                self._thread.join(timeout)
        finally:
            if self.sender is not None:
                self.sender.stop()
            if self.syncer is not None:
                self.syncer.stop()
            self.watcher.close()
            self.engine.dispose()
