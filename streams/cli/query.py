"""``tuya-archiver devices``, ``history DEVICE`` and ``purge``: read and trim the archive on DATABASE_URL.

Owns argument parsing and output: a rich table on a terminal, plain CSV when piped, JSON Lines on request
(``--format`` overrides). The queries are in streams.store.query and streams.store.retention.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine

from streams.durations import parse_duration, parse_moment
from streams.errors import DatabaseUnavailable
from streams.settings import Settings
from streams.store.engine import ensure_at_head, make_engine, unavailable_on_failure
from streams.store.query import (
    DEVICE_COLUMNS,
    HISTORY_COLUMNS,
    DeviceNotFound,
    HistoryQuery,
    find_device,
    list_devices,
    status_history_rows,
)
from streams.store.retention import CHUNK_ROWS, POLICIES, count_older, purge_older

__all__ = ["register"]

FORMATS = ("table", "csv", "json")


class UsageError(Exception):
    """A bad option value found after parsing (it needs the clock or the database): exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list the devices in the archive")
    _add_format(devices)
    devices.set_defaults(handler=run_devices)

    history = subparsers.add_parser("history", help="status values one device reported, oldest first")
    history.add_argument("device", metavar="DEVICE", help="device id, or its name")
    history.add_argument("--code", action="append", default=[], metavar="C", help="only this code (repeatable)")
    history.add_argument("--since", metavar="WHEN", help="from this time on: 2h (ago), 2026-11-01, ISO date-time")
    history.add_argument("--until", metavar="WHEN", help="before this time (same forms as --since)")
    history.add_argument("--limit", type=int, metavar="N", help="only the newest N values")
    _add_format(history)
    history.set_defaults(handler=run_history)

    purge = subparsers.add_parser("purge", help="delete history older than a duration, in bounded chunks")
    purge.add_argument("--older-than", required=True, type=_duration, metavar="AGE", help="e.g. 90d, 12h")
    purge.add_argument(
        "--table",
        action="append",
        choices=sorted(POLICIES),
        metavar="TABLE",
        help=f"only this table (repeatable; default: all of {', '.join(POLICIES)})",
    )
    purge.add_argument("--dry-run", action="store_true", help="count what would be deleted, delete nothing")
    purge.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, metavar="N", help=argparse.SUPPRESS)
    purge.set_defaults(handler=run_purge)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, help="output format (default: table on a terminal, csv when piped)"
    )


def _on_archive(handler: Callable[[argparse.Namespace, Engine], int]) -> Callable[[argparse.Namespace, Settings], int]:
    """Run ``handler`` on the archive at DATABASE_URL, which must be at the schema's head revision."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        engine = make_engine(settings.database_url)
        try:
            ensure_at_head(engine)
            with unavailable_on_failure(f"running {args.command}"):
                return handler(args, engine)
        except DatabaseUnavailable as exc:
            print(f"tuya-archiver: {exc}", file=sys.stderr)
            return 1
        except DeviceNotFound as exc:
            print(f"tuya-archiver {args.command}: {exc}", file=sys.stderr)
            return 1
        except UsageError as exc:
            print(f"tuya-archiver {args.command}: {exc}", file=sys.stderr)
            return 2
        finally:
            engine.dispose()

    return run


@_on_archive
def run_devices(args: argparse.Namespace, engine: Engine) -> int:
    with engine.connect() as connection:
        rows = list_devices(connection)
    headers = ("device", "name", "product", "online", "last seen", "reports")
    _emit(args.format, DEVICE_COLUMNS, headers, rows, title=f"{len(rows)} devices")
    return 0


def _history_query(args: argparse.Namespace, device_id: str, now: datetime) -> HistoryQuery:
    try:
        since = parse_moment(args.since, now) if args.since else None
        until = parse_moment(args.until, now) if args.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    return HistoryQuery(device_id, tuple(args.code), since, until, args.limit)


@_on_archive
def run_history(args: argparse.Namespace, engine: Engine) -> int:
    with engine.connect() as connection:
        device_id = find_device(connection, args.device)
        rows = status_history_rows(connection, _history_query(args, device_id, datetime.now(UTC)))
    name = rows[0].device_name if rows else None
    title = f"{name or device_id} ({device_id}): {len(rows)} values"
    headers = ("time", "device", "name", "code", "value", "dp", "message")
    _emit(args.format, HISTORY_COLUMNS, headers, rows, title=title, table_columns=(0, 3, 4))
    return 0


@_on_archive
def run_purge(args: argparse.Namespace, engine: Engine) -> int:
    cutoff = datetime.now(UTC) - args.older_than
    verb = "would delete" if args.dry_run else "deleted"
    total = 0
    for table in args.table or POLICIES:
        policy = POLICIES[table]
        if args.dry_run:
            count = count_older(engine, policy, cutoff)
        else:
            count = purge_older(engine, policy, cutoff, chunk_rows=args.chunk_rows)
        total += count
        print(f"{table}: {verb} {count:,} rows")
    print(f"{verb} {total:,} rows older than {cutoff.isoformat(timespec='seconds')}")
    return 0


def _emit(
    fmt: str | None,
    columns: Sequence[str],
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str,
    table_columns: Sequence[int] | None = None,
) -> None:
    """Print ``rows``: ``table`` shows ``table_columns`` (default all) under ``headers``; csv/json use ``columns``."""
    fmt = fmt or ("table" if sys.stdout.isatty() else "csv")
    if fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, map(_json_value, row), strict=True)), ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(value) for value in row] for row in rows)
    else:
        Console().print(_rich_table(headers, rows, title, table_columns or range(len(headers))))


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str, picked: Sequence[int]) -> Table:
    table = Table(title=title, title_justify="left")
    for index in picked:
        table.add_column(headers[index], overflow="fold")
    for row in rows:
        table.add_row(*(_text(row[index], human=True) for index in picked))
    return table


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _text(value: Any, *, human: bool = False) -> str:
    """A cell: strings as they are, times in ISO 8601 (UTC), other values (JSON) as JSON text; ``human``: for a
    person (milliseconds, yes/no)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if human and isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat(" ", "milliseconds") if human else value.isoformat()
    return json.dumps(value, ensure_ascii=False)
