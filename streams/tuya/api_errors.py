"""Tuya OpenAPI failures as typed exceptions, sorted by what the caller must do (STYLE.md P4).

Owns the error codes' meaning (SPEC.md §5) and the three exception classes; every one carries Tuya's ``code``,
``msg`` and ``tid`` (``""`` when there was no answer, never None). Messages never contain the access key or a
token: paths are passed through :func:`redact_path`. Imports only :mod:`streams.errors`; must not import httpx.

    WorkerError
    ├── PermanentError
    │   └── TuyaApiError        success:false with a code retrying cannot fix (1004, 1106, 2001, 2008, …),
    │                           a token still rejected after one renewal, or an answer that is not Tuya's JSON
    └── TransientError(retry_after)
        ├── TuyaRateLimited     1110, 1199, HTTP 429: back off
        └── TuyaServerError     500, 1111, HTTP 5xx, or no answer at all (code 0): back off
"""

from __future__ import annotations

import re

from streams.errors import PermanentError, TransientError

__all__ = [
    "CODE_MESSAGES",
    "NO_ANSWER",
    "PROJECT_CODES",
    "RATE_LIMIT_CODES",
    "SERVER_BUSY_CODES",
    "TOKEN_CODES",
    "TUYA_ERRORS",
    "ClientClosed",
    "TuyaApiError",
    "TuyaRateLimited",
    "TuyaServerError",
    "error_for",
    "redact_path",
]

# SPEC.md §5: live traffic shows 1010 "token invalid"; 1010, 1011 and 1012 all mean "get a new token, retry once".
TOKEN_CODES = frozenset({1010, 1011, 1012})
#: The project's credentials, token or clock refused (a token that a new one did not mend included): every call of
#: the project fails alike, whatever device it names.
PROJECT_CODES = frozenset({1002, 1003, 1004, 1005, 1013}) | TOKEN_CODES
RATE_LIMIT_CODES = frozenset({1110, 1199})
SERVER_BUSY_CODES = frozenset({500, 1111})
NO_ANSWER = 0  # the code of a TuyaServerError raised because no HTTP answer arrived

CODE_MESSAGES: dict[int, str] = {
    500: "system error",
    1000: "data not exist",
    1002: "access_token is null",
    1003: "grant type invalid",
    1004: "sign invalid",
    1005: "clientId invalid",
    1010: "token invalid",
    1011: "token invalid",
    1012: "token status is invalid",
    1013: "request time is invalid",
    1100: "param is empty",
    1101: "params range invalid",
    1104: "type is incorrect",
    1105: "missing the header",
    1106: "permission deny",
    1108: "uri path invalid",
    1109: "param is illegal",
    1110: "concurrent request over limit",
    1111: "system is busy",
    1199: "your requests are too frequent",
    2001: "device is offline",
    2008: "command or value not support",
    2010: "device not exist",
    28841105: "No permissions. This API is not subscribed.",
}

_TOKEN_IN_PATH = re.compile(r"(/v1\.0/token/)[^?/\s\"']+")


def redact_path(path: str) -> str:
    """``path`` (or a URL, or a log line) with the refresh token of ``/v1.0/token/{refresh_token}`` as ``***``."""
    return _TOKEN_IN_PATH.sub(r"\1***", path)


def _describe(code: int, msg: str, tid: str, path: str) -> str:
    where = f" on {redact_path(path)}" if path else ""
    return f"Tuya OpenAPI error {code} {msg!r}{where} (tid {tid or 'none'})"


class ClientClosed(RuntimeError):
    """The client was closed (a stop) before the call was sent or answered; nothing about Tuya."""


class TuyaApiError(PermanentError):
    """Tuya refused the call for a reason retrying cannot fix; mark the command failed with ``code`` and ``msg``."""

    def __init__(self, code: int, msg: str, tid: str = "", *, path: str = "") -> None:
        super().__init__(_describe(code, msg, tid, path))
        self.code = code
        self.msg = msg
        self.tid = tid
        self.path = redact_path(path)


class TuyaRateLimited(TransientError):
    """Tuya (or a proxy) said "too many requests"; ``server_retry_after`` is its Retry-After, if it sent one."""

    def __init__(self, code: int, msg: str, tid: str = "", *, path: str = "", retry_after: float | None = None) -> None:
        super().__init__(_describe(code, msg, tid, path), retry_after=1.0 if retry_after is None else retry_after)
        self.code = code
        self.msg = msg
        self.tid = tid
        self.path = redact_path(path)
        self.server_retry_after = retry_after


class TuyaServerError(TransientError):
    """Tuya answered a server error, or nothing arrived (``code`` 0, ``msg`` naming the network failure).

    ``maybe_applied`` is True when a command was sent but its answer was lost: Tuya may have applied it, so the
    client does not send it again and the caller decides.
    """

    def __init__(
        self,
        code: int,
        msg: str,
        tid: str = "",
        *,
        path: str = "",
        retry_after: float | None = None,
        maybe_applied: bool = False,
    ) -> None:
        super().__init__(_describe(code, msg, tid, path), retry_after=1.0 if retry_after is None else retry_after)
        self.code = code
        self.msg = msg
        self.tid = tid
        self.path = redact_path(path)
        self.server_retry_after = retry_after
        self.maybe_applied = maybe_applied


TUYA_ERRORS = (TuyaApiError, TuyaRateLimited, TuyaServerError)


def error_for(
    code: int, msg: str, tid: str = "", *, path: str = "", retry_after: float | None = None
) -> TuyaApiError | TuyaRateLimited | TuyaServerError:
    """The exception for a ``success:false`` answer with ``code``."""
    msg = msg or CODE_MESSAGES.get(code, "")
    if code in RATE_LIMIT_CODES:
        return TuyaRateLimited(code, msg, tid, path=path, retry_after=retry_after)
    if code in SERVER_BUSY_CODES:
        return TuyaServerError(code, msg, tid, path=path, retry_after=retry_after)
    return TuyaApiError(code, msg, tid, path=path)
