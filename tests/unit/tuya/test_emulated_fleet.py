"""streams/tuya/emulated_fleet.py: the generated fleet is deterministic, varied and consistent with its specs.

Served over HTTP: tests/integration/test_emulator_listings.py, test_emulator_specs.py, test_emulator_users.py.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulated_users import MAX_WINDOW_S

NOW_S = 1_750_000_000


@pytest.fixture(scope="module")
def large() -> EmulatedFleet:
    return emulated_fleet(10_000, seed=1, now_s=NOW_S)


def _facts(fleet: EmulatedFleet) -> list[tuple]:
    devices = [
        tuple(getattr(device, f.name) for f in dataclasses.fields(device) if f.name != "log")
        for device in fleet.devices
    ]
    return [*devices, *(dataclasses.astuple(user) for user in fleet.users)]


def test_same_seed_same_fleet():
    assert _facts(emulated_fleet(300, seed=4, now_s=NOW_S)) == _facts(emulated_fleet(300, seed=4, now_s=NOW_S))


def test_another_seed_another_fleet():
    first, second = emulated_fleet(50, seed=4, now_s=NOW_S), emulated_fleet(50, seed=5, now_s=NOW_S)
    assert {d.device_id for d in first.devices}.isdisjoint({d.device_id for d in second.devices})


def test_ten_thousand_devices_with_unique_ids_uuids_and_keys(large):
    assert len(large.devices) == 10_000
    for name in ("device_id", "uuid", "local_key"):
        assert len({getattr(device, name) for device in large.devices}) == 10_000
    assert all(len(device.device_id) == 22 for device in large.devices)


def test_devices_spread_over_every_product_and_many_owners(large):
    counts = Counter(device.product_id for device in large.devices)
    assert set(counts) == {product.product_id for product in large.products} and len(counts) == 6
    assert len({device.uid for device in large.devices}) > 1000
    assert len(large.users) == 2000


def test_products_cover_scales_units_enums_and_booleans(large):
    points = [point for product in large.products for point in (*product.functions, *product.reported)]
    integers = [point.values for point in points if point.type == "Integer"]
    assert {values["scale"] for values in integers} >= {0, 1, 2, 3}
    assert {values["unit"] for values in integers} >= {"℃", "%", "W", "V", "kWh"}
    assert {"Enum", "Boolean"} <= {point.type for point in points}
    assert any(point.write_only for point in points)


def test_devices_of_a_product_share_its_points(large):
    by_product = {product.product_id: product for product in large.products}
    for device in large.devices[:200]:
        assert device.functions is by_product[device.product_id].functions
        assert device.reported is by_product[device.product_id].reported


def test_initial_status_fits_the_specification(large):
    for device in large.devices[:600]:
        points = {point.code: point for point in (*device.functions, *device.reported)}
        readable = {code for code, point in points.items() if not point.write_only}
        assert set(device.status) == readable
        assert all(points[code].refusal(value) == 0 for code, value in device.status.items())


def test_times_are_seconds_in_order(large):
    users = {user.uid: user for user in large.users}
    for device in large.devices:
        owner = users[device.uid]
        assert owner.create_time <= device.create_time <= device.active_time <= device.update_time <= NOW_S


def test_users_were_created_over_more_than_twelve_30_day_windows(large):
    windows = {(NOW_S - user.create_time) // MAX_WINDOW_S for user in large.users}
    assert len(windows) > 12
    assert all(user.create_time <= user.update_time <= NOW_S for user in large.users)


def test_some_names_are_not_ascii_and_time_zones_vary(large):
    assert any(not device.name.isascii() for device in large.devices)
    assert len({device.time_zone for device in large.devices}) > 5


def test_more_products_than_templates_get_their_own_ids_and_names():
    fleet = emulated_fleet(40, products=8, seed=2, now_s=NOW_S)
    assert len({product.product_id for product in fleet.products}) == 8
    assert len({product.product_name for product in fleet.products}) == 8


@pytest.mark.parametrize("arguments", [{"devices": -1}, {"devices": 5, "products": 0}, {"devices": 5, "users": 0}])
def test_impossible_sizes_refused(arguments):
    with pytest.raises(ValueError):
        emulated_fleet(**arguments, now_s=NOW_S)
