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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Connection, Engine

from streams.cli.arguments import positive_int
from streams.durations import parse_duration, parse_moment
from streams.errors import DatabaseUnavailable
from streams.settings import Settings
from streams.store.engine import ensure_at_head, make_engine, unavailable_on_failure
from streams.store.query import (
    DEVICE_COLUMNS,
    HISTORY_COLUMNS,
    LATEST_COLUMNS,
    DeviceNotFound,
    HistoryQuery,
    device_facts,
    find_device,
    latest_values,
    list_devices,
    status_history_rows,
)
from streams.store.retention import CHUNK_ROWS, POLICIES, count_older, purge_older

__all__ = ["Cell", "emit", "on_archive", "register"]

FORMATS = ("table", "csv", "json")


class UsageError(Exception):
    """A bad option value found after parsing (it needs the clock or the database): exit status 2."""


def register(subparsers: argparse._SubParsersAction) -> None:
    devices = subparsers.add_parser("devices", help="list the devices in the archive, or one device's latest values")
    devices.add_argument("device", nargs="?", metavar="DEVICE", help="one device (id or name): its latest values")
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
    purge.add_argument("--chunk-rows", type=positive_int, default=CHUNK_ROWS, metavar="N", help=argparse.SUPPRESS)
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


def on_archive(handler: Callable[[argparse.Namespace, Engine], int]) -> Callable[[argparse.Namespace, Settings], int]:
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


@on_archive
def run_devices(args: argparse.Namespace, engine: Engine) -> int:
    if args.device:
        return _one_device(args, engine)
    with engine.connect() as connection:
        rows = list_devices(connection)
    table = [
        Cell("device", 0),
        Cell("name", 1),
        Cell("category", 2),
        Cell("product", 4, fallback=3),
        Cell("online", 5),
        Cell("last seen", 6),
        Cell("reports", 7),
    ]
    emit(args.format, DEVICE_COLUMNS, rows, title=f"{len(rows)} devices", table=table)
    return 0


def _one_device(args: argparse.Namespace, engine: Engine) -> int:
    with engine.connect() as connection:
        device_id = find_device(connection, args.device)
        rows = latest_values(connection, device_id)
        name = _name(connection, device_id)
    table = [Cell("code", 2), Cell("value", 4, unit=5), Cell("time", 6), Cell("from", 7)]
    title = f"{_label(name, device_id)}: latest value of {len(rows)} codes"
    emit(args.format, LATEST_COLUMNS, rows, title=title, table=table)
    return 0


def _name(connection: Connection, device_id: str) -> str | None:
    """The device's name for a title, also when no row of the output has it (nothing matched)."""
    facts = device_facts(connection, device_id)
    return facts.name if facts is not None else None


def _label(name: str | None, device_id: str) -> str:
    return f"{name} ({device_id})" if name else device_id


def _history_query(args: argparse.Namespace, device_id: str, now: datetime) -> HistoryQuery:
    try:
        since = parse_moment(args.since, now) if args.since else None
        until = parse_moment(args.until, now) if args.until else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if since is not None and until is not None and since >= until:
        raise UsageError(f"--since ({since:%Y-%m-%d %H:%M:%S}) must be before --until ({until:%Y-%m-%d %H:%M:%S} UTC)")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    return HistoryQuery(device_id, tuple(args.code), since, until, args.limit)


@on_archive
def run_history(args: argparse.Namespace, engine: Engine) -> int:
    with engine.connect() as connection:
        device_id = find_device(connection, args.device)
        rows = status_history_rows(connection, _history_query(args, device_id, datetime.now(UTC)))
        name = _name(connection, device_id)
    title = f"{_label(name, device_id)}: {len(rows)} values"
    table = [Cell("time", 0), Cell("code", 3), Cell("value", 5, unit=6)]
    emit(args.format, HISTORY_COLUMNS, rows, title=title, table=table)
    return 0


@on_archive
def run_purge(args: argparse.Namespace, engine: Engine) -> int:
    try:
        cutoff = datetime.now(UTC) - args.older_than
    except OverflowError:
        raise UsageError("--older-than reaches before year 1") from None
    verb = "would delete" if args.dry_run else "deleted"
    total = 0
    for table in args.table or POLICIES:
        policy = POLICIES[table]
        if policy.bounded(cutoff) < cutoff:
            # only messages keep some (REDELIVERY_MEMORY, a day)
            print(f"{table}: those of the last day are kept (they tell a redelivery from news, see KEEP_MESSAGES)")
        if args.dry_run:
            count = count_older(engine, policy, cutoff)
        else:
            count = purge_older(engine, policy, cutoff, chunk_rows=args.chunk_rows)
        total += count
        print(f"{table}: {verb} {count:,} rows")
    print(f"{verb} {total:,} rows older than {cutoff.isoformat(timespec='seconds')}")
    return 0


@dataclass(frozen=True, slots=True)
class Cell:
    """A column of the terminal table: row[index] (else row[fallback] when empty), with row[unit] appended."""

    header: str
    index: int
    unit: int | None = None
    fallback: int | None = None

    def text(self, row: Sequence[Any]) -> str:
        value = row[self.index]
        if value in (None, "") and self.fallback is not None:
            value = row[self.fallback]
        shown = _text(value, human=True)
        unit = row[self.unit] if self.unit is not None else None
        return f"{shown} {unit}" if unit and shown else shown


def emit(
    fmt: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str, table: Sequence[Cell]
) -> None:
    """Print ``rows``: a terminal table of ``table``'s cells; csv/json carry every one of ``columns``."""
    fmt = fmt or ("table" if sys.stdout.isatty() else "csv")
    if fmt == "json":
        for row in rows:
            print(json.dumps(dict(zip(columns, map(_json_value, row), strict=True)), ensure_ascii=False))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(value) for value in row] for row in rows)
    else:
        Console().print(_rich_table(rows, title, table))


def _rich_table(rows: Sequence[Sequence[Any]], title: str, cells: Sequence[Cell]) -> Table:
    table = Table(title=title, title_justify="left")
    for cell in cells:
        table.add_column(cell.header, overflow="fold")
    for row in rows:
        table.add_row(*(cell.text(row) for cell in cells))
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
