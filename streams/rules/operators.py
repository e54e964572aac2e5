"""How rule values compare with reported DP values: equality that keeps bools apart, and numeric ranges with units.

Owns the comparison rules only. A bare threshold compares with the raw value Tuya reports; a threshold with a unit
compares with the physical value (raw ÷ 10^scale, ``streams.fleet.catalog.scaled``), and only on an Integer data
point of the same unit (after ``normalize_unit``: ``℃`` is ``°C``). Without such a data point the value is no
number to that threshold, so never in range. Pure; imports the standard library, the rule models and the catalog's
pure unit rules only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from models.rules import Threshold
from streams.fleet.catalog import PointSpec, normalize_unit, scaled

__all__ = [
    "UNKNOWN",
    "PointLookup",
    "as_number",
    "in_range",
    "measured",
    "no_points",
    "same_value",
    "unit_mismatch",
    "unit_problem",
]

PointLookup = Callable[[str, str, str | None], PointSpec | None]
"""(device_id, code, product_key) → the data point's specification, or None (``Catalog.point``)."""


class _Unknown:
    """No value known yet: not equal to anything, not in any range."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


def no_points(device_id: str, code: str, product_key: str | None = None) -> PointSpec | None:
    """The PointLookup of an archive that knows no specification yet."""
    return None


def same_value(left: Any, right: Any) -> bool:
    """Equality as a user means it: ``true`` is not ``1`` (Tuya has both bool and value DPs), ``3`` is ``3.0``, and
    ``3`` is ``"3"`` (Tuya sends an enum as text, and ``to: 3`` is how one writes it; ``numeric_state`` reads numeric
    text as a number too)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    text, number = (left, right) if isinstance(left, str) else (right, left)
    if isinstance(text, str) and isinstance(number, int | float):
        return _DECIMAL.fullmatch(text) is not None and Decimal(text) == Decimal(repr(number))
    return bool(left == right)


#: Text that is a number as written in a rules file: no spaces, signs but minus, exponents, underscores or other
#: scripts' digits (which ``float`` reads too).
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


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


def measured(value: Any, threshold: Threshold, point: PointSpec | None) -> float | None:
    """``value`` in the terms of ``threshold``: raw for a bare one, physical for one with a unit; None when the
    value is no number (NaN included), or the threshold has a unit that ``point`` does not report in."""
    number = as_number(value)
    if number is None or number != number:  # NaN compares false with everything: treat it as no number
        return None
    if threshold.unit is None:
        return number
    if point is None or unit_mismatch(threshold.unit, point) is not None:
        return None
    return float(scaled(number, point))


def in_range(value: Any, above: Threshold | None, below: Threshold | None, point: PointSpec | None = None) -> bool:
    """``above`` < value < ``below``, both strict and optional, each in its own terms (see ``measured``).

    ``point`` is the reporting device's data point; only thresholds with a unit read it.
    """
    if above is not None:
        number = measured(value, above, point)
        if number is None or not number > above.value:
            return False
    if below is not None:
        number = measured(value, below, point)
        if number is None or not number < below.value:
            return False
    return above is not None or below is not None


def unit_problem(above: Threshold | None, below: Threshold | None, point: PointSpec | None) -> str | None:
    """Why a reading of ``point`` cannot be compared with a threshold's unit; None when it can (or none has one)."""
    for threshold in (above, below):
        if threshold is None or threshold.unit is None:
            continue
        if point is None:
            return "the archive has no specification of this data point yet: run `tuya-archiver sync`"
        problem = unit_mismatch(threshold.unit, point)
        if problem is not None:
            return problem
    return None


def unit_mismatch(unit: str, point: PointSpec) -> str | None:
    """Why values of ``point`` are not in ``unit`` (not a number, another unit); None when they are."""
    if not point.numeric:
        return f"the data point is {point.type}, not a number with a unit"
    if normalize_unit(unit) != normalize_unit(point.unit):
        return f"unit {unit} is not the data point's unit ({normalize_unit(point.unit) or 'it has none'})"
    return None
