"""Shared fixtures: the known-answer vectors (tests/fixtures/vectors.json) and service URLs.

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
# Known-answer vectors, kept as data in the project. The OpenAPI signatures include Tuya's two published signing
# examples (developer.tuya.com, "Sign requests for cloud authorization"); the envelopes, ciphertexts, Pulsar password
# and other signatures were produced by an implementation written independently of this project's code from Tuya's
# documentation and SDKs, and cross-checked against Tuya's official Python connector and Pulsar SDK. The file's own
# "meta" entry says which parts are unverified against live traffic. Never regenerate it with this project's code.
VECTORS_PATH = ROOT / "tests" / "fixtures" / "vectors.json"

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
