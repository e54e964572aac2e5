"""The composition root: the only place that builds adapters (engine, store, decoder, source, reactor, sender, runner)
from settings.

Owns no logic of its own; every command that needs more than one adapter asks this module for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy.engine import Engine

from streams.backfill.job import Backfill
from streams.backfill.report import BackfillReport
from streams.backfill.watch import GapWatcher
from streams.fleet.background import BackgroundSync
from streams.fleet.catalog import CatalogRef
from streams.fleet.sync import FleetSync
from streams.metrics import WorkerMetrics
from streams.outbox.reactor import RulesReactor
from streams.outbox.sender import OutboxSender
from streams.pipeline import Pipeline
from streams.replay.dead_letters import DeadLetterReplay
from streams.rules import RuleSet, load_rules
from streams.runner import Observer, Runner
from streams.settings import Settings
from streams.sources.pulsar import PulsarSource, subscription_name, topic_name
from streams.store.engine import ensure_at_head, make_engine, unavailable_on_failure
from streams.store.expiry import MessageExpiry
from streams.store.fleet import load_catalog
from streams.store.settle import settle_every
from streams.store.sql import ArchiveStore
from streams.tuya.decoder import MessageDecoder
from streams.tuya.openapi import OpenApiClient
from streams.tuya.ratelimit import ApiPace
from streams.writer.child import WriterConfig
from streams.writer.process import WriterProcess
from streams.writer.runner import PipelinedRunner

__all__ = [
    "archive_engine",
    "backfill_job",
    "catalog",
    "dead_letter_replay",
    "fleet_sync",
    "gap_watch",
    "outbox_sender",
    "pipeline",
    "pulsar_source",
    "rules",
    "worker",
    "writer_config",
]

log = logging.getLogger(__name__)


def archive_engine(settings: Settings) -> Engine:
    """An engine on DATABASE_URL that is at the schema's head revision (else ConfigError: run db upgrade)."""
    engine = make_engine(settings.database_url)
    try:
        ensure_at_head(engine)
    except Exception:
        engine.dispose()
        raise
    return engine


def rules(settings: Settings) -> RuleSet:
    """The validated rules of RULES_FILE (none when it is unset or empty); RulesFileError stops the start."""
    if settings.rules_file is None:
        return RuleSet(dry_run=settings.rules_dry_run)
    return load_rules(settings.rules_file, dry_run=settings.rules_dry_run)


def pulsar_source(settings: Settings) -> PulsarSource:
    settings.require("tuya_access_id", "tuya_access_key")
    assert settings.tuya_access_id is not None
    return PulsarSource(
        settings.pulsar_url,
        access_id=settings.tuya_access_id,
        access_key=settings.access_key,
        topic=topic_name(settings.tuya_access_id, settings.tuya_mq_env),
        subscription=subscription_name(settings.tuya_access_id),
        tls_verify=settings.tuya_pulsar_tls_verify,
        batch_size=settings.batch_size,
        batch_timeout_ms=settings.batch_timeout_ms,
    )


def dead_letter_replay(
    settings: Settings, engine: Engine, fleet: CatalogRef, rule_set: RuleSet | None, *, page_size: int
) -> DeadLetterReplay:
    """``replay --dead-letters``: today's key and decoder, the store, and the rules' reactor when asked for."""
    reactor = RulesReactor(rule_set, fleet.get) if rule_set is not None else None
    decoder = MessageDecoder(settings.access_key)
    return DeadLetterReplay(
        engine, decoder, ArchiveStore(engine), catalog=fleet.get, reactor=reactor, page_size=page_size
    )


def catalog(engine: Engine) -> CatalogRef:
    """The archive's data-point catalog as it is now; ``sync`` replaces it in the reference as it learns more."""
    with unavailable_on_failure("reading the data-point catalog"), engine.connect() as connection:
        return CatalogRef(load_catalog(connection))


def pipeline(settings: Settings, engine: Engine, rule_set: RuleSet, fleet: CatalogRef | None = None) -> Pipeline:
    """The one pipeline of every runtime: decode, name DP ids, store, and the rules reactor writing the outbox."""
    fleet = fleet or catalog(engine)
    reactor = RulesReactor(rule_set, fleet.get) if rule_set.rules else None
    store = ArchiveStore(engine, settle_every=settle_every(settings.history_settle_values, engine.dialect.name))
    return Pipeline(MessageDecoder(settings.access_key), store, reactor, catalog=fleet.get)


