"""The pure parts of streams/sources/pulsar.py against vectors.json ``pulsar_auth``; the broker is in integration."""

from __future__ import annotations

import json

from streams.sources.pulsar import (
    auth_data,
    client_options,
    pulsar_password,
    subscription_name,
    topic_name,
)


def test_password_matches_vector(vectors):
    auth = vectors["pulsar_auth"]
    assert pulsar_password(auth["access_id"], auth["access_key"]) == auth["password"]


def test_auth_data_is_the_java_go_form_and_valid_json(vectors):
    auth = vectors["pulsar_auth"]
    data = auth_data(auth["access_id"], auth["access_key"])
    assert data == auth["auth_data_java_go"]
    assert json.loads(data) == {"username": auth["access_id"], "password": auth["password"]}


def test_topic_and_subscription_names(vectors):
    auth = vectors["pulsar_auth"]
    assert topic_name(auth["access_id"], "event") == auth["topics"]["prod"]
    assert topic_name(auth["access_id"], "event-test") == auth["topics"]["test"]
    assert subscription_name(auth["access_id"]) == auth["subscription"]


def test_tls_verification_is_on_by_default_for_pulsar_ssl():
    options = client_options("pulsar+ssl://mqe.tuyaeu.com:7285/", tls_verify=True)
    assert options["use_tls"] is True
    assert options["tls_allow_insecure_connection"] is False
    assert options["tls_validate_hostname"] is True
    assert options["tls_trust_certs_file_path"]


def test_tls_verification_can_be_turned_off():
    options = client_options("pulsar+ssl://mqe.tuyaeu.com:7285/", tls_verify=False)
    assert options["tls_allow_insecure_connection"] is True
    assert options["tls_validate_hostname"] is False


def test_plain_pulsar_url_has_no_tls_options():
    assert "use_tls" not in client_options("pulsar://127.0.0.1:6650", tls_verify=True)
