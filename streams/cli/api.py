"""``tuya-archiver command``, ``api`` and ``emulate-api``: Tuya's OpenAPI by hand, and a local emulator of it.

Owns these three parsers and what they print. ``command`` and ``api`` use the worker's client (signing, token
refresh, pacing, retries) and print Tuya's answer as JSON on stdout; a refusal prints
``{"success": false, "code", "msg", "tid"}`` and exits 1. ``emulate-api`` serves the emulator on loopback until
Ctrl-C. Must not import the store, the rules or pulsar.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from streams.cli.arguments import device_id, port
from streams.settings import Settings
from streams.tuya.api_errors import TUYA_ERRORS
from streams.tuya.emulated_fleet import EmulatedFleet, emulated_fleet
from streams.tuya.emulator import EmulatedDevice, Emulator, sample_devices
from streams.tuya.openapi import OpenApiClient

__all__ = ["parse_assignment", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    _add_command(subparsers)
    _add_api(subparsers)
    _add_emulate(subparsers)


def _add_command(subparsers: argparse._SubParsersAction) -> None:
    command = subparsers.add_parser(
        "command",
        help="send commands to a device through the signed OpenAPI",
        description="Send code=value commands to DEVICE and print Tuya's answer. Uses TUYA_ACCESS_ID, "
        "TUYA_ACCESS_KEY, TUYA_REGION or TUYA_OPENAPI_URL, TUYA_COMMANDS_LEGACY_PATH, TUYA_SIGN_LEGACY.",
    )
    command.add_argument("device", type=device_id, metavar="DEVICE", help="the Tuya device id")
    command.add_argument(
        "commands",
        nargs="+",
        type=parse_assignment,
        metavar="code=value",
        help='value as JSON (true, 25, "25", [1,2]); anything that is not JSON is sent as a string',
    )
    command.set_defaults(handler=run_command)


def _add_api(subparsers: argparse._SubParsersAction) -> None:
    api = subparsers.add_parser(
        "api",
        help="make any signed OpenAPI call and print its JSON",
        description="Sign and send one OpenAPI request (token handled for you) and print Tuya's JSON answer.",
    )
    api.add_argument("method", type=str.upper, choices=["GET", "POST", "PUT", "DELETE"], metavar="METHOD")
    api.add_argument("path", type=_api_path, metavar="PATH", help="e.g. /v1.0/iot-03/devices/ID/status?x=1")
    api.add_argument("-d", "--data", type=_json_body, help="request body as JSON (sent compact, exactly as signed)")
    api.set_defaults(handler=run_api)


def _add_emulate(subparsers: argparse._SubParsersAction) -> None:
    emulate = subparsers.add_parser(
        "emulate-api",
        help="serve a local Tuya OpenAPI emulator that checks every signature",
        description="Serve the OpenAPI emulator on 127.0.0.1 until Ctrl-C: three sample devices, or a generated "
        "fleet of N devices with its app users (--devices N). Point the worker at it with TUYA_OPENAPI_URL.",
    )
    emulate.add_argument("--port", type=port, default=0, help="TCP port (default: any free port, printed)")
    emulate.add_argument(
        "--devices",
        type=_device_count,
        default=0,
        metavar="N",
        help="serve a generated fleet of N devices, products and app users (default: the three samples)",
    )
    emulate.add_argument(
        "--schema", default="emulated", metavar="NAME", help="the app schema whose users it serves (emulated)"
    )
    emulate.add_argument("--access-id", help="the project's Access ID (default: TUYA_ACCESS_ID)")
    emulate.add_argument("--access-key", help="the project's Access Secret (default: TUYA_ACCESS_KEY)")
    emulate.add_argument("--token-lifetime", type=int, default=7200, metavar="S", help="token lifetime (7200)")
    emulate.add_argument("--max-skew", type=float, default=900.0, metavar="S", help="allowed clock skew of t (900)")
    emulate.add_argument(
        "--legacy-sign", action="store_true", help="expect the pre-2021 signature (default: TUYA_SIGN_LEGACY)"
    )
    emulate.set_defaults(handler=run_emulate)


def parse_assignment(text: str) -> dict[str, Any]:
    """``code=value`` → ``{"code": code, "value": value}``; the value is JSON if it parses, else the text."""
    code, sep, raw = text.partition("=")
    if not sep or not code.strip():
        raise argparse.ArgumentTypeError(f"expected code=value, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return {"code": code.strip(), "value": value}


def _device_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a number of devices (0 or more), got {text!r}")
    return count


def _api_path(text: str) -> str:
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected a path starting with /, e.g. /v1.0/..., got {text!r}")
    return text


def _json_body(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--data is not JSON: {exc}") from None


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    with OpenApiClient.from_settings(settings) as client:
        try:
            result = client.send_commands(args.device, args.commands)
        except TUYA_ERRORS as exc:
            return _print_refusal(exc)
    _print({"success": True, "result": result.accepted, "t": result.t, "tid": result.tid})
    return 0


def run_api(args: argparse.Namespace, settings: Settings) -> int:
    with OpenApiClient.from_settings(settings) as client:
        try:
            answer = client.request(args.method, args.path, body=args.data)
        except TUYA_ERRORS as exc:
            return _print_refusal(exc)
    _print({"success": True, "result": answer.result, "t": answer.t, "tid": answer.tid})
    return 0


def run_emulate(args: argparse.Namespace, settings: Settings, *, until: Callable[[], None] | None = None) -> int:
    """Serve until Ctrl-C (or until ``until`` returns, for tests)."""
    if args.access_id is None:
        settings.require("tuya_access_id")
    access_id = args.access_id or settings.tuya_access_id
    access_key = args.access_key or settings.access_key
    fleet = emulated_fleet(args.devices, seed=1) if args.devices else None
    devices = list(fleet.devices) if fleet else sample_devices()
    legacy = args.legacy_sign or settings.tuya_sign_legacy
    with Emulator(
        access_id,
        access_key,
        devices=devices,
        users=fleet.users if fleet else (),
        schema=args.schema,
        port=args.port,
        token_lifetime_s=args.token_lifetime,
        max_skew_s=args.max_skew,
        legacy_sign=legacy,
    ) as emulator:
        print(f"Tuya OpenAPI emulator for project {access_id} on {emulator.url} (Ctrl-C stops it)")
        print(f"  export TUYA_OPENAPI_URL={emulator.url}")
        _print_served(fleet, devices, args.schema)
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it, not an error
            (until or threading.Event().wait)()
    return 0


def _print_served(fleet: EmulatedFleet | None, devices: list[EmulatedDevice], schema: str) -> None:
    """The devices (one line each for the samples, one line per product for a fleet) and the app's users."""
    if fleet is None:
        for device in devices:
            codes = ", ".join(point.code for point in device.functions) or "no commands"
            state = "online" if device.online else "offline"
            print(f"  device {device.device_id}  {device.category:<6} {state:<8} {codes}")
    else:
        counts = Counter(device.product_id for device in fleet.devices)
        online = sum(device.online for device in fleet.devices)
        print(f"  {len(fleet.devices)} devices ({online} online) of {len(fleet.products)} products:")
        for product in fleet.products:
            codes = ", ".join(point.code for point in (*product.functions, *product.reported))
            print(
                f"  product {product.product_id}  {product.category:<6} {counts[product.product_id]:>6} × "
                f"{product.product_name}: {codes}"
            )
        if fleet.devices:
            first = fleet.devices[0]
            print(f"  e.g. device {first.device_id} ({first.name}), owned by uid {first.uid}")
    users = len(fleet.users) if fleet else 0
    print(f"  app schema {schema!r}: {users} users; device logs kept 7 days; every device-list family served")


def _print(answer: dict[str, Any]) -> None:
    print(json.dumps(answer, ensure_ascii=False, indent=2))


def _print_refusal(exc: Any) -> int:
    _print({"success": False, "code": exc.code, "msg": exc.msg, "tid": exc.tid})
    print(f"tuya-archiver: {exc}", file=sys.stderr)
    return 1
