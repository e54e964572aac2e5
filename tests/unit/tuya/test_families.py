"""streams/tuya/families.py with a scripted Requester: each family's paging to its end, repeated cursors, refusals,
specification shapes and the users' 30-day windows (partners: tests/integration/test_emulator_listings.py and
tests/integration/test_sync.py, the families over loopback HTTP)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models.points import PointSpec
from streams.tuya.api_errors import TuyaApiError, TuyaRateLimited
from streams.tuya.families import (
    DEVICE_FAMILIES,
    SPEC_FAMILIES,
    CursorRepeated,
    DevicePage,
    FamilyContext,
    fetch_device,
    fetch_specification,
    is_refusal,
    user_pages,
)
from streams.tuya.results import ApiAnswer

IOT03 = "/v1.3/iot-03/devices"
THING = "/v2.0/cloud/thing/device"
ASSOCIATED = "/v1.0/iot-01/associated-users/devices"
USER_DEVICES = "/v1.0/users/{uid}/devices"
T = 1_764_590_400_000  # Tuya's time of the first scripted answer, ms
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
DAY_S = 86_400


class ScriptedRequester:
    """Replays scripted answers in order (an exception in the script is raised) and records every call."""

    def __init__(self, *script: ApiAnswer | Exception) -> None:
        self._script = list(script)
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> ApiAnswer:
        self.calls.append((method, path, None if params is None else dict(params)))
        if not self._script:
            raise AssertionError(f"unscripted call {method} {path} {params}")
        step = self._script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    @property
    def params(self) -> list[dict[str, Any] | None]:
        return [params for _method, _path, params in self.calls]


def answer(result: Any, n: int = 0) -> ApiAnswer:
    """The ``n``-th answer of a script: Tuya's time grows by a second per answer."""
    return ApiAnswer(result=result, t=T + 1000 * n, tid=f"tid{n:04d}")


def device_id(n: int) -> str:
    return f"bf{n:05d}d2e4a1b2c3x9kq"


def items(first: int, count: int) -> list[dict[str, Any]]:
    """``count`` device list items, numbered from ``first``."""
    return [
        {"id": device_id(n), "name": f"Plug {n}", "product_id": "keyjup78v54myhan"} for n in range(first, first + count)
    ]


def refusal(code: int = 1106, path: str = "/v1.0/users/u1/devices") -> TuyaApiError:
    return TuyaApiError(code, "permission deny", "tidrefused", path=path)


def family(path: str):
    return next(f for f in DEVICE_FAMILIES if f.path == path)


def ids(pages: list[DevicePage]) -> list[list[str]]:
    return [[device.device_id for device in page.devices] for page in pages]


def collect(pages: Iterator[Any], into: list[Any]) -> list[Any]:
    """Every page into ``into`` (kept when the pager raises part-way)."""
    for page in pages:
        into.append(page)
    return into


def window(start: datetime, end: datetime, page_no: int = 1) -> dict[str, Any]:
    return {
        "page_no": page_no,
        "page_size": 100,
        "start_time": int(start.timestamp()),
        "end_time": int(end.timestamp()),
    }


def users(*uids: str, has_more: bool = False, n: int = 0) -> ApiAnswer:
    listed = [{"uid": uid, "username": f"{uid}@example.com", "create_time": 1760000000} for uid in uids]
    return answer({"list": listed, "has_more": has_more, "total": len(uids)}, n)


# v1.3 iot-03: has_more + last_row_key


def test_iot03_pages_follow_last_row_key_until_has_more_is_false():
    client = ScriptedRequester(
        answer({"has_more": True, "list": items(0, 2), "last_row_key": "rk1", "total": 5}, 0),
        answer({"has_more": True, "list": items(2, 2), "last_row_key": "rk2", "total": 5}, 1),
        answer({"has_more": False, "list": items(4, 1), "last_row_key": "rk3", "total": 5}, 2),
    )
    pages = list(family(IOT03).pages(client, FamilyContext()))
    assert ids(pages) == [[device_id(0), device_id(1)], [device_id(2), device_id(3)], [device_id(4)]]
    assert [(page.t, page.tid) for page in pages] == [(T, "tid0000"), (T + 1000, "tid0001"), (T + 2000, "tid0002")]
    assert client.calls == [
        ("GET", IOT03, {"page_size": 200}),
        ("GET", IOT03, {"page_size": 200, "last_row_key": "rk1"}),
        ("GET", IOT03, {"page_size": 200, "last_row_key": "rk2"}),
    ]


