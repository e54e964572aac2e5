"""streams/store/settle.py's choice of how many status values wait before a settle: HISTORY_SETTLE_VALUES, or the
database's default (the settle itself runs in tests/integration/test_settle.py on both databases)."""

from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.store.settle import settle_every


@pytest.mark.parametrize(
    ("setting", "dialect", "every"),
    [
        (None, "sqlite", 250_000),  # settled in bulk: faster into a grown archive
        (None, "postgresql", None),  # straight into status_values: settling cost PostgreSQL more than it saved
        (0, "sqlite", None),
        (50_000, "postgresql", 50_000),
    ],
)
def test_the_setting_or_the_database_s_default(setting: int | None, dialect: str, every: int | None) -> None:
    assert settle_every(setting, dialect) == every


def test_the_setting_is_read_from_history_settle_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISTORY_SETTLE_VALUES", "0")
    assert Settings(_env_file=None).history_settle_values == 0  # type: ignore[call-arg]
    monkeypatch.setenv("HISTORY_SETTLE_VALUES", "-1")
    with pytest.raises(ValueError, match="history_settle_values"):
        Settings(_env_file=None)  # type: ignore[call-arg]
