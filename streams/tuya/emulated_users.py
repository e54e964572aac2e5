"""The emulated project's app users and ``GET /v2.0/apps/{schema}/users`` (SPEC.md §10.4).

Owns :class:`AppUser` and the listing's rules: ``page_no`` from 1, ``page_size`` ≤ 100, a window of creation
times ``start_time``..``end_time`` in **seconds** of at most 30 days (default: the 30 days before now), users
oldest first; listing every user means walking windows back. Pure: a clock value in, dicts out. Must not import
the client or httpx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streams.tuya.emulated_requests import PARAM_ILLEGAL, Refusal, int_param

__all__ = ["MAX_WINDOW_S", "AppUser", "users_page"]

MAX_WINDOW_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class AppUser:
    """A user of the project's app; times are epoch seconds."""

    uid: str
    username: str
    create_time: int
    update_time: int
    mobile: str = ""
    email: str = ""
    country_code: str = ""

    def as_listed(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "username": self.username,
            "mobile": self.mobile,
            "email": self.email,
            "country_code": self.country_code,
            "create_time": self.create_time,
            "update_time": self.update_time,
        }


def users_page(users: Sequence[AppUser], params: Mapping[str, str], now_s: int) -> dict[str, Any]:
    """A page of the users created within the window; ``users`` must be sorted by ``create_time``.

    Raises:
        Refusal: 1109 for a window longer than 30 days, an end before its start, or a bad page.
    """
    page_no = int_param(params, "page_no", 1, low=1)
    page_size = int_param(params, "page_size", 20, low=1, high=100)
    end = int_param(params, "end_time", now_s)
    start = int_param(params, "start_time", end - MAX_WINDOW_S)
    if end < start or end - start > MAX_WINDOW_S:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: the time window is at most 30 days")
    listed = [user for user in users if start <= user.create_time <= end]
    first = (page_no - 1) * page_size
    page = listed[first : first + page_size]
    return {
        "list": [user.as_listed() for user in page],
        "has_more": first + page_size < len(listed),
        "total": len(listed),
    }
