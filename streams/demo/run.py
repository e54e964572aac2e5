"""``tuya-archiver demo``: the whole product on one machine, no Tuya account, in one call of :func:`run_demo`.

Owns the order of things and their end. It starts pulsar-lite, the OpenAPI emulator and a webhook receiver on free
loopback ports, a fresh archive, the real worker (:mod:`streams.demo.worker`) and the traffic
(:mod:`streams.demo.traffic`); shows the live display until the traffic is archived and the scenario's rules have
fired; then stops everything it started, in every case (Ctrl-C included), and reads what happened back from the
archive. The key is fixed and fake, and never printed.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, RenderableType
from rich.live import Live
from sqlalchemy import select

from models.tables import Command
from streams.demo import archive, progress
from streams.demo.database import prepare_database
from streams.demo.scenario import Scenario
from streams.demo.services import DEMO_RULES, ReceivedWebhook, WebhookReceiver, render_rules, start_broker
from streams.demo.traffic import Traffic
from streams.demo.worker import DemoWorker
from streams.rules import RuleSet, load_rules
from streams.settings import Settings, load_settings
from streams.sim import BrokerError, Fleet, PublishReport
from streams.sources.pulsar import topic_name
from streams.tuya.emulated_sim import sim_emulated_devices, sim_users
from streams.tuya.emulator import Emulator, RecordedCommand

__all__ = ["DEMO_ACCESS_ID", "DEMO_APP_SCHEMA", "DemoError", "DemoOptions", "DemoResult", "Endpoints", "run_demo"]

DEMO_ACCESS_ID = "demoaccessid0000"
DEMO_APP_SCHEMA = "demoapp"
_DEMO_ACCESS_KEY = "d3m0d3m0k3yk3yn0ts3cr3td3m0d3m0k"  # fake, but treated as a secret all the same
_DEMO_API_RATE = 100.0  # calls per second to the emulator on loopback (Tuya's projects: TUYA_API_RATE, default 5)
_SYNC_TIMEOUT_S = 60.0
_REFRESH_S = 0.25

log = logging.getLogger(__name__)


class DemoError(RuntimeError):
    """The demo could not run (its database is not empty, a service failed); the message says why."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    devices: int = 200
    duration_s: float = 60.0
    rate: float = 500.0
    database_url: str = "sqlite:///demo.db"
    keep_running: bool = False
    corrupt: float = 0.001  # share of the fleet's messages broken on purpose, besides the scripted five
    seed: int = 1
    settle_timeout_s: float = 30.0  # after publishing: how long to wait for the archive and the rules to catch up


@dataclass(frozen=True, slots=True)
class Endpoints:
    broker: str
    topic: str
    openapi: str
    webhooks: str


@dataclass(frozen=True)
class DemoResult:
    """What the run did, for the summary and the tests; the archive itself is in ``options.database_url``."""

    options: DemoOptions
    endpoints: Endpoints
    scenario: Scenario
    rules: RuleSet
    report: PublishReport | None
    kinds: Counter[str]
    accepted: list[RecordedCommand]
    signature_refusals: int
    webhooks: list[ReceivedWebhook]
    seconds: float
    interrupted: bool
    settled: bool  # everything published was archived and the scenario's rules fired before the settle timeout
    max_lag_s: float
    commits: int
    commit_seconds: float


def demo_settings(options: DemoOptions, broker_url: str, openapi_url: str, rules: Path) -> Settings:
    """The worker's settings: the demo's project, broker, emulator, archive and rules (environment for the rest)."""
    return load_settings(
        tuya_access_id=DEMO_ACCESS_ID,
        tuya_access_key=_DEMO_ACCESS_KEY,
        tuya_mq_env="event",
        tuya_pulsar_url=broker_url,
        tuya_openapi_url=openapi_url,
        database_url=options.database_url,
        rules_file=rules,
        rules_dry_run=False,
        metrics_port=0,
        tuya_app_schema=DEMO_APP_SCHEMA,
        tuya_api_rate=_DEMO_API_RATE,
    )


def run_demo(
    options: DemoOptions,
    console: Console,
    *,
    on_start: Callable[[Endpoints], None] | None = None,
) -> DemoResult:
    """Run the demo (see the module docstring); ``on_start`` is told the endpoints once everything runs.

    Raises:
        DemoError: the database cannot take the demo, or a part of the demo failed.
        KeyboardInterrupt: Ctrl-C before the display started (everything started is stopped first).
    """
    try:
        prepare_database(options.database_url)
    except ValueError as exc:
        raise DemoError(str(exc)) from None
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tuya-archiver-demo-") as scratch, contextlib.ExitStack() as stack:
        try:
            parts = _start(stack, Path(scratch), options)
        except BrokerError as exc:
            raise DemoError(f"the embedded broker did not start: {exc}") from None
        if on_start is not None:
            on_start(parts.endpoints)
        watch = _Watch(options, parts, started)
        interrupted = watch.run(console)
        stack.close()
        return _result(options, parts, watch, interrupted, time.monotonic() - started)


