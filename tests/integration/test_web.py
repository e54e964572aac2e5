"""Partner: streams/web/ and its queries in streams/store/ (unit tests: tests/unit/web/).

A real browser (Playwright driving Debian's Chromium, never a downloaded one) on the web view of a short demo's
archive, served on a free loopback port; the archive also holds a device named like a script and a sensor busy
enough to be drawn in buckets. Charts are checked against the archive's rows through each drawn value's
``data-*`` attributes. The read-only engines and the bucket SQL are checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from rich.console import Console
from sqlalchemy import event, exc, text

from streams.demo import DEMO_RULES, DemoOptions, run_demo
from streams.errors import DatabaseUnavailable
from streams.store import migrate
from streams.store.engine import make_engine, make_readonly_engine
from streams.store.series import bucket_statement, numeric_buckets, state_changes
from streams.web import pages
from streams.web.app import create_app
from streams.web.downsample import bucket_bounds
from streams.web.security import CONTENT_SECURITY_POLICY
from streams.web.server import RunningServer, listen, open_view, serve_in_thread, start_in_thread
from tests.fixtures.broker import require_broker_binary
from tests.integration.worker_harness import wait_for
from tests.unit.store.databases import DIALECTS, scratch_database
from tests.unit.web.seeds import assert_same_buckets, busy_values, expected_buckets, seed_sensor

pytestmark = pytest.mark.integration

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]  # fmt: skip
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ID = "bfhostile000000000001"
BUSY_ID = "bfbusysensor000000001"  # 3,000 values a second apart: a 24 h chart draws them in 5-minute buckets
BEDROOM, BEDROOM_ID = "Спальня термометр", "bfbedroom000000000001"
TOKEN = "web-test-token-0123456789"
CLI = str(Path(sys.executable).parent / "tuya-archiver")
# A device's temperatures in [since, until) with its data point's scale, read without the app's queries or views.
RAW_TEMPERATURES = """
SELECT s.reported_at, s.value, p.scale FROM device_status s
JOIN devices d ON d.device_id = s.device_id JOIN data_points p ON p.product_id = d.product_key AND p.code = s.code
WHERE s.device_id = ? AND s.code = 'temp_current' AND s.reported_at >= ? AND s.reported_at < ?
ORDER BY s.reported_at, s.message_id, s.item_index
"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> str:
    require_broker_binary()
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'demo.db'}"
    run_demo(DemoOptions(devices=20, duration_s=12, rate=200, database_url=url, seed=3), Console(file=io.StringIO()))
    engine = make_engine(url)
    now = datetime.now(UTC)
    seed_sensor(engine, BUSY_ID, "Busy sensor", "temp_current", busy_values(now - timedelta(minutes=1)))
    hostile = [(now - timedelta(seconds=s), f"<img src=x onerror=alert({s})>") for s in (30, 20, 10)]
    seed_sensor(engine, HOSTILE_ID, HOSTILE, "mode", hostile, unit=HOSTILE, type_="Enum")
    seed_sensor(engine, BEDROOM_ID, BEDROOM, "temp_current", [(now - timedelta(seconds=5), 215)])
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def server(archive: str) -> Iterator[RunningServer]:
    with serve_in_thread(archive, rules_file=DEMO_RULES) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """The messages of every dialog (alert, confirm, prompt) the page opens."""
    seen: list[str] = []
    page.on("dialog", lambda dialog: (seen.append(dialog.message), dialog.dismiss()))
    return seen


def _rows(url: str, query: str, *params: object) -> list[tuple]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute(query, params).fetchall()