def test_iot03_pages_stop_after_one_page_when_has_more_is_absent():
    client = ScriptedRequester(answer({"list": items(0, 3), "last_row_key": "rk1"}))
    assert ids(list(family(IOT03).pages(client, FamilyContext()))) == [[device_id(0), device_id(1), device_id(2)]]
    assert len(client.calls) == 1


def test_iot03_pages_raise_cursor_repeated_when_a_last_row_key_comes_back():
    client = ScriptedRequester(
        answer({"has_more": True, "list": items(0, 2), "last_row_key": "rk1"}, 0),
        answer({"has_more": True, "list": items(2, 2), "last_row_key": "rk2"}, 1),
        answer({"has_more": True, "list": items(4, 2), "last_row_key": "rk1"}, 2),
    )
    pages: list[DevicePage] = []
    with pytest.raises(CursorRepeated) as raised:
        collect(family(IOT03).pages(client, FamilyContext()), pages)
    assert ids(pages) == [[device_id(0), device_id(1)], [device_id(2), device_id(3)], [device_id(4), device_id(5)]]
    assert len(client.calls) == 3
    assert (raised.value.code, raised.value.path) == (0, IOT03)
    assert "'rk1' came back a second time" in str(raised.value)


def test_iot03_pages_raise_cursor_repeated_when_has_more_comes_without_last_row_key():
    client = ScriptedRequester(answer({"has_more": True, "list": items(0, 2), "last_row_key": ""}))
    pages: list[DevicePage] = []
    with pytest.raises(CursorRepeated):
        collect(family(IOT03).pages(client, FamilyContext()), pages)
    assert ids(pages) == [[device_id(0), device_id(1)]]
    assert len(client.calls) == 1


def test_cursor_repeated_is_a_tuya_api_error_that_is_not_a_refusal():
    exc = CursorRepeated(IOT03, "rk1")
    assert isinstance(exc, TuyaApiError)
    assert not is_refusal(exc)


def test_iot03_pages_skip_items_without_id_and_read_odd_results_as_empty():
    client = ScriptedRequester(answer({"has_more": False, "list": [{"name": "no id"}, *items(0, 1), "noise"]}))
    assert ids(list(family(IOT03).pages(client, FamilyContext()))) == [[device_id(0)]]
    client = ScriptedRequester(answer(None))
    assert ids(list(family(IOT03).pages(client, FamilyContext()))) == [[]]


# v2.0 thing: last_id and the short page


def test_thing_pages_follow_last_id_until_a_short_page():
    client = ScriptedRequester(answer(items(0, 20), 0), answer(items(20, 20), 1), answer(items(40, 7), 2))
    pages = list(family(THING).pages(client, FamilyContext()))
    assert [len(page.devices) for page in pages] == [20, 20, 7]
    assert ids(pages)[2][-1] == device_id(46)
    assert client.calls == [
        ("GET", THING, {"page_size": 20}),
        ("GET", THING, {"page_size": 20, "last_id": device_id(19)}),
        ("GET", THING, {"page_size": 20, "last_id": device_id(39)}),
    ]


def test_thing_pages_end_on_empty_page_when_device_count_is_exact_multiple_of_page_size():
    client = ScriptedRequester(answer(items(0, 20), 0), answer(items(20, 20), 1), answer([], 2))
    pages = list(family(THING).pages(client, FamilyContext()))
    assert [len(page.devices) for page in pages] == [20, 20, 0]
    assert client.params == [
        {"page_size": 20},
        {"page_size": 20, "last_id": device_id(19)},
        {"page_size": 20, "last_id": device_id(39)},
    ]


def test_thing_pages_stop_after_one_call_on_a_short_first_page():
    client = ScriptedRequester(answer(items(0, 3)))
    assert [len(page.devices) for page in family(THING).pages(client, FamilyContext())] == [3]
    assert client.params == [{"page_size": 20}]


