"""How the emulated OpenAPI refuses a call, and how it reads query parameters the way Tuya validates them.

Owns :class:`Refusal` (Tuya's ``code`` and ``msg``, answered as ``success:false``), the parsing of integer and
comma-list parameters (a malformed or missing required one is ``1109 param is illegal``) and the opaque cursors
of the paged endpoints (``last_row_key``, ``start_row_key``). Pure; used only by the ``emulated_*`` modules and
:mod:`streams.tuya.emulator`. Must not import the client (:mod:`streams.tuya.openapi`) or httpx.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from streams.tuya.api_errors import CODE_MESSAGES

__all__ = ["PARAM_ILLEGAL", "Refusal", "comma_list", "decode_cursor", "encode_cursor", "int_param"]

PARAM_ILLEGAL = 1109


class Refusal(Exception):
    """The emulated OpenAPI refuses the call with Tuya's ``code`` (answered as ``success:false``)."""

    def __init__(self, code: int, msg: str = "") -> None:
        super().__init__(code)
        self.code = code
        self.msg = msg or CODE_MESSAGES.get(code, "error")


def int_param(
    params: Mapping[str, str], name: str, default: int | None = None, *, low: int | None = None, high: int | None = None
) -> int:
    """``params[name]`` as an integer within ``low``..``high``; absent or empty gives ``default`` (None: required).

    Raises:
        Refusal: 1109 when it is missing without a default, not an integer, or out of range.
    """
    text = params.get(name, "")
    if text == "":
        if default is None:
            raise Refusal(PARAM_ILLEGAL, f"param is illegal: {name} is required")
        return default
    try:
        value = int(text)
    except ValueError:
        raise Refusal(PARAM_ILLEGAL, f"param is illegal: {name}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise Refusal(PARAM_ILLEGAL, f"param is illegal: {name} must be within {low}..{high}")
    return value


def comma_list(params: Mapping[str, str], name: str, *, most: int | None = None) -> list[str]:
    """The non-empty items of a comma list (``a,b,c``); an absent parameter is ``[]``.

    Raises:
        Refusal: 1109 when there are more than ``most`` items.
    """
    items = [item.strip() for item in params.get(name, "").split(",") if item.strip()]
    if most is not None and len(items) > most:
        raise Refusal(PARAM_ILLEGAL, f"param is illegal: at most {most} {name}")
    return items


def encode_cursor(*parts: object) -> str:
    """An opaque cursor, in the URL-safe base64 Tuya's row keys look like, of ``parts``."""
    text = "\x1f".join(str(part) for part in parts)
    return base64.urlsafe_b64encode(text.encode()).decode("ascii")


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The ``count`` parts of a cursor made by :func:`encode_cursor`.

    Raises:
        Refusal: 1109 when the cursor was not made by this emulator.
    """
    try:
        parts = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().split("\x1f")
    except (binascii.Error, UnicodeError, ValueError):
        raise Refusal(PARAM_ILLEGAL, "param is illegal: row key") from None
    if len(parts) != count:
        raise Refusal(PARAM_ILLEGAL, "param is illegal: row key")
    return parts
