"""``sync``: the project's devices, its products' data points and its app's users, from the OpenAPI into the archive.

Owns the order of a sync and its limits. A full sync lists every device through the first path family the project
is entitled to (the one that worked last time first; refusals are remembered with what the project would need),
fetches each product's specification once (one call per product, asked of one of its devices), names status items
that carried only a DP id, walks the app's users back in 30-day windows (before the devices, when a family lists
them user by user), and fills the latest values of devices that never reported through the stream. Every page is
its own short transaction, with the calls it cost added to ``api_usage``, so an interrupted sync keeps what it
stored and a rerun changes nothing twice. It stops before the day's quota is spent (``TUYA_API_DAILY_QUOTA`` less
what the archive recorded today). Imports the store and the client's families; knows nothing of the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from models.tables import ApiPath
from streams.clock import utcnow
from streams.fleet.metering import MeteredArchive, QuotaReached
from streams.fleet.report import Refusal, SyncReport
from streams.store import api_usage, fleet
from streams.tuya.api_errors import TuyaApiError
from streams.tuya.families import (
    DETAIL_FAMILIES,
    DEVICE_FAMILIES,
    SPEC_FAMILIES,
    USERS_PATH,
    CursorRepeated,
    DeviceFamily,
    DevicePage,
    FamilyContext,
    SpecFamily,
    Specification,
    fetch_device,
    fetch_specification,
    is_refusal,
    user_pages,
)
from streams.tuya.openapi import OpenApiClient

__all__ = ["FleetSync", "QuotaReached"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_LISTING, _SPECS, _DETAILS, _USERS = "device_list", "specification", "device_detail", "users"
_USERS_OVERLAP = timedelta(days=1)  # our clock against Tuya's creation times

Listed = dict[str, tuple[tuple[tuple[str, Any], ...] | None, datetime]]
"""Each listed device's status as its page carried it (None: the family's pages carry none), and Tuya's time of
that page's answer."""


def _at(t_ms: int, fallback: datetime) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, tz=UTC) if t_ms > 0 else fallback


def _ordered(paths: Sequence[_T], path_of: Callable[[_T], str], memory: api_usage.PathMemory) -> list[_T]:
    """``paths`` with the ones that worked last time first, the others in their given order."""
    return sorted(paths, key=lambda item: memory.get(path_of(item), ("",))[0] != "ok")


