"""Benchmark: decode + normalise throughput on one core, next to the bare AES + JSON floor measured in the same run.

Messages are Tuya status reports with 5 items, half GCM and half ECB (both ECB forms). Run alone with
``python -m tests.bench.decode``; ``make bench`` runs it with the other benchmarks.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

import msgspec

from models.records import PulsarMessage
from streams.tuya.crypto import Cipherbox
from streams.tuya.decoder import MessageDecoder
from streams.tuya.envelope import envelope_sign

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
COUNT = 100_000
CODES = ("switch_1", "cur_power", "cur_current", "cur_voltage", "add_ele")


def make_messages(count: int) -> list[PulsarMessage]:
    box = Cipherbox(ACCESS_KEY)
    messages = []
    for n in range(count):
        t = 1_700_000_000_000 + n
        inner = {
            "dataId": f"data{n:016d}",
            "devId": f"bf{n % 5000:020d}",
            "productKey": "keyjup78v54myhan",
            "status": [
                {"code": c, "value": n % 997 + i, "t": t, str(i + 1): str(n % 997 + i)} for i, c in enumerate(CODES)
            ],
        }
        plaintext = json.dumps(inner, separators=(",", ":")).encode()
        gcm = n % 2 == 0
        blob = box.encrypt_gcm(plaintext) if gcm else box.encrypt_ecb(plaintext)
        fields = {"data": base64.b64encode(blob).decode(), "protocol": 4, "pv": "2.0", "t": t}
        fields["sign"] = envelope_sign(fields, ACCESS_KEY)
        properties = {"em": "aes_gcm"} if gcm else ({"em": "aes_ecb"} if n % 4 == 1 else {})
        messages.append(
            PulsarMessage(
                payload=json.dumps(fields, separators=(",", ":")).encode(),
                properties=properties,
                message_id=f"{n // 1000}:{n % 1000}:0:-1",
                topic="persistent://bench/out/event",
                publish_time_ms=t,
            )
        )
    return messages


def floor(messages: list[PulsarMessage]) -> float:
    """Bare cost: parse the envelope, base64, decrypt with the same reused ciphers, parse the payload JSON."""
    box = Cipherbox(ACCESS_KEY)
    decode = msgspec.json.decode
    start = time.perf_counter()
    for msg in messages:
        blob = binascii.a2b_base64(decode(msg.payload)["data"], strict_mode=True)
        plain = box.decrypt_gcm(blob) if msg.properties.get("em") == "aes_gcm" else box.decrypt_ecb(blob)
        decode(plain)
    return time.perf_counter() - start


def ours(messages: list[PulsarMessage]) -> float:
    decoder = MessageDecoder(ACCESS_KEY)
    start = time.perf_counter()
    for msg in messages:
        decoder.decode(msg)
    return time.perf_counter() - start


def best_of(fn, messages, repeats: int = 5) -> float:
    return min(fn(messages) for _ in range(repeats))


def main() -> None:
    messages = make_messages(COUNT)
    bare = best_of(floor, messages)
    full = best_of(ours, messages)
    print(f"decode: {COUNT:,} status reports (5 items, half GCM / half ECB), one core, best of 5")
    print(f"  floor (envelope JSON + base64 + AES + payload JSON): {COUNT / bare:>10,.0f} msg/s")
    print(f"  decode + normalise (records, sign check)           : {COUNT / full:>10,.0f} msg/s")
    print(
        f"  ratio ours/floor time                              : {full / bare:>10.2f}x  (target <= 2x, >= 80,000 msg/s)"
    )


if __name__ == "__main__":
    main()
