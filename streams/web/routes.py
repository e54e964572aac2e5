"""The URLs of the web view: each answers as HTML, or as its JSON or CSV twin when the path ends in ``.json`` or
``.csv`` (Datasette's habit), with the same query parameters.

Owns the request side: reading path and query parameters, opening a connection, calling the page builders
(pages.py, operations.py), rendering the template or the twin, and turning a bad request, an unknown device or
an unreachable archive into 400, 404 or 503 pages (and a failure of its own into a 500 page, which carries the
app's security headers as any other). A device asked for by its name is redirected to its id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import jinja2
from sqlalchemy.engine import Connection, Engine
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from streams.errors import DatabaseUnavailable
from streams.store.engine import unavailable_on_failure
from streams.store.query import DeviceNotFound, find_device
from streams.web.formats import csv_response, json_response
from streams.web.operations import RulesSource, operations_page
from streams.web.pages import Page, PageError, device_page, devices_page, online_page, series_page
from streams.web.window import WindowError, parse_window

__all__ = ["View", "device", "devices", "error_page", "online", "operations", "series"]

log = logging.getLogger(__name__)

Build = Callable[[Connection, datetime], Page]


@dataclass(frozen=True)
class View:
    """What every request needs: the read-only engine, the templates, the rules' source, the clock."""

    engine: Engine
    templates: jinja2.Environment
    rules: RulesSource
    retention: timedelta
    clock: Callable[[], datetime]


class _Moved(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _view(request: Request) -> View:
    return request.app.state.view


def _answer(request: Request, fmt: str, build: Build) -> Response:
    view = _view(request)
    if any("\x00" in value for value in (*request.path_params.values(), *request.query_params.values())):
        # PostgreSQL refuses NUL in text; no device id, code or search holds one
        return error_page(request, fmt, 400, "the address holds a NUL character")
    try:
        now = view.clock()
        with unavailable_on_failure("reading the archive"), view.engine.connect() as connection:
            page = build(connection, now)
        return _render(request, fmt, page, now)
    except _Moved as moved:
        return RedirectResponse(moved.url, status_code=302)
    except PageError as exc:
        return error_page(request, fmt, exc.status, exc.message)
    except WindowError as exc:
        return error_page(request, fmt, 400, str(exc))
    except DatabaseUnavailable as exc:
        log.warning("%s", exc)
        return error_page(request, fmt, 503, "the archive cannot be read right now; try again in a moment")
    except Exception:  # a bug: answered as a page of the app, so with its security headers (security.py)
        log.exception("the web view failed on %s", request.url.path)
        return error_page(request, fmt, 500, "the page failed; the server's log says why")


def _render(request: Request, fmt: str, page: Page, now: datetime) -> Response:
    if fmt == "json":
        return json_response(page.data)
    if fmt == "csv":
        if page.table is None:
            return error_page(request, fmt, 404, "this page has no CSV")
        columns, rows = page.table
        return csv_response(columns, rows, page.filename)
    template = _view(request).templates.get_template(page.template)
    context = {"page": page.data, "charts": page.charts, "now": now, "links": _links(request)}
    return HTMLResponse(template.render(context))


def _links(request: Request) -> dict[str, str]:
    """The page's own URL and its twins', with the same query; always a path of this site (a 404 of ``//host/x``
    would otherwise link to another one)."""
    path = "/" + request.url.path.lstrip("/")
    base = "/devices" if path == "/" else path.removesuffix(".json").removesuffix(".csv")
    query = f"?{request.url.query}" if request.url.query else ""
    return {"self": base + query, "json": f"{base}.json{query}", "csv": f"{base}.csv{query}", "path": base}


def error_page(request: Request, fmt: str, status: int, message: str) -> Response:
    if fmt in ("json", "csv"):
        return json_response({"error": message, "status": status}, status_code=status)
    template = _view(request).templates.get_template("error.html")
    context = {"status": status, "message": message, "links": _links(request)}
    return HTMLResponse(template.render(context), status_code=status)


def _device_id(connection: Connection, request: Request) -> str:
    """The device of the path: by id, else by name (redirected to the id's URL, same page and query)."""
    text = request.path_params["device_id"]
    try:
        device_id = find_device(connection, text)
    except DeviceNotFound as exc:
        raise PageError(404, str(exc)) from None
    if device_id != text:
        rest = request.scope["path"][len("/devices/") + len(text) :]  # the page under the device, and the twin
        query = f"?{request.url.query}" if request.url.query else ""
        raise _Moved("/devices/" + quote(device_id, safe="") + quote(rest, safe="/") + query)
    return device_id


def devices(request: Request, fmt: str = "html") -> Response:
    def build(connection: Connection, _now: datetime) -> Page:
        return devices_page(connection, request.query_params, paged=fmt != "csv")

    return _answer(request, fmt, build)


def device(request: Request, fmt: str = "html") -> Response:
    def build(connection: Connection, now: datetime) -> Page:
        device_id = _device_id(connection, request)
        return device_page(connection, device_id, parse_window(request.query_params, now), now)

    return _answer(request, fmt, build)


def series(request: Request, fmt: str = "html") -> Response:
    def build(connection: Connection, now: datetime) -> Page:
        device_id = _device_id(connection, request)
        window = parse_window(request.query_params, now)
        return series_page(connection, device_id, request.path_params["code"], window, now)

    return _answer(request, fmt, build)


def online(request: Request, fmt: str = "html") -> Response:
    def build(connection: Connection, now: datetime) -> Page:
        device_id = _device_id(connection, request)
        return online_page(connection, device_id, parse_window(request.query_params, now), now)

    return _answer(request, fmt, build)


def operations(request: Request, fmt: str = "html") -> Response:
    view = _view(request)
    return _answer(request, fmt, lambda connection, now: operations_page(connection, view.rules, view.retention, now))
