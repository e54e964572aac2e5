"""The time window of a device's charts, from the page's query parameters: ``?range=24h`` or ``?from=…&until=…``.

Owns the presets (1 h, 24 h, 7 d), the parsing of a chosen range (a duration ago such as ``2h``, an ISO date or
date-time, UTC unless it names an offset: what ``history --since`` reads, and what a browser's ``datetime-local``
field sends) and the limits a window must keep. Pure: the clock is an argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streams.durations import parse_moment

__all__ = ["DEFAULT_PRESET", "EARLIEST", "LATEST", "MAX_SPAN", "PRESETS", "Window", "WindowError", "parse_window"]

PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_PRESET = "24h"
#: The longest window a chart draws (the buckets of downsample.py reach that far).
MAX_SPAN = timedelta(days=400)
#: The times a window may reach: Tuya's are epoch milliseconds, and a chart's axis steps past its window's end.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


class WindowError(ValueError):
    """The query parameters do not name a usable window; the message says why (shown with status 400)."""


@dataclass(frozen=True, slots=True)
class Window:
    """[since, until): ``preset`` names it when it is one of PRESETS ending now, else it is a chosen range."""

    since: datetime
    until: datetime
    preset: str | None = None

    @property
    def span(self) -> timedelta:
        return self.until - self.since

    def query(self) -> dict[str, str]:
        """The query parameters that give this window again (a preset moves with the clock; a range does not)."""
        if self.preset is not None:
            return {"range": self.preset}
        return {"from": _iso(self.since), "until": _iso(self.until)}


def parse_window(params: Mapping[str, str], now: datetime) -> Window:
    """The window the parameters ask for: ``from``/``until`` (either may be left out), else ``range``, else the
    default preset.

    Raises:
        WindowError: an unknown preset, an unreadable time, an empty or reversed window, one over MAX_SPAN, or one
            beyond EARLIEST or LATEST.
    """
    start, end = params.get("from", "").strip(), params.get("until", "").strip()
    if not start and not end:
        preset = params.get("range", "").strip() or DEFAULT_PRESET
        if preset not in PRESETS:
            raise WindowError(f"range must be one of {', '.join(PRESETS)} (or give from= and until=), not {preset!r}")
        return Window(now - PRESETS[preset], now, preset)
    try:
        until = parse_moment(end, now) if end else now
        since = parse_moment(start, now) if start else None
    except ValueError as exc:
        raise WindowError(str(exc)) from None
    if not EARLIEST < until <= LATEST or (since is not None and since < EARLIEST):
        raise WindowError(f"a window must lie between {_iso(EARLIEST)} and {_iso(LATEST)}")
    if since is None:
        since = max(until - PRESETS[DEFAULT_PRESET], EARLIEST)
    if since >= until:
        raise WindowError(f"from ({_iso(since)}) must be before until ({_iso(until)})")
    if until - since > MAX_SPAN:
        raise WindowError(f"a window may span at most {MAX_SPAN.days} days")
    return Window(since, until)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
