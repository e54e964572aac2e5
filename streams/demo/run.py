"""``tuya-archiver demo``: the whole product on one machine, no Tuya account, in one call of :func:`run_demo`.

Owns the order of things and their end. It starts pulsar-lite, the OpenAPI emulator and a webhook receiver on free
loopback ports, a fresh archive, the real worker (:mod:`streams.demo.worker`) and the traffic
(:mod:`streams.demo.traffic`), with ``outage_s`` the outage (:mod:`streams.demo.outage`); shows the live display
until the traffic is archived, the scenario's rules have fired and an outage's gap is backfilled
(:mod:`streams.demo.watch`); then stops everything it started, in every case (Ctrl-C included), and reads what
happened back from the archive. The key is fixed and fake, and never printed.
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

from rich.console import Console

from streams.demo import progress
from streams.demo.database import prepare_database
from streams.demo.outage import Drain, Outage, OutageReport
from streams.demo.scenario import Scenario
from streams.demo.services import (
    DEMO_RULES,
    PARTITIONS,
    Endpoints,
    ReceivedWebhook,
    WebhookReceiver,
    render_rules,
    start_broker,
)
from streams.demo.traffic import Traffic
from streams.demo.watch import Parts, Watch
from streams.demo.worker import DemoWorker
from streams.rules import RuleSet, load_rules
from streams.settings import Settings, load_settings
from streams.sim import DEFAULT_MIX, BrokerError, Fleet, PublishReport
from streams.sources.pulsar import subscription_name, topic_name
from streams.tuya.emulated_sim import sim_emulated_devices, sim_users
from streams.tuya.emulator import Emulator, RecordedCommand
from streams.web.server import serve_in_thread

__all__ = [
    "DEMO_ACCESS_ID",
    "DEMO_APP_SCHEMA",
    "DEMO_RETENTION_S",
    "MIN_OUTAGE_S",
    "DemoError",
    "DemoOptions",
    "DemoResult",
    "Endpoints",
    "run_demo",
]

DEMO_ACCESS_ID = "demoaccessid0000"
DEMO_APP_SCHEMA = "demoapp"
_DEMO_ACCESS_KEY = "d3m0d3m0k3yk3yn0ts3cr3td3m0d3m0k"  # fake, but treated as a secret all the same
_DEMO_API_RATE = 100.0  # calls per second to the emulator on loopback (Tuya's projects: TUYA_API_RATE, default 5)
_SYNC_TIMEOUT_S = 60.0
#: Tuya keeps unacknowledged messages 2 hours (TUYA_MESSAGE_RETENTION); an outage demo cannot wait that long.
DEMO_RETENTION_S = 2.0
_DEMO_GAP_MARGIN_S = 0.5
#: The shortest outage: a retention and the two quiet edges (streams.demo.outage), with time to drop messages left.
MIN_OUTAGE_S = 5.0

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
    outage_s: float | None = None  # stop the worker this long, a third of the way in (None: no outage)


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
    outage: OutageReport | None = None


def demo_settings(options: DemoOptions, broker_url: str, openapi_url: str, rules: Path) -> Settings:
    """The worker's settings: the demo's project, broker, emulator, archive and rules (environment for the rest);
    with an outage, Tuya's retention shortened to :data:`DEMO_RETENTION_S`."""
    outage = {}
    if options.outage_s is not None:
        outage = {"tuya_message_retention": DEMO_RETENTION_S, "gap_margin": _DEMO_GAP_MARGIN_S}
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
        **outage,
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
    if options.outage_s is not None and options.outage_s < MIN_OUTAGE_S:
        raise DemoError(f"an outage must last at least {MIN_OUTAGE_S:.0f} s, not {options.outage_s:g}")
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
        watch = Watch(
            parts,
            started=started,
            duration_s=None if options.keep_running else options.duration_s,
            settle_timeout_s=options.settle_timeout_s,
        )
        interrupted = watch.run(console)
        stack.close()
        return _result(options, parts, watch, interrupted, time.monotonic() - started)


