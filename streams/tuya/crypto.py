"""AES for Tuya's message service (SPEC.md §2.3–2.5): the key rule, ECB with strict PKCS7, GCM with its tag.

Owns the ciphers only; pure (bytes in, bytes out), no I/O. Never imports httpx, pulsar or SQLAlchemy.

Library choice (PERFORMANCE.md): ``cryptography`` for both ciphers. Its ``AESGCM`` object is reused across messages
(about 2 µs per message, against about 158 µs for pycryptodome, which must build a cipher per nonce), and one
long-lived ECB decryption context is about 4× faster than a reused pycryptodome ECB cipher. The long-lived ECB
context buffers any partial block, which would corrupt every later message, so input that is not a whole number of
blocks is rejected *before* ``update()`` and the context is rebuilt after any error.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from streams.errors import DecryptError

__all__ = ["GCM_NONCE_SIZE", "GCM_TAG_SIZE", "Cipherbox", "aes_key"]

BLOCK = 16
GCM_NONCE_SIZE = 12  # SPEC.md §2.5: nonce(12) || ciphertext || tag(16), no AAD
GCM_TAG_SIZE = 16


def aes_key(access_key: str) -> bytes:
    """The AES-128 key: the middle 16 characters of the 32-character Access Secret (SPEC.md §2.3)."""
    key = access_key[8:24].encode("utf-8")
    if len(key) != BLOCK:
        raise ValueError("the Access Secret must have at least 24 characters")
    return key


class Cipherbox:
    """Decrypts (and, for the simulator, encrypts) Tuya payloads with one project's key.

    Not thread-safe: the ECB context is stateful. Build one per worker thread.
    """

    __slots__ = ("_ecb_decryptor", "_gcm", "_key")

    def __init__(self, access_key: str) -> None:
        self._key = aes_key(access_key)
        self._gcm = AESGCM(self._key)
        self._ecb_decryptor = self._new_ecb_decryptor()

    def _new_ecb_decryptor(self):  # type: ignore[no-untyped-def]
        return Cipher(algorithms.AES(self._key), modes.ECB()).decryptor()

    def decrypt_ecb(self, blob: bytes) -> bytes:
        """AES-128-ECB, then strict PKCS7 unpadding (SPEC.md §2.4)."""
        size = len(blob)
        if size == 0 or size % BLOCK:
            raise DecryptError(
                f"ECB ciphertext of {size} bytes is not a whole number of 16-byte blocks", kind="bad_length"
            )
        try:
            padded = self._ecb_decryptor.update(blob)
        except Exception as exc:  # pragma: no cover - the library raises only on misuse
            self._ecb_decryptor = self._new_ecb_decryptor()
            raise DecryptError(f"ECB decryption failed: {exc}") from exc
        pad = padded[-1]
        if not 1 <= pad <= BLOCK or padded[-pad:] != bytes((pad,)) * pad:
            raise DecryptError("bad PKCS7 padding (wrong key, or not an ECB message)", kind="bad_padding")
        return padded[:-pad]

    def decrypt_gcm(self, blob: bytes) -> bytes:
        """AES-128-GCM over ``nonce(12) || ciphertext || tag(16)``, tag verified, no AAD (SPEC.md §2.5)."""
        if len(blob) < GCM_NONCE_SIZE + GCM_TAG_SIZE:
            raise DecryptError(
                f"GCM blob of {len(blob)} bytes is shorter than nonce + tag (28 bytes)", kind="bad_length"
            )
        try:
            return self._gcm.decrypt(blob[:GCM_NONCE_SIZE], blob[GCM_NONCE_SIZE:], None)
        except InvalidTag:
            raise DecryptError("GCM tag mismatch (corrupt message or wrong key)", kind="gcm_tag_mismatch") from None

    def encrypt_ecb(self, plaintext: bytes) -> bytes:
        """AES-128-ECB with PKCS7 padding: what Tuya sends when ``em`` is ``aes_ecb`` or absent."""
        pad = BLOCK - len(plaintext) % BLOCK
        encryptor = Cipher(algorithms.AES(self._key), modes.ECB()).encryptor()
        return encryptor.update(plaintext + bytes((pad,)) * pad) + encryptor.finalize()

    def encrypt_gcm(self, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        """AES-128-GCM as ``nonce || ciphertext || tag``; a random nonce unless one is given (for vectors)."""
        nonce = os.urandom(GCM_NONCE_SIZE) if nonce is None else nonce
        return nonce + self._gcm.encrypt(nonce, plaintext, None)
