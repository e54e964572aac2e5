"""The error tree: every error says what the runtime must do with the message or call that raised it.

Owns the exception classes only; imports nothing of the project.

    WorkerError
    ├── PermanentError              the input is bad: dead-letter it, ack it, go on
    │   ├── DecodeError             (``kind`` names the failure, e.g. ``bad_base64``)
    │   │   ├── EnvelopeError       not a Tuya envelope (non-JSON, missing ``data``/``protocol``)
    │   │   ├── DecryptError        bad base64, wrong key, GCM tag mismatch, bad PKCS7 padding, truncated data
    │   │   └── PayloadError        decrypted bytes are not UTF-8 JSON of the expected shape
    │   ├── RowsRejected            the database refused a message's rows for what they hold: dead-letter that one
    │   └── ConfigError             a setting or rule file is wrong: stop at start-up, name the variable/file
    └── TransientError(retry_after) the world is briefly wrong: ack nothing, back off, retry the same batch
        └── DatabaseUnavailable
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatabaseUnavailable",
    "DecodeError",
    "DecryptError",
    "EnvelopeError",
    "PayloadError",
    "PermanentError",
    "RowsRejected",
    "TransientError",
    "WorkerError",
]


class WorkerError(Exception):
    """Root of every error the project raises on purpose."""


class PermanentError(WorkerError):
    """Retrying cannot help: the message is dead-lettered and acknowledged."""


class DecodeError(PermanentError):
    """A message could not be turned into records; ``kind`` is a short stable name for counting."""

    kind = "decode_error"

    def __init__(self, reason: str, *, kind: str | None = None) -> None:
        super().__init__(reason)
        if kind is not None:
            self.kind = kind


class EnvelopeError(DecodeError):
    kind = "bad_envelope"


class DecryptError(DecodeError):
    kind = "decrypt_failed"


class PayloadError(DecodeError):
    kind = "bad_payload"


class RowsRejected(PermanentError):
    """The database refused a batch's rows for what they hold (a constraint, a value out of range, a limit of its
    own): storing the same rows again fails the same way, so the message they came from must be found and kept as a
    dead letter instead (streams.store.isolate)."""


class ConfigError(PermanentError):
    """A setting or a rules file is invalid; the message names the variable or file, line and rule."""


class TransientError(WorkerError):
    """Retrying later can help: nothing is acknowledged, the same batch is retried after ``retry_after`` seconds."""

    def __init__(self, reason: str, *, retry_after: float = 1.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class DatabaseUnavailable(TransientError):
    """The database refused a connection or a commit."""
