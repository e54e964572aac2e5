"""The shape of a data point's specification, as the ``data_points`` table keeps it and the OpenAPI describes it.

Data only: no I/O, never imports ``streams``.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["POINT_TYPES", "PointSpec", "normalize_unit"]

#: Tuya's data point types (SPEC.md §10.2); the thing model's typeSpec types map onto them.
POINT_TYPES = ("Boolean", "Integer", "Enum", "String", "Json", "Raw", "Bitmap")

# Tuya writes the degree signs as one character (SPEC.md §10.2); people and Home Assistant write two.
_UNIT_SPELLINGS = {"℃": "°C", "℉": "°F", "°c": "°C", "°f": "°F"}


def normalize_unit(unit: Any) -> str | None:
    """The unit as people write it (``℃`` → ``°C``); None for no unit (absent or blank)."""
    if not isinstance(unit, str) or not unit.strip():
        return None
    text = unit.strip()
    return _UNIT_SPELLINGS.get(text, text)


class PointSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One data point of one product, as the ``data_points`` table keeps it."""

    product_id: str
    code: str
    type: str
    dp_id: int | None = None
    name: str | None = None
    unit: str | None = None
    scale: int = 0
    min: float | None = None
    max: float | None = None
    step: float | None = None
    range: tuple[str, ...] | None = None
    reported: bool = True
    commandable: bool = False

    @property
    def numeric(self) -> bool:
        """Whether the point reports numbers that have a physical value (Tuya's Integer, the thing model's value)."""
        return self.type == "Integer"

    @property
    def digits(self) -> int:
        """Decimal places of the physical value: ``scale`` for a numeric point, else none."""
        return self.scale if self.numeric and self.scale > 0 else 0

    @property
    def divisor(self) -> int:
        """What a raw number is divided by for its physical value: 10^scale for a numeric point, else 1."""
        return 10**self.digits
