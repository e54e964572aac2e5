"""Sealing a decrypted payload into the message Tuya publishes (SPEC.md §2), and breaking such messages on purpose.

Owns the envelope ``{"data","protocol","pv":"2.0","sign","t"}`` (byte for byte like ``vectors.json``, with the
documented ``sign``), the ``em`` property of each cipher (SPEC.md §2.2: ``aes_gcm``; ``aes_ecb`` or absent for ECB)
and the corruptions the worker must dead-letter. Pure: nonces come in as arguments; no randomness, no I/O.
"""

from __future__ import annotations

import base64
from typing import Literal, get_args

import msgspec

from streams.tuya.crypto import Cipherbox, aes_key
from streams.tuya.envelope import envelope_sign

__all__ = ["CIPHERS", "CORRUPTIONS", "Cipher", "Corruption", "Sealer"]

#: ``ecb`` sends ``em=aes_ecb``; ``ecb-no-em`` sends no ``em`` at all (both seen in SDKs; SPEC.md §2.2 [UNCERTAIN]).
Cipher = Literal["gcm", "ecb", "ecb-no-em"]
CIPHERS: tuple[Cipher, ...] = get_args(Cipher)

#: What can go wrong with a message on the way: each must end as a dead letter, never as a record.
Corruption = Literal["bad_base64", "gcm_tag", "truncated", "not_json", "wrong_key"]
CORRUPTIONS: tuple[Corruption, ...] = get_args(Corruption)

_PROPERTIES: dict[str, dict[str, str]] = {"gcm": {"em": "aes_gcm"}, "ecb": {"em": "aes_ecb"}, "ecb-no-em": {}}
_OTHER_KEYS = ("00000000ffffffffffffffff00000000", "11111111eeeeeeeeeeeeeeee11111111")
_encode = msgspec.json.Encoder().encode


class Sealer:
    """Encrypts and wraps payloads for one project's Access Secret. Not thread-safe (see Cipherbox)."""

    __slots__ = ("_access_key", "_box", "_wrong_box")

    def __init__(self, access_key: str) -> None:
        self._access_key = access_key
        self._box = Cipherbox(access_key)
        wrong = next(key for key in _OTHER_KEYS if aes_key(key) != aes_key(access_key))
        self._wrong_box = Cipherbox(wrong)

    def seal(
        self, plaintext: bytes, protocol: int, t_ms: int, cipher: Cipher, nonce: bytes
    ) -> tuple[bytes, dict[str, str]]:
        """The Pulsar payload (envelope JSON) and properties of ``plaintext``; ``nonce`` is used by GCM only."""
        blob = _encrypt(self._box, plaintext, cipher, nonce)
        return self.envelope(_b64(blob), protocol, t_ms), dict(_PROPERTIES[cipher])

    def envelope(self, data: str, protocol: int, t_ms: int) -> bytes:
        """The envelope JSON around base64 ``data``, keys in Tuya's (alphabetical) order, with its ``sign``."""
        fields = {"data": data, "protocol": protocol, "pv": "2.0", "t": t_ms}
        sign = envelope_sign(fields, self._access_key)
        return _encode({"data": data, "protocol": protocol, "pv": "2.0", "sign": sign, "t": t_ms})

    def corrupt(
        self, reason: Corruption, plaintext: bytes, protocol: int, t_ms: int, cipher: Cipher, nonce: bytes
    ) -> tuple[bytes, dict[str, str]]:
        """Like :meth:`seal`, broken by ``reason``; ``gcm_tag`` always uses GCM.

        - ``bad_base64``: two characters of ``data`` outside the base64 alphabet.
        - ``gcm_tag``: the last bit of the GCM tag flipped.
        - ``truncated``: the ciphertext cut short (GCM: below nonce + tag; ECB: not whole blocks).
        - ``not_json``: the envelope JSON cut in half, as a torn frame would be.
        - ``wrong_key``: encrypted with another project's key.
        """
        if reason not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {reason!r}; expected one of {', '.join(CORRUPTIONS)}")
        cipher = "gcm" if reason == "gcm_tag" else cipher
        blob = _encrypt(self._wrong_box if reason == "wrong_key" else self._box, plaintext, cipher, nonce)
        if reason == "gcm_tag":
            blob = blob[:-1] + bytes((blob[-1] ^ 0x01,))
        elif reason == "truncated":
            blob = blob[:20] if cipher == "gcm" else blob[:-5]
        data = _b64(blob)
        if reason == "bad_base64":
            middle = len(data) // 2
            data = f"{data[:middle]}%${data[middle + 2 :]}"
        payload = self.envelope(data, protocol, t_ms)
        if reason == "not_json":
            payload = payload[: len(payload) // 2]
        return payload, dict(_PROPERTIES[cipher])


def _encrypt(box: Cipherbox, plaintext: bytes, cipher: Cipher, nonce: bytes) -> bytes:
    if cipher == "gcm":
        return box.encrypt_gcm(plaintext, nonce)
    if cipher in ("ecb", "ecb-no-em"):
        return box.encrypt_ecb(plaintext)
    raise ValueError(f"unknown cipher {cipher!r}; expected one of {', '.join(CIPHERS)}")


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode("ascii")