def test_thing_pages_raise_cursor_repeated_when_the_same_last_id_comes_back():
    client = ScriptedRequester(answer(items(0, 20), 0), answer(items(0, 20), 1))
    pages: list[DevicePage] = []
    with pytest.raises(CursorRepeated) as raised:
        collect(family(THING).pages(client, FamilyContext()), pages)
    assert len(pages) == 2
    assert len(client.calls) == 2
    assert raised.value.path == THING


def test_thing_pages_stop_on_full_page_of_items_without_ids():
    client = ScriptedRequester(answer([{"name": f"no id {n}"} for n in range(20)]))
    assert [len(page.devices) for page in family(THING).pages(client, FamilyContext())] == [0]
    assert len(client.calls) == 1


# v1.0 associated-users: has_more, sometimes absent


def test_associated_pages_follow_last_row_key_while_has_more():
    client = ScriptedRequester(
        answer({"has_more": True, "devices": items(0, 2), "last_row_key": "a1"}, 0),
        answer({"has_more": False, "devices": items(2, 1), "last_row_key": "a2"}, 1),
    )
    pages = list(family(ASSOCIATED).pages(client, FamilyContext()))
    assert ids(pages) == [[device_id(0), device_id(1)], [device_id(2)]]
    assert client.calls == [
        ("GET", ASSOCIATED, {"size": 100}),
        ("GET", ASSOCIATED, {"size": 100, "last_row_key": "a1"}),
    ]


def test_associated_pages_without_has_more_go_on_after_full_page_and_stop_on_short_page():
    client = ScriptedRequester(
        answer({"devices": items(0, 100), "last_row_key": "a1", "total": 130}, 0),
        answer({"devices": items(100, 30), "last_row_key": "a2", "total": 130}, 1),
    )
    pages = list(family(ASSOCIATED).pages(client, FamilyContext()))
    assert [len(page.devices) for page in pages] == [100, 30]
    assert client.params == [{"size": 100}, {"size": 100, "last_row_key": "a1"}]


def test_associated_pages_stop_on_full_page_when_has_more_is_false():
    client = ScriptedRequester(answer({"has_more": False, "devices": items(0, 100), "last_row_key": "a1"}))
    assert [len(page.devices) for page in family(ASSOCIATED).pages(client, FamilyContext())] == [100]
    assert len(client.calls) == 1


def test_associated_pages_without_has_more_stop_when_devices_are_missing():
    client = ScriptedRequester(answer({"last_row_key": "a1", "total": 0}))
    assert ids(list(family(ASSOCIATED).pages(client, FamilyContext()))) == [[]]
    assert len(client.calls) == 1


def test_associated_pages_raise_cursor_repeated_when_a_last_row_key_comes_back():
    client = ScriptedRequester(
        answer({"devices": items(0, 100), "last_row_key": "a1"}, 0),
        answer({"devices": items(100, 100), "last_row_key": "a1"}, 1),
    )
    with pytest.raises(CursorRepeated) as raised:
        list(family(ASSOCIATED).pages(client, FamilyContext()))
    assert len(client.calls) == 2
    assert raised.value.path == ASSOCIATED


@pytest.mark.parametrize(
    ("path", "result"),
    [(IOT03, {"has_more": True, "list": [], "last_row_key": "k1"}),
     (ASSOCIATED, {"has_more": True, "devices": [], "last_row_key": "k1"})],
    ids=["iot03", "associated"],
)  # fmt: skip
def test_an_empty_page_that_says_more_follow_ends_the_listing_incomplete(path, result):
    # each answer could bring a fresh cursor and the listing would never end, spending the quota on nothing
    client = ScriptedRequester(answer(result))
    with pytest.raises(CursorRepeated, match="a page without devices says more pages follow") as raised:
        list(family(path).pages(client, FamilyContext()))
    assert len(client.calls) == 1 and raised.value.path == path


# v1.0 users/{uid}/devices: one call per uid for its own devices, one for those shared with it


