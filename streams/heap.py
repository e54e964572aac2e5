"""The garbage collector's and the allocator's policy for the long-running commands (``run`` and its writer process,
``bridge``, ``process``).

Every batch allocates hundreds of thousands of short-lived containers (payload dicts, records, row tuples). With
CPython's default thresholds (700, 10, 10) that set off thousands of collections per 100,000 messages, and each full
one walked everything start-up had allocated: 2.2 s of a 20 s run of the worker (the worker benchmark's SQLite run
of 100,000 messages, timed with ``gc.callbacks``). Freezing the start-up heap and collecting the young generation
every 20,000 allocations instead of 700 took that to 0.3 s. The data has no reference cycles, so little is kept
longer.

glibc's malloc gives a block of 128 KiB or more its own mapping, returned to the system when freed, but it raises
that bound to the largest such block freed so far (up to 32 MiB). The worker's batch frames are megabytes each: once
the first was freed, every later one came from the heap, and the heap kept its peak. Holding the bound at 128 KiB took
the memory benchmark's worker and writer process from 312 to 288 MB resident at the same speed (WRITER_IN_FLIGHT=10,
600,000 messages). Other C libraries are left as they are.
"""

from __future__ import annotations

import ctypes
import gc
import platform

__all__ = ["map_large_blocks", "settle_heap"]

THRESHOLDS = (20_000, 20, 20)
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter (glibc's malloc.h)


def settle_heap() -> None:
    """Call once start-up is done, before the main loop: what exists now is never scanned again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    map_large_blocks()


def map_large_blocks() -> None:
    """Hold glibc's bound for blocks mapped on their own at MMAP_THRESHOLD (nothing on other C libraries)."""
    if platform.libc_ver()[0] == "glibc":
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