@dataclass(frozen=True, slots=True)
class _Parts:
    endpoints: Endpoints
    scenario: Scenario
    emulator: Emulator
    hooks: WebhookReceiver
    worker: DemoWorker
    traffic: Traffic


def _start(stack: contextlib.ExitStack, scratch: Path, options: DemoOptions) -> _Parts:
    """Start everything; each part is stopped by ``stack``, the last started first.

    The traffic starts once the worker's first sync has read the emulated project (its devices, their products'
    data points, the app's users), so the archive knows every device's name and units before its first message.
    """
    broker = start_broker(scratch / "broker")
    stack.callback(broker.stop)
    hooks = stack.enter_context(WebhookReceiver())
    rules = render_rules(DEMO_RULES, scratch, hooks.url)
    scenario = Scenario(load_rules(rules).devices, uid="eu1700000000000demo0")
    fleet = _fleet(options)
    emulator = stack.enter_context(_emulator(scenario, fleet))
    settings = demo_settings(options, broker.url, emulator.url, rules)
    worker = DemoWorker(settings)
    stack.callback(worker.stop)
    worker.start()
    if not worker.wait_for_sync(_SYNC_TIMEOUT_S):
        log.warning("the first sync from the emulated OpenAPI did not finish within %.0f s", _SYNC_TIMEOUT_S)
    topic = topic_name(DEMO_ACCESS_ID, settings.tuya_mq_env)
    endpoints = Endpoints(broker.url, topic, emulator.url, hooks.url)
    traffic = Traffic(
        fleet, scenario.steps(), duration_s=options.duration_s, corrupt=options.corrupt, endless=options.keep_running
    )
    stack.callback(traffic.stop)
    traffic.start(endpoints.broker, endpoints.topic, rate=options.rate)
    return _Parts(endpoints, scenario, emulator, hooks, worker, traffic)


def _emulator(scenario: Scenario, fleet: Fleet) -> Emulator:
    """The emulated project: the scenario's devices and the fleet's, with their products' data points and users."""
    now_s = int(time.time())
    devices = [*scenario.emulated_devices(now_s=now_s), *sim_emulated_devices(fleet.devices, now_s=now_s)]
    users = sim_users(fleet.users, now_s=now_s)
    return Emulator(DEMO_ACCESS_ID, _DEMO_ACCESS_KEY, devices=devices, users=users, schema=DEMO_APP_SCHEMA)


def _result(options: DemoOptions, parts: _Parts, watch: _Watch, interrupted: bool, seconds: float) -> DemoResult:
    """What happened, once everything is stopped. Raises DemoError when the worker or the publisher failed."""
    worker, traffic, emulator = parts.worker, parts.traffic, parts.emulator
    if worker.error is not None:
        raise DemoError(f"the worker failed: {worker.error}") from worker.error
    if traffic.error is not None:
        raise DemoError(f"publishing failed: {traffic.error}") from traffic.error
    registry = worker.metrics.registry
    return DemoResult(
        options=options,
        endpoints=parts.endpoints,
        scenario=parts.scenario,
        rules=worker.rules,
        report=traffic.report,
        kinds=traffic.kinds,
        accepted=emulator.commands,
        signature_refusals=sum(1 for call in emulator.calls if call.code == 1004),
        webhooks=parts.hooks.received,
        seconds=seconds,
        interrupted=interrupted,
        settled=watch.settled,
        max_lag_s=watch.max_lag_s,
        commits=int(progress.metric_total(registry, "tuya_commit_seconds_count")),
        commit_seconds=progress.metric_total(registry, "tuya_commit_seconds_sum"),
    )


def _fleet(options: DemoOptions) -> Fleet:
    return Fleet(_DEMO_ACCESS_KEY, options.devices, clock=lambda: time.time_ns() // 1_000_000, seed=options.seed)


class _Watch:
    """The main thread's loop: refresh the display; end when everything is archived and the scenario has fired."""

    def __init__(self, options: DemoOptions, parts: _Parts, started: float) -> None:
        self._options = options
        self._worker = parts.worker
        self._traffic = parts.traffic
        self._emulator = parts.emulator
        self._hooks = parts.hooks
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
        return "publishing" if self._traffic.running else "settling"

    def _done(self) -> bool:
        if not self._worker.running:
            return True  # it failed: the error is raised once everything is stopped
        if self._traffic.running:
            return False
        now = time.monotonic()
        if self._settle_deadline is None:
            self._settle_deadline = now + self._options.settle_timeout_s
        self.settled = self._caught_up()
        return self.settled or now >= self._settle_deadline

    def _caught_up(self) -> bool:
        report = self._traffic.report
        if report is None:
            return True  # publishing failed: nothing to wait for
        with self._worker.engine.connect() as connection:
            if archive.archived_messages(connection) < report.count or archive.open_commands(connection):
                return False
            fired = {tuple(row) for row in connection.execute(select(Command.rule_id, Command.device_id))}
        return all((expected.rule_id, expected.device_id) in fired for expected in self._expected)

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
            duration_s=None if self._options.keep_running else self._options.duration_s,
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
        )
