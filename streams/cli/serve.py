"""``tuya-archiver serve``: the read-only web view of the archive at DATABASE_URL, in the foreground.

Owns the options (``--host``, ``--port``) and the start-up order: the bind rule first (beyond loopback only with
SERVE_TOKEN; nothing is opened or bound before that check), then the archive, read-only, then the socket. The
application is streams/web/.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import timedelta

from streams.cli.arguments import port
from streams.errors import DatabaseUnavailable
from streams.settings import Settings
from streams.web.operations import RulesSource
from streams.web.security import require_token_for
from streams.web.server import listen, open_view, serve_forever, url_of

__all__ = ["register"]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8780


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="look at the archive in a browser (read-only)",
        description=(
            "Serve a read-only web view of the archive at DATABASE_URL: devices, each device's charts, operations. "
            "Every page has a JSON twin (.json). Listens on 127.0.0.1 unless --host says otherwise, which needs "
            "SERVE_TOKEN: every request must then carry it (bearer token, or the password of basic auth)."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=port, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    require_token_for(args.host, settings.serve_token)
    rules = RulesSource(settings.rules_file, settings.rules_dry_run)
    retention = timedelta(seconds=settings.tuya_message_retention)
    try:
        app, engine = open_view(
            settings.database_url, host=args.host, token=settings.serve_token, rules=rules, retention=retention
        )
    except DatabaseUnavailable as exc:
        print(f"tuya-archiver: {exc}", file=sys.stderr)
        return 1
    try:
        try:
            sock = listen(args.host, args.port)
        except OSError as exc:
            reason = exc.strerror or exc
            print(f"tuya-archiver serve: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
            return 1
        shown = settings.redacted()["database_url"]
        access = "every request needs SERVE_TOKEN" if settings.serve_token else "loopback only, no token"
        log.info("serving %s read-only on %s/ (%s)", shown, url_of(sock), access)
        serve_forever(app, sock)
    finally:
        engine.dispose()
    return 0
