"""The real worker, in a thread of the demo: the composition of ``tuya-archiver run``, from the same wiring.

Owns only what differs from ``streams.cli.run``: the runner loops in a thread (so the demo's main thread keeps the
display and Ctrl-C), it is stopped with :meth:`Runner.stop` instead of a signal, and its metrics are read in-process
instead of over HTTP. Everything else (engine at head, rules, catalog, pipeline, reactor, outbox sender, background
sync, runner) comes from :mod:`streams.wiring`, as for ``run``.
"""

from __future__ import annotations

import logging
import threading

from streams import wiring
from streams.fleet.background import BackgroundSync
from streams.metrics import WorkerMetrics
from streams.outbox.sender import OutboxSender
from streams.runner import RunSummary
from streams.settings import Settings

__all__ = ["DemoWorker"]

log = logging.getLogger(__name__)


class DemoWorker:
    """``tuya-archiver run`` with ``settings``, started by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.metrics = WorkerMetrics()
        self.rules = wiring.rules(settings)
        self.engine = wiring.archive_engine(settings)
        try:
            fleet = wiring.catalog(self.engine)
            self.syncer: BackgroundSync | None = wiring.fleet_sync(settings, self.engine, fleet)
            self.watcher = wiring.gap_watch(settings, self.engine, self.metrics, self.syncer)
            observers = [self.watcher, *([self.syncer] if self.syncer else [])]
            self.runner = wiring.worker(settings, self.engine, self.metrics, self.rules, fleet, observers)
            self.sender: OutboxSender | None = wiring.outbox_sender(settings, self.engine, self.rules)
        except BaseException:
            self.engine.dispose()
            raise
        self._thread = threading.Thread(target=self._run, name="demo-worker", daemon=True)
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None

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
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.summary = self.runner.run()
        except BaseException as exc:  # reported by the demo after it stopped everything
            log.exception("the worker stopped with an error")
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand, stop the outbox sender after its row in hand, close the engine."""
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
