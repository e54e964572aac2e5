"""Tuya's JSON envelope (SPEC.md §5) as streams/tuya/results.py reads it: ``code`` and ``msg`` are empty or absent on
success, and empty may be ``null`` or ``""``. Over real HTTP against the emulator:
tests/integration/test_openapi_client.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from streams.tuya.api_errors import NO_ANSWER, TuyaApiError
from streams.tuya.openapi import OpenApiClient
from streams.tuya.ratelimit import TokenBucket
from streams.tuya.results import envelope_answer, failure_code

EMPTY = [{}, {"code": None, "msg": None}, {"code": "", "msg": ""}, {"code": None, "msg": None, "t": None, "tid": None}]


def body(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize("empty", EMPTY, ids=str)
def test_a_success_with_empty_fields_is_a_success(empty):
    # "code": null was refused as "not Tuya's JSON envelope": every call failed, the token grant first
    answer = envelope_answer(body(success=True, result={"ok": 1}, **empty), path="/v1.0/x")
    assert answer.result == {"ok": 1}
    assert failure_code(body(success=True, result=True, **empty)) == NO_ANSWER


@pytest.mark.parametrize("code", [1010, "1010"])
def test_a_failure_s_code_is_read_whether_number_or_text_and_its_msg_may_be_null(code):
    assert failure_code(body(success=False, code=code, msg=None, tid=None)) == 1010
    with pytest.raises(TuyaApiError) as raised:
        envelope_answer(body(success=False, code=code, msg=None), path="/v1.0/x")
    assert raised.value.code == 1010


def test_a_failure_without_a_code_is_no_answer():
    assert failure_code(body(success=False, code="", msg="")) == NO_ANSWER


def test_a_token_refused_with_a_null_msg_is_renewed_and_the_call_retried():
    # failure_code read such a 1010 as no code at all: the token was never renewed and the command failed
    grants, posts = [], []

    def tuya(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1.0/token"):
            grants.append(request)
            token = {"access_token": f"a{len(grants)}", "refresh_token": "r", "expire_time": 7200, "uid": "u"}
            return httpx.Response(200, json={"success": True, "result": token, "code": None, "msg": None, "t": 1})
        posts.append(request.headers["access_token"])
        if len(posts) == 1:
            return httpx.Response(200, json={"success": False, "code": 1010, "msg": None, "t": 1, "tid": None})
        return httpx.Response(200, json={"success": True, "result": True, "code": None, "msg": None, "t": 1})

    client = OpenApiClient(
        "http://tuya.test", "id", "k" * 32, limiter=TokenBucket(1e6, burst=1e6), transport=httpx.MockTransport(tuya)
    )
    with client:
        result = client.send_commands("bf1", [{"code": "switch_1", "value": False}])
    assert result.accepted
    assert posts == ["a1", "a2"]
