"""What the archive knows about the fleet's data points: each product's specification and each device's product.

Owns the in-memory snapshot the worker's hot path reads (a status item's code from its DP id, a value's scale and
unit) and the unit rules: an Integer's physical value is the reported number ÷ 10^scale (Home Assistant's
``IntegerTypeData.scale_value``), and Tuya's ``℃``/``℉`` are the ``°C``/``°F`` people write. A Catalog never
changes once built: ``sync`` builds a new one and the worker swaps the reference, so readers need no lock. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

__all__ = ["Catalog", "CatalogRef", "PointSpec", "normalize_unit", "scaled"]

# Tuya writes the degree signs as one character (SPEC.md §10.2); people and Home Assistant write two.
_UNIT_SPELLINGS = {"℃": "°C", "℉": "°F", "°c": "°C", "°f": "°F"}


def normalize_unit(unit: Any) -> str | None:
    """The unit as people write it (``℃`` → ``°C``); None for no unit (absent or blank)."""
    if not isinstance(unit, str) or not unit.strip():
        return None
    text = unit.strip()
    return _UNIT_SPELLINGS.get(text, text)


class PointSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One data point of one product, as the ``data_points`` table keeps it."""

    product_id: str
    code: str
    type: str
    dp_id: int | None = None
    name: str | None = None
    unit: str | None = None
    scale: int = 0
    min: float | None = None
    max: float | None = None
    step: float | None = None
    range: tuple[str, ...] | None = None
    reported: bool = True
    commandable: bool = False

    @property
    def numeric(self) -> bool:
        """Whether the point reports numbers that have a physical value (Tuya's Integer, the thing model's value)."""
        return self.type == "Integer"


def scaled(value: Any, point: PointSpec | None) -> Any:
    """``value`` in physical units: a number ÷ 10^scale for an Integer point; anything else unchanged."""
    if point is None or not point.numeric or point.scale <= 0:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return round(value / 10**point.scale, point.scale)


class Catalog:
    """An immutable snapshot: points by (product, code), codes by (product, DP id), products by device."""

    __slots__ = ("_by_code", "_by_dp", "_products", "device_ids")

    def __init__(self, points: Iterable[PointSpec] = (), device_products: Mapping[str, str] | None = None) -> None:
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

    def products(self) -> set[str]:
        """The products that have a specification."""
        return {product for product, _code in self._by_code}


class CatalogRef:
    """The worker's current Catalog: read on every batch, replaced whole after each sync (one reference swap)."""

    __slots__ = ("_catalog",)

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog or Catalog()

    def get(self) -> Catalog:
        return self._catalog

    def set(self, catalog: Catalog) -> None:
        self._catalog = catalog
