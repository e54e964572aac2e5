"""``tuya-archiver sync``: devices, products' data points and users from the OpenAPI into the archive.

Owns the subcommand's arguments, its live progress and its summary; the sync itself is
:class:`~streams.fleet.sync.FleetSync`. Exit status 0 when the devices could be listed, 1 when every device-list
path was refused, the listing stopped early (the day's quota) or Tuya failed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.live import Live
from rich.text import Text

from streams import wiring
from streams.cli.arguments import device_id
from streams.errors import TransientError
from streams.fleet.report import SyncReport
from streams.fleet.sync import FleetSync
from streams.settings import Settings
from streams.tuya.api_errors import TuyaApiError
from streams.tuya.openapi import OpenApiClient

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sync",
        help="devices, products' data points and users from the OpenAPI into the archive",
        description="List the project's devices, fetch each product's data points once, list the app's users, "
        "and fill the latest values of devices that never reported, from Tuya's OpenAPI into the archive.",
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        type=device_id,
        metavar="ID",
        help="only this device's details (and its product's data points if unknown); repeatable",
    )
    parser.set_defaults(handler=run_sync)


def progress_line(report: SyncReport) -> Text:
    """One line of counts while a sync runs."""
    return Text(
        f"devices {report.devices_listed:,} listed ({report.devices_new:,} new, {report.devices_changed:,} updated) · "
        f"specifications {report.specifications:,}/{report.products:,} · "
        f"users {report.users_new + report.users_changed:,} · API values {report.states_filled:,}"
    )


def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    settings.require("tuya_access_id", "tuya_access_key")
    client = OpenApiClient.from_settings(settings)
    engine = wiring.archive_engine(settings)
    console = Console(stderr=True)
    try:
        with client, _live(console) as show:
            sync = FleetSync(engine, client, schema=settings.tuya_app_schema, on_progress=show)
            report = sync.sync_devices(args.device) if args.device else sync.run()
    except (TuyaApiError, TransientError) as exc:
        print(f"tuya-archiver sync: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    for line in report.summary_lines():
        print(line)
    # --device: each device asked for must have been read; a full sync: some device-list family must have answered
    failed = report.stopped is not None or (bool(report.problems) if args.device else report.family is None)
    return 1 if failed else 0


@contextlib.contextmanager
def _live(console: Console) -> Iterator[Callable[[SyncReport], None]]:
    """A progress callback: a live line on a terminal, nothing otherwise (the summary follows either way)."""
    if not console.is_terminal:
        yield lambda _report: None
        return
    with Live(Text("starting…"), console=console, refresh_per_second=4, transient=True) as live:
        yield lambda report: live.update(progress_line(report))
