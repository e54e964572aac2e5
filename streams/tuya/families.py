"""The OpenAPI's path families for knowing the fleet (SPEC.md §10): each one small pager that owns its end rule.

Tuya offers several paths for one question (which devices, which data points), and a project is entitled to some
of them only: the others answer ``1106 permission deny`` or ``28841105`` (the cloud service is not subscribed).
Each family here is a generator of pages that hides its cursor (``has_more`` + ``last_row_key``, a short page, a
``last_id``) and stops with :class:`CursorRepeated` when Tuya hands back a cursor it already gave, instead of
asking forever. The sync above never sees a cursor. Calls go through :class:`~streams.tuya.openapi.OpenApiClient`,
so signing, pacing and retries are the client's. Must not import the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

import msgspec

from models.points import PointSpec
from streams.tuya.api_errors import PROJECT_CODES, TuyaApiError
from streams.tuya.listings import (
    ListedDevice,
    ListedUser,
    listed_device,
    listed_user,
    model_points,
    specification_points,
)
from streams.tuya.results import ApiAnswer
from streams.tuya.signing import is_token_path

__all__ = [
    "DETAIL_FAMILIES",
    "DEVICE_FAMILIES",
    "REFUSAL_CODES",
    "SPEC_FAMILIES",
    "USERS_PATH",
    "CursorRepeated",
    "DeviceFamily",
    "DevicePage",
    "FamilyContext",
    "Requester",
    "SpecFamily",
    "Specification",
    "UserPage",
    "fetch_device",
    "fetch_specification",
    "is_project_wide",
    "is_refusal",
    "user_pages",
]

#: Codes meaning "this project may not use this path": a wrong family for the project type, an app account not
#: linked (1106), a cloud service not authorised or subscribed (2884xxxx), a path this data centre lacks (1108).
REFUSAL_CODES = frozenset({1106, 1108, 28841001, 28841101, 28841105})


def is_refusal(exc: Exception) -> bool:
    return isinstance(exc, TuyaApiError) and exc.code in REFUSAL_CODES


def is_project_wide(exc: Exception) -> bool:
    """Whether ``exc`` (one of TUYA_ERRORS) would fail every call of the project alike: its credentials, token or
    clock were refused, or the token itself could not be had."""
    code, path = getattr(exc, "code", None), getattr(exc, "path", "")
    return (isinstance(exc, TuyaApiError) and code in PROJECT_CODES) or is_token_path(path)


class Requester(Protocol):
    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> ApiAnswer: ...


class CursorRepeated(TuyaApiError):
    """Tuya handed back a paging cursor it had already given, or none while saying more pages follow: the listing
    stops there, incomplete."""

    def __init__(self, path: str, cursor: str, *, empty: bool = False) -> None:
        if empty:
            what = "a page without devices says more pages follow"
        else:
            what = f"paging cursor {cursor!r} came back a second time" if cursor else "more pages follow but no cursor"
        super().__init__(0, f"{what}: the listing is incomplete", path=path)


@dataclass(frozen=True, slots=True)
class DevicePage:
    """One answer's devices; ``t`` (ms) is Tuya's time of the answer: the facts on the page are true as of it.
    ``owner``: the uid whose devices the page lists, all of them (the per-user family); None: the project's."""

    devices: list[ListedDevice]
    t: int
    tid: str
    owner: str | None = None


Pager = Callable[[Requester, "FamilyContext"], Iterator[DevicePage]]


@dataclass(frozen=True, slots=True)
class FamilyContext:
    """What a family may need besides the client: the uids whose devices to list (token's and the archive's)."""

    uids: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class DeviceFamily:
    """A path family that lists a project's devices, and the cloud service a project needs for it."""

    path: str
    service: str
    pages: Pager = field(repr=False)
    by_user: bool = False  # lists the devices of each user known (FamilyContext.uids)


def _page(answer: ApiAnswer, items: Any) -> DevicePage:
    listed = [listed_device(item) for item in items] if isinstance(items, list) else []
    return DevicePage([device for device in listed if device is not None], answer.t, answer.tid)


def _more_after(path: str, page: DevicePage) -> None:
    """A page that says more follow must hold devices: else each fresh cursor could lead to another empty page, and
    the listing would spend the day's quota on nothing (CursorRepeated: the listing stops, incomplete)."""
    if not page.devices:
        raise CursorRepeated(path, "", empty=True)


