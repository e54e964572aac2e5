"""``tuya-archiver run``: the long-running worker (Procfile ``worker``), optionally bounded for tests and scripts."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys

from streams import wiring
from streams.cli.arguments import bound_arguments
from streams.heap import settle_heap
from streams.metrics import MetricsServer, WorkerMetrics
from streams.settings import Settings
from streams.tuya.openapi import OpenApiClient
from streams.urls import hide_password

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="consume Tuya's message service into the archive (the worker)",
        description="Consume Tuya's Pulsar topic, store every message once, acknowledge after commit, run the rules.",
    )
    bound_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # What the worker cannot run without, in the order a new user sets it up: credentials, endpoints, archive.
    settings.require("tuya_access_id", "tuya_access_key")
    log.info(
        "starting worker with settings %s; message service %s", settings.redacted(), hide_password(settings.pulsar_url)
    )
    rule_set = wiring.rules(settings)
    engine = wiring.archive_engine(settings)
    metrics = WorkerMetrics()
    try:
        fleet = wiring.catalog(engine)
        pace = OpenApiClient.pace_of(settings)  # the rules' commands and the sync: one rate, one quota count
        syncer = wiring.fleet_sync(settings, engine, fleet, pace)
        watcher = wiring.gap_watch(settings, engine, metrics, syncer)
        observers = [watcher, *([syncer] if syncer else [])]
        runner = wiring.worker(settings, engine, metrics, rule_set, fleet, observers)
        sender = wiring.outbox_sender(settings, engine, rule_set, pace)
        expiry = wiring.message_expiry(settings, engine)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, runner.stop)
        server = MetricsServer(metrics, settings.metrics_port) if settings.metrics_port else None
        with contextlib.ExitStack() as stack:
            if server:
                stack.enter_context(server)
                log.info("metrics on http://127.0.0.1:%d/metrics and /healthz", server.port)
            if sender:
                stack.callback(sender.stop)
                sender.start()
            if syncer:
                stack.callback(syncer.stop)
                syncer.start()
            if expiry:
                stack.callback(expiry.stop)
                expiry.start()
            watcher.start()
            stack.callback(watcher.close)
            settle_heap()
            summary = runner.run(max_messages=args.max_messages, idle_timeout=args.idle_timeout)
    finally:
        engine.dispose()
    if summary.unreachable:
        print(f"tuya-archiver run: the broker could not be reached for {args.idle_timeout:g} s", file=sys.stderr)
        return 1
    return 0
