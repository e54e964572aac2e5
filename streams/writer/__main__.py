"""``python -m streams.writer FD``: the writer process, started by the worker (streams.writer.process)."""

import sys

from streams.writer.child import main

main(sys.argv[1:])
