"""Benchmark: the web view serving the 7-day chart of a sensor reporting every 10 s, from 10 M status rows.

The archive of tests/bench/archive.py (2,000 devices; "Greenhouse sensor" reports its temperature every 10 s: 60,480
values in the week, plus the fleet's ordinary reports), served read-only on a loopback port as ``tuya-archiver
serve`` serves it. Timed over HTTP, best of 3 after one cold request: the chart's page
(``/devices/ID/series/temp_current?from=…&until=…``: SQL buckets of 30 minutes with min/avg/max, drawn as SVG,
and their table) and its CSV. The reference, in the same run: the raw query of the same values through
``status_history_rows`` (the CLI's ``history``), which a chart without downsampling would need before drawing
anything.

Run alone with ``python -m tests.bench.serve`` (PostgreSQL from TEST_DATABASE_URL, skipped when unset).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from streams.store.engine import make_readonly_engine
from streams.store.query import HistoryQuery, status_history_rows
from streams.web.app import create_app
from streams.web.server import listen, start_in_thread
from tests.bench.archive import END, ROWS, SENSOR_ID, SENSOR_NAME, BenchArchive, on_each_database

ROUNDS = 3


def _best(run: Callable[[], int]) -> tuple[float, float, int]:
    """(first, best of ROUNDS) seconds of ``run``, and what it returned (a size or a count)."""
    started = time.perf_counter()
    result = run()
    first = time.perf_counter() - started
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return first, best, result


def _get(client: httpx.Client, url: str) -> Callable[[], int]:
    def run() -> int:
        response = client.get(url)
        response.raise_for_status()
        return len(response.content)

    return run


def measure(archive: BenchArchive, label: str) -> None:
    engine = make_readonly_engine(archive.url)
    window = f"from={archive.start:%Y-%m-%dT%H:%M:%SZ}&until={END:%Y-%m-%dT%H:%M:%SZ}"
    with start_in_thread(create_app(engine), engine, listen("127.0.0.1", 0)) as server:
        chart = f"{server.url}/devices/{SENSOR_ID}/series/temp_current"
        with httpx.Client(timeout=120) as client:
            page = _best(_get(client, f"{chart}?{window}"))
            csv = _best(_get(client, f"{chart}.csv?{window}"))
            buckets = client.get(f"{chart}.json?{window}").json()
        with engine.connect() as connection:
            query = HistoryQuery(SENSOR_ID, ("temp_current",), archive.start, END)
            raw = _best(lambda: len(status_history_rows(connection, query)))
    built = f", built in {archive.seconds_to_build:.0f} s" if archive.seconds_to_build else ""
    width = buckets["bucket_seconds"]
    drawn = f"{len(buckets['rows'])} buckets of {width / 60:.0f} min" if width else f"{len(buckets['rows'])} points"
    print(f"  {label} ({archive.rows:,} status rows{built}):")
    print(f"    chart page, {buckets['count']:,} values as {drawn}: {_ms(page)}, {page[2] / 1000:,.0f} kB")
    print(f"    its CSV: {_ms(csv)}, {csv[2] / 1000:,.0f} kB")
    print(f"    reference, the raw query of the same {raw[2]:,} values (history): {_ms(raw)}")
    print(f"    the chart page takes {page[1] / raw[1]:.2f}× the raw query's time")


def _ms(timing: tuple[float, float, int]) -> str:
    first, best, _result = timing
    return f"{best * 1000:,.0f} ms (first request {first * 1000:,.0f} ms)"


def main() -> None:
    print(f'Web view: the 7-day chart of "{SENSOR_NAME}" (every 10 s) on {ROWS:,} status rows (best of {ROUNDS})')
    on_each_database(measure)


if __name__ == "__main__":
    main()
