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

from streams.errors import ConfigError
from streams.settings import load_settings

__all__ = ["main"]

# Order is the order of ``tuya-archiver --help``.
_SUBCOMMAND_MODULES = (
    "streams.cli.run",
    "streams.cli.decode",
    "streams.cli.db",
    "streams.cli.query",
    "streams.cli.sync",
    "streams.cli.replay",
    "streams.cli.backfill",
    "streams.cli.rules",
    "streams.cli.serve",
    "streams.cli.api",
    "streams.cli.sim",
    "streams.cli.demo",
    "streams.cli.scale",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tuya-archiver",
        description="Archive Tuya Cloud's message stream in SQL and react to it with YAML rules.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit
        return 0
