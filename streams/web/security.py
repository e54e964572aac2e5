"""What keeps the web view to its reader: who may listen where, who may ask, and what the browser may do with it.

Owns:

- the bind rule: loopback only, unless SERVE_TOKEN is set (``require_token_for``);
- the token check: every request carries SERVE_TOKEN as a bearer token or as the password of HTTP basic auth,
  compared in constant time (``hmac.compare_digest``); others get 401 with ``WWW-Authenticate`` for both schemes;
- the Host check without a token: only loopback names, so a web page elsewhere cannot reach the archive through a
  name it points at 127.0.0.1 (DNS rebinding);
- the headers of every response: a Content-Security-Policy that allows no script at all and styles only from the
  app's own stylesheet, ``nosniff``, no referrer, no framing, no caching of pages about people's homes.

An ASGI middleware around the app; the token is a ``SecretStr`` until the comparison and is never logged.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Iterable

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.errors import ConfigError

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityMiddleware", "authorized", "is_loopback", "require_token_for"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
_CHALLENGES = [
    (b"www-authenticate", b'Basic realm="tuya-archiver", charset="UTF-8"'),
    (b"www-authenticate", b'Bearer realm="tuya-archiver"'),
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a Host header's name) is this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_token_for(host: str, token: SecretStr | None) -> None:
    """Refuse to listen on ``host`` beyond loopback without a token.

    Raises:
        ConfigError: ``host`` is not loopback and SERVE_TOKEN is not set.
    """
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"SERVE_TOKEN: not set; serving on {host} (beyond loopback) needs it, and every request must then carry it"
        )


def authorized(authorization: str | None, token: SecretStr) -> bool:
    """Whether an ``Authorization`` header carries ``token``: ``Bearer <token>``, or basic auth with it as the
    password (any user name)."""
    if not authorization:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    offered = credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(offered, validate=True).decode("utf-8")
        except ValueError:  # not base64 (binascii.Error; non-ASCII text too), or not UTF-8
            return False
        offered = decoded.partition(":")[2]
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.encode("utf-8"), token.get_secret_value().encode("utf-8"))


def _host_name(headers: Iterable[tuple[bytes, bytes]]) -> str:
    host = next((value.decode("latin-1") for name, value in headers if name == b"host"), "")
    if host.startswith("["):  # [::1]:8780
        return host[1:].partition("]")[0].lower()
    return host.rpartition(":")[0].lower() if host.count(":") == 1 else host.lower()


class SecurityMiddleware:
    """Checks the token (when there is one) or the Host (when there is none), and adds the security headers."""

    def __init__(self, app: ASGIApp, token: SecretStr | None) -> None:
        self.app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if self._token is not None:
            authorization = next((v.decode("latin-1") for n, v in headers if n == b"authorization"), None)
            if not authorized(authorization, self._token):
                await _refuse(send, 401, b"the token (SERVE_TOKEN) is missing or wrong\n", _CHALLENGES)
                return
        elif not is_loopback(_host_name(headers)):
            await _refuse(send, 421, b"this server answers requests to 127.0.0.1 or localhost only\n", [])
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(_HEADERS)
                if not any(name == b"cache-control" for name, _value in message.get("headers", [])):
                    extra.append((b"cache-control", b"max-age=300" if static else b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    response_headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *headers,
        *_HEADERS,
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})