def test_user_device_pages_ask_once_for_each_distinct_uid_in_order():
    client = ScriptedRequester(answer(items(0, 2), 0), answer([], 1), answer(items(2, 1), 2), answer([], 3))
    pages = list(family(USER_DEVICES).pages(client, FamilyContext(uids=("u1", "u2", "u1"))))
    assert ids(pages) == [[device_id(0), device_id(1)], [], [device_id(2)], []]
    assert [page.owner for page in pages] == ["u1", None, "u2", None]  # an owner's page lists all of its devices
    assert client.calls == [
        ("GET", "/v1.0/users/u1/devices", {"from": "home"}),
        ("GET", "/v1.0/users/u1/devices", {"from": "sharing"}),
        ("GET", "/v1.0/users/u2/devices", {"from": "home"}),
        ("GET", "/v1.0/users/u2/devices", {"from": "sharing"}),
    ]


def test_user_device_pages_list_devices_shared_with_a_uid_without_making_it_their_owner():
    shared = [{**item, "uid": uid} for item, uid in zip(items(5, 2), ("u1", "u9"), strict=True)]
    client = ScriptedRequester(answer([{**items(0, 1)[0], "uid": "u1"}], 0), answer(shared, 1))
    own, shared_page = family(USER_DEVICES).pages(client, FamilyContext(uids=("u1",)))
    assert (own.owner, [device.owner_uid for device in own.devices]) == ("u1", ["u1"])
    # not u1's although the item names u1 (the uid asked); another uid named is the owner
    assert (shared_page.owner, ids([shared_page])) == (None, [[device_id(5), device_id(6)]])
    assert [device.owner_uid for device in shared_page.devices] == [None, "u9"]
    assert shared_page.t == T + 1000


def test_user_device_pages_go_on_when_the_shared_devices_are_refused():
    client = ScriptedRequester(answer(items(0, 1), 0), refusal(1106), answer(items(1, 1), 2), answer([], 3))
    pages = list(family(USER_DEVICES).pages(client, FamilyContext(uids=("u1", "u2"))))
    assert ids(pages) == [[device_id(0)], [device_id(1)], []]
    assert [page.owner for page in pages] == ["u1", "u2", None]


def test_user_device_pages_raise_an_error_of_the_shared_devices_that_is_not_a_refusal():
    error = TuyaApiError(1004, "sign invalid")
    client = ScriptedRequester(answer(items(0, 1), 0), error)
    with pytest.raises(TuyaApiError) as raised:
        list(family(USER_DEVICES).pages(client, FamilyContext(uids=("u1", "u2"))))
    assert raised.value is error


def test_user_device_pages_quote_uid_in_path():
    client = ScriptedRequester(answer([]), answer([]))
    list(family(USER_DEVICES).pages(client, FamilyContext(uids=("eu/1 2",))))
    assert [path for _method, path, _params in client.calls] == ["/v1.0/users/eu%2F1%202/devices"] * 2


def test_user_device_pages_skip_refused_uid():
    client = ScriptedRequester(refusal(1106), answer(items(0, 1), 1), answer([], 2), refusal(28841105))
    pages = list(family(USER_DEVICES).pages(client, FamilyContext(uids=("u1", "u2", "u3"))))
    assert ids(pages) == [[device_id(0)], []] and pages[0].owner == "u2"
    assert [path for _method, path, _params in client.calls] == [
        "/v1.0/users/u1/devices",
        "/v1.0/users/u2/devices",
        "/v1.0/users/u2/devices",
        "/v1.0/users/u3/devices",
    ]


def test_user_device_pages_raise_first_refusal_when_every_uid_is_refused():
    first, second = refusal(1106), refusal(1108)
    client = ScriptedRequester(first, second)
    with pytest.raises(TuyaApiError) as raised:
        list(family(USER_DEVICES).pages(client, FamilyContext(uids=("u1", "u2"))))
    assert raised.value is first
    assert len(client.calls) == 2


def test_user_device_pages_raise_1106_without_uids():
    client = ScriptedRequester()
    with pytest.raises(TuyaApiError) as raised:
        list(family(USER_DEVICES).pages(client, FamilyContext()))
    assert raised.value.code == 1106
    assert client.calls == []


