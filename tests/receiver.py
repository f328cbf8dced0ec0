"""A webhook receiver on loopback (http.server in a thread): keeps every POST it gets, checks its
signature the way docs/api.md tells a client to, and answers the statuses it is told to."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))

    def signed_by(self, secret: str) -> bool:
        """Webhook-Signature is v1=<hex HMAC-SHA256 of "timestamp.body"> under the secret."""
        timestamp = self.headers["webhook-timestamp"]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + self.body, hashlib.sha256).hexdigest()
        given = self.headers["webhook-signature"].removeprefix("v1=")
        return hmac.compare_digest(expected, given)


@dataclass
class Receiver:
    port: int
    answers: list[int] = field(default_factory=list)  # the next answers, in order; then ``otherwise``
    otherwise: int = 200
    delay: float = 0.0  # seconds before answering
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait(self, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"{len(self.received)} deliveries received, waited for {count}")


@contextmanager
def receiving(**options: Any) -> Iterator[Receiver]:
    receiver: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert receiver is not None
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                status = receiver.answers.pop(0) if receiver.answers else receiver.otherwise
                receiver.received.append(Received({k.lower(): v for k, v in self.headers.items()}, body, status))
            time.sleep(receiver.delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    receiver = Receiver(server.server_address[1], **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
