"""streams/fleet/catalog.py and models/points.py: physical values, unit spellings, the Catalog's look-ups and which
devices a batch wants synced (partner: tests/unit/fleet/test_background.py, which reloads a Catalog after a sync)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from models.points import PointSpec, normalize_unit
from models.records import DeviceEvent, Record, StatusReported, UnknownMessage, UserEvent
from streams.fleet.catalog import SYNC_EVENTS, Catalog, CatalogRef, devices_to_sync, scaled

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
KNOWN = "bf1e8a0cd2e4a1b2c3x9kq"
STRANGER = "bf9f7e6dc5b4a3f2e1d0zz"
PRODUCT_A = "keyjup78v54myhan"
PRODUCT_B = "yfemiswbgjhddhcf"


def point(**overrides: Any) -> PointSpec:
    fields: dict[str, Any] = {
        "product_id": PRODUCT_A,
        "code": "cur_voltage",
        "type": "Integer",
        "dp_id": 20,
        "unit": "V",
        "scale": 1,
        "min": 0.0,
        "max": 5000.0,
        "step": 1.0,
    }
    fields.update(overrides)
    return PointSpec(**fields)


def status(device: str = KNOWN, code: str | None = "cur_voltage", value: Any = 2343) -> StatusReported:
    return StatusReported("100:1:0:-1", 0, device, PRODUCT_A, code, value, 20, T0, "data1")


def device_event(event: str, device: str = KNOWN) -> DeviceEvent:
    return DeviceEvent(
        message_id="100:2:0:-1",
        device_id=device,
        product_key=PRODUCT_A,
        event=event,
        biz_code=event,
        protocol=20,
        occurred_at=T0,
        data={},
    )


def user_event(event: str) -> UserEvent:
    return UserEvent(
        message_id="100:3:0:-1",
        uid="eu1700000000000AbCdE",
        event=event,
        biz_code=event,
        occurred_at=T0,
        data={"uid": "eu1700000000000AbCdE"},
    )


def unknown(device: str | None) -> UnknownMessage:
    return UnknownMessage(
        message_id="100:4:0:-1", protocol=34, biz_code="roomNameUpdate", device_id=device, occurred_at=T0, payload={}
    )


def synced_catalog() -> Catalog:
    """A catalog in which ``sync`` has seen KNOWN (of PRODUCT_A) and nothing else."""
    return Catalog([point()], {KNOWN: PRODUCT_A}, synced=[KNOWN])


# scaled


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        (2343, 1, 234.3),
        (2345, 2, 23.45),
        (1, 3, 0.001),
        (123456789, 3, 123456.789),
        (-125, 1, -12.5),
        (-5, 2, -0.05),
        (2343.0, 1, 234.3),
        (0, 2, 0.0),
    ],
)
def test_scaled_divides_integer_point_value_by_ten_to_the_scale(value: float, scale: int, expected: float):
    assert scaled(value, point(scale=scale)) == expected


def test_scaled_keeps_value_and_its_type_at_scale_zero():
    result = scaled(2343, point(scale=0))
    assert (result, type(result)) == (2343, int)


def test_scaled_keeps_value_at_negative_scale():
    assert scaled(2343, point(scale=-1)) == 2343


@pytest.mark.parametrize("value", [True, False, "2343", None, [2343], {"v": 2343}], ids=repr)
def test_scaled_keeps_values_that_are_not_numbers(value: Any):
    assert scaled(value, point(scale=2)) is value


@pytest.mark.parametrize("type_", ["Boolean", "Enum", "String", "Json", "Raw", "Bitmap", "value"])
def test_scaled_keeps_value_of_point_that_is_not_integer(type_: str):
    assert scaled(2343, point(type=type_, scale=1)) == 2343


def test_scaled_keeps_value_without_point():
    assert scaled(2343, None) == 2343


# normalize_unit


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("℃", "°C"),
        ("℉", "°F"),
        ("°c", "°C"),
        ("°f", "°F"),
        ("°C", "°C"),
        (" ℃ ", "°C"),
        ("kWh", "kWh"),
        (" % ", "%"),
        ("", None),
        ("   ", None),
        (None, None),
        (5, None),
    ],
)
def test_normalize_unit_writes_unit_as_people_do(unit: Any, expected: str | None):
    assert normalize_unit(unit) == expected


def test_point_spec_is_numeric_only_for_integer():
    assert [point(type=t).numeric for t in ("Integer", "Boolean", "Enum")] == [True, False, False]


# Catalog


def two_product_points() -> list[PointSpec]:
    """PRODUCT_A's voltage (DP 20, scale 1) and note (no DP id); PRODUCT_B's voltage (DP 6, scale 0) and switch."""
    return [
        point(),
        point(code="note", type="String", dp_id=None, unit=None, scale=0),
        point(product_id=PRODUCT_B, dp_id=6, scale=0),
        point(product_id=PRODUCT_B, code="switch", type="Boolean", dp_id=1, unit=None, scale=0),
    ]


def two_product_catalog() -> Catalog:
    return Catalog(two_product_points(), {KNOWN: PRODUCT_A}, synced=[KNOWN])


def test_catalog_product_of_is_the_archives_without_product_key():
    assert two_product_catalog().product_of(KNOWN) == PRODUCT_A


def test_catalog_product_of_takes_product_key_of_message_over_archives():
    assert two_product_catalog().product_of(KNOWN, PRODUCT_B) == PRODUCT_B


def test_catalog_product_of_falls_back_to_archive_for_blank_product_key():
    assert two_product_catalog().product_of(KNOWN, "") == PRODUCT_A


def test_catalog_product_of_is_none_for_unknown_device_without_product_key():
    assert two_product_catalog().product_of(STRANGER) is None


def test_catalog_point_finds_code_on_archives_product():
    assert two_product_catalog().point(KNOWN, "cur_voltage") == point()


def test_catalog_point_finds_code_on_messages_product_over_archives():
    assert two_product_catalog().point(KNOWN, "cur_voltage", PRODUCT_B) == point(
        product_id=PRODUCT_B, code="cur_voltage", dp_id=6, scale=0
    )


def test_catalog_point_is_none_for_unknown_code_or_product():
    catalog = two_product_catalog()
    assert catalog.point(KNOWN, "switch") is None  # a code of PRODUCT_B only
    assert catalog.point(STRANGER, "cur_voltage") is None
    assert catalog.point(KNOWN, "cur_voltage", "otherproduct0000") is None


def test_catalog_code_of_names_dp_id_on_archives_product():
    assert two_product_catalog().code_of(KNOWN, 20) == "cur_voltage"


def test_catalog_code_of_names_dp_id_on_messages_product_over_archives():
    catalog = two_product_catalog()
    assert (catalog.code_of(KNOWN, 1, PRODUCT_B), catalog.code_of(KNOWN, 6, PRODUCT_B)) == ("switch", "cur_voltage")
    assert catalog.code_of(KNOWN, 20, PRODUCT_B) is None


def test_catalog_code_of_is_none_for_unknown_dp_id_or_device():
    catalog = two_product_catalog()
    assert catalog.code_of(KNOWN, 99) is None
    assert catalog.code_of(STRANGER, 20) is None


def test_catalog_counts_points_and_lists_products_devices_and_synced():
    catalog = Catalog(two_product_points(), {KNOWN: PRODUCT_A, STRANGER: PRODUCT_B}, synced=[KNOWN])
    assert (len(catalog), catalog.products()) == (4, {PRODUCT_A, PRODUCT_B})
    assert (catalog.device_ids, catalog.synced) == (frozenset({KNOWN, STRANGER}), frozenset({KNOWN}))


def test_empty_catalog_knows_nothing():
    catalog = Catalog()
    assert (len(catalog), catalog.products(), catalog.device_ids, catalog.synced) == (
        0,
        set(),
        frozenset(),
        frozenset(),
    )
    assert catalog.point(KNOWN, "cur_voltage", PRODUCT_A) is None


def test_catalog_ref_hands_out_the_catalog_last_set():
    first, second = two_product_catalog(), synced_catalog()
    ref = CatalogRef(first)
    assert ref.get() is first
    ref.set(second)
    assert ref.get() is second


def test_catalog_ref_starts_with_empty_catalog_without_one():
    assert len(CatalogRef().get()) == 0


def test_catalog_ref_keeps_catalog_of_synced_devices_without_points():
    catalog = Catalog([], {KNOWN: PRODUCT_A}, synced=[KNOWN])
    ref = CatalogRef(catalog)
    assert ref.get() is catalog
    assert devices_to_sync([status(KNOWN)], ref.get()) == set()


# devices_to_sync


def test_devices_to_sync_wants_device_sync_never_saw():
    assert devices_to_sync([status(STRANGER)], synced_catalog()) == {STRANGER}


def test_devices_to_sync_wants_device_whose_product_is_known_but_was_never_synced():
    catalog = Catalog([point()], {KNOWN: PRODUCT_A, STRANGER: PRODUCT_A}, synced=[KNOWN])
    assert devices_to_sync([status(STRANGER)], catalog) == {STRANGER}


def test_devices_to_sync_does_not_want_status_report_of_known_device():
    assert devices_to_sync([status(KNOWN), status(KNOWN, code=None)], synced_catalog()) == set()


@pytest.mark.parametrize("event", ["bound", "unbound", "name_updated", "deleted", "transferred"])
def test_devices_to_sync_wants_known_device_after_lifecycle_event(event: str):
    assert devices_to_sync([device_event(event)], synced_catalog()) == {KNOWN}


def test_sync_events_are_the_five_lifecycle_events():
    assert frozenset({"bound", "unbound", "name_updated", "deleted", "transferred"}) == SYNC_EVENTS


@pytest.mark.parametrize("event", ["online", "offline", "dp_name_updated", "upgrade_status", "shared", "frozen"])
def test_devices_to_sync_does_not_want_known_device_after_other_event(event: str):
    assert devices_to_sync([device_event(event)], synced_catalog()) == set()


@pytest.mark.parametrize("event", ["registered", "updated", "deleted"])
def test_devices_to_sync_ignores_user_events(event: str):
    assert devices_to_sync([user_event(event)], Catalog()) == set()


def test_devices_to_sync_wants_device_of_unknown_message_and_ignores_one_without_device():
    assert devices_to_sync([unknown(STRANGER), unknown(None)], synced_catalog()) == {STRANGER}


def test_devices_to_sync_wants_each_device_of_a_batch_once():
    records: list[Record] = [
        status(KNOWN),
        status(STRANGER),
        status(STRANGER),
        device_event("online"),
        device_event("name_updated"),
        user_event("registered"),
        device_event("bound", STRANGER),
    ]
    assert devices_to_sync(records, synced_catalog()) == {KNOWN, STRANGER}


def test_devices_to_sync_is_empty_for_empty_batch():
    assert devices_to_sync([], Catalog()) == set()