def outbox_sender(
    settings: Settings, engine: Engine, rule_set: RuleSet, pace: ApiPace | None = None
) -> OutboxSender | None:
    """The sender of the rules' commands, or None when no rule has an action to deliver; ``pace``: the process's
    (OpenApiClient.pace_of), shared with its background sync."""
    if not rule_set.rules:
        return None
    endpoint = settings.tuya_openapi_url or settings.tuya_region
    client = OpenApiClient.from_settings(settings, pace=pace) if endpoint else None
    if client is None:
        log.warning("no TUYA_REGION or TUYA_OPENAPI_URL: rules' Tuya commands will fail (webhooks and logs work)")
    return OutboxSender(engine, client, lease_s=settings.rules_in_flight_lease, rules=rule_set)


def fleet_sync(
    settings: Settings, engine: Engine, fleet: CatalogRef, pace: ApiPace | None = None
) -> BackgroundSync | None:
    """The worker's background sync, or None when SYNC_INTERVAL is 0 or no OpenAPI endpoint is configured; ``pace``
    as for :func:`outbox_sender`."""
    if settings.sync_interval <= 0:
        log.info("SYNC_INTERVAL is 0: the worker does not sync the fleet (run `tuya-archiver sync` yourself)")
        return None
    if not (settings.tuya_openapi_url or settings.tuya_region):
        log.info("no TUYA_REGION or TUYA_OPENAPI_URL: the worker does not sync the fleet from the OpenAPI")
        return None
    client = OpenApiClient.from_settings(settings, pace=pace)
    return BackgroundSync(
        lambda: FleetSync(engine, client, schema=settings.tuya_app_schema),
        engine,
        fleet,
        interval_s=settings.sync_interval,
        on_stop=client.close,
        make_backfill=lambda: backfill_job(settings, engine, client),
    )


def backfill_job(
    settings: Settings,
    engine: Engine,
    client: OpenApiClient,
    on_progress: Callable[[BackfillReport], None] | None = None,
) -> Backfill:
    return Backfill(
        engine,
        client,
        log_retention=timedelta(seconds=settings.tuya_log_retention),
        message_retention=timedelta(seconds=settings.tuya_message_retention),
        margin=timedelta(seconds=settings.gap_margin),
        on_progress=on_progress,
    )


def message_expiry(settings: Settings, engine: Engine) -> MessageExpiry | None:
    """The worker's expiry of messages older than KEEP_MESSAGES, or None when KEEP_MESSAGES is 0."""
    if settings.keep_messages <= 0:
        return None
    return MessageExpiry(engine, timedelta(seconds=settings.keep_messages))


def gap_watch(settings: Settings, engine: Engine, metrics: WorkerMetrics, syncer: BackgroundSync | None) -> GapWatcher:
    """The worker's watch for gaps; the background sync (when there is one) fills what it finds."""
    assert settings.tuya_access_id is not None
    return GapWatcher(
        engine,
        subscription_name(settings.tuya_access_id),
        metrics,
        retention=timedelta(seconds=settings.tuya_message_retention),
        margin=timedelta(seconds=settings.gap_margin),
        on_gap=syncer.backfill_gap if syncer else lambda _gap_id: None,
    )


def writer_config(settings: Settings, rule_set: RuleSet, dialect: str) -> WriterConfig:
    """What the worker starts its writer process with: its settings for committing, its rules, its log level and,
    when it logs to a file (the demo's log), that file."""
    root = logging.getLogger()
    files = [handler.baseFilename for handler in root.handlers if isinstance(handler, logging.FileHandler)]
    return WriterConfig(
        settings.database_url,
        rule_set,
        settings.commit_max_messages,
        settings.commit_wait_ms / 1000,
        settings.writer_in_flight,
        settle_every(settings.history_settle_values, dialect),
        root.getEffectiveLevel(),
        files[0] if files else None,
    )


def worker(
    settings: Settings,
    engine: Engine,
    metrics: WorkerMetrics,
    rule_set: RuleSet,
    fleet: CatalogRef | None = None,
    observers: Sequence[Observer] = (),
) -> Runner:
    """The worker of ``tuya-archiver run`` (and of the demo), its commits in a writer process unless WRITER_PROCESS is
    off; ``observers``: the background sync and the gap watch."""
    source = pulsar_source(settings)
    fleet = fleet or catalog(engine)
    if not settings.writer_process:
        return Runner(
            source,
            pipeline(settings, engine, rule_set, fleet),
            metrics,
            idle_reconnect_s=settings.tuya_idle_reconnect,
            observers=observers,
            full_batch=settings.batch_size,
        )
    config = writer_config(settings, rule_set, engine.dialect.name)
    # This process only prepares batches (decode, name DP ids, build rows); the writer process commits them.
    preparing = Pipeline(MessageDecoder(settings.access_key), ArchiveStore(engine), catalog=fleet.get)
    return PipelinedRunner(
        source,
        preparing,
        WriterProcess(config),
        metrics,
        in_flight=settings.writer_in_flight,
        catalog_generation=lambda: fleet.generation,
        idle_reconnect_s=settings.tuya_idle_reconnect,
        observers=observers,
        full_batch=settings.batch_size,
    )
