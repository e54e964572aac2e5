"""The signed Tuya OpenAPI client (SPEC.md §4, §5): tokens, signing in an httpx.Auth, pacing, retries, endpoints.

Owns the token lifecycle, the endpoints' paths and the application of pacing and retries. Signing is delegated
to the pure :mod:`streams.tuya.signing`, pacing arithmetic to :mod:`streams.tuya.ratelimit`, error codes to
:mod:`streams.tuya.api_errors`, result shapes to :mod:`streams.tuya.results`. Must not import the store, the rules,
pulsar or the emulator. Never logs the access key
or a token: the refresh token travels in a URL path, so a filter redacts it from httpx's request log.

A client is meant for one thread at a time (the worker's outbox sender); build one per thread otherwise.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from streams.settings import Settings
from streams.tuya.api_errors import (
    NO_ANSWER,
    TOKEN_CODES,
    ClientClosed,
    TuyaApiError,
    TuyaRateLimited,
    TuyaServerError,
    redact_path,
)
from streams.tuya.ratelimit import ApiPace, Backoff, DailyCallCounter, TokenBucket
from streams.tuya.results import (
    ApiAnswer,
    CommandResult,
    DeviceInfo,
    DeviceLogPage,
    DeviceSpecification,
    DeviceStatus,
    device_log_page,
    device_specification,
    device_status,
    envelope_answer,
    failure_code,
    tid_of,
)
from streams.tuya.signing import sign

__all__ = ["OpenApiClient", "Token", "TuyaAuth", "parse_answer"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_GRANT_PATH = "/v1.0/token?grant_type=1"  # SPEC.md §4.2: grant_type=1 is the "simple mode" grant
# Failures after which the request cannot have reached Tuya, so even a command may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_GATEWAY_ERRORS = frozenset({502, 504})


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and its single-use refresh token; times are on the client's clock (seconds)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    uid: str
    refresh_at: float
    expires_at: float


class _TokenResult(msgspec.Struct):
    access_token: str
    refresh_token: str
    expire_time: int
    uid: str = ""


def _uuid_nonce() -> str:
    return uuid.uuid4().hex


class TuyaAuth(httpx.Auth):
    """Signs every request; gets, refreshes and renews the token by yielding the token calls from the flow.

    In the shape of httpx's DigestAuth 401 retry: when Tuya answers 1010/1011/1012 the token is renewed and the
    original request is signed and sent once more, and only once.
    """

    requires_request_body = True
    requires_response_body = True

    def __init__(
        self,
        access_id: str,
        access_key: str,
        *,
        legacy: bool = False,
        refresh_margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = _uuid_nonce,
    ) -> None:
        self._id = access_id
        self._key = access_key
        self._legacy = legacy
        self._margin = refresh_margin_s
        self._clock = clock
        self._nonce = nonce
        self.token: Token | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = yield from self._usable_token(request)
        response = yield self._signed(request, token.access_token)
        code = failure_code(response.content)
        if code not in TOKEN_CODES:
            return
        log.info("Tuya answered %d (tid %s): renewing the token, retrying once", code, _tid(response))
        token = yield from self._renewed(request, token)
        yield self._signed(request, token.access_token)

    @property
    def token_calls_due(self) -> int:
        """The token calls the next request makes first: a grant, or a refresh (a refused refresh adds a grant)."""
        token = self.token
        return 1 if token is None or self._clock() >= token.refresh_at else 0

    def _usable_token(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, Token]:
        token = self.token
        if token is None:
            return (yield from self._granted(request))
        if self._clock() >= token.refresh_at:
            return (yield from self._renewed(request, token))
        return token

    def _renewed(self, request: httpx.Request, stale: Token) -> Generator[httpx.Request, httpx.Response, Token]:
        """A refreshed token, or a new grant when the refresh is refused. The refresh token is used once."""
        self.token = None  # whatever the answer, the refresh token is spent (SPEC.md §4.2)
        response = yield self._token_request(request, f"/v1.0/token/{stale.refresh_token}")
        try:
            return self._accepted(response, "refreshed")
        except TuyaApiError as exc:
            log.warning("Tuya refused the token refresh (%d %s, tid %s): requesting a new grant", *_what(exc))
        return (yield from self._granted(request))

    def _granted(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, Token]:
        response = yield self._token_request(request, _GRANT_PATH)
        return self._accepted(response, "granted")

    def _accepted(self, response: httpx.Response, how: str) -> Token:
        answer = parse_answer(response)
        result = _convert(answer, _TokenResult)
        now = self._clock()
        lifetime = float(result.expire_time)
        self.token = Token(
            access_token=result.access_token,
            refresh_token=result.refresh_token,
            uid=result.uid,
            refresh_at=now + max(lifetime - self._margin, lifetime / 2),
            expires_at=now + lifetime,
        )
        log.info("Tuya OpenAPI token %s, valid for %d s (tid %s)", how, result.expire_time, answer.tid)
        return self.token

    def _token_request(self, request: httpx.Request, path: str) -> httpx.Request:
        url = request.url.copy_with(raw_path=path.encode("ascii"))
        # the extensions carry the client's timeout: a token call without them would wait for ever
        return self._signed(httpx.Request("GET", url, extensions=dict(request.extensions)), "")

    def _signed(self, request: httpx.Request, access_token: str) -> httpx.Request:
        signature = sign(
            request.method,
            request.url.raw_path.decode("ascii"),
            request.content,
            client_id=self._id,
            secret=self._key,
            access_token=access_token,
            t_ms=int(self._clock() * 1000),
            nonce="" if self._legacy else self._nonce(),
            legacy=self._legacy,
        )
        request.headers.update(signature.headers)
        return request


def parse_answer(response: httpx.Response) -> ApiAnswer:
    """Tuya's answer as an :class:`ApiAnswer`; raise the typed error of a failure (never return None)."""
    path = response.request.url.raw_path.decode("ascii")
    status = response.status_code
    retry_after = _retry_after(response)
    if status == 429:
        raise TuyaRateLimited(429, "HTTP 429 Too Many Requests", _tid(response), path=path, retry_after=retry_after)
    if status >= 500:
        # A gateway's error (502, 504) says nothing of what Tuya behind it did: a command may have been applied.
        maybe_applied = status in _GATEWAY_ERRORS and response.request.method != "GET"
        note = ": Tuya may have applied it" if maybe_applied else ""
        msg = f"HTTP {status} {response.reason_phrase}{note}"
        raise TuyaServerError(
            status, msg, _tid(response), path=path, retry_after=retry_after, maybe_applied=maybe_applied
        )
    if status >= 300:
        raise TuyaApiError(status, f"HTTP {status} {response.reason_phrase}", _tid(response), path=path)
    return envelope_answer(response.content, path=path, retry_after=retry_after)


