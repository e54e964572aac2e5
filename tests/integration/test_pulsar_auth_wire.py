"""What pulsar-client really sends to the broker as Tuya's ``auth1`` credentials (SPEC.md §1.3).

pulsar-lite accepts any credentials, so this test stands in for Tuya's broker: a loopback socket reads the first
frame of the real client (CommandConnect) and decodes its protobuf fields.
"""

from __future__ import annotations

import json
import socket
import struct
import threading

import pytest

from streams.sources.pulsar import PulsarSource

pytestmark = pytest.mark.integration


def _fields(buf: bytes) -> dict[int, list]:
    """A protobuf message as {field number: [values]} (varints and length-delimited values only)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"unexpected wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _capture_connect(server: socket.socket, captured: list[bytes]) -> None:
    conn, _ = server.accept()
    with conn:
        data = b""
        while len(data) < 8 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        captured.append(data)


def test_connect_frame_carries_auth1_method_and_json_credentials(vectors):
    auth = vectors["pulsar_auth"]
    server = socket.create_server(("127.0.0.1", 0))
    captured: list[bytes] = []
    thread = threading.Thread(target=_capture_connect, args=(server, captured), daemon=True)
    thread.start()
    port = server.getsockname()[1]
    source = PulsarSource(
        f"pulsar://127.0.0.1:{port}",
        access_id=auth["access_id"],
        access_key=auth["access_key"],
        topic=auth["topics"]["test"],
        subscription=auth["subscription"],
        operation_timeout_s=3,
    )
    with pytest.raises(Exception):  # noqa: B017 - the fake broker never answers; only the frame matters
        source.connect()
    thread.join(timeout=30)
    server.close()
    frame = captured[0]
    command = frame[8 : 8 + struct.unpack(">I", frame[4:8])[0]]
    base = _fields(command)
    connect = _fields(base[2][0])  # BaseCommand.connect = 2
    assert connect[5][0].decode() == auth["auth_method_name"]  # CommandConnect.auth_method_name
    data = connect[3][0].decode()  # CommandConnect.auth_data
    assert data == auth["auth_data_java_go"]
    assert json.loads(data) == {"username": auth["access_id"], "password": auth["password"]}
