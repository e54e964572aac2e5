"""streams/store/history.py's pure parts: which series ids SeriesKeys keeps across transactions (a stand-in driver
holds the series table), and where a message's values are placed. The SQL itself runs in
tests/integration/test_store.py on both databases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.store.history import SeriesKeys, message_places
from streams.store.rows import StatusRows
from streams.store.statements import STATUS_SERIES, Target


class SeriesTable:
    """status_series as a dict, ids handed out in insert order; counts the look-ups."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str | None], int] = {}
        self.next_id = 1
        self.lookups = 0

    def series_ids(self, cursor: Any, device_ids: Sequence[str]) -> dict[tuple[str, str | None], int]:
        self.lookups += 1
        return {key: series_id for key, series_id in self.rows.items() if key[0] in device_ids}

    def highest_series_id(self, cursor: Any) -> int:
        return max(self.rows.values(), default=0)

    def insert(self, cursor: Any, target: Target, rows: Sequence[tuple[str, str | None]]) -> None:
        assert target is STATUS_SERIES
        for key in rows:
            self.rows.setdefault(key, self.next_id)
            self.next_id += 1


def flat(ids: dict[str, dict[str | None, int]]) -> dict[tuple[str, str | None], int]:
    return {(device, code): series_id for device, codes in ids.items() for code, series_id in codes.items()}


def test_committed_series_are_not_looked_up_again() -> None:
    table, keys = SeriesTable(), SeriesKeys()
    first = flat(keys.resolve(table, None, {("d1", "a"), ("d1", None)}))
    keys.committed()
    assert (first, flat(keys.known(table, None)), table.lookups) == (table.rows, table.rows, 2)  # before, after


def test_series_of_a_rolled_back_transaction_are_forgotten() -> None:
    table, keys = SeriesTable(), SeriesKeys()
    keys.resolve(table, None, {("d1", "a")})
    keys.rolled_back()
    table.rows.clear()  # what the rollback did to the table
    assert flat(keys.known(table, None)) == {}
    assert flat(keys.resolve(table, None, {("d1", "a")})) == {("d1", "a"): 2}


def test_a_table_emptied_under_it_is_read_again() -> None:
    table, keys = SeriesTable(), SeriesKeys()
    keys.resolve(table, None, {("d1", "a"), ("d2", "b")})
    keys.committed()
    table.rows.clear()
    table.next_id = 1  # SQLite hands ids out again from the top of what is left
    assert flat(keys.known(table, None)) == {}
    assert flat(keys.resolve(table, None, {("d2", "b")})) == {("d2", "b"): 1}


def test_a_message_is_placed_by_its_device_and_its_first_and_last_value() -> None:
    messages = [
        StatusRows(
            "m1",
            "dev1",
            "d1",
            [
                (0, "temp", "21", 3, "2026-11-01 00:00:01.000000"),
                (1, "temp", "21", 3, "2026-11-01 00:00:00.500000"),
                (2, "temp", "21", 3, "2026-11-01 00:00:03.000000"),
            ],
        ),
        StatusRows("m2", "dev2", None, [(0, "temp", "21", 3, "2026-11-01 00:00:02.000000")]),
    ]
    assert message_places(messages) == {
        "m1": ["d1", "dev1", "2026-11-01 00:00:00.500000", "2026-11-01 00:00:03.000000"],
        "m2": [None, "dev2", "2026-11-01 00:00:02.000000", "2026-11-01 00:00:02.000000"],
    }
