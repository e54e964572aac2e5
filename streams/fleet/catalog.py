"""What the archive knows about the fleet's data points: each product's specification and each device's product.

Owns the in-memory snapshot the worker's hot path reads (a status item's code from its DP id, a value's scale and
unit) and the unit rules: an Integer's physical value is the reported number ÷ 10^scale (Home Assistant's
``IntegerTypeData.scale_value``), and Tuya's ``℃``/``℉`` are the ``°C``/``°F`` people write. A Catalog never
changes once built: ``sync`` builds a new one and the worker swaps the reference, so readers need no lock. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from models.points import PointSpec, normalize_unit
from models.records import DeviceEvent, Record, UserEvent

__all__ = ["SYNC_EVENTS", "Catalog", "CatalogRef", "PointSpec", "devices_to_sync", "normalize_unit", "scaled"]


def scaled(value: Any, point: PointSpec | None) -> Any:
    """``value`` in physical units: a number ÷ 10^scale for an Integer point; anything else unchanged."""
    if point is None or point.divisor == 1 or isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return round(value / point.divisor, point.digits)


class Catalog:
    """An immutable snapshot: points by (product, code), codes by (product, DP id), products by device."""

    __slots__ = ("_by_code", "_by_dp", "_products", "device_ids", "synced")

    def __init__(
        self,
        points: Iterable[PointSpec] = (),
        device_products: Mapping[str, str] | None = None,
        synced: Iterable[str] = (),
    ) -> None:
        by_code: dict[tuple[str, str], PointSpec] = {}
        by_dp: dict[tuple[str, int], str] = {}
        for point in points:
            by_code[(point.product_id, point.code)] = point
            if point.dp_id is not None:
                by_dp[(point.product_id, point.dp_id)] = point.code
        self._by_code = by_code
        self._by_dp = by_dp
        self._products = dict(device_products or {})
        #: The devices whose product the archive knows (``devices.product_key`` is set).
        self.device_ids = frozenset(self._products)
        #: The devices ``sync`` has seen in the OpenAPI (``devices.synced_at`` is set).
        self.synced = frozenset(synced)

    def __len__(self) -> int:
        return len(self._by_code)

    def product_of(self, device_id: str, product_key: str | None = None) -> str | None:
        """The device's product: ``product_key`` when the message named it, else what the archive knows."""
        return product_key or self._products.get(device_id)

    def point(self, device_id: str, code: str, product_key: str | None = None) -> PointSpec | None:
        """The specification of ``code`` on the device's product, or None when the archive has none."""
        product = self.product_of(device_id, product_key)
        return None if product is None else self._by_code.get((product, code))

    def code_of(self, device_id: str, dp_id: int, product_key: str | None = None) -> str | None:
        """The code of DP ``dp_id`` on the device's product, or None when no specification names it."""
        product = self.product_of(device_id, product_key)
        return None if product is None else self._by_dp.get((product, dp_id))

    def points_of(self, product_id: str) -> list[PointSpec]:
        """Every data point of ``product_id`` (none when its specification is unknown)."""
        return [point for (product, _code), point in self._by_code.items() if product == product_id]

    def products(self) -> set[str]:
        """The products that have a specification."""
        return {product for product, _code in self._by_code}


#: Device events after which the OpenAPI knows more than the message said (owner, name, whether it still exists).
SYNC_EVENTS = frozenset({"bound", "unbound", "name_updated", "deleted", "transferred"})


def devices_to_sync(records: Iterable[Record], catalog: Catalog) -> set[str]:
    """Devices a batch shows that ``sync`` has never seen, and devices a lifecycle event changed."""
    wanted: set[str] = set()
    synced = catalog.synced
    for record in records:
        if isinstance(record, UserEvent):
            continue
        device_id = record.device_id
        if device_id is None:
            continue
        if device_id not in synced or (isinstance(record, DeviceEvent) and record.event in SYNC_EVENTS):
            wanted.add(device_id)
    return wanted


class CatalogRef:
    """The worker's current Catalog: read on every batch, replaced whole after each sync (one reference swap)."""

    __slots__ = ("_catalog", "generation")

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog if catalog is not None else Catalog()  # an empty Catalog is falsy
        self.generation = 0  # how many times it was replaced: a writer process reloads its copy when this moves

    def get(self) -> Catalog:
        return self._catalog

    def set(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.generation += 1
