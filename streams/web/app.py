"""The web view's ASGI application: its URL table, templates, static files and security middleware.

Owns assembling them (``create_app``) around a read-only engine the caller made (server.py makes it); no request
logic (routes.py) and no socket (server.py). Every HTML URL has a ``.json`` twin, and the chart and device list
URLs a ``.csv`` one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from streams.clock import utcnow
from streams.web import routes
from streams.web.display import FILTERS
from streams.web.operations import RulesSource
from streams.web.security import SecurityMiddleware
from streams.web.window import PRESETS

__all__ = ["create_app", "href"]

#: Tuya keeps unacknowledged messages for 2 hours (SPEC.md §1.6); TUYA_MESSAGE_RETENTION overrides it.
DEFAULT_RETENTION = timedelta(hours=2)


def href(*parts: str, suffix: str = "", **query: Any) -> str:
    """A path of the app from its parts (each percent-encoded), ``suffix`` (``.json``) and a query (empty values
    left out)."""
    path = "/" + "/".join(quote(str(part), safe="") for part in parts) + suffix
    shown = {name: value for name, value in query.items() if value not in (None, "")}
    return path + (f"?{urlencode(shown)}" if shown else "")


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("streams.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(FILTERS)
    environment.globals.update(href=href, presets=list(PRESETS))
    return environment


def _routes() -> list[BaseRoute]:
    def twins(path: str, endpoint: Callable[..., Response], *formats: str) -> list[Route]:
        # the twins first: "/devices/{device_id}" would match "/devices/x.json" too
        return [Route(f"{path}.{fmt}", partial(endpoint, fmt=fmt)) for fmt in formats] + [Route(path, endpoint)]

    return [
        Route("/", routes.devices),
        Route("/.json", partial(routes.devices, fmt="json")),
        *twins("/devices", routes.devices, "json", "csv"),
        *twins("/devices/{device_id}/series/{code}", routes.series, "json", "csv"),
        *twins("/devices/{device_id}/online", routes.online, "json", "csv"),
        *twins("/devices/{device_id}", routes.device, "json"),
        *twins("/operations", routes.operations, "json"),
        Mount("/static", StaticFiles(packages=[("streams.web", "static")]), name="static"),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: "there is no such page", 405: "this page only answers GET"}.get(status, "the request failed")
    fmt = "json" if request.url.path.endswith((".json", ".csv")) else "html"
    response = routes.error_page(request, fmt, status, message)
    if isinstance(exc, HTTPException) and exc.headers:
        response.headers.update(exc.headers)  # a 405's Allow
    return response


def create_app(
    engine: Engine,
    *,
    token: SecretStr | None = None,
    rules: RulesSource | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """The application over ``engine`` (which should be read-only: server.py's); ``token``: every request must
    carry it (else only loopback Host names are answered); ``rules``: the rules file the operations page shows."""
    app = Starlette(
        routes=_routes(),
        middleware=[Middleware(SecurityMiddleware, token=token)],
        exception_handlers={404: _http_error, 405: _http_error},
    )
    app.state.view = routes.View(
        engine=engine,
        templates=_templates(),
        rules=rules or RulesSource(None),
        retention=retention,
        clock=clock or utcnow,
    )
    return app
