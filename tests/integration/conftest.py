"""Fixtures of the worker's integration tests."""

from __future__ import annotations

import pytest

from tests.integration.worker_harness import upgrade


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A migrated SQLite archive of the test's own."""
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    upgrade(url)
    return url