def _tid(response: httpx.Response) -> str:
    return tid_of(response.content)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _convert(answer: ApiAnswer, type_: type[_T]) -> _T:
    try:
        return msgspec.convert(answer.result, type=type_, strict=False)
    except msgspec.ValidationError as exc:
        raise TuyaApiError(NO_ANSWER, f"unexpected result shape: {exc}", answer.tid) from None


def _what(exc: TuyaApiError | TuyaRateLimited | TuyaServerError) -> tuple[int, str, str]:
    return exc.code, exc.msg, exc.tid or "none"


class _RedactTokenPaths(logging.Filter):
    """Rewrites httpx's "HTTP Request: GET <url>" records so a refresh token in the URL never reaches a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_path(str(a)) if isinstance(a, httpx.URL | str) else a for a in record.args)
        return True


def _redact_httpx_log() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(existing, _RedactTokenPaths) for existing in logger.filters):
        logger.addFilter(_RedactTokenPaths())


class OpenApiClient:
    """Tuya's OpenAPI for the endpoints the worker needs; every call paced, signed, retried within a budget.

    Raises TuyaApiError (permanent), or TuyaRateLimited / TuyaServerError once the retry budget is spent.
    """

    def __init__(
        self,
        base_url: str,
        access_id: str,
        access_key: str,
        *,
        legacy_sign: bool = False,
        legacy_paths: bool = False,
        limiter: TokenBucket | None = None,
        quota: DailyCallCounter | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        refresh_margin_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        nonce: Callable[[], str] = _uuid_nonce,
        rng: Random | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.auth = TuyaAuth(
            access_id, access_key, legacy=legacy_sign, refresh_margin_s=refresh_margin_s, clock=clock, nonce=nonce
        )
        self._devices = "/v1.0/devices" if legacy_paths else "/v1.0/iot-03/devices"
        self._limiter = limiter or TokenBucket(5.0)
        self._quota = quota
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._rng = rng or Random()
        #: HTTP requests this client sent (token calls and retries included): what Tuya counts against the quota.
        self.calls_made = 0
        self._closed = False  # set by close(), from another thread too: no call leaves after it
        _redact_httpx_log()
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout_s,
            transport=transport,
            event_hooks={"request": [self._pace]},
        )

    @staticmethod
    def pace_of(settings: Settings) -> ApiPace:
        """A pace of ``TUYA_API_RATE`` and ``TUYA_API_DAILY_QUOTA``: give the same one to every client of a process."""
        return ApiPace(TokenBucket(settings.tuya_api_rate), DailyCallCounter(settings.tuya_api_daily_quota))

    @classmethod
    def from_settings(cls, settings: Settings, *, pace: ApiPace | None = None, **overrides: Any) -> OpenApiClient:
        """A client for the project in ``settings`` (ConfigError naming the variable when credentials are unset),
        paced by ``pace`` (shared with the process's other clients), else by a pace of its own."""
        settings.require("tuya_access_id", "tuya_access_key")
        pace = pace or cls.pace_of(settings)
        options: dict[str, Any] = {
            "legacy_sign": settings.tuya_sign_legacy,
            "legacy_paths": settings.tuya_commands_legacy_path,
            "limiter": pace.limiter,
            "quota": pace.quota,
        }
        options.update(overrides)
        assert settings.tuya_access_id is not None
        return cls(settings.openapi_url, settings.tuya_access_id, settings.access_key, **options)

    def __enter__(self) -> OpenApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client; from another thread, a call waiting for its turn is not sent (ClientClosed) and one
        whose answer the close cut off is not retried (a worker's stop ends a sync at its next call)."""
        self._closed = True
        self._http.close()

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> ApiAnswer:
        """Any call: ``body`` is encoded once as compact JSON, and those exact bytes are signed and sent."""
        content = None if body is None else msgspec.json.encode(body)
        headers = None if content is None else {"Content-Type": "application/json"}
        request = self._http.build_request(method.upper(), path, params=params, content=content, headers=headers)
        return self._send_with_retries(request)

    def send_commands(self, device_id: str, commands: Sequence[Mapping[str, Any]]) -> CommandResult:
        """POST ``{"commands": [{"code": …, "value": …}, …]}`` to the device; Tuya answers ``result: true``."""
        answer = self.request("POST", self._device_path(device_id, "commands"), body={"commands": list(commands)})
        return CommandResult(device_id=device_id, accepted=answer.result is True, t=answer.t, tid=answer.tid)

    def device_status(self, device_id: str) -> DeviceStatus:
        answer = self.request("GET", self._device_path(device_id, "status"))
        return _parsed(answer, lambda result: device_status(device_id, result, answer.t, answer.tid))

    def device_specification(self, device_id: str) -> DeviceSpecification:
        """Data point types, ranges, ``scale`` and ``unit`` per code."""
        suffix = "specifications" if self._devices == "/v1.0/devices" else "specification"
        answer = self.request("GET", self._device_path(device_id, suffix))
        return _parsed(answer, lambda result: device_specification(device_id, result, answer.t, answer.tid))

    def device_info(self, device_id: str) -> DeviceInfo:
        answer = self.request("GET", self._device_path(device_id))
        return msgspec.structs.replace(_convert(answer, DeviceInfo), t=answer.t, tid=answer.tid)

    def device_logs(
        self,
        device_id: str,
        *,
        start_ms: int,
        end_ms: int,
        event_types: str = "7",
        codes: Sequence[str] = (),
        size: int = 100,
        start_row_key: str = "",
    ) -> DeviceLogPage:
        """One page of ``GET /v1.0/devices/{id}/logs`` (type 7: data point reports); pass ``next_row_key`` on."""
        params = {"type": event_types, "start_time": start_ms, "end_time": end_ms, "size": size, "query_type": 1}
        if codes:
            params["codes"] = ",".join(codes)
        if start_row_key:
            params["start_row_key"] = start_row_key
        path = f"/v1.0/devices/{quote(device_id, safe='')}/logs"
        answer = self.request("GET", path, params=params)
        return _parsed(answer, lambda result: device_log_page(device_id, result, answer.t, answer.tid))

    def _device_path(self, device_id: str, suffix: str = "") -> str:
        path = f"{self._devices}/{quote(device_id, safe='')}"
        return f"{path}/{suffix}" if suffix else path

    def _send_with_retries(self, request: httpx.Request) -> ApiAnswer:
        failures, slept = 0, 0.0
        while True:
            try:
                return self._send_once(request)
            except (TuyaRateLimited, TuyaServerError) as exc:
                if self._closed:
                    raise ClientClosed("the OpenAPI client was closed while a call waited for its answer") from exc
                failures += 1
                delay = self._backoff.next_delay(failures, slept, self._rng, at_least=exc.server_retry_after or 0.0)
                if delay is None or (isinstance(exc, TuyaServerError) and exc.maybe_applied):
                    raise
                log.warning("%s; retry %d in %.2f s", exc, failures, delay)
                self._sleep(delay)
                slept += delay

    def _send_once(self, request: httpx.Request) -> ApiAnswer:
        if self._closed:  # closed between two calls: httpx would say so with a bare RuntimeError
            raise ClientClosed("the OpenAPI client was closed before the call was sent")
        try:
            response = self._http.send(request, auth=self.auth)
        except httpx.TransportError as exc:
            raise _no_answer(request, exc) from exc
        except RuntimeError as exc:
            if self._closed:  # closed the moment the call was to go
                raise ClientClosed("the OpenAPI client was closed before the call was sent") from exc
            raise
        return parse_answer(response)

    @property
    def daily_quota(self) -> int | None:
        """The project's daily call quota (TUYA_API_DAILY_QUOTA), when the client counts against one."""
        return self._quota.quota if self._quota else None

    def _pace(self, request: httpx.Request) -> None:
        wait = self._limiter.reserve()
        if wait > 0:
            self._sleep(wait)
        if self._closed:  # meanwhile: the call is not sent, nor counted
            raise ClientClosed("the OpenAPI client was closed while a call waited for its turn")
        self.calls_made += 1
        warning = self._quota.record() if self._quota else None
        if warning:
            log.warning("%s", warning)


def _parsed(answer: ApiAnswer, build: Callable[[Any], _T]) -> _T:
    try:
        return build(answer.result)
    except (msgspec.ValidationError, TypeError, KeyError, AttributeError) as exc:
        raise TuyaApiError(NO_ANSWER, f"unexpected result shape: {exc}", answer.tid) from None


def _no_answer(request: httpx.Request, exc: httpx.TransportError) -> TuyaServerError:
    """A TuyaServerError for a call that got no answer; a command that may have arrived is not sent again. The
    failed request may be the token call ahead of ``request``: then the command never left."""
    try:
        failed = exc.request
    except RuntimeError:  # httpx sets it on every error it raises; this is for one raised without
        failed = request
    maybe_applied = failed.method != "GET" and not isinstance(exc, _NOT_SENT)
    note = ": Tuya may have applied it" if maybe_applied else ""
    return TuyaServerError(
        NO_ANSWER,
        f"no answer ({type(exc).__name__}){note}",
        path=failed.url.raw_path.decode("ascii"),
        maybe_applied=maybe_applied,
    )