def test_user_device_pages_raise_an_error_that_is_not_a_refusal_at_once():
    error = TuyaApiError(1004, "sign invalid")
    client = ScriptedRequester(error, answer(items(0, 1)))
    with pytest.raises(TuyaApiError) as raised:
        list(family(USER_DEVICES).pages(client, FamilyContext(uids=("u1", "u2"))))
    assert raised.value is error
    assert len(client.calls) == 1


def test_device_families_are_tried_most_devices_per_call_first():
    assert [f.path for f in DEVICE_FAMILIES] == [IOT03, THING, ASSOCIATED, USER_DEVICES]


# refusals


@pytest.mark.parametrize("code", [1106, 1108, 28841001, 28841101, 28841105])
def test_is_refusal_true_for_codes_meaning_path_not_allowed(code: int):
    assert is_refusal(TuyaApiError(code, "refused"))


@pytest.mark.parametrize("code", [2010, 1004, 1010, 0])
def test_is_refusal_false_for_other_tuya_codes(code: int):
    assert not is_refusal(TuyaApiError(code, "other"))


def test_is_refusal_false_for_other_exceptions():
    assert not is_refusal(TuyaRateLimited(1106, "odd"))
    assert not is_refusal(ValueError("1106"))


# specifications


def spec_family(path: str):
    return next(f for f in SPEC_FAMILIES if f.path == path)


def test_fetch_specification_asks_the_device_and_reads_points_for_the_product():
    client = ScriptedRequester(
        answer({"category": "cz", "status": [{"code": "switch_1", "dp_id": 1, "type": "Boolean", "values": "{}"}]}, 3)
    )
    spec = fetch_specification(client, spec_family("/v1.1/devices/{device_id}/specifications"), "dev/1", "prodA")
    assert client.calls == [("GET", "/v1.1/devices/dev%2F1/specifications", None)]
    assert (spec.product_id, spec.t, spec.specs) == ("prodA", T + 3000, {"switch_1": {}})
    assert spec.points == [PointSpec(product_id="prodA", code="switch_1", type="Boolean", dp_id=1)]


def test_fetch_specification_reads_the_thing_model():
    model = (
        '{"services":[{"properties":[{"code":"bright","abilityId":3,"accessMode":"rw","typeSpec":{"type":"bool"}}]}]}'
    )
    client = ScriptedRequester(answer({"model": model}))
    spec = fetch_specification(client, spec_family("/v2.0/cloud/thing/{device_id}/model"), "dev1", "prodA")
    assert client.calls == [("GET", "/v2.0/cloud/thing/dev1/model", None)]
    assert [(p.code, p.dp_id, p.type) for p in spec.points] == [("bright", 3, "Boolean")]


@pytest.mark.parametrize(
    ("path", "result"),
    [
        ("/v1.1/devices/{device_id}/specifications", ["switch_1"]),
        ("/v1.0/iot-03/devices/{device_id}/specification", {"status": "switch_1"}),
        ("/v2.0/cloud/thing/{device_id}/model", {"model": "{}"}),
    ],
    ids=["list", "status-not-list", "model-without-services"],
)
def test_fetch_specification_turns_bad_shape_into_tuya_api_error_code_0(path: str, result: Any):
    client = ScriptedRequester(answer(result, 5))
    with pytest.raises(TuyaApiError) as raised:
        fetch_specification(client, spec_family(path), "dev1", "prodA")
    assert type(raised.value) is TuyaApiError
    assert (raised.value.code, raised.value.tid) == (0, "tid0005")
    assert raised.value.path == path.format(device_id="dev1")
    assert raised.value.msg.startswith("unexpected specification shape: ")
    assert not is_refusal(raised.value)


def test_fetch_specification_passes_a_refusal_on():
    error = refusal(28841105, "/v1.1/devices/dev1/specifications")
    client = ScriptedRequester(error)
    with pytest.raises(TuyaApiError) as raised:
        fetch_specification(client, SPEC_FAMILIES[0], "dev1", "prodA")
    assert raised.value is error


