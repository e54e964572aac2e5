"""URLs as they may be shown in a log line or an error: any password in them hidden.

Settings' URLs (DATABASE_URL, KAFKA_URL, TUYA_OPENAPI_URL, TUYA_PULSAR_URL) may carry ``user:password@``; a URL too
malformed to parse may still carry one, so the rule reads the text, not a parsed URL. Pure.
"""

from __future__ import annotations

import re

__all__ = ["hide_password"]

# As SQLAlchemy reads a URL: the user runs to the first ":" and may hold "@" and spaces (Azure's ``user@server``);
# the password runs from there to the "@", and may hold "/", "?" and spaces (none need be percent-encoded to work).
_PASSWORD = re.compile(r"(//[^:/]*:)[^@]*@")
# libpq's and SQLAlchemy's password in the query (``?password=…``, ``sslpassword``): up to the next "&".
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&\s]*", re.IGNORECASE)
# Among libpq's keywords (``host=db password=… dbname=app``): quoted, or up to the next space not escaped by "\".
_KEYWORD_PASSWORD = re.compile(r"((?:^|\s)(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)*)", re.IGNORECASE)


def hide_password(url: str) -> str:
    """``url`` with the password of its ``user:password@``, and any ``password=`` in its query or among libpq's
    keywords, as ``***``."""
    return _KEYWORD_PASSWORD.sub(r"\1***", _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url)))
