"""How rule values compare with reported DP values: equality that keeps bools apart, and numeric ranges.

Owns the comparison rules only. Pure; imports nothing but the standard library.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["UNKNOWN", "as_number", "in_range", "same_value"]


class _Unknown:
    """No value known yet: not equal to anything, not in any range."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


def same_value(left: Any, right: Any) -> bool:
    """Equality as a user means it: ``true`` is not ``1`` (Tuya has both bool and value DPs), ``3`` is ``3.0``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    return bool(left == right)


def as_number(value: Any) -> float | None:
    """The value as a number (numeric strings too, as Home Assistant reads states); None for bools and text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def in_range(value: Any, above: float | None, below: float | None) -> bool:
    """``above`` < value < ``below``, both strict and optional; a value that is not a number is never in range."""
    number = as_number(value)
    if number is None or number != number:  # NaN compares false with everything: treat it as no number
        return False
    return (above is None or number > above) and (below is None or number < below)
