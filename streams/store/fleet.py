"""SQL of the fleet's facts: the data-point catalog the worker reads, and what ``sync`` writes.

Owns every statement on ``data_points``, ``api_paths`` and ``api_usage``, and the OpenAPI's writes to ``devices``,
``users`` and ``device_state``. Small volumes (one row per device, product, data point or user), so SQLAlchemy Core
on the tables of ``models.tables``; the upserts follow the stream's "newer wins" rules (streams.store.statements).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from models.tables import DataPoint, Device
from streams.fleet.catalog import Catalog, PointSpec

__all__ = ["load_catalog"]


def _range(value: Any) -> tuple[str, ...] | None:
    return tuple(str(item) for item in value) if isinstance(value, list) else None


def load_catalog(connection: Connection) -> Catalog:
    """Every product's data points, and the product of every device whose product is known."""
    table = DataPoint.__table__
    points = [
        PointSpec(
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
            range=_range(row.range),
            reported=row.reported,
            commandable=row.commandable,
        )
        for row in connection.execute(select(table))
    ]
    devices = Device.__table__
    products = connection.execute(
        select(devices.c.device_id, devices.c.product_key).where(devices.c.product_key.is_not(None))
    )
    return Catalog(points, {device_id: product for device_id, product in products})
