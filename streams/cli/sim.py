"""``tuya-archiver simulate``: publish simulated, encrypted Tuya traffic to a Pulsar-protocol broker.

Owns the subcommand's arguments and its summary line. The messages come from :class:`streams.sim.Fleet`, encrypted
with the project's Access Secret (TUYA_ACCESS_KEY) so the worker can decrypt them; the topic defaults to the one the
worker consumes. Exit status 1 if any message failed to publish.
"""

from __future__ import annotations

import argparse
import sys
import time

import pulsar

from streams.cli.arguments import positive_int, positive_number
from streams.settings import Settings
from streams.sim.fleet import MAX_ITEMS, Fleet
from streams.sim.publisher import publish

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="publish simulated encrypted Tuya traffic to a broker (for the demo, tests and benchmarks)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--url", required=True, help="broker URL, e.g. pulsar://127.0.0.1:6650")
    parser.add_argument(
        "--topic", help="topic (default: persistent://{TUYA_ACCESS_ID}/out/{TUYA_MQ_ENV}, what the worker consumes)"
    )
    parser.add_argument("--devices", type=positive_int, default=50, help="fleet size (default: 50)")
    parser.add_argument("--count", type=positive_int, default=1000, help="messages to publish (default: 1000)")
    parser.add_argument("--rate", type=positive_number, help="messages per second (default: as fast as possible)")
    parser.add_argument(
        "--corrupt", type=_share, default=0.0, help="share of deliberately corrupt messages, 0 to 1 (default: 0)"
    )
    parser.add_argument(
        "--items",
        type=int,
        choices=range(1, MAX_ITEMS + 1),
        metavar=f"1..{MAX_ITEMS}",
        help="items per status report (default: 1 to 3, varying)",
    )
    parser.add_argument("--gcm", type=_share, default=0.5, help="share of AES-GCM messages (default: 0.5; rest ECB)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet (default: 1)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.topic is None:
        settings.require("tuya_access_id")
    topic = args.topic or f"persistent://{settings.tuya_access_id}/out/{settings.tuya_mq_env}"
    fleet = Fleet(
        settings.access_key, args.devices, clock=lambda: time.time_ns() // 1_000_000, seed=args.seed, gcm_share=args.gcm
    )
    messages = fleet.messages(args.count, items=args.items, corrupt=args.corrupt)
    try:
        report = publish(args.url, topic, messages, rate=args.rate)
    except (pulsar.PulsarException, ValueError) as exc:  # the broker could not be reached, or --url is none
        print(f"tuya-archiver simulate: nothing published to {args.url}: {exc}", file=sys.stderr)
        return 1
    errors = ", ".join(f"{name}: {n}" for name, n in sorted(report.errors.items()))
    print(
        f"published {report.count} of {args.count} messages to {topic} in {report.seconds:.2f} s "
        f"({report.rate:,.0f} msg/s); failed: {report.failed}{f' ({errors})' if errors else ''}"
    )
    return 1 if report.failed else 0


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value
