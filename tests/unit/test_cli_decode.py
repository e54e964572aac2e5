"""``tuya-archiver decode`` through the real entry point: all three input forms, dead letters, exit status."""

from __future__ import annotations

import io
import json

import pytest

from streams.cli import main


@pytest.fixture
def run_decode(monkeypatch, capsys, vectors):
    monkeypatch.setenv("TUYA_ACCESS_KEY", vectors["pulsar_auth"]["access_key"])

    def run(lines: list[str | bytes], *args: str) -> tuple[int, list[dict]]:
        raw = [line if isinstance(line, bytes) else line.encode() for line in lines]
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\n".join(raw) + b"\n")))
        status = main(["decode", *args])
        out = capsys.readouterr().out
        return status, [json.loads(line) for line in out.splitlines()]

    return run


def test_bare_envelope_with_em_prints_status_records(run_decode, vectors):
    envelope = vectors["envelopes"][0]
    status, records = run_decode([json.dumps(envelope["envelope"])], "--em", "aes_gcm")
    assert status == 0
    assert [r["code"] for r in records] == [item["code"] for item in envelope["decrypted"]["status"]]
    assert records[0]["kind"] == "status"
    assert records[0]["reported_at"].endswith("Z")


def test_websocket_frames_and_pulsar_messages_decode(run_decode, vectors):
    lines = []
    for envelope in vectors["envelopes"]:
        lines.append(envelope["websocket_frame_utf8"])
        lines.append(
            json.dumps({"payload": envelope["pulsar"]["payload_utf8"], "properties": envelope["pulsar"]["properties"]})
        )
    status, records = run_decode(lines)
    assert status == 0
    events = [r["event"] for r in records if r["kind"] == "device_event"]
    assert events.count("online") == 2 and events.count("name_updated") == 2
    assert any(r.get("data", {}).get("name") == "Küche Steckdose 厨房" for r in records)


def test_bad_line_prints_dead_letter_goes_on_and_exits_one(run_decode, vectors):
    good = vectors["envelopes"][2]["websocket_frame_utf8"]
    status, records = run_decode(["this is not json", good])
    assert status == 1
    assert records[0]["kind"] == "dead_letter" and records[0]["error_kind"] == "bad_envelope_json"
    assert records[1]["kind"] == "device_event"


def test_a_line_that_is_not_utf8_is_a_dead_letter_and_the_next_one_decodes(run_decode, vectors):
    good = vectors["envelopes"][2]["websocket_frame_utf8"]
    status, records = run_decode([b'\xff\xfe{"a":1}', good])
    assert status == 1
    assert records[0]["kind"] == "dead_letter" and records[1]["kind"] == "device_event"


def test_access_key_flag_overrides_environment(run_decode, vectors):
    envelope = vectors["envelopes"][0]
    status, records = run_decode([envelope["websocket_frame_utf8"]], "--access-key", "f" * 32)
    assert status == 1 and records[0]["error_kind"] == "gcm_tag_mismatch"


@pytest.mark.parametrize("key", ["short", "k" * 25, "k" * 33])
def test_an_access_key_flag_that_cannot_be_a_secret_is_a_usage_error_that_does_not_echo_it(monkeypatch, capsys, key):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"{}\n")))
    with pytest.raises(SystemExit) as stopped:
        main(["decode", "--access-key", key])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert "--access-key: must be the 32-character Access Secret" in err and key not in err


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('{"messageId":"CLlgECgYAA==","payload":"%%%notbase64"}', "bad_websocket_frame"),
        ('{"payload":"{}","properties":[1],"messageId":"CLlgECgYAA=="}', "bad_websocket_frame"),
        ('{"payload":"{}","publish_time_ms":"soon"}', "bad_input_line"),
    ],
)
def test_a_line_of_another_shape_is_a_dead_letter_and_the_next_lines_decode(run_decode, vectors, line, kind):
    good = vectors["envelopes"][2]["websocket_frame_utf8"]
    status, records = run_decode([line, good])
    assert status == 1
    assert (records[0]["kind"], records[0]["message_id"], records[0]["error_kind"]) == ("dead_letter", "line:1", kind)
    assert records[1]["kind"] == "device_event"
