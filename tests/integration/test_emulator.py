"""streams/tuya/emulator.py over real loopback HTTP, driven by hand-signed requests (partner: the client's tests in
tests/integration/test_openapi_client.py; signing's vectors in tests/unit/tuya/test_signing.py; the read endpoints
in tests/integration/test_emulator_*.py, which sign through :class:`SignedSession` below)."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from streams.cli.api import run_emulate
from streams.errors import ConfigError
from streams.settings import load_settings
from streams.tuya.emulator import DataPoint, EmulatedDevice, Emulator
from streams.tuya.signing import EMPTY_BODY_SHA256, sign

pytestmark = pytest.mark.integration

PLUG = "emuplugfortests01"


class FakeClock:
    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _plug(**overrides: Any) -> EmulatedDevice:
    fields: dict[str, Any] = {
        "device_id": PLUG,
        "functions": (
            DataPoint("switch_1", "Boolean"),
            DataPoint("countdown_1", "Integer", {"unit": "s", "min": 0, "max": 86400, "scale": 0, "step": 1}),
            DataPoint("mode", "Enum", {"range": ["eco", "boost"]}),
        ),
        "status": {"switch_1": False, "countdown_1": 0},
        "name": "Test plug",
        "category": "cz",
    }
    return EmulatedDevice(**{**fields, **overrides})


@pytest.fixture
def project(vectors) -> tuple[str, str]:
    return vectors["pulsar_auth"]["access_id"], vectors["pulsar_auth"]["access_key"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(project, clock) -> Iterator[Emulator]:
    with Emulator(*project, devices=[_plug()], clock=clock, token_lifetime_s=600, max_skew_s=60) as emu:
        yield emu


@pytest.fixture
def http(emulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator.url) as client:
        yield client


class Signer:
    """Signs by hand, so a test can sign one thing and send another."""

    def __init__(self, project: tuple[str, str], clock: FakeClock) -> None:
        self.client_id, self.secret = project
        self.clock = clock

    def headers(self, method: str, target: str, body: bytes = b"", token: str = "", **extra: Any) -> dict[str, str]:
        t_ms = extra.pop("t_ms", int(self.clock() * 1000))
        signature = sign(
            method, target, body, client_id=self.client_id, secret=self.secret, access_token=token, t_ms=t_ms, **extra
        )
        return signature.headers


@pytest.fixture
def signer(project, clock) -> Signer:
    return Signer(project, clock)


class SignedSession:
    """A token granted once, then GETs signed as a client signs them (query sorted into the signature)."""

    __test__ = False

    def __init__(self, emulator: Emulator | _Located, project: tuple[str, str], clock: FakeClock) -> None:
        self.emulator = emulator
        self.http = httpx.Client(base_url=emulator.url)
        self.signer = Signer(project, clock)
        self.token = _grant(self.http, self.signer)["access_token"]

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        """The whole answer (``success``, ``result`` or ``code``/``msg``) of ``GET path?params``."""
        target = f"{path}?{urlencode(params)}" if params else path
        return self.http.get(target, headers=self.signer.headers("GET", target, token=self.token)).json()

    def result(self, path: str, **params: Any) -> Any:
        """The ``result`` of a call that must succeed."""
        answer = self.get(path, **params)
        assert answer["success"] is True, answer
        return answer["result"]

    def close(self) -> None:
        self.http.close()


class _Located:
    """Stands in for an Emulator where only its URL is known (one started by the CLI)."""

    def __init__(self, url: str) -> None:
        self.url = url


def _grant(http: httpx.Client, signer: Signer) -> dict[str, Any]:
    target = "/v1.0/token?grant_type=1"
    answer = http.get(target, headers=signer.headers("GET", target)).json()
    assert answer["success"] is True
    return answer["result"]


def _status(http: httpx.Client, signer: Signer, token: str) -> dict[str, Any]:
    target = f"/v1.0/iot-03/devices/{PLUG}/status"
    return http.get(target, headers=signer.headers("GET", target, token=token)).json()


def _command(http: httpx.Client, signer: Signer, token: str, body: bytes, legacy_path: bool = False):
    target = f"/v1.0/{'' if legacy_path else 'iot-03/'}devices/{PLUG}/commands"
    headers = {**signer.headers("POST", target, body, token), "Content-Type": "application/json"}
    return http.post(target, content=body, headers=headers).json()


def test_tuya_published_example_accepted_and_its_negative_refused(vectors):
    doc = vectors["openapi_sign"]["vectors"][0]
    negative = next(v for v in vectors["openapi_sign"]["vectors"] if v["name"].startswith("NEGATIVE"))
    at_doc_time = FakeClock(int(doc["t"]) / 1000)
    with Emulator(doc["client_id"], doc["secret"], clock=at_doc_time) as emu, httpx.Client(base_url=emu.url) as http:
        assert http.get(doc["url"], headers=doc["headers_to_send"]).json()["success"] is True
        wrong = {**doc["headers_to_send"], "sign": negative["sign_computed"]}
        assert http.get(doc["url"], headers=wrong).json()["code"] == 1004


def test_grant_then_business_call_accepted(http, signer):
    token = _grant(http, signer)
    assert token["expire_time"] == 600
    answer = _status(http, signer, token["access_token"])
    assert answer["success"] is True
    assert answer["result"] == [{"code": "switch_1", "value": False}, {"code": "countdown_1", "value": 0}]


def test_every_answer_has_t_and_tid(http, signer, clock):
    token = _grant(http, signer)["access_token"]
    answers = [_status(http, signer, token), _status(http, signer, "not-a-token"), http.get("/v1.0/nothing").json()]
    for answer in answers:
        assert answer["t"] == int(clock() * 1000)
        assert len(answer["tid"]) == 32 and int(answer["tid"], 16) >= 0


def test_wrong_body_bytes_rejected(http, signer, emulator):
    token = _grant(http, signer)["access_token"]
    command = {"commands": [{"code": "switch_1", "value": True}]}
    signed = json.dumps(command, separators=(",", ":")).encode()
    sent = json.dumps(command).encode()  # same JSON, Python's default separators
    headers = {**signer.headers("POST", f"/v1.0/iot-03/devices/{PLUG}/commands", signed, token)}
    answer = http.post(f"/v1.0/iot-03/devices/{PLUG}/commands", content=sent, headers=headers).json()
    assert answer["code"] == 1004 and answer["msg"] == "sign invalid"
    assert emulator.commands == []


def test_query_signed_in_wire_order_rejected(http, signer):
    token = _grant(http, signer)["access_token"]
    target = f"/v1.0/iot-03/devices/{PLUG}/status?page_size=20&device_ids=x"
    t = str(int(signer.clock() * 1000))
    unsorted = f"GET\n{EMPTY_BODY_SHA256}\n\n{target}"  # a client that forgot to sort the query
    wrong = hmac.new(signer.secret.encode(), (signer.client_id + token + t + unsorted).encode(), hashlib.sha256)
    headers = {**signer.headers("GET", target, token=token), "sign": wrong.hexdigest().upper()}
    assert http.get(target, headers=headers).json()["code"] == 1004
    assert http.get(target, headers=signer.headers("GET", target, token=token)).json()["success"] is True


def test_stale_t_rejected_with_1013(http, signer, clock):
    stale = int((clock() - 120) * 1000)
    target = "/v1.0/token?grant_type=1"
    assert http.get(target, headers=signer.headers("GET", target, t_ms=stale)).json()["code"] == 1013


def test_wrong_client_id_and_missing_headers(http, signer):
    target = "/v1.0/token?grant_type=1"
    headers = {**signer.headers("GET", target), "client_id": "someoneelse"}
    assert http.get(target, headers=headers).json()["code"] == 1005
    assert http.get(target).json()["code"] == 1105


def test_refresh_token_works_once_and_revokes_the_old_pair(http, signer):
    first = _grant(http, signer)
    target = f"/v1.0/token/{first['refresh_token']}"
    second = http.get(target, headers=signer.headers("GET", target)).json()
    assert second["success"] is True
    assert http.get(target, headers=signer.headers("GET", target)).json()["code"] == 1010
    assert _status(http, signer, first["access_token"])["code"] == 1010
    assert _status(http, signer, second["result"]["access_token"])["success"] is True


def test_token_expires_after_its_lifetime(http, signer, clock):
    token = _grant(http, signer)["access_token"]
    clock.now += 599
    assert _status(http, signer, token)["success"] is True
    clock.now += 1
    assert _status(http, signer, token)["code"] == 1010


def test_grant_type_other_than_1_refused(http, signer):
    target = "/v1.0/token?grant_type=2"
    assert http.get(target, headers=signer.headers("GET", target)).json()["code"] == 1003


@pytest.mark.parametrize(
    ("commands", "code"),
    [
        ([{"code": "switch_9", "value": True}], 2008),
        ([{"code": "countdown_1", "value": "100"}], 1104),
        ([{"code": "countdown_1", "value": 86401}], 2008),
        ([{"code": "switch_1", "value": 1}], 1104),
        ([{"code": "mode", "value": "turbo"}], 2008),
        ([{"code": "switch_1", "value": True}, {"code": "nope", "value": 1}], 2008),
        ([], 1100),
    ],
)
def test_invalid_commands_refused_and_not_recorded(http, signer, emulator, commands, code):
    token = _grant(http, signer)["access_token"]
    body = json.dumps({"commands": commands}).encode()
    assert _command(http, signer, token, body)["code"] == code
    assert emulator.commands == []
    assert emulator.device(PLUG).status["switch_1"] is False


def test_offline_and_unknown_devices_refused(http, signer, emulator):
    token = _grant(http, signer)["access_token"]
    emulator.device(PLUG).online = False
    body = b'{"commands":[{"code":"switch_1","value":true}]}'
    assert _command(http, signer, token, body)["code"] == 2001
    target = "/v1.0/iot-03/devices/nosuchdevice/status"
    assert http.get(target, headers=signer.headers("GET", target, token=token)).json()["code"] == 2010


def test_accepted_command_recorded_with_its_tid(http, signer, emulator, clock):
    token = _grant(http, signer)["access_token"]
    answer = _command(http, signer, token, b'{"commands":[{"code":"switch_1","value":true}]}')
    assert answer == {"success": True, "result": True, "t": int(clock() * 1000), "tid": answer["tid"]}
    [recorded] = emulator.commands
    assert (recorded.device_id, recorded.commands, recorded.tid) == (
        PLUG,
        ({"code": "switch_1", "value": True},),
        answer["tid"],
    )
    assert emulator.device(PLUG).status["switch_1"] is True


def test_legacy_path_accepts_commands_as_a_json_string(http, signer, emulator):
    token = _grant(http, signer)["access_token"]
    body = json.dumps({"commands": json.dumps([{"code": "countdown_1", "value": 60}])}).encode()
    assert _command(http, signer, token, body, legacy_path=True)["result"] is True
    assert emulator.commands[0].path == f"/v1.0/devices/{PLUG}/commands"


def test_legacy_sign_project_accepts_only_the_legacy_algorithm(project, clock, signer):
    with Emulator(*project, clock=clock, legacy_sign=True) as emu, httpx.Client(base_url=emu.url) as http:
        target = "/v1.0/token?grant_type=1"
        assert http.get(target, headers=signer.headers("GET", target)).json()["code"] == 1004
        legacy = signer.headers("GET", target, legacy=True)
        assert http.get(target, headers=legacy).json()["success"] is True


def test_injected_faults_then_normal_answers(http, signer, emulator):
    token = _grant(http, signer)["access_token"]
    emulator.fail_next(1, http_status=503)
    emulator.fail_next(1, code=1199)
    target = f"/v1.0/iot-03/devices/{PLUG}/status"
    first = http.get(target, headers=signer.headers("GET", target, token=token))
    assert first.status_code == 503
    assert _status(http, signer, token)["code"] == 1199
    assert _status(http, signer, token)["success"] is True
    assert [call.code for call in emulator.calls] == [0, 503, 1199, 0]


def test_revoked_tokens_answer_1010(http, signer, emulator):
    token = _grant(http, signer)["access_token"]
    emulator.revoke_tokens()
    assert _status(http, signer, token)["code"] == 1010


def test_unknown_path_answers_1108(http, signer):
    token = _grant(http, signer)["access_token"]
    target = "/v1.0/iot-03/devices/x/unknown/deeper"
    assert http.get(target, headers=signer.headers("GET", target, token=token)).json()["code"] == 1108


def test_device_logs_filtered_and_paged(http, signer, emulator, clock):
    token = _grant(http, signer)["access_token"]
    base = int(clock() * 1000)
    for index in range(5):
        emulator.report(PLUG, "countdown_1", index, at_ms=base + index)
    emulator.report(PLUG, "switch_1", True, at_ms=base + 10)
    query = f"type=7&start_time={base}&end_time={base + 100}&codes=countdown_1&size=3"
    target = f"/v1.0/devices/{PLUG}/logs?{query}"
    page = http.get(target, headers=signer.headers("GET", target, token=token)).json()["result"]
    assert [row["value"] for row in page["logs"]] == ["0", "1", "2"] and page["has_next"] is True
    target += f"&start_row_key={page['next_row_key']}"
    page = http.get(target, headers=signer.headers("GET", target, token=token)).json()["result"]
    assert [row["value"] for row in page["logs"]] == ["3", "4"] and page["has_next"] is False


def _emulate_args(**overrides: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {
        "port": 0,
        "access_id": None,
        "access_key": None,
        "token_lifetime": 7200,
        "max_skew": 900.0,
        "legacy_sign": False,
        "devices": 0,
        "schema": "emulated",
    }
    return argparse.Namespace(**{**defaults, **overrides})


def test_emulate_api_command_serves_until_stopped(project, capsys):
    args = _emulate_args()
    settings = load_settings(tuya_access_id=project[0], tuya_access_key=project[1])
    answers = []

    def probe() -> None:
        url = next(w for w in capsys.readouterr().out.split() if w.startswith("http://127.0.0.1:"))
        answers.append(httpx.get(url + "/v1.0/token?grant_type=1").json())

    assert run_emulate(args, settings, until=probe) == 0
    assert answers[0]["code"] == 1105  # it answered, as Tuya does, about the missing signature headers


def test_emulate_api_needs_credentials(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUYA_ACCESS_ID", raising=False)
    with pytest.raises(ConfigError, match="TUYA_ACCESS_ID"):
        run_emulate(_emulate_args(), load_settings(), until=lambda: None)


def test_emulate_api_serves_a_generated_fleet_and_its_users(project, capsys):
    args = _emulate_args(devices=250, schema="smartlife")
    settings = load_settings(tuya_access_id=project[0], tuya_access_key=project[1])
    seen: dict[str, Any] = {}

    def probe() -> None:
        seen["printed"] = capsys.readouterr().out
        url = next(w for w in seen["printed"].split() if w.startswith("http://127.0.0.1:"))
        session = SignedSession(_Located(url), project, FakeClock(time.time()))  # the CLI's emulator: real clock
        try:
            seen["devices"] = session.result("/v1.3/iot-03/devices", page_size=200)["total"]
            seen["users"] = session.get("/v2.0/apps/smartlife/users")["success"]
            seen["other schema"] = session.get("/v2.0/apps/other/users")["code"]
        finally:
            session.close()

    assert run_emulate(args, settings, until=probe) == 0
    assert (seen["devices"], seen["users"], seen["other schema"]) == (250, True, 1106)
    assert "250 devices" in seen["printed"] and "app schema 'smartlife': 50 users" in seen["printed"]
