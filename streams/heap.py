"""The garbage collector's policy for the long-running commands (``run``, ``bridge``, ``process``).

Every batch allocates hundreds of thousands of short-lived containers (payload dicts, records, row tuples). With
CPython's default thresholds (700, 10, 10) that set off thousands of collections per 100,000 messages, and each full
one walked everything start-up had allocated: 2.2 s of a 20 s run of the worker (the worker benchmark's SQLite run
of 100,000 messages, timed with ``gc.callbacks``). Freezing the start-up heap and collecting the young generation
every 20,000 allocations instead of 700 took that to 0.3 s. The data has no reference cycles, so little is kept
longer.
"""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]

THRESHOLDS = (20_000, 20, 20)


def settle_heap() -> None:
    """Call once start-up is done, before the main loop: what exists now is never scanned again."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
