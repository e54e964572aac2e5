"""streams/replay/paging.py: the keyset walk and the retry of a page's transaction (partner:
tests/integration/test_replay.py, where a worker writes beside the replay)."""

from __future__ import annotations

import pytest

from streams.errors import DatabaseUnavailable
from streams.replay.paging import pages, retrying


def test_pages_continue_after_the_last_item_of_each_page_until_one_is_empty() -> None:
    rows = list(range(1, 8))
    asked: list[int | None] = []

    def read(after: int | None) -> list[int]:
        asked.append(after)
        start = 0 if after is None else rows.index(after) + 1
        return rows[start : start + 3]

    assert list(pages(read, lambda item: item)) == [[1, 2, 3], [4, 5, 6], [7]]
    assert asked == [None, 3, 6, 7]


def test_no_rows_is_no_page() -> None:
    assert list(pages(lambda after: [], lambda item: item)) == []


def flaky(failures: int, error: Exception) -> tuple[list[int], object]:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "done"

    return calls, work


def test_a_page_is_tried_again_while_the_database_is_unavailable() -> None:
    calls, work = flaky(2, DatabaseUnavailable("database is locked"))
    pauses: list[float] = []
    assert retrying(work, pause_s=0.5, sleep=pauses.append) == "done"  # type: ignore[arg-type]
    assert (len(calls), pauses) == (3, [0.5, 1.0])


def test_the_last_attempts_error_propagates() -> None:
    calls, work = flaky(5, DatabaseUnavailable("connection refused"))
    with pytest.raises(DatabaseUnavailable, match="connection refused"):
        retrying(work, attempts=3, sleep=lambda _s: None)  # type: ignore[arg-type]
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    calls, work = flaky(1, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        retrying(work, sleep=lambda _s: None)  # type: ignore[arg-type]
    assert len(calls) == 1
