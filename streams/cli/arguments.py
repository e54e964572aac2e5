"""argparse types that more than one command's options share; each refuses a bad value as a usage error (exit 2)."""

from __future__ import annotations

import argparse

__all__ = ["port"]


def port(text: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, not {text!r}") from None
    if not 0 <= number <= 65_535:
        raise argparse.ArgumentTypeError(f"must be between 0 (any free port) and 65535, not {number}")
    return number
