"""``backfill``: fill a gap from Tuya's device logs, device by device, page by page, resumable and within the quota.

Owns the order of a backfill. For each device of the gap (the devices ``sync`` listed and those the stream showed
lately, else every device the archive knows), it reads the device's log for the gap's window through the first log
family the project is entitled to, converts Tuya's string values with the product's data points, and stores each page
with its checkpoint in one transaction (streams.store.backfill): a crash or Ctrl-C, then a rerun, continues at the
page it stopped at, and the idempotent keys absorb a repeated page. Nothing here reaches the rules: a log value is
history, not news. What it cannot do is said in the gap's ``reason`` (``partly_filled``): the part of the window older
than Tuya keeps logs, refused paths, devices whose log could not be read. A gap the day's quota or an error of the
whole project stopped stays ``open`` with that reason, so the worker resumes it once the quota allows, or a few
minutes later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from streams.backfill.report import API_ERROR, QUOTA, BackfillReport
from streams.backfill.values import log_value
from streams.clock import utcnow
from streams.durations import format_duration
from streams.fleet.catalog import Catalog
from streams.fleet.metering import MeteredArchive, QuotaReached
from streams.fleet.report import Refusal
from streams.store import api_usage, backfill, fleet
from streams.store.backfill import LogEvent, LogValue
from streams.tuya.api_errors import TUYA_ERRORS, ClientClosed, TuyaApiError, TuyaServerError
from streams.tuya.families import is_project_wide, is_refusal
from streams.tuya.log_families import LOG_FAMILIES, LOG_OFFLINE, LOG_ONLINE, LogFamily, LogPage
from streams.tuya.normalize import utc
from streams.tuya.openapi import OpenApiClient

__all__ = ["TUYA_LOG_RETENTION", "TUYA_MESSAGE_RETENTION", "Backfill"]

log = logging.getLogger(__name__)

#: How long Tuya keeps device logs on the free tier (SPEC.md §10.3: about 7 days).
TUYA_LOG_RETENTION = timedelta(days=7)
#: How long Tuya keeps messages nobody acknowledged (TUYA_MESSAGE_RETENTION's default).
TUYA_MESSAGE_RETENTION = timedelta(hours=2)
#: How long a log family Tuya refused is tried after the others only (then first again, in its order).
ASK_REFUSED_AGAIN = timedelta(days=1)
#: Devices in a row whose log answered a server error (or nothing) after the client's retries: then it is the
#: OpenAPI's trouble, not theirs, and the run stops; fewer are each that device's reason, and are read again later
#: (the gap stays open).
SERVER_ERRORS_IN_A_ROW = 3
_PURPOSE = "device_logs"
_NEEDS = "the device log service of IoT Core"
#: The log paths that give online and offline rows: refused, a filled gap would lack its online periods.
_ONLINE_PATHS = frozenset(family.path for family in LOG_FAMILIES if family.online_rows)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Backfill:
    """Fills gaps of one archive from one project's device logs (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        client: OpenApiClient,
        *,
        log_retention: timedelta = TUYA_LOG_RETENTION,
        message_retention: timedelta = TUYA_MESSAGE_RETENTION,
        margin: timedelta = timedelta(minutes=5),
        on_progress: Callable[[BackfillReport], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._client = client
        self._log_retention = log_retention
        self._message_retention = message_retention
        self._margin = margin
        self._on_progress = on_progress or (lambda _report: None)
        self._clock = clock

    def request(self, started: datetime, ended: datetime) -> int:
        """The gap of a window a person asked for (``--since``, ``--from/--until``): the same unfilled one again."""
        now = self._clock()
        with self._engine.begin() as connection:
            return backfill.record_gap(connection, started, ended, now, origin="requested")

    def fill(self, gap_id: int, devices: Sequence[str] = ()) -> BackfillReport:
        """Fill gap ``gap_id`` (only ``devices``, when given). Raises LookupError for an unknown gap."""
        archive = MeteredArchive(self._engine, self._client, self._clock)
        row = archive.read(lambda c: backfill.gap(c, gap_id))
        if row is None:
            raise LookupError(f"no gap {gap_id} (see `tuya-archiver gaps`)")
        report = BackfillReport(gap_id=gap_id, started_at=row.started_at, ended_at=row.ended_at)
        if row.status == "filled" and row.started_at < self._clock() - self._log_retention:
            report.status, report.kept = "filled", True  # the logs lost part of it since: what was filled stays so
            return report
        if row.origin == "detected" and not self._stream_is_past(archive, row.ended_at):
            report.waiting = True  # the worker's backlog still holds messages of the gap's end: fill it after them
            return report
        if row.origin != "detected":  # a detected gap waited for the stream (above)
            self._leave_to_the_stream(archive, report)
        run = _Run(archive, report, self._on_progress, self._clock)
        start, end = self._within_retention(report), report.ended_at
        if start is None and row.calls:  # tried before the logs expired: who was left unread
            unread = run.unread(report.started_at)
            if unread:
                shown = ", ".join(unread[:5]) + (", …" if len(unread) > 5 else "")
                report.reasons.append(f"{len(unread):,} device(s) not read before Tuya's logs expired: {shown}")
        rerun = f"`tuya-archiver backfill --gap {gap_id}`"
        if start is not None and start < end:
            try:
                run.devices(start, end, devices)
            except QuotaReached as exc:
                report.stopped = QUOTA
                report.reasons.append(
                    f"{exc}: run {rerun} on a new UTC day"
                    if devices
                    else f"{exc}: the gap stays open, and the worker resumes it on a new UTC day (or run {rerun} then)"
                )
            except (ClientClosed, KeyboardInterrupt):  # a stop: the gap stays backfilling, resumed at the next start
                run.count_calls()
                raise
            except TUYA_ERRORS as exc:  # the project's, or no answer in time (a device's stayed in run.devices)
                report.stopped = API_ERROR
                report.reasons.append(
                    f"{exc}: run {rerun} once the cause is mended"
                    if devices
                    else f"{exc}: the gap stays open, and the worker tries it again in a few minutes (or run {rerun} "
                    "once the cause is mended)"
                )
            if devices and run.unread(start):
                # the others' window is not filled: not a gap the worker should fill by itself either
                report.scope = (
                    f"only the {len(set(devices)):,} device(s) asked for were read (`tuya-archiver backfill --gap "
                    f"{gap_id}` reads every device)"
                )
        run.finish()
        return report

    def _stream_is_past(self, archive: MeteredArchive, ended_at: datetime) -> bool:
        """Whether the stream has been consumed a margin past ``ended_at``: the values timed near a gap's end that
        Tuya still had are archived by then, so the backfill skips them instead of storing them a second time."""
        pushed = archive.read(backfill.stream_pushed)
        return pushed is None or pushed >= ended_at + self._margin

    def _leave_to_the_stream(self, archive: MeteredArchive, report: BackfillReport) -> None:
        """End a window a person asked for where the stream can still deliver (less the margin): the worker's
        backlog holds the rest and stores it, and the backfill would store those values a second time (it skips what
        the stream stored, the stream does not skip what it stored). The gap then is the window up to there.

        The stream holds what was pushed after it was last consumed, and only for Tuya's message retention: a worker
        stopped for longer finds what came before that deleted, which only the logs still have."""
        pushed = archive.read(backfill.stream_pushed)
        if pushed is None:
            return
        held_from = max(pushed, self._clock() - self._message_retention) - self._margin
        if held_from >= report.ended_at:
            return
        reach = max(report.started_at, held_from)
        report.left_to_stream, report.ended_at = report.ended_at, reach
        archive.write(lambda c: backfill.update_gap(c, report.gap_id, self._clock(), ended_at=reach))

    def _within_retention(self, report: BackfillReport) -> datetime | None:
        """The start of the window Tuya still has logs for (None: none of it); the cut is a reason of its own."""
        cutoff = self._clock() - self._log_retention
        if report.ended_at <= cutoff:
            report.reasons.append(
                f"the whole window is older than Tuya keeps device logs ({format_duration(self._log_retention)})"
            )
            return None
        if report.started_at < cutoff:
            report.reasons.append(
                f"before {cutoff.isoformat(timespec='seconds')} is older than Tuya keeps device logs "
                f"({format_duration(self._log_retention)}): not fetched"
            )
            return cutoff
        return report.started_at


class _Run:
    """One ``fill``: the archive, the report, the families still worth trying and the catalog for values."""

    def __init__(
        self,
        archive: MeteredArchive,
        report: BackfillReport,
        on_progress: Callable[[BackfillReport], None],
        clock: Callable[[], datetime],
    ) -> None:
        self.archive = archive
        self.report = report
        self.on_progress = on_progress
        self.clock = clock
        self.catalog: Catalog = archive.read(fleet.load_catalog)
        # In their order (the one with online rows first), but a family refused within a day after the others: a
        # project that subscribed since gets its online periods back, for one call a day while it has not.
        self.refused_before = archive.read(lambda c: api_usage.refusals(c, _PURPOSE))
        since = clock() - ASK_REFUSED_AGAIN
        self.families = sorted(LOG_FAMILIES, key=lambda family: self.refused_before.get(family.path, since) > since)
        self.worked: set[str] = set()
        self.read = False  # a window was read (not one the stream holds whole, nor one older than the logs)
        self.counted = 0  # the calls of this run already added to the gap's
        self.stream_values: dict[str, dict[str, Any]] = {}  # by device, read when a code has no specification
        self.in_a_row = 0  # devices in a row whose log answered a server error
        self.tried_in_a_row = 0  # the same, of devices an earlier run of the gap left unread
        archive.write(lambda c: backfill.update_gap(c, report.gap_id, self.clock(), status="backfilling"))

    def devices(self, start: datetime, end: datetime, only: Sequence[str]) -> None:
        self.read = True
        done = self.archive.read(lambda c: backfill.progress(c, self.report.gap_id))
        if only:  # start: the window's, or where Tuya's logs begin
            asked = self.archive.read(lambda c: backfill.asked_devices(c, only, self.report.started_at, start))
            devices = asked.readable
            for device_id in asked.too_late:
                self.report.reasons.append(
                    f"device {device_id}: deleted before {start.isoformat(timespec='seconds')}, where Tuya's logs begin"
                )
            for device_id in asked.unknown:
                self.report.reasons.append(
                    f"device {device_id}: not in the archive, or deleted before the window (`tuya-archiver sync "
                    "--device` adds it)"
                )
        else:
            devices = self.archive.read(lambda c: backfill.devices_to_backfill(c, start))
        remaining = [device for device in devices if not (done.get(device) and done[device].done)]
        self.report.devices = len(devices)
        self.report.devices_done = len(devices) - len(remaining)
        self.report.estimate = len(remaining)  # at least one call a device; busy devices need a page per 100 rows
        left = self.archive.left
        if left is not None and left < self.report.estimate:
            log.warning(
                "backfill needs at least %d calls and %d are left today: it will stop early", len(remaining), left
            )
        self.on_progress(self.report)
        # Devices not tried yet first (an outage of the log service shows on them), then those earlier runs left
        # unread, the longest waiting first: while none of them answers, a few a run, each in turn.
        remaining.sort(key=lambda d: (d in done, done[d].updated_at if d in done else None, d))
        for asked, device_id in enumerate(remaining, start=1):
            cursor = done[device_id].cursor if device_id in done else None
            unanswered = self.report.unanswered
            if not self._device(device_id, start, end, cursor, scoped=bool(only), tried=device_id in done):
                return
            if self.report.unanswered == unanswered:
                self.in_a_row = self.tried_in_a_row = 0
            elif self.tried_in_a_row >= SERVER_ERRORS_IN_A_ROW and not only and asked < len(remaining):
                left = len(remaining) - asked  # the others wait for the gap's next run (it stays open)
                self.report.reasons.append(f"{left:,} device(s) left unread earlier not asked this time (read later)")
                return

    def unread(self, start: datetime) -> list[str]:
        """The devices of the gap's window from ``start`` not read to its end, by this run or earlier ones."""
        done = self.archive.read(lambda c: backfill.progress(c, self.report.gap_id))
        devices = self.archive.read(lambda c: backfill.devices_to_backfill(c, start))
        return [device for device in devices if not (device in done and done[device].done)]

    def _device(
        self, device_id: str, start: datetime, end: datetime, cursor: str | None, *, scoped: bool, tried: bool
    ) -> bool:
        """Read one device's log; False when no family is left to try. ``scoped``: some devices only were asked for
        (what is left of the gap is then the person's, not the worker's). ``tried``: an earlier run of the gap tried
        it; its server errors say nothing new about the OpenAPI (the devices a gap left unread come in a row)."""
        for family in list(self.families):
            codes = self._codes(device_id) if family.needs_codes else []
            if family.needs_codes and not codes:
                continue
            try:
                self._pages(family, device_id, start, end, codes, cursor)
            except TuyaServerError as exc:
                if tried:
                    self.tried_in_a_row += 1
                else:
                    self.in_a_row += 1
                if is_project_wide(exc) or self.in_a_row >= SERVER_ERRORS_IN_A_ROW:
                    raise  # the OpenAPI's, not this device's: the run stops (fill)
                self.report.unanswered += 1
                self.report.reasons.append(f"device {device_id}: {exc}" + ("" if scoped else " (read again later)"))
                self._unanswered(device_id)
                return True
            except TuyaApiError as exc:
                if is_project_wide(exc):
                    raise  # no other device fares better: the run stops (fill)
                if not is_refusal(exc):
                    self.report.reasons.append(f"device {device_id}: {exc}")
                    return True
                self._refused(family, exc)
                continue
            self.report.devices_done += 1
            self.on_progress(self.report)
            return True
        if not self.families:
            self.report.reasons.append("every device-log path was refused")
            return False
        self.report.reasons.append(f"device {device_id}: no log family can read it (no data points known: run sync)")
        return True

    def _unanswered(self, device_id: str) -> None:
        """The device's log did not answer: its checkpoint says it was tried, and the gap counts its calls."""
        gap_id, calls = self.report.gap_id, self._uncounted()
        self.archive.write(lambda c: backfill.save_unanswered(c, gap_id, device_id, self.clock(), calls=calls))

    def _codes(self, device_id: str) -> list[str]:
        product = self.catalog.product_of(device_id)
        # Every code of the product: a commandable point changes and is logged too (a switch, a countdown).
        return sorted(point.code for point in self.catalog.points_of(product)) if product else []

    def _pages(
        self, family: LogFamily, device_id: str, start: datetime, end: datetime, codes: list[str], cursor: str | None
    ) -> None:
        for page in family.pages(self.archive, device_id, _ms(start), _ms(end), codes, cursor):
            if family.path not in self.worked:
                self.worked.add(family.path)
                self.archive.write(lambda c: api_usage.remember_path(c, _PURPOSE, family.path, self.clock()))
                self.report.family = family.path
            self._store(device_id, page, start, end)

    def _store(self, device_id: str, page: LogPage, start: datetime, end: datetime) -> None:
        values, events = self._rows(device_id, page, start, end)
        gap_id, calls = self.report.gap_id, self._uncounted()
        added = self.archive.write(
            lambda c: backfill.save_log_page(
                c, gap_id, device_id, values, events, cursor=page.next_cursor, done=page.next_cursor is None,
                at=self.clock(), calls=calls,
            )
        )  # fmt: skip
        self.report.rows_added += added
        self.report.calls = self.archive.used
        self.on_progress(self.report)

    def _rows(
        self, device_id: str, page: LogPage, start: datetime, end: datetime
    ) -> tuple[list[LogValue], list[LogEvent]]:
        values, events = [], []
        for row in page.rows:
            at = utc(row.event_time)
            if not start <= at <= end:
                continue  # outside the window asked for: another gap's, or the stream's
            if row.event_id in (LOG_ONLINE, LOG_OFFLINE):
                event = "online" if row.event_id == LOG_ONLINE else "offline"
                events.append(LogEvent(event, at, {"event_from": row.event_from} if row.event_from else {}))
            elif row.code:
                point = self.catalog.point(device_id, row.code)
                like = None if point is not None else self._stream_values(device_id).get(row.code)
                value = log_value(row.value, point, like)
                values.append(LogValue(row.code, value, point.dp_id if point else None, at))
        return values, events

    def _stream_values(self, device_id: str) -> dict[str, Any]:
        """The device's latest stream values, read once a run: the types of its codes no specification gives."""
        if device_id not in self.stream_values:
            self.stream_values[device_id] = self.archive.read(lambda c: backfill.stream_values(c, device_id))
        return self.stream_values[device_id]

    def _refused(self, family: LogFamily, exc: TuyaApiError) -> None:
        self.families.remove(family)
        self.archive.write(
            lambda c: api_usage.remember_path(
                c, _PURPOSE, family.path, self.clock(), error_code=exc.code, error=f"{exc.msg} ({_NEEDS})"
            )
        )
        self.report.refused.append(Refusal(_PURPOSE, family.path, exc.code, exc.msg, _NEEDS))
        log.warning("Tuya refused %s (%d %s): this project needs %s for it", family.path, exc.code, exc.msg, _NEEDS)

    def _uncounted(self) -> int:
        """The calls made since the gap's count last grew (``archive.used``: as the quota counts them)."""
        used = self.archive.used
        new, self.counted = used - self.counted, used
        return new

    def count_calls(self) -> None:
        """Add the calls no stored page counted to the gap's (a run stopped before ``finish``)."""
        calls = self._uncounted()
        self.archive.write(lambda c: backfill.update_gap(c, self.report.gap_id, self.clock(), add_calls=calls))

    def finish(self) -> None:
        report = self.report
        report.calls = self.archive.used
        if report.devices_done:
            # Refused in this run or an earlier one (a resumed gap tries the family that worked first, not it again):
            # the devices read since came through a family without online rows.
            refused = (set(self.refused_before) - self.worked) | {refusal.path for refusal in report.refused}
            for path in sorted(_ONLINE_PATHS & refused):
                report.reasons.append(f"online and offline periods not read: Tuya refused {path}")
        if self.read and report.devices == 0 and not report.reasons:
            report.reasons.append("no device is known to the archive: run `tuya-archiver sync`, then this again")
        # Stopped by the quota or an error of the whole project, or devices left unread by server errors: open, so
        # that the worker's next backfill (streams.fleet.background) resumes it; not a backfill of some devices
        # (scope): the worker would read every device of the gap.
        whole = report.scope is None
        again = report.stopped or report.unanswered
        report.status = "filled" if report.done_as_asked and whole else "open" if again and whole else "partly_filled"
        reason = "; ".join([*report.reasons, *([report.scope] if report.scope else [])]) or None
        calls = self._uncounted()  # of devices that stored no page: refused, failed, or stopped by the quota
        self.archive.write(
            lambda c: backfill.update_gap(
                c, report.gap_id, self.clock(), status=report.status, reason=reason, add_calls=calls
            )
        )
        self.on_progress(report)
