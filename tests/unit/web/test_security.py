"""streams/web/security.py: the bind rule, the token check, the Host check and the headers (partner: the browser
and HTTP tests of tests/integration/test_web.py)."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from streams.errors import ConfigError
from streams.web.security import CONTENT_SECURITY_POLICY, SecurityMiddleware, authorized, is_loopback, require_token_for

TOKEN = SecretStr("s3cret-token-0123456789")


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]", "LOCALHOST"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org", "localhost.example.org", ""])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_beyond_loopback_without_a_token_is_refused_naming_serve_token() -> None:
    with pytest.raises(ConfigError, match=r"^SERVE_TOKEN: ") as caught:
        require_token_for("0.0.0.0", None)
    assert "\n" not in str(caught.value)


def test_beyond_loopback_with_a_token_and_loopback_without_are_allowed() -> None:
    require_token_for("0.0.0.0", TOKEN)
    require_token_for("127.0.0.1", None)


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TOKEN.get_secret_value()}", f"bearer  {TOKEN.get_secret_value()} ", _basic("", TOKEN.get_secret_value()),
     _basic("anyone", TOKEN.get_secret_value())],
)  # fmt: skip
def test_the_token_is_accepted_as_bearer_or_basic_password(header: str) -> None:
    assert authorized(header, TOKEN)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong", f"Token {TOKEN.get_secret_value()}", _basic(TOKEN.get_secret_value(), "x"),
     "Basic not-base64!", "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), f"Bearer {TOKEN.get_secret_value()}x",
     "Basic \u00e9\u00e9=="],
)  # fmt: skip
def test_anything_else_is_refused(header: str | None) -> None:
    assert not authorized(header, TOKEN)


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


def _get(token: SecretStr | None, headers: dict[str, str] | None = None) -> Answer:
    """One GET / through the middleware, driven as an ASGI server would (no socket)."""
    app = SecurityMiddleware(Starlette(routes=[Route("/", lambda request: PlainTextResponse("archive"))]), token=token)
    sent = {"host": "127.0.0.1:8780", **{name.lower(): value for name, value in (headers or {}).items()}}
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"", "server": ("127.0.0.1", 8780),
        "client": ("127.0.0.1", 50000), "headers": [(k.lower().encode(), v.encode()) for k, v in sent.items()],
    }  # fmt: skip
    messages: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = messages[0]
    decoded = [(k.decode(), v.decode()) for k, v in start["headers"]]
    return Answer(start["status"], decoded, b"".join(m.get("body", b"") for m in messages[1:]).decode())


def test_without_the_token_the_answer_is_401_with_both_challenges() -> None:
    answer = _get(TOKEN)
    assert answer.status == 401
    assert [c.split()[0] for c in answer.header("www-authenticate")] == ["Basic", "Bearer"]
    assert "archive" not in answer.body
    assert answer.header("content-security-policy") == [CONTENT_SECURITY_POLICY]


def test_with_the_token_the_page_answers_with_the_security_headers() -> None:
    answer = _get(TOKEN, {"Authorization": f"Bearer {TOKEN.get_secret_value()}"})
    assert (answer.status, answer.body) == (200, "archive")
    assert answer.header("content-security-policy") == [CONTENT_SECURITY_POLICY]
    assert answer.header("x-content-type-options") == ["nosniff"]
    assert answer.header("referrer-policy") == ["no-referrer"]
    assert answer.header("cache-control") == ["no-store"]


def test_without_a_token_only_loopback_host_names_are_answered() -> None:
    assert _get(None).status == 200
    assert _get(None, {"Host": "localhost:8780"}).status == 200
    assert _get(None, {"Host": "[::1]:8780"}).status == 200
    refused = _get(None, {"Host": "rebound.example.org"})
    assert refused.status == 421 and "archive" not in refused.body