def _cursor(path: str, cursor: Any, seen: set[str]) -> str:
    """The next cursor; CursorRepeated when it is one already followed (or missing although more pages follow)."""
    text = str(cursor or "")
    if not text or text in seen:
        raise CursorRepeated(path, text)
    seen.add(text)
    return text


_IOT03 = "/v1.3/iot-03/devices"


def _iot03_pages(client: Requester, _context: FamilyContext, page_size: int = 200) -> Iterator[DevicePage]:
    """``{has_more, list, last_row_key}``, up to 200 a page (SPEC.md §10.1)."""
    seen: set[str] = set()
    params: dict[str, Any] = {"page_size": page_size}
    while True:
        answer = client.request("GET", _IOT03, params=params)
        result = answer.result if isinstance(answer.result, dict) else {}
        page = _page(answer, result.get("list"))
        yield page
        if not result.get("has_more"):
            return
        _more_after(_IOT03, page)
        params = {"page_size": page_size, "last_row_key": _cursor(_IOT03, result.get("last_row_key"), seen)}


_THING = "/v2.0/cloud/thing/device"


def _thing_pages(client: Requester, _context: FamilyContext, page_size: int = 20) -> Iterator[DevicePage]:
    """A plain list, at most 20 a page; the next page starts after ``last_id``; a short page is the last."""
    seen: set[str] = set()
    params: dict[str, Any] = {"page_size": page_size}
    while True:
        answer = client.request("GET", _THING, params=params)
        items = answer.result if isinstance(answer.result, list) else []
        page = _page(answer, items)
        yield page
        if len(items) < page_size or not page.devices:
            return
        params = {"page_size": page_size, "last_id": _cursor(_THING, page.devices[-1].device_id, seen)}


_ASSOCIATED = "/v1.0/iot-01/associated-users/devices"


def _associated_pages(client: Requester, _context: FamilyContext, size: int = 100) -> Iterator[DevicePage]:
    """``{devices, has_more, last_row_key}``; ``has_more`` is sometimes absent: then a short page is the last."""
    seen: set[str] = set()
    params: dict[str, Any] = {"size": size}
    while True:
        answer = client.request("GET", _ASSOCIATED, params=params)
        result = answer.result if isinstance(answer.result, dict) else {}
        items = result.get("devices")
        page = _page(answer, items)
        yield page
        more = result.get("has_more")
        if more is False or (more is None and (not isinstance(items, list) or len(items) < size)):
            return
        _more_after(_ASSOCIATED, page)
        params = {"size": size, "last_row_key": _cursor(_ASSOCIATED, result.get("last_row_key"), seen)}


_USER_DEVICES = "/v1.0/users/{uid}/devices"


def _user_pages(client: Requester, context: FamilyContext) -> Iterator[DevicePage]:
    """Every device of each known uid, one answer per uid (no paging), each page naming its uid; then the devices
    shared with that uid (``from=sharing``, SPEC.md §10.1), on a page of no owner. Refused only if every uid is
    refused."""
    refusal: TuyaApiError | None = None
    answered = False
    for uid in dict.fromkeys(context.uids):
        path = _USER_DEVICES.format(uid=quote(uid, safe=""))
        try:
            answer = client.request("GET", path, params={"from": "home"})
        except TuyaApiError as exc:
            if not is_refusal(exc):
                raise
            refusal = refusal or exc
            continue
        answered = True
        yield replace(_page(answer, answer.result), owner=uid)
        shared = _shared_page(client, path, uid)
        if shared is not None:
            yield shared
    if not answered:
        raise refusal or TuyaApiError(1106, "no user id known to list devices of", path=_USER_DEVICES)


def _shared_page(client: Requester, path: str, uid: str) -> DevicePage | None:
    """The devices shared with ``uid``, None if Tuya refuses to say. Such a device is not ``uid``'s: an item that
    names ``uid`` as its owner says nothing of the owner."""
    try:
        answer = client.request("GET", path, params={"from": "sharing"})
    except TuyaApiError as exc:
        if not is_refusal(exc):
            raise
        return None
    page = _page(answer, answer.result)
    devices = [
        msgspec.structs.replace(device, owner_uid=None) if device.owner_uid == uid else device
        for device in page.devices
    ]
    return replace(page, devices=devices)