def _start(stack: contextlib.ExitStack, scratch: Path, options: DemoOptions) -> Parts:
    """Start everything; each part is stopped by ``stack``, the last started first.

    The traffic starts once the worker's first sync has read the emulated project (its devices, their products'
    data points, the app's users), so the archive knows every device's name and units before its first message.
    """
    # pulsar-lite 0.2 forgets the acknowledgements of a Failover subscription on a partitioned topic once its
    # consumer closes (streams.sim.broker): the outage's restarted worker would get every message again.
    broker = start_broker(scratch / "broker", partitions=0 if options.outage_s is not None else PARTITIONS)
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
    web = stack.enter_context(serve_in_thread(options.database_url, rules_file=rules)) if options.keep_running else None
    endpoints = Endpoints(broker.url, topic, emulator.url, hooks.url, web.url if web else None)
    traffic = _traffic(options, fleet, scenario, emulator)
    stack.callback(traffic.stop)
    traffic.start(endpoints.broker, endpoints.topic, rate=options.rate)
    outage = None
    if options.outage_s is not None:
        outage = _outage(options, endpoints, worker, traffic)
        stack.callback(outage.stop)
        outage.start()
    return Parts(endpoints, scenario, emulator, hooks, worker, traffic, outage)


def _traffic(options: DemoOptions, fleet: Fleet, scenario: Scenario, emulator: Emulator) -> Traffic:
    """The fleet's traffic and the scenario, logged in the emulator's device logs (not in an endless run without
    outage: nothing would read them, and they would grow without end)."""
    logs = emulator if options.outage_s is not None or not options.keep_running else None
    # The scenario waits while the outage's messages are dropped, so it is stretched over the rest of the run.
    scenario_s = options.duration_s - (options.outage_s or 0.0)
    return Traffic(
        fleet,
        scenario.steps(),
        duration_s=options.duration_s,
        corrupt=options.corrupt,
        endless=options.keep_running,
        scenario_s=scenario_s,
        logs=logs,
    )


def _outage(options: DemoOptions, endpoints: Endpoints, worker: DemoWorker, traffic: Traffic) -> Outage:
    assert options.outage_s is not None
    drain = Drain(endpoints.broker, endpoints.topic, subscription_name(DEMO_ACCESS_ID), retention_s=DEMO_RETENTION_S)
    return Outage(
        worker,
        traffic,
        drain,
        at_s=options.duration_s / 3,
        length_s=options.outage_s,
        retention_s=DEMO_RETENTION_S,
        timeout_s=options.settle_timeout_s,
    )


def _emulator(scenario: Scenario, fleet: Fleet) -> Emulator:
    """The emulated project: the scenario's devices and the fleet's, with their products' data points and users."""
    now_s = int(time.time())
    devices = [*scenario.emulated_devices(now_s=now_s), *sim_emulated_devices(fleet.devices, now_s=now_s)]
    users = sim_users(fleet.users, now_s=now_s)
    return Emulator(DEMO_ACCESS_ID, _DEMO_ACCESS_KEY, devices=devices, users=users, schema=DEMO_APP_SCHEMA)


def _result(options: DemoOptions, parts: Parts, watch: Watch, interrupted: bool, seconds: float) -> DemoResult:
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
        outage=parts.outage.report() if parts.outage is not None else None,
    )


def _fleet(options: DemoOptions) -> Fleet:
    # With an outage the fleet deletes no device: one deleted before the gap and paired again inside it is deleted
    # for the archive when the gap starts, and a backfill reads the logs of the devices alive then only.
    mix = {kind: weight for kind, weight in DEFAULT_MIX.items() if kind != "delete"} if options.outage_s else None
    clock = lambda: time.time_ns() // 1_000_000  # noqa: E731
    return Fleet(_DEMO_ACCESS_KEY, options.devices, clock=clock, seed=options.seed, mix=mix)