def _sqlite_time(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _demo_window(url: str) -> str:
    """The query of a chosen range over the whole demo run (not the rows the tests added)."""
    query = "SELECT min(reported_at), max(reported_at) FROM device_status WHERE message_id NOT LIKE 'bf%'"
    first, last = (datetime.fromisoformat(at) for at in _rows(url, query)[0])
    return f"from={first:%Y-%m-%dT%H:%M:%S}&until={last + timedelta(seconds=1):%Y-%m-%dT%H:%M:%S}"


def _hours_around_now() -> str:
    now = datetime.now(UTC)
    return f"from={now - timedelta(hours=2):%Y-%m-%dT%H:%M:%S}&until={now:%Y-%m-%dT%H:%M:%S}"


def test_devices_page_lists_every_device_of_the_archive(page: Page, server: RunningServer, archive: str) -> None:
    page.goto(f"{server.url}/")
    links = page.locator("table.devices tbody a").evaluate_all("links => links.map(a => a.href)")
    shown = {link.split("/devices/")[1] for link in links}
    assert shown == {device_id for (device_id,) in _rows(archive, "SELECT device_id FROM devices")}
    assert len(shown) >= 25


@pytest.mark.parametrize("typed", ["СПАЛЬНЯ", "спальня термометр"])
def test_devices_search_folds_the_case_of_any_alphabet(page: Page, server: RunningServer, typed: str) -> None:
    """SQLite's lower() folds ASCII only: before, neither found the device, nor its name typed as shown."""
    page.goto(f"{server.url}/devices")
    page.fill("input[name=q]", typed)
    with page.expect_navigation():
        page.click("button[type=submit]")
    names = [row.split("\t")[0] for row in page.locator("table.devices tbody tr").all_inner_texts()]
    assert BEDROOM in names and all(typed.lower() in name.lower() for name in names)  # the demo may name a Спальня


def test_devices_search_and_filters_are_links(page: Page, server: RunningServer) -> None:
    page.goto(f"{server.url}/devices")
    page.fill("input[name=q]", "busy")
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "q=busy" in page.url
    assert page.locator("table.devices tbody tr").all_inner_texts()[0].startswith("Busy sensor")
    assert page.locator("table.devices tbody tr").count() == 1


def test_device_chart_points_match_the_archive_in_physical_units(
    page: Page, server: RunningServer, archive: str
) -> None:
    sensor = _rows(archive, "SELECT device_id FROM devices WHERE category = 'wsdcg' ORDER BY report_count DESC")[0][0]
    page.goto(f"{server.url}/devices/{sensor}?{_demo_window(archive)}")
    chart = page.locator('svg.chart[data-code="temp_current"]')
    assert chart.get_attribute("data-unit") == "°C" and chart.get_attribute("data-mode") == "raw"
    assert chart.locator("text.axis-label").text_content() == "°C"
    drawn = chart.locator("circle.point").evaluate_all("cs => cs.map(c => [c.dataset.time, Number(c.dataset.value)])")
    since, until = (_sqlite_time(chart.get_attribute(f"data-{bound}")) for bound in ("since", "until"))
    stored = _rows(archive, RAW_TEMPERATURES, sensor, since, until)
    assert len(stored) > 10
    assert [(datetime.fromisoformat(t), v) for t, v in drawn] == [
        (datetime.fromisoformat(at).replace(tzinfo=UTC), round(int(raw) / 10**scale, scale))
        for at, raw, scale in stored
    ]


def test_a_long_range_is_drawn_in_buckets_matching_the_archive(page: Page, server: RunningServer, archive: str) -> None:
    page.goto(f"{server.url}/devices/{BUSY_ID}?range=24h")
    chart = page.locator('svg.chart[data-code="temp_current"]')
    assert chart.get_attribute("data-mode") == "buckets" and chart.get_attribute("data-count") == "3000"
    drawn = chart.locator("rect.bucket").evaluate_all(
        "rs => rs.map(r => [r.dataset.time, +r.dataset.count, [+r.dataset.min, +r.dataset.avg, +r.dataset.max]])"
    )
    stored = [(datetime.fromisoformat(at).replace(tzinfo=UTC), int(v)) for at, v in
              _rows(archive, "SELECT reported_at, value FROM device_status WHERE device_id = ?", BUSY_ID)]  # fmt: skip
    assert_same_buckets(drawn, expected_buckets(stored, 300_000))
    assert len(drawn) in (10, 11)


@pytest.mark.parametrize("device", ["busy", "demo"])
def test_chart_csv_is_exactly_what_the_chart_draws(
    page: Page, server: RunningServer, archive: str, device: str
) -> None:
    if device == "busy":  # a 2-hour window: 30-s buckets
        page.goto(f"{server.url}/devices/{BUSY_ID}?{_hours_around_now()}")
    else:  # raw values
        page.goto(f"{server.url}/devices/Greenhouse%20sensor?{_demo_window(archive)}")
    chart = page.locator('svg.chart[data-code="temp_current"]')
    drawn = chart.locator("rect.bucket, circle.point").evaluate_all(
        "es => es.map(e => [e.dataset.time, e.dataset.value])"
    )
    link = page.locator("#chart-temp_current a", has_text="CSV").get_attribute("href")
    rows = list(csv.DictReader(io.StringIO(httpx.get(server.url + link).text)))
    assert [(row.get("time") or row["start"], float(row.get("value") or row["avg"])) for row in rows] == [
        (time, float(value)) for time, value in drawn
    ]
    if device == "busy":  # 3,000 values a second apart: 100 buckets of 30 s, 101 when the first starts late in one
        assert len(rows) in (100, 101)
    else:
        assert len(rows) > 10


def test_hostile_device_name_is_shown_as_text_and_runs_nothing(
    page: Page, dialogs: list[str], server: RunningServer
) -> None:
    page.goto(f"{server.url}/devices?q=hostile")
    assert page.locator("table.devices tbody a").inner_text() == HOSTILE
    page.goto(f"{server.url}/devices/{HOSTILE_ID}?range=1h")
    assert HOSTILE in page.locator("h1").inner_text()
    assert page.locator("svg.timeline[data-code=mode] rect.state").first.get_attribute("data-state").startswith("<img")
    assert page.locator("table.latest td.value").inner_text().startswith("<img src=x")
    assert page.evaluate("document.scripts.length") == 0
    assert page.locator("img").count() == 0 and page.locator("i").count() == 0
    assert dialogs == []


def test_a_state_chart_opens_alone_with_its_periods(page: Page, dialogs: list[str], server: RunningServer) -> None:
    page.goto(f"{server.url}/devices/{HOSTILE_ID}?range=1h")
    page.locator('figure:has(svg.timeline[data-code="mode"]) a', has_text="open").click()
    assert page.url.startswith(f"{server.url}/devices/{HOSTILE_ID}/series/mode?")
    assert page.locator("h1").inner_text() == "mode"
    drawn = page.locator("svg.timeline[data-code=mode] rect.state").evaluate_all("rs => rs.map(r => r.dataset.state)")
    listed = page.locator("table.rows tbody td:nth-child(3)").all_inner_texts()
    assert drawn == listed == [f"<img src=x onerror=alert({s})>" for s in (30, 20, 10)]
    assert dialogs == [] and page.locator("img").count() == 0


def test_a_window_without_history_is_a_page_with_empty_charts(page: Page, server: RunningServer) -> None:
    # no value in force at its start and none in it: a synced device before its first message looks the same
    for path in (f"/devices/{HOSTILE_ID}", f"/devices/{HOSTILE_ID}/series/mode", f"/devices/{HOSTILE_ID}.json"):
        answer = page.goto(f"{server.url}{path}?from=2020-01-01T00:00:00&until=2020-01-02T00:00:00")
        assert answer is not None and answer.status == 200, path
    page.goto(f"{server.url}/devices/{HOSTILE_ID}?from=2020-01-01T00:00:00&until=2020-01-02T00:00:00")
    assert page.locator("svg.timeline[data-code=mode] rect.state").count() == 0


def test_the_online_timeline_opens_alone(page: Page, server: RunningServer, archive: str) -> None:
    (device_id,) = _rows(archive, "SELECT device_id FROM device_events WHERE event = 'online' LIMIT 1")[0]
    answer = page.goto(f"{server.url}/devices/{device_id}/online?{_demo_window(archive)}")
    assert answer is not None and answer.status == 200
    assert page.locator("svg.timeline rect.state").count() == page.locator("table.rows tbody tr").count() >= 1


def test_json_twins_answer(server: RunningServer, archive: str) -> None:
    devices = httpx.get(f"{server.url}/devices.json").json()
    assert devices["total"] == _rows(archive, "SELECT count(*) FROM devices")[0][0] == len(devices["devices"])
    device = httpx.get(f"{server.url}/devices/{BUSY_ID}.json?range=24h").json()
    assert device["latest"][0]["unit"] == "°C" and device["charts"][0]["mode"] == "buckets"
    series = httpx.get(f"{server.url}/devices/{BUSY_ID}/series/temp_current.json?range=24h").json()
    assert series["rows"] == device["charts"][0]["rows"] and series["bucket_seconds"] == 300
    operations = httpx.get(f"{server.url}/operations.json").json()
    assert operations["rules"]["status"] == "loaded" and operations["dead_letters"]["kinds"]
    assert operations["ingestion"]["window_s"] == 7200


def test_the_device_list_s_json_comes_in_pages_and_its_csv_holds_every_device(
    server: RunningServer, archive: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pages, "PAGE_SIZE", 7)  # the server runs in this process
    every = [row[0] for row in _rows(archive, "SELECT device_id FROM devices")]
    first, second = (httpx.get(f"{server.url}/devices.json?page={page}").json() for page in (1, 2))
    assert (len(first["devices"]), first["count"], first["page_size"]) == (7, len(every), 7)
    assert {device["device_id"] for device in first["devices"]}.isdisjoint(d["device_id"] for d in second["devices"])
    exported = list(csv.DictReader(io.StringIO(httpx.get(f"{server.url}/devices.csv?page=2").text)))
    assert sorted(row["device_id"] for row in exported) == sorted(every)


def test_an_error_page_links_only_to_this_site(server: RunningServer) -> None:
    answer = httpx.get(f"{server.url}//evil.example/x")
    assert answer.status_code == 404
    assert 'href="//' not in answer.text and 'href="/evil.example/x.json"' in answer.text


def test_operations_page_shows_replay_hints_rules_and_lag(page: Page, server: RunningServer) -> None:
    page.goto(f"{server.url}/operations")
    body = page.locator("main").inner_text()
    assert "tuya-archiver replay --dead-letters --error-kind " in body
    assert "greenhouse_fan_on_when_hot" in body and "since the newest message arrived" in body
    assert page.locator("meter").count() == 1


def test_every_answer_has_the_security_headers(server: RunningServer) -> None:
    for path in ("/", f"/devices/{BUSY_ID}", "/static/app.css", "/nowhere", "/devices/nobody.json"):
        headers = httpx.get(server.url + path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert (headers["x-content-type-options"], headers["referrer-policy"]) == ("nosniff", "no-referrer")


def test_bad_requests_say_why(server: RunningServer) -> None:
    assert httpx.get(f"{server.url}/devices/nobody").status_code == 404
    assert httpx.get(f"{server.url}/devices/{BUSY_ID}?range=3w").status_code == 400
    assert {httpx.get(f"{server.url}/devices.json?{query}").status_code for query in ("page=²", "online=maybe")} == {
        400
    }
    moved = httpx.get(f"{server.url}/devices/Busy%20sensor/series/temp_current.csv?range=1h")
    assert (moved.status_code, moved.headers["location"]) == (
        302,
        f"/devices/{BUSY_ID}/series/temp_current.csv?range=1h",
    )
    not_allowed = httpx.post(f"{server.url}/devices")
    assert not_allowed.status_code == 405
    assert set(not_allowed.headers["allow"].split(", ")) == {"GET", "HEAD"}
    assert httpx.get(f"{server.url}/", headers={"Host": "rebound.example.org"}).status_code == 421
    beyond = {  # times Python's datetime cannot hold, or a chart's axis would step beyond
        "from=99999999d": "ago is before year 1",
        "from=0001-01-01T00:30%2B01:00": "out of the range of times",
        "until=0001-01-01T00:30": "must lie between",
        "from=9999-12-31T00:00&until=9999-12-31T23:59:59": "must lie between",
    }
    for path in (f"/devices/{BUSY_ID}", f"/devices/{BUSY_ID}/series/temp_current", f"/devices/{BUSY_ID}/online"):
        for query, reason in beyond.items():
            assert httpx.get(f"{server.url}{path}?{query}").status_code == 400, (path, query)
            assert reason in httpx.get(f"{server.url}{path}.json?{query}").json()["error"], (path, query)
    for path in ("/devices/%00", f"/devices/{BUSY_ID}/series/a%00b.json", "/devices?q=%00"):
        assert httpx.get(server.url + path).status_code == 400, path


def test_a_page_that_fails_answers_500_with_the_security_headers(archive: str) -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("the clock broke")

    engine = make_readonly_engine(archive)
    with start_in_thread(create_app(engine, clock=broken_clock), engine, listen("127.0.0.1", 0)) as running:
        html, twin = (httpx.get(f"{running.url}/devices/{BUSY_ID}{suffix}") for suffix in ("", ".json"))
    assert (html.status_code, twin.status_code) == (500, 500)
    assert "the page failed" in html.text
    assert twin.json() == {"error": "the page failed; the server's log says why", "status": 500}
    for answer in (html, twin):
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_token_is_needed_when_set(archive: str, browser: Browser) -> None:
    with serve_in_thread(archive, token=TOKEN) as running:
        refused = httpx.get(f"{running.url}/devices.json")
        assert refused.status_code == 401 and refused.headers.get_list("www-authenticate")
        assert (
            httpx.get(f"{running.url}/", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        )
        assert httpx.get(f"{running.url}/", auth=("me", "wrong")).status_code == 401
        assert httpx.get(f"{running.url}/devices.json", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert httpx.get(f"{running.url}/operations", auth=("anyone", TOKEN)).status_code == 200
        context = browser.new_context(http_credentials={"username": "me", "password": TOKEN})
        tab = context.new_page()
        assert tab.goto(f"{running.url}/devices").status == 200 and tab.locator("table.devices tbody tr").count() > 20
        context.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli_env(archive: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": archive, "RULES_FILE": str(DEMO_RULES)}
    env.pop("SERVE_TOKEN", None)
    return env


def test_a_bind_beyond_loopback_without_token_refuses_to_start(archive: str, tmp_path: Path) -> None:
    port = _free_port()
    done = subprocess.run([CLI, "serve", "--host", "0.0.0.0", "--port", str(port)], env=_cli_env(archive),
                          cwd=tmp_path, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tuya-archiver: configuration error: SERVE_TOKEN: not set; serving on 0.0.0.0 (beyond loopback) needs it, "
        "and every request must then carry it"
    ]
    with socket.socket() as probe:  # never bound: the port is still free
        probe.bind(("0.0.0.0", port))


def test_the_cli_serves_on_loopback_until_terminated(archive: str, tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen([CLI, "serve", "--port", str(port)], env=_cli_env(archive), cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip

    def answered_or_ended() -> bool:
        if process.poll() is not None:
            return True
        try:
            return httpx.get(f"http://127.0.0.1:{port}/devices.json").status_code == 200
        except httpx.TransportError:
            return False

    try:
        assert wait_for(answered_or_ended, timeout=30), "serve neither answered nor ended (hang guard)"
        assert process.poll() is None, "serve ended before it answered"
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert f"read-only on http://127.0.0.1:{port}/ (loopback only, no token)" in output


@pytest.mark.parametrize("scratch", DIALECTS, indirect=True)
def test_the_read_only_engine_reads_and_refuses_writes(scratch: str) -> None:
    engine = make_readonly_engine(scratch)
    try:
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM devices")) == 1
        with pytest.raises((exc.OperationalError, exc.InternalError), match=r"read-only|readonly"), engine.begin() as c:
            c.execute(text("UPDATE devices SET name = 'x'"))
    finally:
        engine.dispose()


def test_the_read_only_engine_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    engine = make_readonly_engine(f"sqlite:///{tmp_path / 'missing.db'}")
    with pytest.raises(exc.OperationalError):
        engine.connect()
    engine.dispose()
    assert not (tmp_path / "missing.db").exists()


# Rewrites pages of the archive with SQLite's rollback journal, then dies with the transaction open, as a `db compact`
# killed mid-way does: the file and its hot journal are left for the next writer to roll back.
_INTERRUPTED_WRITE = """
import os, sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("PRAGMA journal_mode=DELETE")
connection.execute("PRAGMA cache_size=2")  # so that changed pages reach the file before the commit
connection.execute("BEGIN")
connection.execute("UPDATE devices SET name = 'half-written'")
connection.execute("DELETE FROM status_values")
os._exit(0)
"""


def test_an_archive_a_stopped_compact_left_is_not_served_until_a_writer_rolled_it_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    seed_sensor(engine, BUSY_ID, "Busy sensor", "temp_current", busy_values(datetime(2026, 12, 1, tzinfo=UTC)))
    with engine.connect() as connection:
        values = connection.scalar(text("SELECT count(*) FROM status_values"))
    engine.dispose()
    subprocess.run([sys.executable, "-c", _INTERRUPTED_WRITE, str(tmp_path / "archive.db")], check=True)
    with pytest.raises(DatabaseUnavailable) as refused:
        open_view(url, host="127.0.0.1")
    assert f"{tmp_path / 'archive.db-journal'} is what an interrupted write" in str(refused.value)
    assert "run `tuya-archiver db current` once" in str(refused.value)
    engine = make_engine(url)  # a writer: it rolls the journal back
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT name FROM devices")) == "Busy sensor"
        assert connection.scalar(text("SELECT count(*) FROM status_values")) == values
    engine.dispose()
    _app, served = open_view(url, host="127.0.0.1")
    served.dispose()


@pytest.fixture
def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A scratch archive of the dialect ``request.param`` at head, with the busy sensor."""
    with scratch_database(request, tmp_path) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        seed_sensor(engine, BUSY_ID, "Busy sensor", "temp_current", busy_values(datetime(2026, 12, 1, tzinfo=UTC)))
        engine.dispose()
        yield url


@pytest.mark.parametrize("scratch", DIALECTS, indirect=True)
@pytest.mark.parametrize("width_ms", [1_000, 7_000, 300_000])
def test_bucket_sql_is_the_bucket_arithmetic(scratch: str, width_ms: int) -> None:
    values = busy_values(datetime(2026, 12, 1, tzinfo=UTC))
    since, until = values[0][0], values[-1][0]  # the last one is outside [since, until)
    engine = make_readonly_engine(scratch)
    try:
        with engine.connect() as connection:
            rows = numeric_buckets(connection, BUSY_ID, ["temp_current"], since, until, width_ms)
    finally:
        engine.dispose()
    drawn = [
        (bucket_bounds(r.bucket, width_ms)[0].isoformat(), r.count, [r.min / 10, r.avg / 10, r.max / 10]) for r in rows
    ]
    assert_same_buckets(drawn, expected_buckets(values[:-1], width_ms))


@pytest.mark.parametrize("scratch", ["sqlite"], indirect=True)
def test_bucket_sql_starts_from_the_series_then_its_values_by_time(scratch: str) -> None:
    engine = make_readonly_engine(scratch)
    event.listen(engine, "before_cursor_execute", lambda *a: ("EXPLAIN QUERY PLAN " + a[2], a[3]), retval=True)
    params = {
        "device_id": BUSY_ID,
        "since": datetime(2026, 11, 30, tzinfo=UTC),
        "until": datetime(2026, 12, 1, tzinfo=UTC),
    }
    with engine.connect() as connection:
        plan = connection.execute(
            bucket_statement("sqlite"), params | {"codes": ["temp_current"], "width_ms": 1000}
        ).all()
    engine.dispose()
    steps = [row[-1] for row in plan]
    series = "SEARCH s USING COVERING INDEX sqlite_autoindex_status_series_1 (device_id=? AND code=?)"
    by_key = "USING PRIMARY KEY (series_id=? AND reported_at>? AND reported_at<?)"
    # device_status' two parts: the settled values (v), then those not settled yet (r), each the same way
    assert [step for step in steps if step.startswith(("SEARCH s", "SEARCH v", "SEARCH r"))] == [
        series,
        f"SEARCH v {by_key}",
        series,
        f"SEARCH r {by_key}",
    ]
    tables = {"v", "r", "s", "m"}  # the values, their series and messages; the coroutine's rows are read whole
    assert not [step for step in steps if step.startswith("SCAN ") and step.split()[1] in tables], steps


@pytest.mark.parametrize("scratch", ["sqlite"], indirect=True)
def test_the_value_before_a_window_is_found_by_walking_the_key_back(scratch: str) -> None:
    """state_changes' first query (the value in force at the window's start) stops at the newest value before it:
    each part of device_status read backwards through its key, nothing sorted."""
    engine = make_readonly_engine(scratch)
    statements: list[tuple[str, object]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append((a[2], a[3])))
    since = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    with engine.connect() as connection:
        before, _ = state_changes(connection, BUSY_ID, "temp_current", since, since + timedelta(minutes=5), 10)
        first, params = next(statement for statement in statements if statement[0].startswith("SELECT"))
        plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {first}", params)]  # type: ignore[arg-type]
    engine.dispose()
    assert before is not None and before.reported_at < since
    assert plan[0] == "MERGE (UNION ALL)", plan
    assert not [step for step in plan if "TEMP B-TREE" in step or step.startswith("SCAN ")], plan


@pytest.mark.parametrize("scratch", ["postgresql"], indirect=True)
def test_a_postgresql_archive_is_served(scratch: str) -> None:
    with serve_in_thread(scratch) as running:
        window = "from=2026-11-30T23:00&until=2026-12-01"
        series = httpx.get(f"{running.url}/devices/{BUSY_ID}/series/temp_current.json?{window}")
        devices = httpx.get(f"{running.url}/devices.json").json()
        nul = httpx.get(f"{running.url}/devices/a%00b.json")
    body = series.json()
    assert (series.status_code, body["mode"], body["unit"], body["count"]) == (200, "buckets", "°C", 3_000)
    drawn = [(row["start"], row["count"], [row["min"], row["avg"], row["max"]]) for row in body["rows"]]
    assert_same_buckets(drawn, expected_buckets(busy_values(datetime(2026, 12, 1, tzinfo=UTC)), 10_000))
    assert [device["device_id"] for device in devices["devices"]] == [BUSY_ID]
    assert nul.status_code == 400  # PostgreSQL refuses NUL in text: the view asks nothing of it


def test_a_state_timeline_starts_with_the_state_in_force(server: RunningServer, archive: str) -> None:
    (last,) = _rows(archive, "SELECT max(reported_at) FROM device_status WHERE device_id = ?", HOSTILE_ID)[0]
    until = datetime.fromisoformat(last) + timedelta(seconds=1)  # the reports were 30, 20 and 10 s before "now"
    since = until - timedelta(seconds=16)  # after the first report: its state is in force at the start
    window = f"from={since:%Y-%m-%dT%H:%M:%S.%f}&until={until:%Y-%m-%dT%H:%M:%S.%f}"
    rows = httpx.get(f"{server.url}/devices/{HOSTILE_ID}/series/mode.json?{window}").json()["rows"]
    assert [row["state"] for row in rows] == [f"<img src=x onerror=alert({s})>" for s in (30, 20, 10)]
    assert (
        rows[0]["start"] == since.replace(tzinfo=UTC).isoformat()
        and rows[-1]["end"] == until.replace(tzinfo=UTC).isoformat()
    )
