"""``tuya-archiver bridge`` and ``tuya-archiver process``: the scale-out runtimes (DESIGN.md §2, Procfile).

Owns their arguments and their wiring: ``bridge`` runs the single-process worker's Runner with the Pulsar source
and a Kafka forwarder in place of the pipeline; ``process`` runs a faust worker whose agent calls the pipeline.
Settings come from the one settings object (KAFKA_URL, DATABASE_URL, TUYA_*, BATCH_SIZE, BATCH_TIMEOUT_MS,
METRICS_PORT); what it does not hold yet are flags with defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from streams import wiring
from streams.cli.arguments import bound_arguments, port, positive_int, positive_number
from streams.heap import settle_heap
from streams.metrics import MetricsServer, WorkerMetrics
from streams.settings import Settings
from streams.sources.kafka import DEFAULT_PARTITIONS, DEFAULT_TOPIC, bootstrap_servers

__all__ = ["register", "run_bridge", "run_process"]

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    bridge = subparsers.add_parser(
        "bridge",
        help="scale-out: move Tuya's messages, still encrypted, into a Kafka topic keyed by device id",
        description="Consume Tuya's topic like `run`, produce each message to Kafka (KAFKA_URL) keyed by device id, "
        "and acknowledge Tuya only after Kafka acknowledged the write.",
    )
    _topic_arguments(bridge)
    bound_arguments(bridge)
    bridge.set_defaults(handler=run_bridge)

    process = subparsers.add_parser(
        "process",
        help="scale-out: a faust worker that archives the bridge's Kafka topic (run several)",
        description="Consume the bridge's Kafka topic in a consumer group and run the same decode, normalise, "
        "rules and store steps as `run`, into DATABASE_URL (PostgreSQL).",
    )
    _topic_arguments(process)
    process.add_argument("--group", default="tuya-archiver", help="faust app id and Kafka consumer group")
    process.add_argument("--web-port", type=port, default=6066, help="faust's web server port on 127.0.0.1")
    process.add_argument(
        "--session-timeout",
        type=positive_number,
        default=10.0,
        help="seconds before a dead processor's partitions move",
    )
    bound_arguments(process)
    process.set_defaults(handler=run_process)


def _topic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--topic", default=DEFAULT_TOPIC, help=f"Kafka topic (default {DEFAULT_TOPIC})")
    parser.add_argument(
        "--partitions",
        type=positive_int,
        default=DEFAULT_PARTITIONS,
        help=f"partitions of the topic when it is created (default {DEFAULT_PARTITIONS}; at most one processor each)",
    )


def run_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from streams.bridge import KafkaForwarder, KafkaWriter, SubjectKeyer
    from streams.runner import Runner

    settings.require("tuya_access_id", "tuya_access_key", "kafka_url")
    assert settings.kafka_url is not None
    servers = bootstrap_servers(settings.kafka_url)  # a bad KAFKA_URL stops here, naming the variable
    log.info("bridge starting: kafka topic %s, settings %s", args.topic, settings.redacted())
    source = wiring.pulsar_source(settings)
    keyer = SubjectKeyer(settings.access_key)
    metrics = WorkerMetrics()
    writer = KafkaWriter(servers, args.topic, partitions=args.partitions)
    try:
        # The Runner of `run`, with the forwarder in the pipeline's place: same reconnects, watchdog, bounds, SIGTERM.
        runner = Runner(source, KafkaForwarder(writer, keyer), metrics, idle_reconnect_s=settings.tuya_idle_reconnect)  # type: ignore[arg-type]
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, runner.stop)
        with contextlib.ExitStack() as stack:
            _serve_metrics(stack, metrics, settings)
            settle_heap()
            summary = runner.run(max_messages=args.max_messages, idle_timeout=args.idle_timeout)
    finally:
        writer.close()
    if summary.unreachable:
        print(f"tuya-archiver bridge: the broker could not be reached for {args.idle_timeout:g} s", file=sys.stderr)
        return 1
    return 0


def run_process(args: argparse.Namespace, settings: Settings) -> int:
    from streams.faust_app import BatchCommitter, RunBounds, build_app, run_worker

    settings.require("tuya_access_key", "kafka_url")
    bootstrap_servers(settings.kafka_url or "")  # a bad KAFKA_URL stops here, naming the variable
    log.info("processor starting: kafka topic %s, group %s, settings %s", args.topic, args.group, settings.redacted())
    rule_set = wiring.rules(settings)
    engine = wiring.archive_engine(settings)
    if engine.dialect.name != "postgresql":
        log.warning("processors share one database: use PostgreSQL (DATABASE_URL); SQLite has a single writer")
    metrics = WorkerMetrics()
    try:
        committer = BatchCommitter(wiring.pipeline(settings, engine, rule_set), metrics)
        sender = wiring.outbox_sender(settings, engine, rule_set)
        with contextlib.ExitStack() as stack:
            _serve_metrics(stack, metrics, settings)
            if sender:  # claims are atomic, so every processor may run one: each command is still sent once
                stack.callback(sender.stop)
                sender.start()
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tuya-archiver-faust-"))
            app = build_app(
                _options(args, settings, Path(data_dir)), committer, RunBounds(args.max_messages, args.idle_timeout)
            )
            settle_heap()
            return run_worker(app, loglevel="debug" if args.verbose else "info")
    finally:
        engine.dispose()


def _options(args: argparse.Namespace, settings: Settings, data_dir: Path) -> Any:
    from streams.faust_app import ProcessorOptions

    assert settings.kafka_url is not None
    return ProcessorOptions(
        kafka_url=settings.kafka_url,
        data_dir=data_dir,
        topic=args.topic,
        partitions=args.partitions,
        group=args.group,
        batch_size=settings.batch_size,
        batch_timeout_s=settings.batch_timeout_ms / 1000,
        web_port=args.web_port,
        session_timeout_s=args.session_timeout,
    )


def _serve_metrics(stack: contextlib.ExitStack, metrics: WorkerMetrics, settings: Settings) -> None:
    """``/metrics`` and ``/healthz`` on 127.0.0.1:METRICS_PORT, as `run` serves them (0: none)."""
    if settings.metrics_port:
        server = stack.enter_context(MetricsServer(metrics, settings.metrics_port))
        log.info("metrics on http://127.0.0.1:%d/metrics and /healthz", server.port)
