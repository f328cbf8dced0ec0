"""An application served by uvicorn on a loopback port, in a thread of the test process: for
tests whose requests must really run at the same time, or reach the server as raw bytes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from api.serving import Server
from tests.smtp import free_port


@contextmanager
def serving(app: Any) -> Iterator[int]:
    """``app`` listening on 127.0.0.1 (the port), until the block ends (its event streams end
    with it: api/serving.py)."""
    port = free_port()
    server = Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
