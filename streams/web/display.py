"""Values as the pages show them to people: times (UTC), ages, durations, values with their unit, yes/no.

Owns the Jinja filters of the templates; the JSON and CSV twins show values as stored instead (formats.py). Pure.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from streams.web.axes import format_number

__all__ = ["FILTERS", "age", "compact_json", "duration", "input_time", "plural", "value_text", "when", "yes_no"]


def when(moment: datetime | None, precise: bool = False) -> str:
    """``2026-12-05 09:37:04`` (UTC; milliseconds when ``precise``); empty for None."""
    if moment is None:
        return ""
    return moment.isoformat(" ", "milliseconds" if precise else "seconds").removesuffix("+00:00")


def duration(span: timedelta | float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min``, ``4 d 2 h``: the two largest units."""
    if span is None:
        return ""
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86_400
    if hours == 0:
        return f"{minutes} min"
    if days == 0:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


def age(moment: datetime | None, now: datetime) -> str:
    """How long before ``now``: ``3 min ago``; empty for None."""
    return "" if moment is None else f"{duration(now - moment)} ago"


def value_text(value: Any, unit: str | None = None) -> str:
    """A status value for people: numbers without noise, texts as they are, JSON as JSON; the unit appended."""
    if value is None:
        return ""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, int | float):
        shown = format_number(value)
    elif isinstance(value, str):
        shown = value
    else:
        shown = json.dumps(value, ensure_ascii=False)
    return f"{shown} {unit}" if unit else shown


def yes_no(value: bool | None) -> str:
    return "" if value is None else "yes" if value else "no"


def plural(count: int, noun: str) -> str:
    """``1 period``, ``3 periods``, ``1,204 values``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def input_time(moment: datetime) -> str:
    """The value of a ``datetime-local`` field: ``2026-12-05T09:37:04`` (UTC, to the second)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def compact_json(value: Any) -> str:
    """JSON on one line, for a table cell (events' data, commands)."""
    return "" if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


FILTERS = {
    "when": when,
    "duration": duration,
    "age": age,
    "value_text": value_text,
    "yes_no": yes_no,
    "input_time": input_time,
    "compact_json": compact_json,
    "plural": plural,
}
