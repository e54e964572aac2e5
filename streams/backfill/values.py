"""A device-log value as the stream would have sent it: Tuya's logs give every value as a string (SPEC.md §10.3).

Owns the conversion by the data point's type: ``"65"`` → 65 for an Integer (or Bitmap), ``"false"`` → False for a
Boolean, an Enum's or a String's text as it is. Without a specification, the type of a value the stream sent for
the same code decides (``like``); without one either, the text is read as what it looks like (a boolean word, a
whole number written as Python writes it, so ``"007"`` stays text, else the text). Pure.
"""

from __future__ import annotations

from typing import Any

from models.points import PointSpec

__all__ = ["log_value"]

_BOOLEANS = {"true": True, "false": False}


#: The data point type a value the stream sent stands for, when no specification says.
_KINDS: dict[type, str] = {bool: "Boolean", int: "Integer", str: "String"}


def _integer(text: str, *, exact: bool) -> int | None:
    """The whole number ``text`` holds; ``exact``: only when written as the number is (``"007"``: not one)."""
    stripped = text.strip()
    body = stripped[1:] if stripped[:1] in "+-" else stripped
    if not (body.isascii() and body.isdigit() and len(body) <= 18):
        return None
    number = int(stripped)
    return number if not exact or str(number) == text else None


def log_value(value: Any, point: PointSpec | None, like: Any = None) -> Any:
    """The value a log row reported, in the type the stream sends for its data point (``like``: a value the stream
    sent for it, for when ``point`` is unknown)."""
    if not isinstance(value, str):
        return value  # a log that already gave a JSON type keeps it
    kind = point.type if point is not None else _KINDS.get(type(like))
    if kind in ("Enum", "String", "Raw", "Json"):
        return value
    if kind == "Boolean" or kind is None:
        boolean = _BOOLEANS.get(value.strip().lower())
        if boolean is not None:
            return boolean
        if kind == "Boolean":
            return value
    number = _integer(value, exact=kind is None)
    return number if number is not None else value
