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

The writer process holds a group of batches (a few thousand messages' rows, decoded from its frames) for the length
of a transaction, and frees it all at the end. The collections that ran meanwhile only walked those rows, which
survived every one. So the writer pauses the collector for the group: reference counting frees the rows as the group
ends, and the count of objects allocated falls back with them. The collections left come as the next group's first
frames are read, and collect whatever cycles the group made. The writer benchmark (tests.bench.writer: 200,000
messages' frames made in advance, the collector timed with ``gc.callbacks``) counted 208 collections taking 6 to
10 µs a message before, and 87 to 100 taking 2 to 6 after.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
from collections.abc import Iterator

__all__ = ["collector_paused", "map_large_blocks", "settle_heap"]

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


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No collection while the block runs, for a block whose objects die at its end: reference counting frees them,
    and a collection in the middle would only walk them. Cycles made meanwhile wait for the first collection after
    it. A collector the caller had disabled stays disabled."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
