"""Archives for the web view's tests: a sensor seeded with chosen values, and the buckets Python expects of them.

Used by tests/integration/test_web.py (like tests/unit/store/databases.py, shared data builders live beside the
unit tests of their area).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from models.tables import DataPoint, Device, DeviceState
from streams.store.row_writer import RowWriter
from streams.store.rows import json_text
from streams.web.downsample import bucket_bounds, bucket_of

__all__ = ["assert_same_buckets", "busy_values", "expected_buckets", "seed_sensor"]

Buckets = list[tuple[str, int, list[float]]]


def seed_sensor(engine: Engine, device_id: str, name: str, code: str, values: list[tuple[datetime, object]],
                unit: str = "°C", type_: str = "Integer") -> None:  # fmt: skip
    """A device of its own product (``code``: ``type_`` with scale 1 and ``unit``), with these status values."""
    product, first, last = f"p-{device_id}", values[0][0], values[-1][0]
    device = {"device_id": device_id, "name": name, "product_key": product, "category": "<i>wsdcg</i>"}
    point = {"product_id": product, "code": code, "type": type_, "unit": unit, "scale": 1, "reported": True}
    # status rows as the store builds them (streams.store.rows.STATUS_COLUMNS)
    status = [
        (f"{device_id}:{n}", 0, device_id, code, json_text(value), None, at, None)
        for n, (at, value) in enumerate(values)
    ]
    latest = {"device_id": device_id, "code": code, "value": values[-1][1], "reported_at": last}
    with engine.begin() as connection:
        connection.execute(insert(Device), [device | {"first_seen_at": first, "last_seen_at": last}])
        connection.execute(insert(DataPoint), [point | {"commandable": False, "spec": {}, "synced_at": last}])
        RowWriter(connection).insert_status(status, stored="skip")
        connection.execute(insert(DeviceState), [latest | {"message_id": status[-1][0]}])


def busy_values(end: datetime, count: int = 3_000) -> list[tuple[datetime, object]]:
    """``count`` raw temperatures (200…349, °C × 10) about a second apart (a few ms off), all before ``end``."""
    return [(end - timedelta(seconds=count - n, milliseconds=n % 7), 200 + (n * 37) % 150) for n in range(count)]


def expected_buckets(values: list[tuple[datetime, object]], width_ms: int) -> Buckets:
    """Per bucket, by Python: its start, how many values, and [min, mean, max] in °C (raw ÷ 10)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for at, raw in values:
        groups[bucket_of(at, width_ms)].append(int(raw))  # type: ignore[call-overload]
    return [(bucket_bounds(n, width_ms)[0].isoformat(), len(v), [min(v) / 10, sum(v) / len(v) / 10, max(v) / 10])
            for n, v in sorted(groups.items())]  # fmt: skip


def assert_same_buckets(drawn: Buckets, expected: Buckets) -> None:
    assert [(start, count) for start, count, _values in drawn] == [(start, count) for start, count, _v in expected]
    expected_values = [v for *_, values in expected for v in values]
    # the mean is shown with the scale's digits + 2 (0.001 °C)
    assert [v for _s, _c, values in drawn for v in values] == pytest.approx(expected_values, abs=0.0006)
