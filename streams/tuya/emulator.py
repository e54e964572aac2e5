"""A local stand-in for Tuya's OpenAPI (SPEC.md §7.2), for tests, the demo and ``tuya-archiver emulate-api``.

Owns the emulated project's front door: its credentials, the tokens it issued, the calls it answered, the commands
it accepted, the faults it was told to inject and the path families it refuses (a project without the entitlement
answers ``1106`` or ``28841105`` there, after the signature checks). What stands behind the door, the devices and
app users and every read endpoint, is :mod:`streams.tuya.emulated_project`.
It is a real HTTP server (stdlib ``ThreadingHTTPServer``) on loopback that checks every signature exactly as
:mod:`streams.tuya.signing` computes it and answers in Tuya's envelope: HTTP 200 with ``success:false`` and
Tuya's code for a refusal, ``t`` and ``tid`` in every answer.
Must not import the client (:mod:`streams.tuya.openapi`), so the client cannot pass by sharing a bug with it.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

from streams.tuya.api_errors import redact_path
from streams.tuya.emulated_devices import DataPoint, EmulatedDevice, Refusal, sample_devices
from streams.tuya.emulated_project import ApiCall, EmulatedProject
from streams.tuya.emulated_users import AppUser
from streams.tuya.signing import is_token_path, sign

__all__ = [
    "AppUser",
    "DataPoint",
    "EmulatedDevice",
    "Emulator",
    "RecordedCall",
    "RecordedCommand",
    "Reply",
    "sample_devices",
]

log = logging.getLogger(__name__)

_WEEK_S = 7 * 24 * 3600
_NOTHING_REFUSED: Mapping[str, int] = MappingProxyType({})
# The front door's own endpoints (tokens, commands); every read endpoint is the project's (emulated_project).
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), name)
    for method, pattern, name in (
        ("GET", r"/v1\.0/token", "_on_grant"),
        ("GET", r"/v1\.0/token/(?P<refresh>[^/?]+)", "_on_refresh"),
        ("POST", r"/v1\.0/(?:iot-03/)?devices/(?P<device>[^/?]+)/commands", "_on_commands"),
    )
)


@dataclass(frozen=True, slots=True)
class RecordedCommand:
    """A command the emulator accepted (every code valid), in arrival order."""

    device_id: str
    commands: tuple[dict[str, Any], ...]
    path: str
    at_ms: int
    tid: str


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """Any request the emulator answered; ``code`` 0 means success. The path has its refresh token redacted."""

    method: str
    path: str
    code: int
    http_status: int
    at_ms: int
    tid: str


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    delay_s: float = 0.0


@dataclass(slots=True)
class _Fault:
    remaining: int
    path_prefix: str
    code: int = 0
    msg: str = ""
    http_status: int = 200
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class _Issued:
    refresh_token: str
    expires_at_ms: int
    uid: str


class Emulator:
    """Tuya's OpenAPI for one project on ``127.0.0.1``; ``with Emulator(id, key) as emu: emu.url``.

    Args:
        devices: the project's devices; times left 0 become the clock's time.
        users: the users of the app ``schema``, listed by ``/v2.0/apps/{schema}/users``.
        camel_case: the v2.0 device list and details name fields in camelCase (``isOnline``) instead of snake_case.
        refused: path prefix → Tuya code (1106 "permission deny", 28841105 not subscribed) for the families this
            project may not call; a prefix matches whole path segments.
        log_retention_s: device log rows older than this on the emulator's clock are never answered (Tuya: ~7 days).
        token_lifetime_s: ``expire_time`` of issued tokens (Tuya: 7200); small values let tests see expiry.
        max_skew_s: how far the ``t`` header may be from the emulator's clock before ``1013`` (Tuya's is unknown).
        legacy_sign: the project expects the pre-2021 algorithm (SPEC.md §4.5) instead of the current one.
        clock: seconds since the epoch; tests share a fake clock with the client.
    """

    def __init__(
        self,
        access_id: str,
        access_key: str,
        *,
        devices: Iterable[EmulatedDevice] = (),
        users: Iterable[AppUser] = (),
        schema: str = "emulated",
        camel_case: bool = False,
        refused: Mapping[str, int] = _NOTHING_REFUSED,
        log_retention_s: float = _WEEK_S,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime_s: int = 7200,
        max_skew_s: float = 900.0,
        legacy_sign: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access_id = access_id
        self._key = access_key
        retention_ms = int(log_retention_s * 1000)
        self.project = EmulatedProject(
            devices, users=users, schema=schema, camel_case=camel_case, retention_ms=retention_ms, now_s=int(clock())
        )
        self.devices = self.project.devices
        self._refused = {prefix.rstrip("/"): code for prefix, code in refused.items()}
        self._lifetime_ms = int(token_lifetime_s * 1000)
        self._max_skew_ms = max_skew_s * 1000
        self._legacy = legacy_sign
        self._clock = clock
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._access: dict[str, _Issued] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._commands: list[RecordedCommand] = []
        self._calls: list[RecordedCall] = []
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread = threading.Thread(target=self._serve, name="tuya-emulator", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)  # a short poll, so close() returns at once

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    @property
    def commands(self) -> list[RecordedCommand]:
        with self._lock:
            return list(self._commands)

    @property
    def calls(self) -> list[RecordedCall]:
        with self._lock:
            return list(self._calls)

    def add_device(self, device: EmulatedDevice) -> None:
        self.devices.add(device, int(self._clock()))

    def remove_device(self, device_id: str) -> None:
        self.devices.remove(device_id)

    def device(self, device_id: str) -> EmulatedDevice:
        """The live device (KeyError if unknown): set ``online`` or ``status`` to stage a test."""
        return self.devices.get(device_id)

    def report(self, device_id: str, code: str, value: Any, *, at_ms: int | None = None) -> None:
        """The device reports ``code=value``: its status changes and its log gets a data point report (type 7)."""
        self.devices.report(device_id, code, value, int(self._clock() * 1000) if at_ms is None else at_ms)

    def record_reports(self, device_id: str, reports: Iterable[tuple[str, Any, int]]) -> None:
        """What the device published, ``(code, value, at_ms)`` each: its status and log, as :meth:`report` does.

        Cheap enough for every simulated status message (one lock, no clock read). KeyError for an unknown device.
        """
        self.devices.record_reports(device_id, reports)

    def set_online(self, device_id: str, online: bool, *, at_ms: int | None = None) -> None:
        """The device went online or offline: its state, and a log row of type 1 (online) or 2 (offline)."""
        self.devices.set_online(device_id, online, int(self._clock() * 1000) if at_ms is None else at_ms)

    def fail_next(
        self, count: int = 1, *, code: int = 1199, msg: str = "", http_status: int = 200, path_prefix: str = "/"
    ) -> None:
        """Answer the next ``count`` requests under ``path_prefix`` with ``code`` (or, if not 200, ``http_status``)."""
        with self._lock:
            self._faults.append(_Fault(count, path_prefix, code=code, msg=msg, http_status=http_status))

    def delay_next(self, count: int, seconds: float, *, path_prefix: str = "/") -> None:
        """Answer the next ``count`` requests under ``path_prefix`` normally, but only after ``seconds``."""
        with self._lock:
            self._faults.append(_Fault(count, path_prefix, delay_s=seconds))

    def revoke_tokens(self, *, refresh_tokens: bool = False) -> None:
        """Invalidate every access token (next business call: 1010), and the refresh tokens too if asked."""
        with self._lock:
            self._access.clear()
            if refresh_tokens:
                self._refresh_tokens.clear()

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` for a slow answer, cut short when the emulator closes."""
        self._closing.wait(seconds)

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Tuya's answer to one request; ``headers`` keys are lower case."""
        now_ms = int(self._clock() * 1000)
        tid = uuid.uuid4().hex
        fault = self._take_fault(target)
        if fault and fault.http_status != 200:
            self._record(method, target, fault.http_status, fault.http_status, now_ms, tid)
            return Reply(fault.http_status, f"<html>{fault.http_status} from the emulator</html>".encode())
        try:
            if fault and fault.code:
                raise Refusal(fault.code, fault.msg)
            envelope = {"success": True, "result": self._handle(method, target, headers, body, now_ms, tid)}
        except Refusal as refusal:
            envelope = {"success": False, "code": refusal.code, "msg": refusal.msg}
        envelope.update(t=now_ms, tid=tid)
        self._record(method, target, envelope.get("code", 0), 200, now_ms, tid)
        return Reply(200, json.dumps(envelope).encode(), fault.delay_s if fault else 0.0)

    def _take_fault(self, target: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and target.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    return fault
        return None

    def _record(self, method: str, target: str, code: int, status: int, now_ms: int, tid: str) -> None:
        with self._lock:
            self._calls.append(RecordedCall(method, redact_path(target), code, status, now_ms, tid))

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, now_ms: int, tid: str) -> Any:
        path, _, query = target.partition("?")
        self._authenticate(method, target, headers, body, now_ms)
        refused = self._refused_code(path)
        if refused:
            raise Refusal(refused)
        params = dict(parse_qsl(query, keep_blank_values=True))
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                with self._lock:
                    return getattr(self, name)(ApiCall(match, params, body, now_ms, tid))
        found = self.project.route(method, path)
        if found is None:
            raise Refusal(1108)
        handler, match = found
        return handler(self.project, ApiCall(match, params, body, now_ms, tid))

    def _refused_code(self, path: str) -> int:
        """The code of the refused family ``path`` belongs to (whole segments: ``/a/b`` is not ``/a/bc``), or 0."""
        for prefix, code in self._refused.items():
            if path == prefix or path.startswith(prefix + "/"):
                return code
        return 0

    def _authenticate(self, method: str, target: str, headers: Mapping[str, str], body: bytes, now_ms: int) -> None:
        """Check client id, sign, ``t`` and (for business calls) the token, in that order."""
        if not all(headers.get(name) for name in ("client_id", "sign", "t")):
            raise Refusal(1105)
        if headers["client_id"] != self.access_id:
            raise Refusal(1005)
        token = "" if is_token_path(target) else headers.get("access_token", "")
        listed = [name for name in headers.get("signature-headers", "").split(":") if name]
        expected = sign(
            method,
            target,
            body,
            client_id=self.access_id,
            secret=self._key,
            access_token=token,
            t_ms=headers["t"],
            nonce=headers.get("nonce", ""),
            signature_headers=[(name, headers.get(name.lower(), "")) for name in listed],
            legacy=self._legacy,
        )
        if not hmac.compare_digest(expected.value.encode(), headers["sign"].encode("utf-8", "replace")):
            raise Refusal(1004)
        if not headers["t"].isdigit() or abs(now_ms - int(headers["t"])) > self._max_skew_ms:
            raise Refusal(1013)
        if is_token_path(target):
            return
        if not token:
            raise Refusal(1002)
        with self._lock:
            issued = self._access.get(token)
        if issued is None or issued.expires_at_ms <= now_ms:
            raise Refusal(1010)

    def _issue(self, now_ms: int) -> dict[str, Any]:
        access, refresh, uid = uuid.uuid4().hex, uuid.uuid4().hex, "emu" + self.access_id[:8]
        self._access[access] = _Issued(refresh, now_ms + self._lifetime_ms, uid)
        self._refresh_tokens[refresh] = access
        expire_time = self._lifetime_ms // 1000
        return {"access_token": access, "refresh_token": refresh, "expire_time": expire_time, "uid": uid}

    def _on_grant(self, call: ApiCall) -> dict[str, Any]:
        if call.params.get("grant_type") != "1":
            raise Refusal(1003)
        return self._issue(call.now_ms)

    def _on_refresh(self, call: ApiCall) -> dict[str, Any]:
        # SPEC.md §4.2: a refresh token works once, and refreshing revokes the old access token too.
        old_access = self._refresh_tokens.pop(call.match["refresh"], None)
        if old_access is None:
            raise Refusal(1010)
        self._access.pop(old_access, None)
        return self._issue(call.now_ms)

    def _on_commands(self, call: ApiCall) -> bool:
        device_id = call.match["device"]
        commands = self.devices.apply_commands(device_id, call.body, call.now_ms)
        self._commands.append(RecordedCommand(device_id, tuple(commands), call.match[0], call.now_ms, call.tid))
        log.info("emulator: %s accepted %s", device_id, ", ".join(command["code"] for command in commands))
        return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes; without this each answer waits ~40 ms
    timeout = 10  # an idle keep-alive connection ends, so closing the emulator never waits on a client
    emulator: Emulator

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.emulator.answer(self.command, self.path, headers, body)
        if reply.delay_s:
            self.emulator.pause(reply.delay_s)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json" if reply.status == 200 else "text/html")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a slow-answer fault)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:
        log.debug("emulator: %s", redact_path(format % args))
