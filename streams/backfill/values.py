"""A device-log value as the stream would have sent it: Tuya's logs give every value as a string (SPEC.md §10.3).

Owns the conversion by the data point's type: ``"65"`` → 65 for an Integer (or Bitmap), ``"false"`` → False for a
Boolean, an Enum's or a String's text as it is. Without a specification the text is read as what it looks like (a
boolean word, a whole number, else the text). Pure.
"""

from __future__ import annotations

from typing import Any

from models.points import PointSpec

__all__ = ["log_value"]

_BOOLEANS = {"true": True, "false": False}


def _integer(text: str) -> int | None:
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    return int(stripped) if body.isascii() and body.isdigit() and len(body) <= 18 else None


def log_value(value: Any, point: PointSpec | None) -> Any:
    """The value a log row reported, in the type the stream sends for its data point."""
    if not isinstance(value, str):
        return value  # a log that already gave a JSON type keeps it
    kind = point.type if point is not None else None
    if kind in ("Enum", "String", "Raw", "Json"):
        return value
    if kind == "Boolean" or kind is None:
        boolean = _BOOLEANS.get(value.strip().lower())
        if boolean is not None:
            return boolean
        if kind == "Boolean":
            return value
    number = _integer(value)
    return number if number is not None else value
