"""Shared fixtures: the known-answer vectors (read from ../shared/tuya, never copied) and service URLs.

Integration tests need services on loopback started by ``make test`` (tests/services.sh): they skip with a reason
when a service is missing, and fail instead when ``REQUIRE_INTEGRATION=1`` (as ``make test`` and CI set it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS_PATH = ROOT.parent / "shared" / "tuya" / "vectors.json"

pytest_plugins = ["tests.fixtures.broker", "tests.fixtures.kafka", "tests.fixtures.postgres"]


def load_vectors() -> dict[str, Any]:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    return load_vectors()


def require_service(variable: str) -> str:
    """The value of ``variable``, or skip (fail under REQUIRE_INTEGRATION=1) when it is not set."""
    value = os.environ.get(variable)
    if value:
        return value
    reason = f"{variable} is not set: run the suite with `make test`, which starts the services"
    if os.environ.get("REQUIRE_INTEGRATION") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of the loopback PostgreSQL that `make test` started (database ``app``)."""
    return require_service("TEST_DATABASE_URL")