class FleetSync:
    """One project's sync into one archive (see the module docstring). Not thread-safe: one sync at a time."""

    def __init__(
        self,
        engine: Engine,
        client: OpenApiClient,
        *,
        schema: str | None = None,
        on_progress: Callable[[SyncReport], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._client = client
        self._schema = schema
        self._on_progress = on_progress or (lambda _report: None)
        self._clock = clock
        self._report = SyncReport()
        self._listed: set[str] = set()
        self._users_walked = False

    def run(self) -> SyncReport:
        """A full sync: devices, specifications, item names, users, latest values of silent devices."""
        return self._session(self._full)

    def sync_devices(self, device_ids: Iterable[str]) -> SyncReport:
        """Just these devices' details, and the specification of any product of theirs the archive lacks."""
        ids = list(dict.fromkeys(device_ids))
        return self._session(lambda: self._details(ids))

    def _session(self, steps: Callable[[], None]) -> SyncReport:
        self._report, self._listed = SyncReport(), set()
        self._users_walked = False
        self._archive = MeteredArchive(self._engine, self._client, self._clock)
        try:
            steps()
        except QuotaReached as exc:
            self._report.stopped = str(exc)
            log.warning("sync stopped: %s", exc)
        finally:
            self._write(lambda _connection: None)  # records the calls of a step that stored nothing
            self._report.calls = self._archive.used
            self._report.calls_left = self._archive.left
            self._on_progress(self._report)
        return self._report

    def _write(self, step: Callable[[Connection], _T]) -> _T:
        return self._archive.write(step)

    def _read(self, query: Callable[[Connection], _T]) -> _T:
        return self._archive.read(query)

    def _full(self) -> None:
        inline = self._list_devices()
        self._fetch_specifications(self._read(fleet.product_devices))
        self._report.items_named = self._write(fleet.name_unnamed_items)
        if not self._users_walked:
            self._list_users()
        self._fill_states(inline)

    # --- devices ------------------------------------------------------------------------------------------------

    def _list_devices(self) -> Listed:
        """List every device through the first family that answers; returns each listed device's inline status."""
        memory = self._read(lambda c: api_usage.path_memory(c, _LISTING))
        for family in _ordered(DEVICE_FAMILIES, lambda f: f.path, memory):
            if family.by_user and not self._users_walked:
                self._list_users()  # the family lists the devices of the users known: know the app's first
            try:
                # the uids as of now: a family refused before this one got the client its token, and the token's uid
                return self._list_with(family, FamilyContext(uids=self._uids()))
            except TuyaApiError as exc:
                if not is_refusal(exc):
                    raise
                self._refused(_LISTING, family.path, exc, family.service)
        self._report.problems.append("every device-list path was refused: see the refusals above")
        return {}

    def _uids(self) -> list[str]:
        token = self._client.auth.token
        return [*([token.uid] if token and token.uid else []), *self._read(fleet.known_uids)]

    def _list_with(self, family: DeviceFamily, context: FamilyContext) -> Listed:
        inline: Listed = {}
        pages: Iterator[DevicePage] = family.pages(self._archive, context)
        first: datetime | None = None
        owners: set[str] = set()  # the uids the pages listed every device of (the per-user family)
        try:
            for page in pages:
                if page.owner is not None:
                    owners.add(page.owner)
                at = _at(page.t, self._clock())
                if first is None:
                    first = at
                    self._write(lambda c, at=at: api_usage.remember_path(c, _LISTING, family.path, at))
                    self._report.family = family.path
                self._save_page(page, at)
                inline.update((device.device_id, (device.status, at)) for device in page.devices)
        except CursorRepeated as exc:
            self._report.problems.append(str(exc))
            return inline
        self._report.complete = True
        if first is not None:
            # Listed by owner: only the devices of an owner listed can be gone (another's may be refused or unknown)
            scope = sorted(owners) if owners else None
            self._report.devices_gone = self._write(lambda c: fleet.mark_gone(c, first, first, owners=scope))
            self._on_progress(self._report)
        return inline

    def _save_page(self, page: DevicePage, at: datetime) -> None:
        new, changed = self._write(lambda c: fleet.save_devices(c, page.devices, at))
        self._listed.update(device.device_id for device in page.devices)
        self._report.devices_listed = len(self._listed)  # a device on two pages, or two families' pages, once
        self._report.devices_new += new
        self._report.devices_changed += changed
        self._on_progress(self._report)

    def _refused(self, purpose: str, path: str, exc: TuyaApiError, needs: str) -> None:
        at = self._clock()
        self._write(
            lambda c: api_usage.remember_path(c, purpose, path, at, error_code=exc.code, error=f"{exc.msg} ({needs})")
        )
        self._report.refused.append(Refusal(purpose, path, exc.code, exc.msg, needs))
        log.warning("Tuya refused %s (%d %s): this project needs %s for it", path, exc.code, exc.msg, needs)

    def _details(self, device_ids: Sequence[str]) -> None:
        memory = self._read(lambda c: api_usage.path_memory(c, _DETAILS))
        ordered = _ordered(DETAIL_FAMILIES, str, memory)
        families = [path for path in ordered if memory.get(path, ("",))[0] != "refused"] or ordered
        for device_id in device_ids:
            for template in list(families):
                try:
                    page = fetch_device(self._archive, template, device_id)
                except TuyaApiError as exc:
                    if not is_refusal(exc):
                        self._report.problems.append(f"device {device_id}: {exc}")
                        break
                    self._refused(_DETAILS, template, exc, "IoT Core")
                    families.remove(template)
                    continue
                at = _at(page.t, self._clock())
                self._write(lambda c, template=template, at=at: api_usage.remember_path(c, _DETAILS, template, at))
                self._save_page(page, at)
                break
            else:
                self._report.problems.append(f"device {device_id}: not read, every device-detail path was refused")
        # The specification of each product of these devices the archive lacks, asked through one of them.
        catalog = self._read(fleet.load_catalog)
        known, wanted = catalog.products(), {}
        for device_id in device_ids:
            product = catalog.product_of(device_id)
            if product is not None and product not in known:
                wanted.setdefault(product, device_id)
        self._fetch_specifications(wanted)

    # --- specifications -----------------------------------------------------------------------------------------

    def _fetch_specifications(self, products: dict[str, str]) -> None:
        """One specification call per product (more only while refused families are skipped)."""
        memory = self._read(lambda c: api_usage.path_memory(c, _SPECS))
        families = _ordered(SPEC_FAMILIES, lambda f: f.path, memory)
        self._report.products = len(products)
        for product, device_id in sorted(products.items()):
            families = self._fetch_one(families, product, device_id)
            if not families:
                self._report.problems.append("every specification path was refused: units and DP names unknown")
                return
        self._on_progress(self._report)

    def _fetch_one(self, families: list[SpecFamily], product: str, device_id: str) -> list[SpecFamily]:
        """Fetch one product's specification; returns the families still worth trying."""
        for family in list(families):
            try:
                spec = fetch_specification(self._archive, family, device_id, product)
            except TuyaApiError as exc:
                if is_refusal(exc):
                    self._refused(_SPECS, family.path, exc, "IoT Core")
                    families.remove(family)
                    continue
                self._report.problems.append(f"specification of product {product} (device {device_id}): {exc}")
                return families
            self._store_specification(family, spec)
            return families
        return families

    def _store_specification(self, family: SpecFamily, spec: Specification) -> None:
        at = _at(spec.t, self._clock())

        def store(connection: Connection) -> None:
            fleet.save_points(connection, spec.points, spec.specs, at)
            api_usage.remember_path(connection, _SPECS, family.path, at)

        self._write(store)
        self._report.specifications += 1
        self._report.points += len(spec.points)
        self._report.spec_family = family.path
        self._on_progress(self._report)

    # --- users and latest values --------------------------------------------------------------------------------

    def _list_users(self) -> None:
        self._users_walked = True
        if not self._schema:
            return
        path = USERS_PATH.format(schema=self._schema)
        since = self._read(lambda c: _users_walked_since(c, path))
        now = self._clock()
        try:
            for page in user_pages(self._archive, self._schema, until=now, since=since):
                new, changed = self._write(lambda c, page=page: fleet.save_users(c, page.users, _at(page.t, now)))
                self._report.users_new += new
                self._report.users_changed += changed
                self._on_progress(self._report)
        except TuyaApiError as exc:
            if not is_refusal(exc):
                raise
            self._refused(_USERS, path, exc, f"TUYA_APP_SCHEMA {self._schema!r} to be an app of this project")
            return
        self._write(lambda c: api_usage.remember_path(c, _USERS, path, now))

    def _fill_states(self, inline: Listed) -> None:
        """Latest values of listed devices that never reported, marked as from the API (newer stream values win): a
        list's as of its page's answer, another's as of the status call's."""
        for device_id in self._read(lambda c: fleet.devices_without_state(c, inline)):
            values, at = inline[device_id]
            tid = "list"
            if values is None:
                self._archive.check()
                try:
                    status = self._client.device_status(device_id)
                except TuyaApiError as exc:
                    self._report.problems.append(f"status of {device_id}: {exc}")
                    if is_refusal(exc):
                        return
                    continue
                values, at, tid = tuple(status.values.items()), _at(status.t, self._clock()), status.tid
            if values:
                self._write(lambda c, d=device_id, v=values, a=at, t=tid: fleet.save_api_state(c, d, v, a, t))
                self._report.states_filled += 1
                self._on_progress(self._report)


def _users_walked_since(connection: Connection, path: str) -> datetime | None:
    """Where the walk back through the users may stop: a day before the last walk that reached its end began (it
    listed every user created before). None when none did: a walk cut short (the quota, an error, a crash) listed
    only the newest users, so the next one walks back to the app's first sign-up again."""
    table = ApiPath.__table__
    walked = connection.scalar(
        select(table.c.checked_at).where(table.c.purpose == _USERS, table.c.path == path, table.c.status == "ok")
    )
    return None if walked is None else walked - _USERS_OVERLAP
