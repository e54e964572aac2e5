"""Tuya OpenAPI request signatures (SPEC.md §4.3 current algorithm, §4.5 legacy algorithm).

Owns the string to sign, the HMAC and the headers that carry it. Pure: time and nonce are arguments, bytes and
strings in, a :class:`Signature` out. Used by the client (to sign) and the emulator (to verify). Must not import
httpx, the settings or anything that does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

__all__ = [
    "EMPTY_BODY_SHA256",
    "SIGN_METHOD",
    "Signature",
    "canonical_url",
    "is_token_path",
    "sign",
    "string_to_sign",
]

SIGN_METHOD = "HMAC-SHA256"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
_TOKEN_PATH = "/v1.0/token"


@dataclass(frozen=True, slots=True)
class Signature:
    """A computed signature: ``value`` goes in the ``sign`` header, ``headers`` are every header the call needs.

    ``hmac_input`` and ``string_to_sign`` are kept for diagnostics and tests; they hold the access token, so they
    are left out of ``repr``.
    """

    value: str
    headers: dict[str, str] = field(repr=False)
    string_to_sign: str = field(repr=False)
    hmac_input: str = field(repr=False)


def is_token_path(path: str) -> bool:
    """True for the token grant and refresh calls, which are signed without an access token (SPEC.md §4.2)."""
    path = path.partition("?")[0]
    return path == _TOKEN_PATH or path.startswith(_TOKEN_PATH + "/")


def canonical_url(path_with_query: str) -> str:
    """The ``Url`` part of the string to sign: the path, then the query sorted by key with decoded values.

    An empty value stays as ``k=``; repeated keys keep their order (Python's sort is stable), which SPEC.md §4.3
    leaves unverified.
    """
    path, _, query = path_with_query.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        return path
    pairs.sort(key=lambda pair: pair[0])
    return path + "?" + "&".join(f"{key}={value}" for key, value in pairs)


def string_to_sign(
    method: str, path_with_query: str, body: bytes, signature_headers: Sequence[tuple[str, str]] = ()
) -> str:
    """``METHOD \\n sha256(body) \\n headers \\n url``; each listed header line ends with its own ``\\n``."""
    headers = "".join(f"{key}:{value}\n" for key, value in signature_headers)
    content_sha256 = hashlib.sha256(body).hexdigest()
    return f"{method.upper()}\n{content_sha256}\n{headers}\n{canonical_url(path_with_query)}"


def sign(
    method: str,
    path_with_query: str,
    body: bytes,
    *,
    client_id: str,
    secret: str,
    access_token: str,
    t_ms: int | str,
    nonce: str = "",
    signature_headers: Sequence[tuple[str, str]] = (),
    legacy: bool = False,
) -> Signature:
    """Sign one request; an empty ``access_token`` gives the token-call form.

    Args:
        path_with_query: the request target without the host, e.g. ``/v1.0/devices?b=2&a=1`` (encoded or not).
        body: the exact bytes that will be sent; hashing other bytes gives ``1004 sign invalid``.
        signature_headers: ``(name, value)`` pairs to sign and send, listed in ``Signature-Headers``.
        legacy: the pre-2021-06-30 algorithm, ``HMAC(client_id + access_token + t)`` (SPEC.md §4.5); it signs
            neither the request nor the nonce.
    """
    t = str(t_ms)
    if legacy:
        to_sign = ""
        hmac_input = client_id + access_token + t
    else:
        to_sign = string_to_sign(method, path_with_query, body, signature_headers)
        hmac_input = client_id + access_token + t + nonce + to_sign
    value = hmac.new(secret.encode("utf-8"), hmac_input.encode("utf-8"), hashlib.sha256).hexdigest().upper()
    headers = {"client_id": client_id, "t": t, "sign_method": SIGN_METHOD, "sign": value}
    if access_token:
        headers["access_token"] = access_token
    if nonce and not legacy:
        headers["nonce"] = nonce
    if signature_headers:
        headers["Signature-Headers"] = ":".join(key for key, _ in signature_headers)
        headers.update(signature_headers)
    return Signature(value=value, headers=headers, string_to_sign=to_sign, hmac_input=hmac_input)
