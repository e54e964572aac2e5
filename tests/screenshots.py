"""Screenshots of the web view (``tuya-archiver serve``) for the README: ``python -m tests.screenshots``.

Runs a short demo into a temporary SQLite file (or takes ``--database-url``), serves it read-only on a free loopback
port (streams/web/server.py), and saves the devices page, the page of the busiest temperature sensor and the
operations page as docs/screenshots/{devices,device,operations}.png, with Playwright driving the system's Chromium
(never a downloaded browser). The device page shows the demo's whole run (a chosen range), so its charts fill the
width.
"""

from __future__ import annotations

import argparse
import io
import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import Page, sync_playwright
from rich.console import Console

from streams.demo import DEMO_RULES, DemoOptions, run_demo
from streams.web.server import serve_in_thread

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}


def demo_archive(folder: Path) -> str:
    """A fresh demo archive in ``folder`` (the test suite's size: 20 devices for 12 s)."""
    url = f"sqlite:///{folder / 'demo.db'}"
    run_demo(DemoOptions(devices=20, duration_s=12, rate=200, database_url=url, seed=3), Console(file=io.StringIO()))
    return url


def demo_facts(url: str) -> tuple[str, datetime, datetime]:
    """The temperature sensor (category wsdcg) with the most reports, and the span of the archive's status values
    from a second before the first to a second after the last."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        first, last = connection.execute("SELECT min(reported_at), max(reported_at) FROM device_status").fetchone()
        sensor = connection.execute(
            "SELECT device_id FROM devices WHERE category = 'wsdcg' ORDER BY report_count DESC, device_id LIMIT 1"
        ).fetchone()[0]
    since = datetime.fromisoformat(first).replace(tzinfo=UTC) - timedelta(seconds=1)
    until = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(seconds=1)
    return sensor, since, until


def _shoot(page: Page, url: str, path: Path) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")


def screenshots(url: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    device, since, until = demo_facts(url)
    window = urlencode({"from": since.strftime("%Y-%m-%dT%H:%M:%S"), "until": until.strftime("%Y-%m-%dT%H:%M:%S")})
    with serve_in_thread(url, rules_file=DEMO_RULES) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT, device_scale_factor=1)
            _shoot(page, f"{server.url}/devices", out / "devices.png")
            _shoot(page, f"{server.url}/devices/{device}?{window}", out / "device.png")
            _shoot(page, f"{server.url}/operations", out / "operations.png")
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="an existing demo archive (default: run a short demo)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder of the PNGs (default: {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    if args.database_url:
        screenshots(args.database_url, args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="tuya-screenshots-") as folder:
        screenshots(demo_archive(Path(folder)), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
