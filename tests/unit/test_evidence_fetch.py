"""R6.3-evidence: the fetch of what a VPS serves, against HTTP servers started here on 127.0.0.1:
body, headers and sha256; the cap; redirects recorded, not followed; bounded time on a server that
never answers; refused connections recorded as errors; the same through a proxy command."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.adapters.web import fetch

PAGE = b"<h1>phishing</h1>\n"
BIG = bytes(range(256)) * 40  # 10240 bytes


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def do_GET(self) -> None:
        Handler.seen.append(f"{self.headers['Host']} {self.path}")
        if self.path == "/moved":
            self._send(302, b"moved", [("Location", "/target")])
        elif self.path == "/big":
            self._send(200, BIG)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (b"<h1>", b"phishing</h1>\n"):
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._send(200, PAGE, [("X-Kit", "bank-login")])

    def _send(self, code: int, body: bytes, headers: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_body_headers_and_sha256(server: int) -> None:
    got = fetch("127.0.0.1", server, "/index.html", timeout=10)
    assert got.error is None and got.status_code == 200
    assert got.body == PAGE and got.sha256 == hashlib.sha256(PAGE).hexdigest()
    assert ["X-Kit", "bank-login"] in got.headers and not got.truncated
    assert got.raw.startswith(b"HTTP/1.") and got.raw.endswith(PAGE)
    assert Handler.seen == [f"127.0.0.1:{server} /index.html"]


def test_host_header_is_sent(server: int) -> None:
    fetch("127.0.0.1", server, "/", host_header="shop.example", timeout=10)
    assert Handler.seen == ["shop.example /"]


def test_body_is_cut_at_the_cap(server: int) -> None:
    got = fetch("127.0.0.1", server, "/big", timeout=10, max_bytes=1000)
    assert got.status_code == 200 and got.truncated
    assert got.body == BIG[:1000] and got.sha256 == hashlib.sha256(BIG[:1000]).hexdigest()
    assert len(got.raw) <= got.raw.index(b"\r\n\r\n") + 4 + 1000
    whole = fetch("127.0.0.1", server, "/big", timeout=10, max_bytes=len(BIG))
    assert not whole.truncated and whole.body == BIG


def test_redirect_is_recorded_not_followed(server: int) -> None:
    got = fetch("127.0.0.1", server, "/moved", timeout=10)
    assert got.status_code == 302 and ["Location", "/target"] in got.headers and got.body == b"moved"
    assert Handler.seen == [f"127.0.0.1:{server} /moved"]  # /target never asked


def test_chunked_body_is_decoded(server: int) -> None:
    got = fetch("127.0.0.1", server, "/chunked", timeout=10)
    assert got.status_code == 200 and got.body == PAGE and not got.truncated


def test_server_that_never_answers_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never reads nor answers
    try:
        started = time.monotonic()
        got = fetch("127.0.0.1", listener.getsockname()[1], "/", timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert got.status_code is None and got.error == "no complete response within 1 s"
    assert elapsed < 10


def test_connection_refused_is_an_error() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    got = fetch("127.0.0.1", port, "/", timeout=5)
    assert got.status_code is None and got.error is not None and got.error.startswith("unreachable")
    assert got.sha256 is None


def test_through_a_proxy_command(server: int) -> None:
    if shutil.which("nc") is None:
        message = "needs nc as the proxy command (netcat-openbsd, scripts/install.sh --test installs it)"
        if os.environ.get("VPSCTL_TEST_REQUIRE_LIBVIRT") == "1":  # the test command: it must run
            pytest.fail(message)
        pytest.skip(message)
    got = fetch("127.0.0.1", server, "/", proxy_command="nc %h %p", timeout=10)
    assert got.status_code == 200 and got.body == PAGE
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    refused = fetch("127.0.0.1", port, "/", proxy_command="nc %h %p", timeout=5)
    assert refused.status_code is None and refused.error is not None and refused.error.startswith("unreachable")


def test_the_test_command_fails_without_nc(tmp_path: Path) -> None:
    """In the test command (VPSCTL_TEST_REQUIRE_LIBVIRT=1) a missing nc fails the proxy test, loudly."""
    root = Path(__file__).resolve().parents[2]
    environ = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    environ.update(PATH=str(tmp_path), PYTHONPATH=str(root), VPSCTL_TEST_REQUIRE_LIBVIRT="1")  # no nc on PATH
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          f"{__file__}::test_through_a_proxy_command"],
                         cwd=root, env=environ, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1 and "1 failed" in out and "needs nc as the proxy command" in out, out
