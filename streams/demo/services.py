"""What the demo runs besides the worker: the broker, the webhook receiver, and the rules file they are wired into.

Owns starting the embedded broker so that Ctrl-C reaches the demo only (the terminal sends SIGINT to the whole
foreground process group; a broker that died with it would leave the worker and the publisher retrying while the
demo shuts down), the loopback HTTP receiver that records the rules' webhooks, and the demo's copy of
``streams/demo/demo-rules.yaml`` whose webhooks point at that receiver. Every server binds 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from streams.sim import EmbeddedBroker

__all__ = [
    "DEMO_RULES",
    "PARTITIONS",
    "RULES_WEBHOOK_URL",
    "Endpoints",
    "ReceivedWebhook",
    "WebhookReceiver",
    "render_rules",
    "start_broker",
]

#: The rules file the demo runs (the example rules with durations of seconds).
DEMO_RULES = Path(__file__).resolve().parent / "demo-rules.yaml"

#: The webhook address written in the rules files; the demo's copy replaces it with its receiver's.
RULES_WEBHOOK_URL = "http://127.0.0.1:9000/alerts"

#: Tuya's ``event`` topic has 11 partitions (SPEC.md §1.2); the demo's broker creates topics alike.
PARTITIONS = 11


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the demo's services listen, for the banner: the broker and its topic, the emulator, the receiver."""

    broker: str
    topic: str
    openapi: str
    webhooks: str
    web: str | None = None  # the web view of the archive, served while the demo keeps running


def display_path(path: Path) -> Path:
    """``path`` relative to the working directory when it is below it (``streams/demo/demo-rules.yaml``)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def start_broker(data_dir: Path, *, partitions: int = PARTITIONS) -> EmbeddedBroker:
    """A started pulsar-lite in ``data_dir`` that ignores SIGINT (it inherits SIG_IGN), stopped by the demo itself;
    its topics have ``partitions`` partitions (0: plain topics)."""
    broker = EmbeddedBroker(data_dir, partitions=partitions)
    with _sigint_ignored():
        return broker.start()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change signal handlers; a demo run from a thread gets no Ctrl-C anyway
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def render_rules(source: Path, directory: Path, webhook_url: str) -> Path:
    """A copy of ``source`` in ``directory`` whose webhooks go to ``webhook_url``."""
    target = directory / source.name
    text = source.read_text(encoding="utf-8").replace(RULES_WEBHOOK_URL, webhook_url)
    target.write_text(text, encoding="utf-8")
    return target


@dataclass(frozen=True, slots=True)
class ReceivedWebhook:
    path: str
    body: Any


class WebhookReceiver:
    """A loopback HTTP server that answers 204 to every POST and records it; ``with WebhookReceiver() as hooks``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        handler = type("Handler", (_Handler,), {"receiver": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="demo-webhooks", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/alerts"

    @property
    def received(self) -> list[ReceivedWebhook]:
        with self._lock:
            return list(self._received)

    def record(self, path: str, body: bytes) -> None:
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with self._lock:
            self._received.append(ReceivedWebhook(path, parsed))

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    receiver: WebhookReceiver

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.receiver.record(self.path, self.rfile.read(length))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return  # the summary lists what arrived
