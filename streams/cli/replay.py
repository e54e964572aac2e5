"""``tuya-archiver replay``: decode kept dead letters again (``--dead-letters``), or re-derive history from stored
payloads (``--messages``), on the archive at DATABASE_URL, beside a running worker.

Owns the subcommand's arguments, its live progress line (on a terminal) and its summary; the replays are
:mod:`streams.replay`. Exit status 0 when the archive could be read (what still fails is in the summary), 1 when
the database could not be used (the summary first says what was committed before), 2 for options that do not go
together or a ``--since`` it cannot read. The access key is handed to the decoder only: never printed or logged.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text
from sqlalchemy.engine import Engine

from streams import wiring
from streams.durations import parse_moment
from streams.errors import DatabaseUnavailable
from streams.replay.dead_letters import PAGE_SIZE as DEAD_LETTER_PAGE
from streams.replay.messages import PAGE_SIZE as MESSAGE_PAGE
from streams.replay.messages import MessageReplay
from streams.replay.report import DeadLetterReport, MessageReport
from streams.rules import RuleSet
from streams.settings import Settings
from streams.store.replay import Window

__all__ = ["register"]

log = logging.getLogger(__name__)

Report = DeadLetterReport | MessageReport


class UsageError(Exception):
    """Options that do not go together, or a --since that is not a time: exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="decode dead letters again, or re-derive history from stored payloads",
        description="--dead-letters: decode the kept raw payloads of unresolved dead letters again with today's "
        "TUYA_ACCESS_KEY and code; what decodes now is stored exactly once, as the worker stores, and its dead "
        "letter is marked resolved. --messages: derive device_status, device_events, user_events, devices, "
        "device_state and users again from the stored decrypted payloads with today's normalisation (after a fix). "
        "Both run in short transactions beside a running worker, and running them twice changes nothing more.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--dead-letters", action="store_true", help="decode unresolved dead letters again")
    what.add_argument("--messages", action="store_true", help="re-derive history from stored messages")
    parser.add_argument(
        "--since", metavar="WHEN", help="only rows received from this time on: 2h (ago), 2026-11-01, ISO date-time"
    )
    parser.add_argument(
        "--error-kind",
        action="append",
        default=[],
        metavar="KIND",
        help="with --dead-letters: only dead letters of this error kind, e.g. gcm_tag_mismatch (repeatable)",
    )
    parser.add_argument(
        "--rules",
        action="store_true",
        help="with --dead-letters: run RULES_FILE's rules on what now decodes, as the worker would "
        "(default: store without firing anything)",
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    parser.add_argument("--page-size", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_replay)


def _window(args: argparse.Namespace, now: datetime) -> Window:
    if args.messages and (args.error_kind or args.rules):
        raise UsageError("--error-kind and --rules go with --dead-letters only")
    if args.page_size is not None and args.page_size < 1:
        raise UsageError("--page-size must be at least 1")
    try:
        since = parse_moment(args.since, now) if args.since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    return Window(until=now, since=since, error_kinds=tuple(dict.fromkeys(args.error_kind)))


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    try:
        window = _window(args, datetime.now(UTC))
    except UsageError as exc:
        print(f"tuya-archiver replay: {exc}", file=sys.stderr)
        return 2
    if args.dead_letters:
        settings.require("tuya_access_key")  # before the database: a missing key is a configuration error
    rule_set = wiring.rules(settings) if args.dead_letters and args.rules else None
    if rule_set is not None and not rule_set.rules:
        log.warning("--rules: RULES_FILE has no rules, so nothing can fire")
    report: Report | None = None
    try:
        engine = wiring.archive_engine(settings)
        try:
            report = _new_report(args, window)
            with _live(Console(stderr=True)) as show:
                _replay(args, settings, engine, window, report, show, rule_set)
        finally:
            engine.dispose()
    except DatabaseUnavailable as exc:
        if report is not None and report.read:
            _print_summary(report, args)  # what the pages before the failure committed
        print(f"tuya-archiver replay: {exc}", file=sys.stderr)
        return 1
    _print_summary(report, args)
    return 0


def _new_report(args: argparse.Namespace, window: Window) -> Report:
    if args.dead_letters:
        return DeadLetterReport(dry_run=args.dry_run, since=window.since, error_kinds=window.error_kinds)
    return MessageReport(dry_run=args.dry_run, since=window.since)


def _replay(
    args: argparse.Namespace,
    settings: Settings,
    engine: Engine,
    window: Window,
    report: Report,
    show: Callable[[Any], None],
    rule_set: RuleSet | None,
) -> None:
    fleet = wiring.catalog(engine)
    if isinstance(report, MessageReport):
        MessageReplay(engine, catalog=fleet.get, page_size=args.page_size or MESSAGE_PAGE).run(window, report, show)
        return
    rules = rule_set if not args.dry_run else None
    replay = wiring.dead_letter_replay(settings, engine, fleet, rules, page_size=args.page_size or DEAD_LETTER_PAGE)
    replay.run(window, report, show)


def _print_summary(report: Report | None, args: argparse.Namespace) -> None:
    if report is None:
        return
    lines = report.summary_lines(rules=args.rules) if isinstance(report, DeadLetterReport) else report.summary_lines()
    if args.dry_run:
        lines.insert(0, "dry run: nothing was changed")
    for line in lines:
        print(line)


@contextlib.contextmanager
def _live(console: Console) -> Iterator[Callable[[Report], None]]:
    """A progress callback: a live line on a terminal, nothing otherwise (the summary follows either way)."""
    if not console.is_terminal:
        yield lambda _report: None
        return
    with Live(Text("starting…"), console=console, refresh_per_second=4, transient=True) as live:
        yield lambda report: live.update(Text(report.progress_text()))
