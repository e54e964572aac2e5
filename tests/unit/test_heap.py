import gc
from collections.abc import Iterator

import pytest

from streams.heap import THRESHOLDS, settle_heap


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_freezes_the_start_up_heap_and_collects_the_young_generation_less_often() -> None:
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[0] > 700  # CPython's default
