"""``tuya-archiver gaps`` and ``backfill``: the stretches the stream did not cover, and filling them from device logs.

Owns the two subcommands' arguments, the backfill's live progress and the summaries; the work is
:class:`~streams.backfill.job.Backfill`'s. ``backfill`` exits 0 when the gap is filled, 1 when it is only partly
filled (the summary says why) or Tuya failed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from rich.console import Console
from rich.live import Live
from rich.text import Text
from sqlalchemy import Row
from sqlalchemy.engine import Engine

from streams import wiring
from streams.backfill.report import BackfillReport
from streams.cli.arguments import device_id
from streams.cli.query import Cell, emit, on_archive
from streams.durations import format_duration, parse_moment
from streams.errors import TransientError
from streams.settings import Settings
from streams.store import backfill
from streams.tuya.api_errors import TuyaApiError
from streams.tuya.openapi import OpenApiClient

__all__ = ["register"]

GAP_COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "detected_at",
    "status",
    "origin",
    "rows_added",
    "calls",
    "reason",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    gaps = subparsers.add_parser("gaps", help="stretches of time the stream did not cover, and their backfill")
    gaps.add_argument("--format", choices=("table", "csv", "json"), help="default: table on a terminal, else csv")
    gaps.set_defaults(handler=run_gaps)

    parser = subparsers.add_parser(
        "backfill",
        help="fill a gap from Tuya's device logs (kept about 7 days)",
        description="Read every device's log for a gap (or a window) and store what the stream missed; resumable.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--gap", type=int, metavar="ID", help="a gap of `tuya-archiver gaps`")
    which.add_argument("--since", metavar="WHEN", help="the window from WHEN until now: 3h (ago), a date, ISO time")
    which.add_argument("--from", dest="start", metavar="WHEN", help="the window from WHEN (with --until)")
    parser.add_argument("--until", metavar="WHEN", help="the end of a --from window (default: now)")
    parser.add_argument(
        "--device", action="append", default=[], type=device_id, metavar="ID", help="only this device (repeatable)"
    )
    parser.set_defaults(handler=run_backfill)


@on_archive
def run_gaps(args: argparse.Namespace, engine: Engine) -> int:
    with engine.connect() as connection:
        rows = backfill.gaps(connection)
    table = [
        Cell("gap", 0),
        Cell("from", 1),
        Cell("to", 2),
        Cell("status", 4),
        Cell("rows added", 6),
        Cell("calls", 7),
        Cell("why not filled", 8),
    ]
    cells = [tuple(row._mapping[column] for column in GAP_COLUMNS) for row in rows]
    emit(args.format, GAP_COLUMNS, cells, title=_title(rows), table=table)
    return 0


def _title(rows: Sequence[Row[Any]]) -> str:
    open_ = sum(1 for row in rows if row.status != "filled")  # partly filled ones too
    lost = _covered([(row.started_at, row.ended_at) for row in rows])
    return f"{len(rows)} gaps ({open_} not filled yet), {format_duration(lost)} in all"


def _covered(windows: Sequence[tuple[datetime, datetime]]) -> timedelta:
    """The time the ``windows`` cover together: two requests of the same days count once."""
    total, reach = timedelta(), None
    for start, end in sorted(windows):
        if reach is not None and start < reach:
            start = reach
        if end > start:
            total += end - start
        reach = end if reach is None else max(reach, end)
    return total


def _window(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    """The window of --since or --from/--until; a usage error (exit 2) before any call when it is not one."""
    if args.until and not args.start:
        _usage("--until ends a --from window (--since runs until now, a --gap has its own)")
    try:
        if args.since:
            start, end = parse_moment(args.since, now), now
        else:
            start, end = parse_moment(args.start, now), parse_moment(args.until, now) if args.until else now
    except ValueError as exc:
        _usage(str(exc))
    if start >= now:
        _usage(f"the window starts ahead of now ({start:%Y-%m-%d %H:%M:%S} UTC): Tuya's logs hold nothing of it yet")
    end = min(end, now)  # a window reaching past now is one up to now
    if start >= end:
        _usage(f"the window's start ({start:%Y-%m-%d %H:%M:%S}) must be before its end ({end:%Y-%m-%d %H:%M:%S} UTC)")
    return start, end


def _readable_or_stop(
    engine: Engine, devices: Sequence[str], since: datetime | None, gap_id: int | None, logs_from: datetime
) -> None:
    """Some devices asked for, none of which a backfill from ``since`` (or gap ``gap_id``'s start), or from
    ``logs_from`` where Tuya's logs begin, would read (a typo, a device deleted before): a usage error before a gap is
    recorded or marked partly filled, which it would stay, counted as open, for good."""
    with engine.connect() as connection:
        if since is None:
            row = backfill.gap(connection, gap_id) if gap_id is not None else None
            if row is None:
                return  # no such gap: the backfill says so
            since = row.started_at
        asked = backfill.asked_devices(connection, devices, since, max(since, logs_from))
    if asked.readable:
        return
    said = []
    if asked.unknown:
        said.append(
            f"no device {', '.join(asked.unknown)} in the archive, or deleted before the window "
            "(`tuya-archiver sync --device ID` adds one)"
        )
    if asked.too_late:
        said.append(
            f"{', '.join(asked.too_late)}: deleted before {logs_from:%Y-%m-%d %H:%M} UTC, where Tuya's logs begin "
            "(TUYA_LOG_RETENTION): nothing of the window can be read"
        )
    _usage("; ".join(said))


def _usage(message: str) -> NoReturn:
    print(f"tuya-archiver backfill: {message}", file=sys.stderr)
    raise SystemExit(2)


def run_backfill(args: argparse.Namespace, settings: Settings) -> int:
    if args.gap is not None and args.until:
        _usage("--until ends a --from window (a --gap has its own)")
    now = datetime.now(UTC)
    window = _window(args, now) if args.gap is None else None
    logs_from = now - timedelta(seconds=settings.tuya_log_retention)
    if window is not None and window[1] <= logs_from:  # it would stay partly filled, counted as open, for good
        _usage(
            f"the window ends before {logs_from:%Y-%m-%d %H:%M} UTC, where Tuya's logs begin (TUYA_LOG_RETENTION): "
            "nothing of it can be read"
        )
    settings.require("tuya_access_id", "tuya_access_key")
    client = OpenApiClient.from_settings(settings)
    engine = wiring.archive_engine(settings)
    console = Console(stderr=True)
    try:
        with client, _live(console) as show:
            job = wiring.backfill_job(settings, engine, client, on_progress=show)
            if args.device:
                _readable_or_stop(engine, args.device, window[0] if window is not None else None, args.gap, logs_from)
            gap_id = job.request(*window) if window is not None else args.gap
            report = job.fill(gap_id, args.device)
    except LookupError as exc:
        print(f"tuya-archiver backfill: {exc.args[0]}", file=sys.stderr)
        return 2
    except (TuyaApiError, TransientError) as exc:
        print(f"tuya-archiver backfill: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    for line in report.summary_lines():
        print(line)
    return 0 if report.done_as_asked else 1


def progress_line(report: BackfillReport) -> Text:
    return Text(
        f"gap {report.gap_id}: devices {report.devices_done:,}/{report.devices:,} · rows added "
        f"{report.rows_added:,} · calls {report.calls:,} (at least {report.estimate:,} needed)"
    )


@contextlib.contextmanager
def _live(console: Console) -> Iterator[Callable[[BackfillReport], None]]:
    if not console.is_terminal:
        yield lambda _report: None
        return
    with Live(Text("starting…"), console=console, refresh_per_second=4, transient=True) as live:
        yield lambda report: live.update(progress_line(report))
