"""The chart data of one device over a time window, computed in SQL so a long window stays a few hundred rows.

Owns three queries and their SQL on both dialects:

- ``numeric_buckets``: a device's numbers per code in time buckets (count, min, avg, max), bucket ``n`` of width
  ``w`` ms covering [n·w, (n+1)·w) ms since the Unix epoch, so buckets do not move as the window slides;
- ``state_changes``: a code's reports where its value changed (booleans, enums), and the value it had before;
- ``online_periods``: the ``device_online_periods`` view, clipped to the window.

Each filters ``device_status`` by device and time (``reported_key``) first, which reaches the device's series and
then their values by key (series, time); every value is a bound parameter. Values are raw, as Tuya reported them:
the caller scales a series once, with its data point's scale from ``device_points``. Raw points go through
``streams.store.query.status_history_rows`` (the CLI's ``history``). Never writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Integer, Row, String, TextClause, bindparam, case, select, text
from sqlalchemy.engine import Connection

from models.points import PointSpec
from models.tables import HISTORY_TIME, DataPoint, Device, DeviceStatus, JSONDocument, UtcDateTime
from models.tables import device_online_periods as periods_view
from streams.store.fleet import point_spec

__all__ = ["bucket_statement", "device_points", "numeric_buckets", "online_periods", "state_changes"]

# The bucket of a report: its time in whole milliseconds since the epoch, integer-divided by the width (SQLite's
# reported_key is those milliseconds); both databases skip values that are not JSON numbers (a text, a boolean)
# rather than reading them as 0.
_BUCKET_SQL = {
    "sqlite": (
        "reported_key / :width_ms",
        "CAST(value AS REAL)",
        "json_type(value) IN ('integer', 'real')",
    ),
    "postgresql": (
        "CAST(floor(extract(epoch FROM reported_at) * 1000 / :width_ms) AS BIGINT)",
        "CAST(CAST(value AS TEXT) AS DOUBLE PRECISION)",
        "json_typeof(value) = 'number'",
    ),
}

_BUCKETS = """
SELECT code, {bucket} AS bucket, COUNT(*) AS count, MIN({number}) AS min, AVG({number}) AS avg, MAX({number}) AS max
FROM device_status
WHERE device_id = :device_id AND reported_key >= :since AND reported_key < :until AND code IN :codes AND {is_number}
GROUP BY code, bucket
ORDER BY code, bucket
"""

# LAG over the code's reports in time order: a row is kept when its value differs from the one before it.
_CHANGES = """
SELECT reported_at, value FROM (
    SELECT reported_at, reported_key, value, message_id, item_index,
           LAG(CAST(value AS TEXT)) OVER (ORDER BY reported_key, message_id, item_index) AS previous
    FROM device_status
    WHERE device_id = :device_id AND reported_key >= :since AND reported_key < :until AND code = :code
) AS reports
WHERE previous IS NULL OR previous <> CAST(value AS TEXT)
ORDER BY reported_key, message_id, item_index
LIMIT :limit
"""


def _window_params(statement: TextClause) -> TextClause:
    return statement.bindparams(
        bindparam("device_id", type_=String()),
        bindparam("since", type_=HISTORY_TIME),
        bindparam("until", type_=HISTORY_TIME),
    )


def bucket_statement(dialect: str) -> TextClause:
    """The bucket query for ``dialect`` (``sqlite``, ``postgresql``); parameters device_id, since, until, codes
    (a list), width_ms."""
    bucket, number, is_number = _BUCKET_SQL[dialect]
    statement = text(_BUCKETS.format(bucket=bucket, number=number, is_number=is_number))
    statement = _window_params(statement).bindparams(bindparam("codes", expanding=True), bindparam("width_ms"))
    return statement.columns(code=String(), bucket=Integer(), count=Integer(), min=Float(), avg=Float(), max=Float())


def numeric_buckets(
    connection: Connection, device_id: str, codes: list[str], since: datetime, until: datetime, width_ms: int
) -> list[Row[Any]]:
    """Per code and bucket of ``width_ms``: code, bucket (its number), count, min, avg, max of the raw numbers
    reported in [since, until); in code then time order."""
    if not codes:
        return []
    params = {"device_id": device_id, "since": since, "until": until, "codes": codes, "width_ms": width_ms}
    return list(connection.execute(bucket_statement(connection.dialect.name), params))


def state_changes(
    connection: Connection, device_id: str, code: str, since: datetime, until: datetime, limit: int
) -> tuple[Row[Any] | None, list[Row[Any]]]:
    """The report of ``code`` in force at ``since`` (None if none), and at most ``limit`` reports in [since, until)
    that changed its value (the first one always counts); rows (reported_at, value)."""
    # reported_key is selected, so that SQLite orders each part of the view by its key and stops at the first row
    before = (
        select(DeviceStatus.reported_at, DeviceStatus.value, DeviceStatus.reported_key)
        .where(DeviceStatus.device_id == device_id, DeviceStatus.reported_key < since, DeviceStatus.code == code)
        .order_by(DeviceStatus.reported_key.desc())
        .limit(1)
    )
    statement = _window_params(text(_CHANGES)).bindparams(bindparam("code", type_=String()), bindparam("limit"))
    statement = statement.columns(reported_at=UtcDateTime(), value=JSONDocument())
    params = {"device_id": device_id, "since": since, "until": until, "code": code, "limit": limit}
    return connection.execute(before).first(), list(connection.execute(statement, params))


def online_periods(connection: Connection, device_id: str, since: datetime, until: datetime) -> list[Row[Any]]:
    """The device's online and offline periods that overlap [since, until), oldest first: state, started_at,
    ended_at (None for the current one)."""
    view = periods_view.c
    overlapping = (view.ended_at.is_(None)) | (view.ended_at > since)
    query = (
        select(view.state, view.started_at, view.ended_at)
        .where(view.device_id == device_id, view.started_at < until, overlapping)
        .order_by(view.started_at, case((view.state == "online", 1), else_=0), view.message_id)  # as the view does
    )
    return list(connection.execute(query))


def device_points(connection: Connection, device_id: str) -> dict[str, PointSpec]:
    """The data points of the device's product (from ``sync``), by code; empty when the archive has none."""
    query = (
        select(DataPoint.__table__)
        .join(Device, Device.product_key == DataPoint.product_id)
        .where(Device.device_id == device_id)
        .order_by(DataPoint.code)
    )
    return {row.code: point_spec(row) for row in connection.execute(query)}
