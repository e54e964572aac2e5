"""argparse types and options that more than one command shares; each refuses a bad value as a usage error (exit 2)."""

from __future__ import annotations

import argparse
import math

__all__ = ["bound_arguments", "device_id", "port", "positive_int", "positive_number"]


def positive_int(text: str) -> int:
    """A whole number of at least 1 (a count, a size)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return int(text)


def positive_number(text: str) -> float:
    """A finite number above 0 (a rate, a duration in minutes)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:  # nan and inf too
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text!r}")
    return value


def device_id(text: str) -> str:
    """A device id as a path segment of the OpenAPI: not empty, no space, control character, ``/``, ``?`` or ``#``,
    nor a dot segment (``..`` would reach another path) (Tuya's are letters and digits)."""
    if not text or text.strip(".") == "" or not text.isprintable() or any(c.isspace() or c in "/?#" for c in text):
        raise argparse.ArgumentTypeError(f"must be a device id (letters and digits, as Tuya gives them), not {text!r}")
    return text


def port(text: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, not {text!r}") from None
    if not 0 <= number <= 65_535:
        raise argparse.ArgumentTypeError(f"must be between 0 (any free port) and 65535, not {number}")
    return number


def bound_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-messages`` and ``--idle-timeout``: what ends a bounded run of a consuming command."""
    parser.add_argument(
        "--max-messages",
        type=positive_int,
        metavar="N",
        help="stop after receiving N messages (a redelivery counts too)",
    )
    parser.add_argument(
        "--idle-timeout", type=positive_number, metavar="S", help="stop when nothing arrived for S seconds"
    )
