"""URLs as they may be shown in a log line or an error: any password in them hidden.

Settings' URLs (DATABASE_URL, KAFKA_URL, TUYA_OPENAPI_URL, TUYA_PULSAR_URL) may carry ``user:password@``; a URL too
malformed to parse may still carry one, so the rule reads the text, not a parsed URL. Pure.
"""

from __future__ import annotations

import re

__all__ = ["hide_password"]

_PASSWORD = re.compile(r"(//[^/@:\s]*:)[^/@\s]*@")


def hide_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` (if any) as ``***``."""
    return _PASSWORD.sub(r"\1***@", url)
