"""``tuya-archiver demo``: the whole product on one machine, no Tuya account, in one call.

- :mod:`~streams.demo.run`: the orchestration (start, watch, stop everything) and its options and result.
- :mod:`~streams.demo.scenario`: the scripted devices and the timeline that makes the demo rules fire.
- :mod:`~streams.demo.traffic`: the fleet's traffic with the scenario merged in, published from a thread.
- :mod:`~streams.demo.worker`: the real worker, from :mod:`streams.wiring`, in a thread.
- :mod:`~streams.demo.outage`: ``--outage``: the worker stops, Tuya drops what it missed, the gap is backfilled.
- :mod:`~streams.demo.services`: the broker, the webhook receiver, the demo's rules file.
- :mod:`~streams.demo.database`, :mod:`~streams.demo.archive`: the fresh archive, and what is read back from it.
- :mod:`~streams.demo.watch`, :mod:`~streams.demo.progress`: the main thread's loop and the live display.
- :mod:`~streams.demo.summary`: the closing report.

The worker never imports this package.
"""

from streams.demo.database import display_url, prepare_database, sqlite_path
from streams.demo.outage import OutageReport
from streams.demo.run import (
    DEMO_ACCESS_ID,
    DEMO_RETENTION_S,
    MIN_OUTAGE_S,
    DemoError,
    DemoOptions,
    DemoResult,
    Endpoints,
    run_demo,
)
from streams.demo.scenario import Expected, Scenario
from streams.demo.services import DEMO_RULES, display_path
from streams.demo.summary import print_summary

__all__ = [
    "DEMO_ACCESS_ID",
    "DEMO_RETENTION_S",
    "DEMO_RULES",
    "MIN_OUTAGE_S",
    "DemoError",
    "DemoOptions",
    "DemoResult",
    "Endpoints",
    "Expected",
    "OutageReport",
    "Scenario",
    "display_path",
    "display_url",
    "prepare_database",
    "print_summary",
    "run_demo",
    "sqlite_path",
]
