"""The emulator's app users (``GET /v2.0/apps/{schema}/users``) over real loopback HTTP (partner:
streams/tuya/emulated_users.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulated_users import MAX_WINDOW_S
from streams.tuya.emulator import Emulator
from tests.integration.test_emulator import FakeClock, SignedSession

pytestmark = pytest.mark.integration

NOW_S = 1_750_000_000
USERS = "/v2.0/apps/smartlife/users"


@pytest.fixture
def project(vectors) -> tuple[str, str]:
    return vectors["pulsar_auth"]["access_id"], vectors["pulsar_auth"]["access_key"]


@pytest.fixture(scope="module")
def fleet() -> EmulatedFleet:
    return emulated_fleet(100, users=300, seed=13, now_s=NOW_S)


@pytest.fixture
def api(project, fleet) -> Iterator[SignedSession]:
    clock = FakeClock(NOW_S)
    with Emulator(*project, devices=fleet.devices, users=fleet.users, schema="smartlife", clock=clock) as emulator:
        session = SignedSession(emulator, project, clock)
        yield session
        session.close()


def _window(api: SignedSession, start: int, end: int, page_size: int = 100) -> list[dict[str, Any]]:
    listed, page_no = [], 1
    while True:
        page = api.result(USERS, page_no=page_no, page_size=page_size, start_time=start, end_time=end)
        listed += page["list"]
        if not page["has_more"]:
            assert page["total"] == len(listed)
            return listed
        page_no += 1


def test_without_a_window_the_last_30_days_are_listed(api, fleet):
    page = api.result(USERS, page_size=100)
    expected = [user for user in fleet.users if user.create_time >= NOW_S - MAX_WINDOW_S]
    assert page["total"] == len(expected) > 0
    assert {user["uid"] for user in page["list"]} == {user.uid for user in expected}


def test_walking_30_day_windows_back_lists_every_user_once(api, fleet):
    listed, end = [], NOW_S
    while end > NOW_S - 420 * 86400:
        listed += _window(api, end - MAX_WINDOW_S + 1, end, page_size=7)
        end -= MAX_WINDOW_S
    assert sorted(user["uid"] for user in listed) == sorted(user.uid for user in fleet.users)


def test_user_record_has_tuyas_fields_in_seconds(api, fleet):
    [user] = api.result(USERS, page_size=1)["list"]
    assert set(user) == {"uid", "username", "mobile", "email", "country_code", "create_time", "update_time"}
    known = next(known for known in fleet.users if known.uid == user["uid"])
    assert (user["create_time"], user["update_time"]) == (known.create_time, known.update_time)
    assert NOW_S - MAX_WINDOW_S <= user["create_time"] <= NOW_S


def test_pages_report_has_more_and_total(api):
    first = api.result(USERS, page_no=1, page_size=2)
    last = api.result(USERS, page_no=(first["total"] + 1) // 2, page_size=2)
    assert first["has_more"] is True and len(first["list"]) == 2
    assert last["has_more"] is False and last["total"] == first["total"]


def test_a_window_longer_than_30_days_is_refused(api):
    assert api.get(USERS, start_time=NOW_S - MAX_WINDOW_S - 1, end_time=NOW_S)["code"] == 1109
    assert api.get(USERS, start_time=NOW_S - MAX_WINDOW_S, end_time=NOW_S)["success"] is True


@pytest.mark.parametrize("params", [{"page_size": 101}, {"page_no": 0}, {"start_time": NOW_S, "end_time": NOW_S - 1}])
def test_bad_pages_and_windows_are_refused(api, params):
    assert api.get(USERS, **params)["code"] == 1109


def test_another_schema_answers_1106(api):
    answer = api.get("/v2.0/apps/someoneelse/users")
    assert (answer["success"], answer["code"], answer["msg"]) == (False, 1106, "permission deny")
