"""SQL of the fleet's facts: the data-point catalog the worker reads, and what ``sync`` writes.

Owns every statement on ``data_points``, and the OpenAPI's writes to ``devices``, ``users`` and ``device_state``.
Small volumes (one row per device, product, data point or user), so SQLAlchemy Core on the tables of
``models.tables``. The upserts keep the stream's "newer wins" rules (streams.store.statements): a fact from the
OpenAPI is true as of Tuya's time of the answer, so a later message still overrides it and an older one does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.engine import Connection

from models.points import PointSpec
from models.tables import DataPoint, Device, DeviceState, DeviceStatus, StatusSeries, User
from streams.fleet.catalog import Catalog
from streams.store.dialect import chunks, insert
from streams.store.history import VALUE_TABLES
from streams.tuya.listings import ListedDevice, ListedUser

__all__ = [
    "devices_without_state",
    "known_uids",
    "load_catalog",
    "mark_gone",
    "name_unnamed_items",
    "point_spec",
    "product_devices",
    "save_api_state",
    "save_devices",
    "save_points",
    "save_users",
    "state_upsert",
]

_DEVICES = Device.__table__
_USERS = User.__table__
_POINTS = DataPoint.__table__
_STATE = DeviceState.__table__
_STATUS = DeviceStatus.__table__
_SERIES = StatusSeries.__table__


def point_spec(row: Any) -> PointSpec:
    """A ``data_points`` row as the PointSpec the catalog, the rules and the web view use."""
    return PointSpec(
        product_id=row.product_id,
        code=row.code,
        type=row.type,
        dp_id=row.dp_id,
        name=row.name,
        unit=row.unit,
        scale=row.scale,
        min=row.min,
        max=row.max,
        step=row.step,
        range=tuple(str(item) for item in row.range) if isinstance(row.range, list) else None,
        reported=row.reported,
        commandable=row.commandable,
    )


def load_catalog(connection: Connection) -> Catalog:
    """Every product's data points, and the product of every device whose product is known."""
    points = [point_spec(row) for row in connection.execute(select(_POINTS))]
    devices = connection.execute(select(_DEVICES.c.device_id, _DEVICES.c.product_key, _DEVICES.c.synced_at)).all()
    products = {device_id: product for device_id, product, _synced in devices if product is not None}
    return Catalog(points, products, synced=[device_id for device_id, _product, synced in devices if synced])


def _newer(stored: Any, incoming: Any) -> ColumnElement[bool]:
    return and_(incoming.is_not(None), or_(stored.is_(None), incoming > stored))


def _if_newer(statement: Any, stamp: str, *columns: str) -> dict[str, Any]:
    """SET clauses taking ``columns`` and ``stamp`` from the new row only when its ``stamp`` is later."""
    stored, incoming = _DEVICES.c, statement.excluded
    newer = _newer(stored[stamp], incoming[stamp])
    return {name: case((newer, incoming[name]), else_=stored[name]) for name in (*columns, stamp)}


# What the device list may change of a device the archive has, and how a change is counted.
_LISTED = ("product_key", "name", "online", "owner_uid", "category", "product_name", "time_zone")
_TUYA_TIMES = ("created_at", "activated_at", "updated_at")


def _device_row(device: ListedDevice, at: datetime) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "product_key": device.product_id,
        "name": device.name,
        "name_updated_at": at if device.name is not None else None,
        "online": device.online,
        "online_changed_at": at if device.online is not None else None,
        "owner_uid": device.owner_uid,
        "owner_updated_at": at if device.owner_uid is not None else None,
        "first_seen_at": at,
        "last_seen_at": at,
        "report_count": 0,
        "category": device.category,
        "product_name": device.product_name,
        "time_zone": device.time_zone,
        "created_at": device.created_at,
        "activated_at": device.activated_at,
        "updated_at": device.updated_at,
        "synced_at": at,
    }


def _device_upsert(connection: Connection) -> Any:
    statement = insert(connection, _DEVICES)
    stored, incoming = _DEVICES.c, statement.excluded
    keep_or_take = {name: func.coalesce(incoming[name], stored[name]) for name in (*_LISTED[4:], *_TUYA_TIMES)}
    return statement.on_conflict_do_update(
        index_elements=[stored.device_id],
        set_={
            "product_key": func.coalesce(incoming.product_key, stored.product_key),
            **_if_newer(statement, "name_updated_at", "name"),
            **_if_newer(statement, "online_changed_at", "online"),
            **_if_newer(statement, "owner_updated_at", "owner_uid"),
            # Listed now, so it exists: a deletion before the answer is over (one after it stands).
            "deleted_at": case((stored.deleted_at < incoming.synced_at, None), else_=stored.deleted_at),
            **keep_or_take,
            "synced_at": incoming.synced_at,
        },
    )