def test_fetch_device_reads_details_as_page_of_one():
    client = ScriptedRequester(answer({"id": "dev1", "name": "Plug", "local_key": "secret"}, 2))
    page = fetch_device(client, "/v1.0/iot-03/devices/{device_id}", "dev1")
    assert client.calls == [("GET", "/v1.0/iot-03/devices/dev1", None)]
    assert ([d.device_id for d in page.devices], page.devices[0].name, page.t, page.tid) == (
        ["dev1"],
        "Plug",
        T + 2000,
        "tid0002",
    )


# users: 30-day windows walked back


def test_user_pages_walk_30_day_windows_back_to_since():
    since = UNTIL - timedelta(days=45)
    client = ScriptedRequester(users("u1"), users("u2"))
    pages = list(user_pages(client, "smartlife", until=UNTIL, since=since))
    assert [[u.uid for u in page.users] for page in pages] == [["u1"], ["u2"]]
    assert client.calls == [
        ("GET", "/v2.0/apps/smartlife/users", window(UNTIL - timedelta(days=30), UNTIL)),
        ("GET", "/v2.0/apps/smartlife/users", window(since, UNTIL - timedelta(days=30))),
    ]


def test_user_pages_send_windows_in_seconds_at_most_30_days_long_and_contiguous():
    client = ScriptedRequester(*(users() for _ in range(4)))
    list(user_pages(client, "app", until=UNTIL, since=None, empty_windows=4))
    spans = [(params["start_time"], params["end_time"]) for params in client.params]
    assert spans[0][1] == int(UNTIL.timestamp()) == 1_796_083_200
    assert all(end - start == 30 * DAY_S for start, end in spans)
    assert all(later[1] == earlier[0] for earlier, later in itertools.pairwise(spans))


def test_user_pages_stop_after_empty_windows_in_a_row_without_since():
    client = ScriptedRequester(*(users() for _ in range(3)))
    pages = list(user_pages(client, "app", until=UNTIL, since=None, empty_windows=3))
    assert [page.users for page in pages] == [[], [], []]
    assert client.params[-1] == window(UNTIL - timedelta(days=90), UNTIL - timedelta(days=60))


def test_user_pages_count_empty_windows_again_after_a_window_with_users():
    client = ScriptedRequester(users(), users("u1"), users(), users(), users())
    pages = list(user_pages(client, "app", until=UNTIL, since=None, empty_windows=3))
    assert [[u.uid for u in page.users] for page in pages] == [[], ["u1"], [], [], []]
    assert len(client.calls) == 5


def test_user_pages_page_through_a_window_while_has_more():
    since = UNTIL - timedelta(days=30)
    client = ScriptedRequester(users("u1", "u2", has_more=True, n=0), users("u3", has_more=False, n=1))
    pages = list(user_pages(client, "app", until=UNTIL, since=since))
    assert [([u.uid for u in page.users], page.t) for page in pages] == [(["u1", "u2"], T), (["u3"], T + 1000)]
    assert client.params == [window(since, UNTIL, page_no=1), window(since, UNTIL, page_no=2)]


def test_user_pages_leave_a_window_on_has_more_with_empty_list():
    since = UNTIL - timedelta(days=30)
    client = ScriptedRequester(users("u1", has_more=True), answer({"list": [], "has_more": True}))
    list(user_pages(client, "app", until=UNTIL, since=since))
    assert [params["page_no"] for params in client.params] == [1, 2]


def test_user_pages_ask_nothing_when_since_is_not_before_until():
    client = ScriptedRequester()
    assert list(user_pages(client, "app", until=UNTIL, since=UNTIL)) == []
    assert client.calls == []


def test_user_pages_quote_schema_in_path():
    client = ScriptedRequester(users())
    list(user_pages(client, "my app", until=UNTIL, since=UNTIL - timedelta(days=1)))
    assert client.calls[0][1] == "/v2.0/apps/my%20app/users"


def test_user_pages_reach_since_across_more_empty_windows_than_empty_windows():
    since = UNTIL - timedelta(days=30 * 5)
    client = ScriptedRequester(users(), users(), users(), users(), users("u_old"))
    pages = list(user_pages(client, "app", until=UNTIL, since=since, empty_windows=3))
    assert [u.uid for page in pages for u in page.users] == ["u_old"]
    assert client.params[-1] == window(since, UNTIL - timedelta(days=120))
