"""``make bench``: every benchmark, each printing its figures next to the floor measured in the same run."""

from __future__ import annotations

import importlib
import platform
import sys

SECTIONS = (
    "tests.bench.decode",
    "tests.bench.store",
    "tests.bench.worker",
    "tests.bench.writer",
    "tests.bench.formats",
    "tests.bench.growth",
    "tests.bench.memory",
    "tests.bench.scale",
    "tests.bench.views",
    "tests.bench.serve",
)


def main() -> int:
    print(f"tuya-archiver benchmarks on {platform.machine()}, Python {platform.python_version()}, {_cores()} cores")
    for name in SECTIONS:
        print()
        importlib.import_module(name).main()
    return 0


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
