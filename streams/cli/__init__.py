"""The ``tuya-archiver`` command: parse arguments, build settings, configure logging, call one subcommand.

Owns argument parsing and exit codes only. Each subcommand lives in a sibling module with
``register(subparsers)``, which adds its parser and sets ``handler(args, settings) -> int``.
A ConfigError stops the program with one line naming the variable (no traceback), exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from streams.errors import ConfigError, DatabaseUnavailable
from streams.settings import load_settings

__all__ = ["main"]

# Each command's module (a module may own several), in the order of ``tuya-archiver --help``. A command imports only
# its own module: every module's imports would otherwise stay resident in the worker for its whole life (Alembic,
# the web server, the emulator: 13 MB of the memory benchmark's 300, which the batches in flight need more).
_COMMANDS = {
    "run": "streams.cli.run",
    "decode": "streams.cli.decode",
    "db": "streams.cli.db",
    "devices": "streams.cli.query",
    "history": "streams.cli.query",
    "purge": "streams.cli.query",
    "sync": "streams.cli.sync",
    "replay": "streams.cli.replay",
    "gaps": "streams.cli.backfill",
    "backfill": "streams.cli.backfill",
    "rules": "streams.cli.rules",
    "serve": "streams.cli.serve",
    "command": "streams.cli.api",
    "api": "streams.cli.api",
    "emulate-api": "streams.cli.api",
    "simulate": "streams.cli.sim",
    "demo": "streams.cli.demo",
    "bridge": "streams.cli.scale",
    "process": "streams.cli.scale",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of the module that owns the command ``argv`` names, if it names one."""
    parser = argparse.ArgumentParser(
        prog="tuya-archiver",
        description="Archive Tuya Cloud's message stream in SQL and react to it with YAML rules.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    named = next((arg for arg in argv or () if not arg.startswith("-")), None)  # no global option takes a value
    modules = [_COMMANDS[named]] if named in _COMMANDS else _COMMANDS.values()
    for name in dict.fromkeys(modules):
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # one line per HTTP request is noise in a command's output; -v shows it
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        return int(args.handler(args, settings) or 0)
    except ConfigError as exc:
        print(f"tuya-archiver: configuration error: {exc}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as exc:  # at a start (`run`'s loop retries it): the archive cannot be reached
        print(f"tuya-archiver: {exc} (DATABASE_URL)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit
        return 0