#: In the order sync tries them: the most devices per call first. The one that worked last time goes first.
DEVICE_FAMILIES: tuple[DeviceFamily, ...] = (
    DeviceFamily(_IOT03, "IoT Core", _iot03_pages),
    DeviceFamily(_THING, "IoT Core", _thing_pages),
    DeviceFamily(_ASSOCIATED, "a linked Tuya app account (Devices → Link Tuya App Account)", _associated_pages),
    DeviceFamily(_USER_DEVICES, "Smart Home Basic Service with a linked app account", _user_pages, by_user=True),
)

#: One device's details, for a device the stream shows and the archive does not know.
DETAIL_FAMILIES: tuple[str, ...] = ("/v1.0/iot-03/devices/{device_id}", "/v2.0/cloud/thing/{device_id}")


@dataclass(frozen=True, slots=True)
class SpecFamily:
    """A path family that describes a device's data points (its product's specification)."""

    path: str
    read: Callable[[str, Any], tuple[list[PointSpec], dict[str, dict[str, Any]]]] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Specification:
    """A product's data points as one answer gave them, with each point's Tuya ``values`` object."""

    product_id: str
    points: list[PointSpec]
    specs: dict[str, dict[str, Any]]
    t: int


#: In the order sync tries them: only v1.1 and the thing model carry DP ids (SPEC.md §10.2).
SPEC_FAMILIES: tuple[SpecFamily, ...] = (
    SpecFamily("/v1.1/devices/{device_id}/specifications", specification_points),
    SpecFamily("/v2.0/cloud/thing/{device_id}/model", model_points),
    SpecFamily("/v1.0/iot-03/devices/{device_id}/specification", specification_points),
)


def _device_path(template: str, device_id: str) -> str:
    return template.format(device_id=quote(device_id, safe=""))


def fetch_specification(client: Requester, family: SpecFamily, device_id: str, product_id: str) -> Specification:
    """The specification of ``product_id``, asked of one of its devices.

    Raises:
        TuyaApiError: Tuya refused (see :func:`is_refusal`), or the answer had another shape (code 0).
    """
    path = _device_path(family.path, device_id)
    answer = client.request("GET", path)
    try:
        points, specs = family.read(product_id, answer.result)
    except (msgspec.ValidationError, TypeError, ValueError) as exc:
        raise TuyaApiError(0, f"unexpected specification shape: {exc}", answer.tid, path=path) from None
    return Specification(product_id, points, specs, answer.t)


def fetch_device(client: Requester, template: str, device_id: str) -> DevicePage:
    """One device's details (a DETAIL_FAMILIES path) as a page of one."""
    answer = client.request("GET", _device_path(template, device_id))
    return _page(answer, [answer.result])


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[ListedUser]
    t: int


USERS_PATH = "/v2.0/apps/{schema}/users"
_WINDOW = timedelta(days=30)  # SPEC.md §10.4: the creation-time window of one query is at most 30 days


def user_pages(
    client: Requester, schema: str, *, until: datetime, since: datetime | None, empty_windows: int = 12
) -> Iterator[UserPage]:
    """The app's users, 30-day creation windows walked back from ``until``.

    Stops at ``since`` when given (users created before it are known), else after ``empty_windows`` windows in a
    row with no user (a year by default: the app's first sign-up lies behind).
    """
    path = USERS_PATH.format(schema=quote(schema, safe=""))
    end, empty = until, 0
    while end > since if since is not None else empty < empty_windows:
        start = end - _WINDOW if since is None else max(end - _WINDOW, since)
        found = 0
        for page in _window_pages(client, path, start, end):
            found += len(page.users)
            yield page
        empty = 0 if found else empty + 1
        end = start


def _window_pages(client: Requester, path: str, start: datetime, end: datetime) -> Iterator[UserPage]:
    page_no = 1
    while True:
        window = {"start_time": int(start.timestamp()), "end_time": int(end.timestamp())}
        params = {"page_no": page_no, "page_size": 100, **window}
        answer = client.request("GET", path, params=params)
        result = answer.result if isinstance(answer.result, dict) else {}
        items = result.get("list") if isinstance(result.get("list"), list) else []
        users = [user for user in map(listed_user, items) if user is not None]
        yield UserPage(users, answer.t)
        if not result.get("has_more") or not items:
            return
        page_no += 1
