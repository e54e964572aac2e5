"""streams/tuya/openapi.py against the emulator over real loopback HTTP, with a fake clock and a sleep that never
sleeps (partner: tests/integration/test_emulator.py; the pacing arithmetic in tests/unit/tuya/test_ratelimit.py)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from random import Random
from typing import Any

import httpx
import pytest

from streams.cli import main
from streams.errors import ConfigError, PermanentError, TransientError
from streams.settings import load_settings
from streams.tuya.api_errors import ClientClosed, TuyaApiError, TuyaRateLimited, TuyaServerError
from streams.tuya.emulator import DataPoint, EmulatedDevice, Emulator
from streams.tuya.openapi import OpenApiClient
from streams.tuya.ratelimit import ApiPace, Backoff, DailyCallCounter, TokenBucket

pytestmark = pytest.mark.integration

PLUG = "emuplugfortests01"
SWITCH_ON = [{"code": "switch_1", "value": True}]


class FakeClock:
    """Wall clock and sleep in one: sleeping moves time on at once and is recorded."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _plug() -> EmulatedDevice:
    power = DataPoint("cur_power", "Integer", {"unit": "W", "min": 0, "max": 50000, "scale": 1, "step": 1})
    return EmulatedDevice(
        device_id=PLUG,
        functions=(DataPoint("switch_1", "Boolean"),),
        reported=(power,),
        status={"switch_1": False, "cur_power": 1234},
        name="Test plug",
        category="cz",
    )