def save_devices(connection: Connection, devices: Sequence[ListedDevice], at: datetime) -> tuple[int, int]:
    """Upsert listed devices as of ``at`` (Tuya's time of the answer); returns (new, changed) counts."""
    unique = list({device.device_id: device for device in devices}.values())
    if not unique:
        return 0, 0
    before = _listed_facts(connection, [device.device_id for device in unique])
    connection.execute(_device_upsert(connection), [_device_row(device, at) for device in unique])
    after = _listed_facts(connection, list(before))
    new = len(unique) - len(before)
    changed = sum(1 for device_id, facts in before.items() if after.get(device_id) != facts)
    return new, changed


def _listed_facts(connection: Connection, ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    columns = [_DEVICES.c[name] for name in (*_LISTED, "deleted_at")]
    facts: dict[str, tuple[Any, ...]] = {}
    for chunk in chunks(ids):
        query = select(_DEVICES.c.device_id, *columns).where(_DEVICES.c.device_id.in_(chunk))
        facts.update((row[0], tuple(row[1:])) for row in connection.execute(query))
    return facts


def mark_gone(
    connection: Connection, listed_before: datetime, at: datetime, *, owners: Sequence[str] | None = None
) -> int:
    """Devices a complete listing no longer shows (synced before, not in this listing): deleted as of ``at``.
    ``owners``: the listing was of these uids' devices only, so only theirs can be gone."""
    gone = update(_DEVICES).where(_DEVICES.c.synced_at < listed_before, _DEVICES.c.deleted_at.is_(None))
    if owners is None:
        return connection.execute(gone.values(deleted_at=at)).rowcount
    return sum(
        connection.execute(gone.where(_DEVICES.c.owner_uid.in_(chunk)).values(deleted_at=at)).rowcount
        for chunk in chunks(owners)
    )


def product_devices(connection: Connection) -> dict[str, str]:
    """One device of every product the archive knows (not deleted first), to ask the product's specification of."""
    query = select(_DEVICES.c.product_key, _DEVICES.c.device_id).where(_DEVICES.c.product_key.is_not(None))
    chosen: dict[str, str] = {}
    for product, device_id in connection.execute(query.order_by(_DEVICES.c.deleted_at.is_not(None))):
        chosen.setdefault(product, device_id)
    return chosen


def save_points(
    connection: Connection, points: Sequence[PointSpec], specs: dict[str, dict[str, Any]], at: datetime
) -> None:
    """Replace one product's data points (a point the new specification lacks is removed)."""
    if not points:
        return
    product = points[0].product_id
    connection.execute(_POINTS.delete().where(_POINTS.c.product_id == product))
    rows = [
        {
            "product_id": point.product_id,
            "code": point.code,
            "dp_id": point.dp_id,
            "name": point.name,
            "type": point.type,
            "unit": point.unit,
            "scale": point.scale,
            "min": point.min,
            "max": point.max,
            "step": point.step,
            "range": list(point.range) if point.range is not None else None,
            "reported": point.reported,
            "commandable": point.commandable,
            "spec": specs.get(point.code, {}),
            "synced_at": at,
        }
        for point in {point.code: point for point in points}.values()
    ]
    connection.execute(_POINTS.insert(), rows)


def save_users(connection: Connection, users: Sequence[ListedUser], at: datetime) -> tuple[int, int]:
    """Upsert listed users; the newest of ``updated_at`` wins ``data``, as for users seen in the stream (the list's
    at an equal time).

    Returns (new, changed) counts.
    """
    unique = list({user.uid: user for user in users}.values())
    if not unique:
        return 0, 0
    ids = [user.uid for user in unique]
    before = _user_facts(connection, ids)
    statement = insert(connection, _USERS)
    stored, incoming = _USERS.c, statement.excluded
    # As new, too: a user the stream saw sign up has its event's time as update_time, and the event's data is less
    # than the list's (no email, mobile or country code).
    newer = or_(_newer(stored.updated_at, incoming.updated_at), incoming.updated_at == stored.updated_at)
    statement = statement.on_conflict_do_update(
        index_elements=[stored.uid],
        set_={
            "registered_at": func.coalesce(stored.registered_at, incoming.registered_at),
            "data": case((newer, incoming.data), else_=stored.data),
            "updated_at": case((newer, incoming.updated_at), else_=stored.updated_at),
            "username": func.coalesce(incoming.username, stored.username),
            "synced_at": incoming.synced_at,
        },
    )
    rows = [
        {
            "uid": user.uid,
            "registered_at": user.registered_at,
            "deleted_at": None,
            "updated_at": user.updated_at or user.registered_at or at,
            "data": user.data,
            "username": user.username,
            "synced_at": at,
        }
        for user in unique
    ]
    connection.execute(statement, rows)
    after = _user_facts(connection, list(before))
    return len(unique) - len(before), sum(1 for uid, facts in before.items() if after.get(uid) != facts)


def _user_facts(connection: Connection, uids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    facts: dict[str, tuple[Any, ...]] = {}
    columns = (_USERS.c.registered_at, _USERS.c.updated_at, _USERS.c.username, _USERS.c.data)
    for chunk in chunks(uids):
        query = select(_USERS.c.uid, *columns).where(_USERS.c.uid.in_(chunk))
        facts.update((row[0], tuple(row[1:])) for row in connection.execute(query))
    return facts


def known_uids(connection: Connection) -> list[str]:
    """Owners of known devices, then users: whose device lists the per-user family can ask for."""
    owners = connection.scalars(select(_DEVICES.c.owner_uid).where(_DEVICES.c.owner_uid.is_not(None)).distinct())
    users = connection.scalars(select(_USERS.c.uid).where(_USERS.c.deleted_at.is_(None)))
    return list(dict.fromkeys([*owners, *users]))


def devices_without_state(connection: Connection, device_ids: Iterable[str]) -> list[str]:
    """Which of ``device_ids`` have no latest value at all: they never reported through the stream."""
    ids = sorted(set(device_ids))
    with_state: set[str] = set()
    for chunk in chunks(ids):
        with_state.update(connection.scalars(select(_STATE.c.device_id).where(_STATE.c.device_id.in_(chunk))))
    return [device_id for device_id in ids if device_id not in with_state]


def state_upsert(connection: Connection) -> Any:
    """``device_state`` rows that replace a stored one only when newer: the store's ordering rule."""
    statement = insert(connection, _STATE)
    stored, incoming = _STATE.c, statement.excluded
    newer = or_(
        incoming.reported_at > stored.reported_at,
        and_(incoming.reported_at == stored.reported_at, incoming.message_id > stored.message_id),
    )
    columns = ("value", "dp_id", "reported_at", "message_id", "source")
    return statement.on_conflict_do_update(
        index_elements=[stored.device_id, stored.code], set_={name: incoming[name] for name in columns}, where=newer
    )


def save_api_state(
    connection: Connection, device_id: str, values: Sequence[tuple[str, Any]], at: datetime, tid: str
) -> int:
    """A device's status as the OpenAPI answered it at ``at``: latest values marked ``source = 'api'``."""
    rows = [
        {
            "device_id": device_id,
            "code": code,
            "value": value,
            "dp_id": None,
            "reported_at": at,
            "message_id": f"api:{tid}",
            "source": "api",
        }
        for code, value in dict(values).items()
    ]
    if rows:
        connection.execute(state_upsert(connection), rows)
    return len(rows)


def _move_to_series(connection: Connection, codes: dict[tuple[str, int], str]) -> None:
    """Move each device's unnamed values of a DP id into the series of the code it now has."""
    if not codes:
        return
    named = sorted({(device_id, code) for (device_id, _dp), code in codes.items()})
    rows = [{"device_id": device_id, "code": code} for device_id, code in named]
    connection.execute(insert(connection, _SERIES).on_conflict_do_nothing(), rows)
    devices = sorted({device_id for device_id, _code in named})
    series = {
        (row.device_id, row.code): row.series_id
        for chunk in chunks(devices)
        for row in connection.execute(select(_SERIES).where(_SERIES.c.device_id.in_(chunk)))
    }
    for (device_id, dp_id), code in codes.items():
        for values in VALUE_TABLES:
            moved = and_(values.c.series_id == series[device_id, None], values.c.dp_id == dp_id)
            connection.execute(update(values).where(moved).values(series_id=series[device_id, code]))


def name_unnamed_items(connection: Connection) -> int:
    """Give status items that carried only a DP id the code their product's specification now names.

    Their device's latest state is updated too, by the usual ordering rule. Returns how many items were named.
    """
    unnamed = connection.execute(
        select(_STATUS.c.message_id, _STATUS.c.item_index, _STATUS.c.device_id, _POINTS.c.code, _STATUS.c.value)
        .add_columns(_STATUS.c.dp_id, _STATUS.c.reported_at)
        .join(_DEVICES, _DEVICES.c.device_id == _STATUS.c.device_id)
        .join(_POINTS, and_(_POINTS.c.product_id == _DEVICES.c.product_key, _POINTS.c.dp_id == _STATUS.c.dp_id))
        .where(_STATUS.c.code.is_(None))
    ).all()
    _move_to_series(connection, {(row.device_id, row.dp_id): row.code for row in unnamed})
    newest: dict[tuple[str, str], Any] = {}
    for row in unnamed:
        current = newest.get((row.device_id, row.code))
        if current is None or (row.reported_at, row.message_id) > (current.reported_at, current.message_id):
            newest[(row.device_id, row.code)] = row
    if newest:
        connection.execute(
            state_upsert(connection),
            [
                {
                    "device_id": row.device_id,
                    "code": row.code,
                    "value": row.value,
                    "dp_id": row.dp_id,
                    "reported_at": row.reported_at,
                    "message_id": row.message_id,
                    "source": "stream",
                }
                for row in newest.values()
            ],
        )
    return len(unnamed)
