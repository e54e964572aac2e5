"""streams/tuya/signing.py against every ``openapi_sign`` vector (partner: tests/integration/test_emulator.py)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlencode

import pytest

from streams.tuya.signing import EMPTY_BODY_SHA256, canonical_url, is_token_path, sign, string_to_sign
from tests.conftest import load_vectors

_SIGN = load_vectors()["openapi_sign"]
_BY_NAME = {vector["name"]: vector for vector in _SIGN["vectors"]}
_DOC = ("tuya_doc_token_with_signature_headers", "tuya_doc_business_with_signature_headers")
_PROJECT = tuple(
    name
    for name, vector in _BY_NAME.items()
    if "url" in vector and name not in _DOC  # the project's own request vectors
)


def _credentials(vectors: dict[str, Any], vector: dict[str, Any]) -> tuple[str, str]:
    if "client_id" in vector:
        return vector["client_id"], vector["secret"]
    project = vectors["pulsar_auth"]  # SPEC.md §4.4: the project vectors use the project's credentials
    return project["access_id"], project["access_key"]


def _doc_signature_headers() -> list[tuple[str, str]]:
    sent = _BY_NAME[_DOC[0]]["headers_to_send"]
    return [(key, sent[key]) for key in sent["Signature-Headers"].split(":")]


def _sign_vector(vectors: dict[str, Any], vector: dict[str, Any], url: str, **extra: Any):
    client_id, secret = _credentials(vectors, vector)
    return sign(
        vector["method"],
        url,
        vector["body"].encode("utf-8"),
        client_id=client_id,
        secret=secret,
        access_token=vector["access_token"],
        t_ms=vector["t"],
        nonce=vector["nonce"],
        **extra,
    )


def test_empty_body_hash_matches_vectors(vectors):
    assert vectors["openapi_sign"]["empty_body_sha256"] == EMPTY_BODY_SHA256


@pytest.mark.parametrize("name", _DOC)
def test_tuya_published_examples_reproduced_exactly(vectors, name):
    vector = _BY_NAME[name]
    signature = _sign_vector(vectors, vector, vector["url"], signature_headers=_doc_signature_headers())
    assert signature.string_to_sign == vector["string_to_sign"]
    assert signature.hmac_input == vector["hmac_input"]
    assert signature.value == vector["expected_sign"]


def test_published_example_headers_are_the_headers_to_send(vectors):
    vector = _BY_NAME[_DOC[0]]
    signature = _sign_vector(vectors, vector, vector["url"], signature_headers=_doc_signature_headers())
    assert signature.headers == vector["headers_to_send"]


def test_header_block_without_trailing_newline_is_not_our_sign(vectors):
    negative = _BY_NAME["NEGATIVE_header_block_without_trailing_newline"]
    doc = _BY_NAME[_DOC[0]]
    signature = _sign_vector(vectors, doc, doc["url"], signature_headers=_doc_signature_headers())
    wrong_input = doc["client_id"] + doc["t"] + doc["nonce"] + negative["string_to_sign"]
    wrong = hmac.new(doc["secret"].encode(), wrong_input.encode(), hashlib.sha256).hexdigest().upper()
    assert wrong == negative["sign_computed"]  # the vector is what the Java connector's joining would send
    assert signature.string_to_sign != negative["string_to_sign"]
    assert signature.value != negative["sign_computed"]


@pytest.mark.parametrize("name", _PROJECT)
def test_project_vectors_reproduced_exactly(vectors, name):
    vector = _BY_NAME[name]
    signature = _sign_vector(vectors, vector, vector["url"])
    assert signature.string_to_sign == vector["string_to_sign"]
    assert signature.hmac_input == vector["hmac_input"]
    assert signature.value == vector["expected_sign"]
    if "body_sha256" in vector:
        assert hashlib.sha256(vector["body"].encode()).hexdigest() == vector["body_sha256"]


@pytest.mark.parametrize("name", [name for name in _PROJECT if "headers_to_send" in _BY_NAME[name]])
def test_project_vectors_headers_to_send(vectors, name):
    vector = _BY_NAME[name]
    expected = {key: value for key, value in vector["headers_to_send"].items() if key != "Content-Type"}
    assert _sign_vector(vectors, vector, vector["url"]).headers == expected


def test_unsorted_encoded_query_signs_sorted_and_decoded(vectors):
    vector = _BY_NAME["get_with_unsorted_query_and_comma"]
    on_the_wire = _sign_vector(vectors, vector, vector["url_on_the_wire_example"])
    built = _sign_vector(vectors, vector, "/v1.0/iot-03/devices?" + urlencode(vector["query_params"]))
    assert on_the_wire.string_to_sign == built.string_to_sign == vector["string_to_sign"]
    assert on_the_wire.value == built.value == vector["expected_sign"]


@pytest.mark.parametrize("name", ["legacy_token_sign", "legacy_business_sign"])
def test_legacy_algorithm_vectors(vectors, name):
    vector = _BY_NAME[name]
    client_id, secret = _credentials(vectors, vector)
    signature = sign(
        "GET",
        "/ignored?by=legacy",
        b"ignored",
        client_id=client_id,
        secret=secret,
        access_token=vector.get("access_token", ""),
        t_ms=vector["t"],
        nonce="ignored-by-legacy",
        legacy=True,
    )
    assert signature.hmac_input == vector["hmac_input"]
    assert signature.value == vector["expected_sign"]
    assert "nonce" not in signature.headers


def test_python_default_json_body_signs_differently_from_compact(vectors):
    compact = _BY_NAME["post_commands_compact_body"]
    spaced = _BY_NAME["post_commands_python_default_json_dumps_body"]
    assert _sign_vector(vectors, compact, compact["url"]).value != _sign_vector(vectors, spaced, spaced["url"]).value


def test_empty_query_value_kept_and_path_without_query_unchanged():
    assert canonical_url("/p?b=&a=1") == "/p?a=1&b="
    assert canonical_url("/v1.0/devices/x/status") == "/v1.0/devices/x/status"


def test_string_to_sign_uppercases_method():
    assert string_to_sign("post", "/p", b"").startswith("POST\n")


def test_token_paths_recognised():
    assert is_token_path("/v1.0/token?grant_type=1")
    assert is_token_path("/v1.0/token/abc")
    assert not is_token_path("/v1.0/tokens")
    assert not is_token_path("/v1.0/devices/x")


def test_signature_repr_hides_the_access_token(vectors):
    vector = _BY_NAME["get_status"]
    assert vector["access_token"] not in repr(_sign_vector(vectors, vector, vector["url"]))
