import gc
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.heap import THRESHOLDS, collector_paused, settle_heap

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_collector_is_paused_inside_the_block_and_running_again_after_it() -> None:
    with collector_paused():
        inside = gc.isenabled()
    assert (inside, gc.isenabled()) == (False, True)


def test_the_collector_runs_again_after_a_block_that_raised() -> None:
    with pytest.raises(ValueError), collector_paused():
        raise ValueError("the group failed")
    assert gc.isenabled()


def test_a_collector_disabled_by_the_caller_stays_disabled_after_the_block() -> None:
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


_AFTER_A_LARGE_FREE = """
import sys
from streams.heap import map_large_blocks
if sys.argv[1] == "held":
    map_large_blocks()
big = bytes(8 << 20)
del big  # glibc raises its bound to 8 MiB unless it is held
block = bytes(1 << 20)
with open("/proc/self/maps") as maps:
    for line in maps:
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= id(block) < end:
            print("heap" if line.rstrip().endswith("[heap]") else "own mapping")
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the bound is glibc's")
@pytest.mark.parametrize(("bound", "where"), [("held", "own mapping"), ("glibc's", "heap")])
def test_a_megabyte_block_after_a_larger_one_was_freed_has_its_own_mapping_only_with_the_bound_held(
    bound: str, where: str
) -> None:
    """The second case shows what the bound is for: without it, the block comes from the heap."""
    done = subprocess.run(
        [sys.executable, "-c", _AFTER_A_LARGE_FREE, bound], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == where
