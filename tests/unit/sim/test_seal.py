"""streams/sim/seal.py against the vectors (byte-exact envelopes); the fleet's use of it is in test_fleet.py."""

from __future__ import annotations

import pytest

from models.records import DeadLetter, PulsarMessage
from streams.sim.seal import CIPHERS, CORRUPTIONS, Sealer
from streams.tuya.decoder import MessageDecoder
from tests.conftest import load_vectors

VECTORS = load_vectors()
ACCESS_KEY = VECTORS["pulsar_auth"]["access_key"]
PLAINTEXT = b'{"dataId":"x","devId":"bf1e8a0cd2e4a1b2c3x9kq","status":[{"code":"switch_1","value":true,"t":1}]}'
NONCE = bytes(range(12))

# What the decoder calls each corruption (streams/errors.py kinds); wrong_key depends on the cipher.
EXPECTED_ERROR = {
    ("bad_base64", "gcm"): {"bad_base64"},
    ("bad_base64", "ecb"): {"bad_base64"},
    ("gcm_tag", "gcm"): {"gcm_tag_mismatch"},
    ("gcm_tag", "ecb"): {"gcm_tag_mismatch"},
    ("truncated", "gcm"): {"bad_length"},
    ("truncated", "ecb"): {"bad_length"},
    ("not_json", "gcm"): {"bad_envelope_json"},
    ("not_json", "ecb"): {"bad_envelope_json"},
    ("wrong_key", "gcm"): {"gcm_tag_mismatch"},
    ("wrong_key", "ecb"): {"bad_padding", "bad_payload_json"},
}


def _cipher_of(envelope: dict) -> str:
    em = envelope["pulsar"]["properties"].get("em")
    return {"aes_gcm": "gcm", "aes_ecb": "ecb", None: "ecb-no-em"}[em]


@pytest.mark.parametrize("envelope", VECTORS["envelopes"], ids=lambda e: e["name"])
def test_seal_reproduces_vector_payload_byte_for_byte(envelope):
    cipher = _cipher_of(envelope)
    nonce = bytes.fromhex(envelope["crypto"]["nonce_hex"]) if cipher == "gcm" else b""
    payload, properties = Sealer(ACCESS_KEY).seal(
        envelope["decrypted_utf8"].encode("utf-8"), envelope["protocol"], envelope["envelope"]["t"], cipher, nonce
    )
    assert payload == envelope["pulsar"]["payload_utf8"].encode("utf-8")
    assert properties.get("em") == envelope["pulsar"]["properties"].get("em")


@pytest.mark.parametrize("cipher", ["gcm", "ecb"])
@pytest.mark.parametrize("reason", CORRUPTIONS)
def test_corrupt_message_becomes_dead_letter_of_its_kind(reason, cipher):
    payload, properties = Sealer(ACCESS_KEY).corrupt(reason, PLAINTEXT, 4, 1_700_000_000_000, cipher, NONCE)
    result = MessageDecoder(ACCESS_KEY).decode(
        PulsarMessage(payload=payload, properties=properties, message_id="m", topic="t")
    )
    assert isinstance(result, DeadLetter)
    assert result.error_kind in EXPECTED_ERROR[reason, cipher]


def test_seal_without_em_is_ecb():
    assert "ecb-no-em" in CIPHERS
    _, properties = Sealer(ACCESS_KEY).seal(PLAINTEXT, 4, 1, "ecb-no-em", NONCE)
    assert properties == {}


def test_unknown_cipher_and_corruption_are_rejected():
    sealer = Sealer(ACCESS_KEY)
    with pytest.raises(ValueError, match="unknown cipher"):
        sealer.seal(PLAINTEXT, 4, 1, "cbc", NONCE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown corruption"):
        sealer.corrupt("bitrot", PLAINTEXT, 4, 1, "gcm", NONCE)  # type: ignore[arg-type]
