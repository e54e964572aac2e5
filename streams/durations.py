"""Durations and moments as people type them: ``90d``, ``2h``, ``1h30m``, ``2026-11-01``, ``2026-11-01T08:00+01:00``.

Owns the parsing used by the CLI (``--since``, ``--older-than``) and the rules (``for:``, ``cooldown:``). Pure: the
clock is an argument; imports nothing of the project. Errors are ``ValueError`` with a message fit for a user.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

__all__ = ["format_duration", "parse_duration", "parse_moment"]

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)([wdhms])")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?[wdhms])+")


def _compact(text: str) -> str:
    return text.strip().lower().replace(" ", "")


def parse_duration(text: str) -> timedelta:
    """``90d``, ``2h``, ``15m``, ``45s``, ``1w``, ``1h30m``, ``1.5h`` → timedelta (units: w d h m s).

    Raises:
        ValueError: not a duration in these units, or longer than Python's durations reach.
    """
    compact = _compact(text)
    if not _WHOLE.fullmatch(compact):
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, e.g. 90d, 2h, 15m, 45s, 1h30m")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is longer than any duration this reads ({timedelta.max.days:,} days)") from None


def parse_moment(text: str, now: datetime) -> datetime:
    """A point in time: a duration before ``now`` (``2h``), an ISO date (midnight UTC) or an ISO date-time (UTC
    when it names no offset). Returns an aware UTC datetime.

    Raises:
        ValueError: neither a duration nor an ISO date or date-time, or a moment outside years 1 to 9999 in UTC.
    """
    stripped = text.strip()
    if _WHOLE.fullmatch(_compact(stripped)):
        age = parse_duration(stripped)
        try:
            return (now - age).astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{text!r} ago is before year 1") from None
    try:
        if len(stripped) == 10:
            day = date.fromisoformat(stripped)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (2h, 90d) nor an ISO date or time (2026-11-01, 2026-11-01T08:00Z)"
        ) from None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # its offset takes it before year 1 or after 9999 in UTC
        raise ValueError(f"{text!r} is out of the range of times (years 1 to 9999, UTC)") from None


def format_duration(value: timedelta) -> str:
    """The shortest exact form in the units :func:`parse_duration` reads: ``1h30m``, ``90d``, ``0s``."""
    seconds = round(value.total_seconds())
    if seconds == 0:
        return "0s"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
