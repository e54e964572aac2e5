"""streams/tuya/emulated_sim.py and the ProductPoint of streams/sim/products.py: the emulator serves the simulator's
fleet, with specifications that fit the values the simulator generates.

The demo that uses both: tests/integration/test_demo.py.
"""

from __future__ import annotations

from random import Random

import pytest

from streams.sim.fleet import Fleet
from streams.sim.products import PLUG, PRODUCTS, SENSOR, SWITCH, Product
from streams.tuya.emulated_sim import sim_data_points, sim_emulated_devices, sim_users
from streams.tuya.emulated_specs import specification
from tests.conftest import load_vectors

ACCESS_KEY = load_vectors()["pulsar_auth"]["access_key"]
NOW_S = 1_750_000_000


@pytest.fixture
def fleet() -> Fleet:
    return Fleet(ACCESS_KEY, 30, clock=lambda: NOW_S * 1000, seed=3)


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda product: product.kind)
def test_every_data_point_has_a_specification(product: Product):
    assert set(product.points) == set(product.dp_ids)


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda product: product.kind)
def test_simulated_values_stay_within_their_specification(product: Product):
    functions, reported = sim_data_points(product)
    points = {point.code: point for point in (*functions, *reported)}
    rng = Random(5)
    for _ in range(20):
        readings = product.initial(rng)
        for _ in range(200):
            readings = product.step(readings, rng)
            refused = {code: value for code, value in readings.items() if points[code].refusal(value)}
            assert refused == {}


def test_raw_integer_units_carry_their_scale():
    def values(product: Product, code: str) -> tuple[str, int]:
        spec = product.points[code]
        return spec.unit, spec.scale

    assert values(SENSOR, "temp_current") == ("℃", 1)
    assert values(PLUG, "cur_power") == ("W", 1)
    assert values(PLUG, "cur_voltage") == ("V", 1)
    assert values(PLUG, "cur_current") == ("mA", 0)
    assert values(PLUG, "add_ele") == ("kWh", 3)
    assert values(SENSOR, "humidity_value") == ("%", 0)
    assert values(SWITCH, "countdown_1") == ("s", 0)


def test_commandable_points_become_functions_in_dp_order():
    functions, reported = sim_data_points(SWITCH)
    assert [(point.code, point.dp_id) for point in functions] == [
        ("switch_1", 1),
        ("switch_2", 2),
        ("countdown_1", 7),
        ("countdown_2", 8),
        ("relay_status", 14),
    ]
    assert reported == ()
    assert [point.code for point in sim_data_points(SENSOR)[0]] == ["temp_unit_convert"]


def test_fleet_devices_become_emulated_devices(fleet):
    emulated = sim_emulated_devices(fleet.devices, now_s=NOW_S)
    categories = {"plug": "cz", "sensor": "wsdcg", "switch": "kg"}
    assert len(emulated) == 30
    for sim, device in zip(fleet.devices, emulated, strict=True):
        assert (device.device_id, device.name, device.uid, device.owner_id) == (
            sim.device_id,
            sim.name,
            sim.uid,
            sim.owner_id,
        )
        assert (device.category, device.product_id, device.product_name) == (
            categories[sim.product.kind],
            sim.product.product_key,
            sim.product.label,
        )
        assert device.status == sim.readings and device.status is not sim.readings
        assert device.create_time <= device.update_time == NOW_S


def test_devices_of_one_product_share_one_specification(fleet):
    emulated = sim_emulated_devices(fleet.devices, now_s=NOW_S)
    plugs = [device for device in emulated if device.product_id == PLUG.product_key]
    assert len(plugs) > 1 and all(device.functions is plugs[0].functions for device in plugs)
    spec = specification(plugs[0], with_dp_id=True)
    assert [entry["code"] for entry in spec["functions"]] == ["switch_1"]
    assert {entry["code"]: entry["dp_id"] for entry in spec["status"]} == PLUG.dp_ids


def test_fleet_users_become_app_users(fleet):
    users = sim_users(fleet.users, now_s=NOW_S)
    assert [user.uid for user in users] == fleet.users
    assert all(user.create_time <= NOW_S for user in users)
