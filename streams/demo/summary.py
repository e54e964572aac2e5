"""The demo's closing report: what the archive holds, the outage and its backfill (``--outage``), what the rules
did, how fast it went, how to look further.

Owns the layout (rich tables on the given console) and the wording. The figures are read from the archive through
:mod:`streams.demo.archive` and from the :class:`~streams.demo.run.DemoResult`; nothing here writes anything.
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from sqlalchemy.engine import Engine

from models.tables import DeviceEvent, DeviceStatus
from streams.demo import archive
from streams.demo.database import display_url, sqlite_path
from streams.demo.outage import OutageReport
from streams.demo.run import DemoResult
from streams.demo.scenario import DOOR, LIGHT
from streams.demo.services import DEMO_RULES, display_path
from streams.sim import PRODUCTS
from streams.store.engine import make_engine

__all__ = ["print_summary"]

_PRODUCT_KINDS = {product.product_key: product.kind for product in (*PRODUCTS, LIGHT, DOOR)}
_MAX_ACTION_ROWS = 12
#: What Tuya's device logs hold of the simulated kinds: data-point reports, online and offline (SPEC.md §10.3).
_LOGGED_KINDS = ("status", "devicePropertyMessage", "online", "offline")


def print_summary(console: Console, result: DemoResult) -> None:
    """Everything after the live display (see the module docstring)."""
    console.print()
    engine = make_engine(result.options.database_url)
    try:
        with engine.connect() as connection:
            figures = archive.figures(connection)
            commands = archive.command_rows(connection)
            gaps = archive.gap_rows(connection)
            sources = archive.by_source(connection, DeviceStatus), archive.by_source(connection, DeviceEvent)
        _archive_section(console, result, figures)
        if result.outage is not None:
            _outage_section(console, result.outage, gaps, sources)
        _rules_section(console, result, commands)
        _throughput_section(console, result)
        _examples_section(console, engine)
    finally:
        engine.dispose()
    _next_steps(console, result)


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _counts(pairs: Iterable[tuple[str, int]]) -> str:
    return ", ".join(f"{label} {count:,}" for label, count in pairs) or "none"


def _archive_section(console: Console, result: DemoResult, figures: archive.ArchiveFigures) -> None:
    console.rule("[bold]What the archive holds")
    if result.interrupted:
        console.print("[yellow]Interrupted with Ctrl-C: this is what was committed until then.")
    elif not result.settled:
        console.print("[yellow]The worker had not caught up with everything within the settle timeout.")
    products = [(_PRODUCT_KINDS.get(key, key), n) for key, n in figures.by_product]
    where = display_url(result.options.database_url)
    console.print(
        f"{figures.messages:,} messages and {figures.dead_letters:,} dead letters in {where}: "
        f"{figures.devices:,} devices ({_counts(products)}), {figures.users:,} users, "
        f"{figures.status_values:,} status values, {figures.device_events:,} device events."
    )
    fleet = figures.fleet
    console.print(
        f"From the OpenAPI (the emulator), before the first message: {fleet.devices:,} devices with names and "
        f"categories ({_counts(fleet.by_category)}), {fleet.data_points:,} data points of {fleet.products:,} products "
        f"(types, units, scales), {fleet.users:,} users; {fleet.calls:,} calls."
    )
    console.print(f"Ciphers: {_counts(figures.by_cipher)}.")
    kinds = _table("Messages by kind", "protocol", "kind", "messages")
    for protocol, kind, count in figures.by_kind:
        kinds.add_row(str(protocol), kind, f"{count:,}")
    console.print(kinds)
    dropped = result.outage.dropped_kinds if result.outage is not None else Counter()
    reached = result.kinds - dropped
    corrupt = sorted((kind.removeprefix("corrupt:"), n) for kind, n in reached.items() if kind.startswith("corrupt:"))
    dead = _table("Dead letters by reason", "error_kind", "messages")
    for kind, count in figures.dead_by_kind:
        dead.add_row(kind, f"{count:,}")
    console.print(dead)
    lost = sum(n for kind, n in dropped.items() if kind.startswith("corrupt:"))
    besides = f" (and {lost:,} dropped in the outage)" if lost else ""
    console.print(f"Broken on purpose by the simulator: {_counts(corrupt)}{besides}.")


def _clock_time(moment: datetime) -> str:
    """Hours to milliseconds, UTC (SQLite gives the archive's times back without their zone, which is UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]


def _outage_section(
    console: Console,
    outage: OutageReport,
    gaps: Sequence[archive.GapRow],
    sources: tuple[dict[str, int], dict[str, int]],
) -> None:
    console.rule("[bold]The outage and its backfill")
    if outage.skipped is not None or outage.stopped_at is None:
        console.print(f"[yellow]Outage: {outage.skipped or 'the demo ended before it was due'}.")
        if outage.stopped_at is None:
            return
    dropped = (
        f"{outage.dropped:,} messages published meanwhile were dropped, as Tuya deletes what nobody acknowledged "
        f"within its retention (2 hours; the demo shortens it to {outage.retention_s:g} s)"
    )
    stopped = f"The worker stopped consuming at {_clock_time(outage.stopped_at)} UTC"
    if outage.resumed_at is None:
        console.print(f"{stopped}, and the demo ended before it consumed again; {dropped}.")
        return
    seconds = (outage.resumed_at - outage.stopped_at).total_seconds()
    console.print(f"{stopped} for {seconds:.1f} s; {dropped}.{_found(gaps)}")
    _gaps(console, gaps)
    _sources(console, outage, *sources)


def _found(gaps: Sequence[archive.GapRow]) -> str:
    """What the worker did about the stretch it missed, as far as the gaps' statuses say (none: nothing)."""
    if not gaps:
        return ""
    statuses = {gap.status for gap in gaps}
    if statuses == {"filled"}:
        backfill = "its background sync backfilled it from the device logs"
    elif statuses <= {"filled", "partly_filled"}:
        backfill = "its background sync backfilled what the device logs held (why not all: below)"
    else:
        backfill = "its background sync had not filled it from the device logs when the demo ended (the status below)"
    return (
        " When it consumed again it found the gap (which ends a retention earlier: Tuya still had what came later), "
        f"and {backfill}."
    )


def _gaps(console: Console, gaps: Sequence[archive.GapRow]) -> None:
    table = _table("Gaps (table gaps)", "gap", "from (UTC)", "to", "length", "status", "rows added", "OpenAPI calls")
    for gap in gaps:
        length = f"{(gap.ended_at - gap.started_at).total_seconds():.1f} s"
        status, rows, calls = gap.status, f"{gap.rows_added:,}", f"{gap.calls:,}"
        table.add_row(str(gap.id), _clock_time(gap.started_at), _clock_time(gap.ended_at), length, status, rows, calls)
    console.print(table)
    for gap in gaps:
        if gap.reason:
            console.print(f"[yellow]Gap {gap.id} is not filled completely: {gap.reason}.")
    if not gaps:
        console.print("[yellow]No gap was recorded: the worker did not find the stretch it missed.")


def _sources(console: Console, outage: OutageReport, values: dict[str, int], events: dict[str, int]) -> None:
    reported = len({value[:3] for value in outage.lost_values})
    console.print(
        f"Status values: {values.get('stream', 0):,} from the stream, {values.get('log', 0):,} from the device logs "
        f"(the devices reported {reported:,} while the worker was stopped). Device events: "
        f"{events.get('stream', 0):,} from the stream, {events.get('log', 0):,} online/offline from the device "
        f"logs ({len(outage.lost_events):,} while it was stopped). The rules saw none of the logs' rows: a "
        f"backfilled value is history, not news."
    )
    unlogged = sorted(
        (kind, n) for kind, n in outage.dropped_kinds.items() if kind not in _LOGGED_KINDS and ":" not in kind
    )
    if unlogged:
        console.print(f"Not in Tuya's device logs, so gone with the dropped messages: {_counts(unlogged)}.")


def _describe(payload: Any) -> str:
    if isinstance(payload, list):
        return ", ".join(f"{item.get('code')}={json.dumps(item.get('value'))}" for item in payload)
    if isinstance(payload, dict) and "url" in payload:
        path = urlsplit(str(payload["url"])).path
        return f"POST {path} {json.dumps(payload.get('body'), ensure_ascii=False)}"
    if isinstance(payload, dict) and "message" in payload:
        return str(payload["message"])
    return json.dumps(payload, ensure_ascii=False)


def _rules_section(console: Console, result: DemoResult, commands: Sequence[archive.CommandRow]) -> None:
    console.rule("[bold]What the rules did")
    console.print(f"Rules: {display_path(DEMO_RULES)} (the example rules, with for: durations of seconds).")
    accepted = {recorded.tid for recorded in result.accepted}
    sent = _table("Tuya commands (table commands)", "rule", "device", "commands", "status", "OpenAPI tid")
    tuya = [row for row in commands if row.action == "tuya.send_command"]
    for row in tuya[:_MAX_ACTION_ROWS]:
        check = f"{row.tuya_tid[:12]}… ✓" if row.tuya_tid in accepted else ""
        sent.add_row(row.rule_id, _device(result, row), _describe(row.commands), row.status, check)
    console.print(sent)
    if len(tuya) > _MAX_ACTION_ROWS:
        console.print(f"… and {len(tuya) - _MAX_ACTION_ROWS} more.")
    console.print(
        f"The OpenAPI emulator accepted {len(result.accepted)} commands, each signed correctly (a bad signature is "
        f"answered with code 1004: {result.signature_refusals} such answers); ✓: its tid is the one stored."
    )
    _webhooks_and_logs(console, result, commands)


def _device(result: DemoResult, row: archive.CommandRow) -> str:
    return result.rules.alias_of(row.device_id) or row.device_name or row.device_id


def _webhooks_and_logs(console: Console, result: DemoResult, commands: Sequence[archive.CommandRow]) -> None:
    hooks = [row for row in commands if row.action == "webhook"]
    named = sorted({_device(result, row) for row in hooks if result.rules.alias_of(row.device_id)})
    others = sum(1 for row in hooks if not result.rules.alias_of(row.device_id))
    by_status = Counter(f"{row.rule_id} {row.status}" for row in hooks)
    console.print(
        f"Webhooks: {_counts(sorted(by_status.items()))}; for {', '.join([*named, f'{others} fleet devices'])}. "
        f"The receiver got {len(result.webhooks)}."
    )
    logs = Counter(row.rule_id for row in commands if row.action == "log")
    console.print(f"Log actions: {_counts(sorted(logs.items()))}.")


def _throughput_section(console: Console, result: DemoResult) -> None:
    console.rule("[bold]Throughput")
    report = result.report
    if report is not None:
        lost = f", {report.failed:,} failed" if report.failed else ", every one acknowledged by the broker"
        held = f", {result.outage.held_s:.1f} s of it held still at the outage's edges" if result.outage else ""
        console.print(
            f"Published {report.count:,} messages in {report.seconds:.1f} s ({report.rate:,.0f}/s{held}){lost}."
        )
    if result.commits:
        mean_ms = 1000 * result.commit_seconds / result.commits
        console.print(
            f"The worker stored them in {result.commits:,} transactions ({mean_ms:.1f} ms each on average); "
            f"push → commit lag at most {result.max_lag_s:.1f} s. Whole demo: {result.seconds:.1f} s."
        )


def _examples_section(console: Console, engine: Engine) -> None:
    console.rule("[bold]Ask the archive")
    with engine.connect() as connection:
        for query in archive.EXAMPLE_QUERIES:
            columns, rows = archive.run_example(connection, query)
            console.print(f"[bold]{query.title}")
            console.print(Syntax(query.sql, "sql", theme="ansi_dark", background_color="default", word_wrap=True))
            table = Table(*columns, show_edge=False, pad_edge=False)
            for row in rows:
                table.add_row(*("" if value is None else str(value) for value in row))
            console.print(table)
            console.print()


def _next_steps(console: Console, result: DemoResult) -> None:
    console.rule("[bold]Try next")
    url = shlex.quote(display_url(result.options.database_url))
    console.print(f'DATABASE_URL={url} tuya-archiver history "Greenhouse sensor" --code temp_current', highlight=False)
    console.print(f"DATABASE_URL={url} tuya-archiver devices", highlight=False)
    console.print(f"DATABASE_URL={url} tuya-archiver serve    # the archive in a browser", highlight=False)
    path = sqlite_path(result.options.database_url)
    if path is not None:
        console.print(f"sqlite3 {shlex.quote(str(path))} '.tables'", highlight=False)
