"""What the worker and its writer process say to each other over their pipe: MessagePack frames (msgspec).

The worker sends :class:`Write`, :class:`Tick` and :class:`Stop`; the writer answers each transaction with
:class:`Committed` (for the oldest batches not yet reported), and a bug with :class:`Crashed` before it exits.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from streams.store.prepared import PreparedBatch
from streams.store.sql import BatchCounts

__all__ = [
    "Committed",
    "Crashed",
    "Reply",
    "Request",
    "Stop",
    "Tick",
    "Write",
    "decode_reply",
    "decode_request",
    "encode",
]


class Write(msgspec.Struct, tag=True, array_like=True):
    """A batch to commit. ``news`` is what the rules see of it (pickled: records are an untagged union), None
    without rules; ``catalog`` the generation of the worker's data-point catalog (the writer reloads its own copy
    when it moves)."""

    rows: PreparedBatch
    news: bytes | None
    now: datetime
    catalog: int


class Tick(msgspec.Struct, tag=True, array_like=True):
    """The clock moved: fire the rules' timers and silent-device triggers that came due."""

    now: datetime
    catalog: int


class Stop(msgspec.Struct, tag=True, array_like=True):
    """Nothing more comes: commit what was sent (unless the database is down), then exit."""


class Committed(msgspec.Struct, tag=True, array_like=True):
    """One transaction committed the ``batches`` oldest batches not reported before."""

    batches: int
    counts: BatchCounts
    seconds: float


class Crashed(msgspec.Struct, tag=True, array_like=True):
    """The writer met an error it cannot retry (a bug, not the database being down) and exits; ``config``: the
    error was a ConfigError (the archive's schema is newer than this code's, say), which stops the worker as such."""

    error: str
    config: bool = False


Request = Write | Tick | Stop
Reply = Committed | Crashed

encode = msgspec.msgpack.Encoder().encode
decode_request = msgspec.msgpack.Decoder(Request).decode
decode_reply = msgspec.msgpack.Decoder(Reply).decode
