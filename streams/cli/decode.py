"""``tuya-archiver decode``: messages on stdin (one per line) → normalised records as JSON lines on stdout.

Owns the three input forms of a line: a bare envelope (cipher from ``--em``), ``{"payload": …, "properties": …}``
as a Pulsar message, or a Pulsar WebSocket frame (SPEC.md §1.4). A line that cannot be decoded prints a dead-letter
line and the command goes on; the exit status is 1 if any line was a dead letter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec

from models.records import DeadLetter, PulsarMessage
from streams.errors import DecodeError
from streams.settings import Settings, check_access_key
from streams.tuya.decoder import Decoded, MessageDecoder
from streams.tuya.envelope import parse_websocket_frame

__all__ = ["register", "to_pulsar_message"]

_encoder = msgspec.json.Encoder()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode Tuya messages from stdin into JSON records",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--access-key", type=_access_key, help="the project's Access Secret (default: TUYA_ACCESS_KEY)")
    parser.add_argument(
        "--em",
        choices=["aes_ecb", "aes_gcm"],
        help="cipher of bare envelope lines (the 'em' property; default: ECB, as Tuya's SDKs assume)",
    )
    parser.add_argument("--topic", default="stdin", help="topic recorded for the messages (default: stdin)")
    parser.set_defaults(handler=run)


def _access_key(text: str) -> str:
    try:
        return check_access_key(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    access_key = args.access_key or settings.access_key
    # bytes: a line that is not UTF-8 is a message to dead-letter, not an error of the terminal
    return decode_lines(sys.stdin.buffer, sys.stdout, MessageDecoder(access_key), em=args.em, topic=args.topic)


def decode_lines(lines: Iterable[bytes], out: TextIO, decoder: MessageDecoder, *, em: str | None, topic: str) -> int:
    """Decode every non-blank line; return 1 if any became a dead letter, else 0."""
    status = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            msg = to_pulsar_message(raw, em=em, topic=topic, fallback_id=f"line:{number}")
        except (DecodeError, ValueError, TypeError, AttributeError) as exc:  # a frame or message line of another shape
            kind = exc.kind if isinstance(exc, DecodeError) else "bad_input_line"
            result: Decoded | DeadLetter = DeadLetter(
                message_id=f"line:{number}", topic=topic, payload=raw.strip(), properties={}, error_kind=kind,
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
        else:
            result = decoder.decode(msg)
        if isinstance(result, DeadLetter):
            status = 1
            out.write(_encoder.encode(result).decode() + "\n")
            continue
        for record in result.records:
            out.write(_encoder.encode(record).decode() + "\n")
    return status


def to_pulsar_message(line: bytes, *, em: str | None, topic: str, fallback_id: str) -> PulsarMessage:
    """Interpret one input line as a Pulsar message (a line that is not JSON is passed on to fail in decode)."""
    try:
        obj: Any = msgspec.json.decode(line)
    except msgspec.DecodeError:
        obj = None
    bare = PulsarMessage(payload=line.strip(), properties=_em(em), message_id=fallback_id, topic=topic)
    if not isinstance(obj, dict) or "payload" not in obj:
        return bare
    if "messageId" in obj:
        frame = parse_websocket_frame(obj, topic)
        return msgspec.structs.replace(frame, message_id=frame.message_id or fallback_id)
    payload = obj["payload"]
    payload_bytes = payload.encode("utf-8") if isinstance(payload, str) else _encoder.encode(payload)
    properties = obj.get("properties") if isinstance(obj.get("properties"), dict) else _em(em)
    return PulsarMessage(
        payload=payload_bytes,
        properties={str(k): str(v) for k, v in properties.items()},
        message_id=str(obj.get("message_id") or obj.get("messageId") or fallback_id),
        topic=str(obj.get("topic") or topic),
        publish_time_ms=int(obj.get("publish_time_ms") or 0),
    )


def _em(em: str | None) -> dict[str, str]:
    return {"em": em} if em else {}
