"""``tuya-archiver demo``: the whole product on one machine, with no Tuya account (``make demo``).

Owns the flags, the start banner, where the logs go while the live display runs (a file next to the archive; only
warnings reach the terminal) and the exit status. The demo itself is :func:`streams.demo.run_demo`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from streams.cli.arguments import positive_int, positive_number
from streams.demo import (
    DEMO_RETENTION_S,
    DEMO_RULES,
    MIN_OUTAGE_S,
    DemoError,
    DemoOptions,
    Endpoints,
    display_path,
    display_url,
    print_summary,
    run_demo,
    sqlite_path,
)
from streams.errors import ConfigError
from streams.settings import Settings

__all__ = ["register"]


_DEFAULT_OUTAGE_S = 20.0


def _outage_seconds(text: str) -> float:
    value = float(text)
    if value < MIN_OUTAGE_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_OUTAGE_S:.0f} seconds, not {text}")
    return value


def _database_url(text: str) -> str:
    """``--db``: a database URL, whose SQLite file's folder exists (the demo writes its log beside it)."""
    try:
        path = sqlite_path(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("DATABASE_URL: ")) from None
    if path is not None and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {path.parent} does not exist")
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole product on this machine: simulated fleet, embedded broker, worker, rules, emulator",
        description="Start an embedded Pulsar broker and a Tuya OpenAPI emulator on loopback, publish a simulated "
        "fleet's encrypted traffic, archive it with the real worker into SQLite while the demo rules fire, then "
        "stop everything and print what happened. No Tuya account needed; Ctrl-C stops cleanly at any time.",
    )
    parser.add_argument("--devices", type=positive_int, default=200, metavar="N", help="fleet size (default 200)")
    parser.add_argument(
        "--minutes",
        type=positive_number,
        default=1.0,
        metavar="M",
        help="how long to publish (default 1; the script needs 12 s)",
    )
    parser.add_argument(
        "--rate", type=positive_number, default=500.0, metavar="R", help="messages per second (default 500)"
    )
    parser.add_argument(
        "--db",
        type=_database_url,
        default="sqlite:///demo.db",
        metavar="URL",
        help="the archive, replaced if it is an SQLite file (default sqlite:///demo.db)",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="keep the fleet publishing and the worker archiving until Ctrl-C"
    )
    parser.add_argument(
        "--outage",
        nargs="?",
        type=_outage_seconds,
        const=_DEFAULT_OUTAGE_S,
        default=None,
        metavar="SECONDS",
        help=f"a third of the way in, stop the worker for SECONDS (default {_DEFAULT_OUTAGE_S:.0f}, at least "
        f"{MIN_OUTAGE_S:.0f}) while the messages it misses are dropped as Tuya drops them after its retention "
        f"(shortened to {DEMO_RETENTION_S:g} s); then the worker finds the gap and backfills it from the emulated "
        "device logs",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The demo with the flags' options; the environment's settings are not used (the demo brings its own)."""
    console = Console(highlight=False)
    options = DemoOptions(
        devices=args.devices,
        duration_s=args.minutes * 60,
        rate=args.rate,
        database_url=args.db,
        keep_running=args.keep_running,
        outage_s=args.outage,
    )
    log_path = _log_path(options.database_url)
    try:
        with _logs_to(log_path, console):
            result = run_demo(
                options, console, on_start=lambda endpoints: _banner(console, options, endpoints, log_path)
            )
    except DemoError as exc:
        console.print(f"[red]tuya-archiver demo: {exc}[/] (see {log_path})")
        return 1
    print_summary(console, result)
    return 130 if result.interrupted and not options.keep_running else 0


def _log_path(database_url: str) -> Path:
    path = sqlite_path(database_url)  # --db was checked
    return path.with_suffix(".log") if path is not None else Path("tuya-archiver-demo.log")


@contextlib.contextmanager
def _logs_to(path: Path, console: Console) -> Iterator[None]:
    """Send the log records to ``path`` (the program's warnings also to the console, above the live display)."""
    root = logging.getLogger()
    previous = root.handlers[:]
    to_file = logging.FileHandler(path, mode="w", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    to_console = RichHandler(console=console, level=logging.WARNING, show_path=False)
    to_console.addFilter(logging.Filter("streams"))  # the broker clients' own complaints stay in the file
    root.handlers[:] = [to_file, to_console]
    try:
        yield
    finally:
        root.handlers[:] = previous
        to_file.close()


def _banner(console: Console, options: DemoOptions, endpoints: Endpoints, log_path: Path) -> None:
    rules = display_path(DEMO_RULES)
    until = "until Ctrl-C" if options.keep_running else f"for {options.duration_s:.0f} s"
    console.print(
        f"[bold]tuya-archiver demo[/]: {options.devices} simulated devices {until} at {options.rate:.0f} messages/s, "
        f"archived by the real worker into {display_url(options.database_url)}"
    )
    console.print(f"  broker    {endpoints.broker} (pulsar-lite), topic {endpoints.topic}")
    console.print(f"  OpenAPI   {endpoints.openapi} (the emulator: checks every signature, records every command)")
    console.print(f"  webhooks  {endpoints.webhooks} (the demo's receiver)")
    if endpoints.web is not None:
        console.print(f"  web       {endpoints.web}/ (tuya-archiver serve on the demo's archive: open it in a browser)")
    console.print(f"  rules     {rules}: the example rules with for: durations of seconds, so they fire in the demo")
    if options.outage_s is not None:
        console.print(
            f"  outage    at {options.duration_s / 3:.0f} s the worker stops for {options.outage_s:.0f} s; Tuya "
            f"deletes unacknowledged messages after 2 hours, the demo after {DEMO_RETENTION_S:g} s, so the stretch "
            "is a gap to backfill from the device logs"
        )
    console.print(f"  log       {log_path}")