@pytest.fixture
def project(vectors) -> tuple[str, str]:
    return vectors["pulsar_auth"]["access_id"], vectors["pulsar_auth"]["access_key"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(project, clock) -> Iterator[Emulator]:
    with Emulator(*project, devices=[_plug()], clock=clock, token_lifetime_s=120) as emu:
        yield emu


def _client(emulator: Emulator, project: tuple[str, str], clock: FakeClock, **options: Any) -> OpenApiClient:
    defaults: dict[str, Any] = {
        "clock": clock,
        "sleep": clock.sleep,
        "rng": Random(5),
        "limiter": TokenBucket(1000.0, burst=1000.0, clock=clock),  # out of the way unless a test sets one
        "timeout_s": 5.0,
    }
    return OpenApiClient(emulator.url, *project, **{**defaults, **options})


@pytest.fixture
def client(emulator, project, clock) -> Iterator[OpenApiClient]:
    with _client(emulator, project, clock) as api:
        yield api


def _paths(emulator: Emulator) -> list[tuple[str, int]]:
    return [(call.path.rsplit("/", 1)[-1], call.code) for call in emulator.calls]


def test_token_granted_once_and_reused(client, emulator):
    assert client.device_status(PLUG).values == {"switch_1": False, "cur_power": 1234}
    client.device_status(PLUG)
    assert _paths(emulator) == [("token?grant_type=1", 0), ("status", 0), ("status", 0)]


def test_token_refreshed_ahead_of_expiry_each_refresh_token_used_once(client, emulator, clock):
    client.device_status(PLUG)
    clock.now += 61  # lifetime 120 s, refreshed 60 s ahead
    client.device_status(PLUG)
    clock.now += 61
    client.device_status(PLUG)
    assert _paths(emulator) == [
        ("token?grant_type=1", 0),
        ("status", 0),
        ("***", 0),
        ("status", 0),
        ("***", 0),
        ("status", 0),
    ]


def test_token_expired_on_the_server_refreshed_and_call_retried_once(emulator, project, clock):
    client_clock = FakeClock(clock.now)  # stays behind: the client believes its token is fresh
    with _client(emulator, project, client_clock) as client:
        client.device_status(PLUG)
        clock.now += 121
        assert client.send_commands(PLUG, SWITCH_ON).accepted is True
    assert _paths(emulator)[1:] == [("status", 0), ("commands", 1010), ("***", 0), ("commands", 0)]
    assert len(emulator.commands) == 1


def test_invalidated_tokens_refresh_then_retry_succeeds(client, emulator):
    client.device_status(PLUG)
    emulator.revoke_tokens()
    assert client.device_status(PLUG).values["switch_1"] is False
    assert _paths(emulator)[2:] == [("status", 1010), ("***", 0), ("status", 0)]


def test_refused_refresh_falls_back_to_a_new_grant(client, emulator):
    client.device_status(PLUG)
    emulator.revoke_tokens(refresh_tokens=True)
    client.device_status(PLUG)
    assert _paths(emulator)[2:] == [("status", 1010), ("***", 1010), ("token?grant_type=1", 0), ("status", 0)]


def test_token_rejected_again_after_renewal_raises_with_code_and_tid(client, emulator):
    client.device_status(PLUG)
    emulator.fail_next(2, code=1011, path_prefix="/v1.0/iot-03")
    with pytest.raises(TuyaApiError) as caught:
        client.device_status(PLUG)
    assert caught.value.code == 1011
    assert caught.value.tid == emulator.calls[-1].tid
    assert [code for _, code in _paths(emulator)[2:]] == [1011, 0, 1011]  # retried once, only once


def test_rate_limit_answers_backed_off_and_retried(client, emulator, clock):
    client.device_status(PLUG)
    emulator.fail_next(2, code=1199, path_prefix="/v1.0/iot-03")
    assert client.send_commands(PLUG, SWITCH_ON).accepted is True
    assert len(clock.sleeps) == 2 and all(0 <= s <= 1.0 for s in clock.sleeps)  # 0.5 s, then 1 s ceilings
    assert [code for _, code in _paths(emulator)[2:]] == [1199, 1199, 0]
    assert len(emulator.commands) == 1


def test_rate_limit_beyond_the_budget_raises_transient_with_code_and_tid(emulator, project, clock):
    emulator.fail_next(10, code=1199, path_prefix="/v1.0/iot-03")
    with (
        _client(emulator, project, clock, backoff=Backoff(attempts=3)) as client,
        pytest.raises(TuyaRateLimited) as caught,
    ):
        client.device_status(PLUG)
    assert isinstance(caught.value, TransientError)
    assert (caught.value.code, caught.value.tid) == (1199, emulator.calls[-1].tid)
    assert len(clock.sleeps) == 2


@pytest.mark.parametrize("status", [500, 503])
def test_http_5xx_retried(client, emulator, status):
    client.device_status(PLUG)
    emulator.fail_next(1, http_status=status)
    assert client.send_commands(PLUG, SWITCH_ON).accepted is True
    assert [code for _, code in _paths(emulator)[2:]] == [status, 0]


@pytest.mark.parametrize("status", [502, 504])
def test_a_gateway_error_retries_a_read_but_not_a_command_that_may_have_arrived(client, emulator, status):
    emulator.fail_next(1, http_status=status, path_prefix="/v1.0/iot-03")
    assert client.device_status(PLUG).values["switch_1"] is False  # a read: retried
    emulator.fail_next(1, http_status=status, path_prefix="/v1.0/iot-03")
    with pytest.raises(TuyaServerError) as caught:
        client.send_commands(PLUG, SWITCH_ON)
    assert (caught.value.code, caught.value.maybe_applied) == (status, True)
    assert "may have applied" in str(caught.value)
    assert [code for _, code in _paths(emulator)[1:]] == [status, 0, status]  # the command: once


class FailFirstToken(httpx.BaseTransport):
    """Loopback HTTP to the emulator, but the first token call's answer is lost (the connection drops)."""

    def __init__(self) -> None:
        self._http = httpx.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1.0/token" and not self.dropped:
            self.dropped += 1
            raise httpx.ReadError("connection reset", request=request)
        return self._http.handle_request(request)

    def close(self) -> None:
        self._http.close()


def test_a_token_call_without_answer_before_a_command_is_retried_the_command_had_not_left(emulator, project, clock):
    transport = FailFirstToken()
    with _client(emulator, project, clock, transport=transport) as client:
        assert client.send_commands(PLUG, SWITCH_ON).accepted is True
    assert (transport.dropped, len(emulator.commands), len(clock.sleeps)) == (1, 1, 1)


def test_a_token_call_keeps_the_client_timeout(emulator, project, clock):
    emulator.delay_next(1, 5.0, path_prefix="/v1.0/token")
    with _client(emulator, project, clock, timeout_s=0.2) as client:
        assert client.send_commands(PLUG, SWITCH_ON).accepted is True
    assert (len(clock.sleeps), len(emulator.commands)) == (1, 1)  # timed out, backed off once, then granted


def test_busy_code_500_retried_then_raised_as_server_error(emulator, project, clock):
    emulator.fail_next(5, code=500, path_prefix="/v1.0/iot-03")
    with (
        _client(emulator, project, clock, backoff=Backoff(attempts=2)) as client,
        pytest.raises(TuyaServerError) as caught,
    ):
        client.device_status(PLUG)
    assert caught.value.code == 500 and caught.value.tid == emulator.calls[-1].tid


def test_permanent_error_raised_at_once_with_code_msg_and_tid(client, emulator, clock):
    with pytest.raises(TuyaApiError) as caught:
        client.send_commands(PLUG, [{"code": "switch_1", "value": "on"}])
    error = caught.value
    assert isinstance(error, PermanentError)
    assert (error.code, error.msg) == (1104, "type is incorrect: switch_1")
    assert error.tid == emulator.calls[-1].tid and error.tid in str(error)
    assert clock.sleeps == [] and emulator.commands == []


def test_slow_answer_to_a_read_is_retried(emulator, project, clock):
    emulator.delay_next(1, 5.0, path_prefix="/v1.0/iot-03")
    with _client(emulator, project, clock, timeout_s=0.2) as client:
        assert client.device_status(PLUG).values["switch_1"] is False
    assert [path for path, _ in _paths(emulator)] == ["token?grant_type=1", "status", "status"]


def test_command_whose_answer_is_lost_is_not_sent_again(emulator, project, clock):
    emulator.delay_next(1, 5.0, path_prefix="/v1.0/iot-03")
    with _client(emulator, project, clock, timeout_s=0.2) as client, pytest.raises(TuyaServerError) as caught:
        client.send_commands(PLUG, SWITCH_ON)
    assert caught.value.maybe_applied is True and caught.value.code == 0 and caught.value.tid == ""
    assert len(emulator.commands) == 1


def test_a_call_waiting_for_its_turn_when_the_client_closes_is_not_sent(emulator, project, clock):
    # A worker's stop closes the client of a sync under way: the call the rate held back left after it.
    holder: list[OpenApiClient] = []

    def sleep(seconds: float) -> None:  # the stop comes while the call waits for its turn
        holder[0].close()
        clock.sleep(seconds)

    client = _client(emulator, project, clock, limiter=TokenBucket(1.0, burst=1.0, clock=clock), sleep=sleep)
    holder.append(client)
    with pytest.raises(ClientClosed):
        client.device_status(PLUG)  # the token grant takes the one call the rate allows now
    assert [path for path, _ in _paths(emulator)] == ["token?grant_type=1"]
    assert client.calls_made == 1


def test_a_call_after_the_client_closed_is_refused_as_closed(emulator, project, clock):
    # A stop between two calls of a sync or backfill: httpx's bare RuntimeError was no ClientClosed, so the backfill
    # did not count the calls of the device it was reading.
    client = _client(emulator, project, clock)
    client.device_status(PLUG)
    client.close()
    with pytest.raises(ClientClosed):
        client.device_status(PLUG)
    assert [path for path, _ in _paths(emulator)] == ["token?grant_type=1", "status"]


def test_a_call_the_client_closed_under_is_not_retried(emulator, project, clock, caplog):
    client = _client(emulator, project, clock, timeout_s=2.0)  # the close comes well before the answer is due
    client.device_status(PLUG)  # the token, first
    emulator.delay_next(1, 5.0, path_prefix="/v1.0/iot-03")
    closer = threading.Timer(0.1, client.close)
    closer.start()
    with caplog.at_level(logging.WARNING, logger="streams.tuya.openapi"), pytest.raises(ClientClosed):
        client.device_status(PLUG)
    closer.join()
    assert [path for path, _ in _paths(emulator)] == ["token?grant_type=1", "status", "status"]
    assert caplog.records == []  # no "no answer …; retry 1" warning: Tuya had done nothing wrong


def test_limiter_holds_the_configured_rate(emulator, project, clock):
    with _client(emulator, project, clock, limiter=TokenBucket(4.0, clock=clock)) as client:
        for _ in range(12):
            client.device_status(PLUG)
    times = [call.at_ms for call in emulator.calls]
    assert len(times) == 13  # the grant is paced too
    assert all(later - first >= 1000 for first, later in zip(times, times[4:], strict=False))


def test_daily_quota_warning_logged(emulator, project, clock, caplog):
    quota = DailyCallCounter(4, warn_fraction=0.5, clock=clock)
    with caplog.at_level(logging.WARNING), _client(emulator, project, clock, quota=quota) as client:
        for _ in range(4):
            client.device_status(PLUG)
    warnings = [r.getMessage() for r in caplog.records if "daily quota" in r.getMessage()]
    assert len(warnings) == 2 and "2 of the daily quota of 4" in warnings[0]


def test_secrets_and_tokens_never_logged_nor_in_errors(emulator, project, clock, caplog):
    seen: set[str] = set()
    with caplog.at_level(logging.DEBUG), _client(emulator, project, clock) as client:
        client.device_status(PLUG)
        seen |= {client.auth.token.access_token, client.auth.token.refresh_token}
        clock.now += 61
        client.device_status(PLUG)
        seen |= {client.auth.token.access_token, client.auth.token.refresh_token}
        emulator.revoke_tokens()
        with pytest.raises(TuyaApiError) as caught:
            client.send_commands(PLUG, [{"code": "nope", "value": 1}])
        seen |= {client.auth.token.access_token, client.auth.token.refresh_token, project[1]}
        shown = [caplog.text, str(caught.value), repr(caught.value), repr(client.auth.token), repr(client.auth)]
    assert len(seen) == 7
    assert "/v1.0/token/***" in caplog.text  # the refresh was logged, redacted
    for secret in seen:
        assert all(secret not in text for text in shown)


def test_typed_results_of_every_endpoint(client, emulator, clock):
    specification = client.device_specification(PLUG)
    assert (specification.category, specification.scale("cur_power"), specification.unit("cur_power")) == ("cz", 1, "W")
    assert specification.point("switch_1").type == "Boolean"
    info = client.device_info(PLUG)
    assert (info.id, info.name, info.online, len(info.tid)) == (PLUG, "Test plug", True, 32)
    start = int(clock() * 1000)
    for watts in (10, 20, 30):
        emulator.report(PLUG, "cur_power", watts, at_ms=start + watts)
    page = client.device_logs(PLUG, start_ms=start, end_ms=start + 100, codes=["cur_power"], size=2)
    assert [entry.value for entry in page.logs] == ["10", "20"] and page.has_next  # Tuya sends log values as strings
    page = client.device_logs(PLUG, start_ms=start, end_ms=start + 100, size=2, start_row_key=page.next_row_key)
    assert [entry.value for entry in page.logs] == ["30"] and not page.has_next


def test_legacy_signature_and_path_family(project, clock):
    with Emulator(*project, devices=[_plug()], clock=clock, legacy_sign=True) as emulator:
        with _client(emulator, project, clock, legacy_sign=True, legacy_paths=True) as client:
            assert client.send_commands(PLUG, SWITCH_ON).accepted is True
            assert client.device_specification(PLUG).scale("cur_power") == 1
        assert emulator.commands[0].path == f"/v1.0/devices/{PLUG}/commands"


def test_from_settings_uses_the_override_url_and_credentials(emulator, project, clock):
    settings = load_settings(
        tuya_access_id=project[0], tuya_access_key=project[1], tuya_openapi_url=emulator.url, tuya_api_rate=1000
    )
    with OpenApiClient.from_settings(settings, clock=clock) as client:
        assert client.send_commands(PLUG, SWITCH_ON).tid == emulator.commands[0].tid


def test_clients_from_settings_with_one_pace_share_the_rate_and_the_daily_count(emulator, project, clock):
    settings = load_settings(tuya_access_id=project[0], tuya_access_key=project[1], tuya_openapi_url=emulator.url)
    pace = ApiPace(TokenBucket(4.0, clock=clock), DailyCallCounter(1000, clock=clock))
    with (
        OpenApiClient.from_settings(settings, pace=pace, clock=clock, sleep=clock.sleep) as sender,
        OpenApiClient.from_settings(settings, pace=pace, clock=clock, sleep=clock.sleep) as sync,
    ):
        for _ in range(6):
            sender.device_status(PLUG)
            sync.device_status(PLUG)
    assert pace.quota.calls == sender.calls_made + sync.calls_made == 14  # two grants, twelve reads
    times = [call.at_ms for call in emulator.calls]
    assert all(later - first >= 1000 for first, later in zip(times, times[4:], strict=False))  # 4/s in all


def test_from_settings_without_credentials_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUYA_ACCESS_ID", raising=False)
    with pytest.raises(ConfigError, match="TUYA_ACCESS_ID"):
        OpenApiClient.from_settings(load_settings(tuya_openapi_url="http://127.0.0.1:9"))


@pytest.fixture
def cli_env(monkeypatch, tmp_path, project):
    monkeypatch.chdir(tmp_path)  # no stray .env
    with Emulator(*project, devices=[_plug()]) as emulator:
        for name, value in {
            "TUYA_ACCESS_ID": project[0],
            "TUYA_ACCESS_KEY": project[1],
            "TUYA_OPENAPI_URL": emulator.url,
            "TUYA_API_RATE": "1000",
        }.items():
            monkeypatch.setenv(name, value)
        yield emulator


def test_cli_command_sends_and_prints_tuyas_answer(cli_env, capsys):
    assert main(["command", PLUG, "switch_1=true"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["success"] is True and answer["result"] is True
    assert answer["tid"] == cli_env.commands[0].tid
    assert cli_env.commands[0].commands == ({"code": "switch_1", "value": True},)


def test_cli_command_refused_prints_code_and_exits_1(cli_env, capsys):
    assert main(["command", PLUG, "switch_1=on"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert (answer["success"], answer["code"], answer["tid"]) == (False, 1104, cli_env.calls[-1].tid)


def test_cli_api_prints_any_calls_json(cli_env, capsys):
    assert main(["api", "get", f"/v1.0/iot-03/devices/{PLUG}/status"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == [
        {"code": "switch_1", "value": False},
        {"code": "cur_power", "value": 1234},
    ]
    body = json.dumps({"commands": SWITCH_ON})
    assert main(["api", "POST", f"/v1.0/iot-03/devices/{PLUG}/commands", "--data", body]) == 0
    assert json.loads(capsys.readouterr().out)["result"] is True
