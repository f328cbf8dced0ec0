"""Fetching what a VPS serves publicly, like any visitor (R6.3-evidence).

The orchestrator never logs into a guest (R2-no-guest-management): it asks for a page with one
bounded HTTP/1.1 GET, like any visitor, reaching the guest the way it reaches guests (the
``guest_proxy_command`` when set, else a direct connection; ``orchestrator.adapters.ssh.guest_connection``).
Redirects are recorded, never followed.  The exchange ends within ``evidence_timeout_seconds``
and the body kept is cut at ``evidence_max_bytes``.  What comes back is a ``Capture``: the raw
response (status line, headers, body as received), its parts, or why nothing could be fetched;
``orchestrator/operations/evidence.py`` keeps it as evidence.
"""

from __future__ import annotations

import hashlib
import re
import socket
import time
from dataclasses import dataclass, field

from orchestrator.adapters.ssh import guest_connection

MAX_HEADER_BYTES = 64 * 1024
_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: .*)?$")
# What a path and a Host header may hold (request-line safety: no spaces, no control characters).
PATH_PATTERN = r"^/[!-~]*$"
HOST_PATTERN = r"^[A-Za-z0-9.\-\[\]:]+$"


@dataclass
class Capture:
    """One fetch: what was received and what it means."""

    raw: bytes = b""  # as received, at most the headers plus the cap of body bytes
    status_code: int | None = None
    headers: list[list[str]] = field(default_factory=list)
    body: bytes = b""  # the entity (chunked transfer decoded), at most the cap
    truncated: bool = False
    error: str | None = None

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.body).hexdigest() if self.status_code is not None else None


def url_of(address: str, port: int, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}{'' if port == 80 else f':{port}'}{path}"


def _request(address: str, port: int, path: str, host_header: str | None) -> bytes:
    host = host_header or (f"[{address}]" if ":" in address else address) + ("" if port == 80 else f":{port}")
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vpsctl-evidence\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n").encode("ascii")


def fetch(address: str, port: int, path: str, *, host_header: str | None = None, proxy_command: str = "",
          timeout: float = 30.0, max_bytes: int = 5 * 1024 * 1024) -> Capture:
    """One GET, bounded in time (``timeout`` for the whole exchange) and size (``max_bytes`` of
    body); never raises for what the server does, the Capture says it."""
    received = bytearray()
    header_end: int | None = None
    complete = False
    expected: int | None = None
    error: str | None = None
    deadline = time.monotonic() + timeout
    try:
        with guest_connection(address, port, proxy_command, timeout) as sock:
            sock.sendall(_request(address, port, path, host_header))
            try:
                sock.shutdown(socket.SHUT_WR)  # nothing more to send: a proxy sees the end of its input
            except OSError:
                pass
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                chunk = sock.recv(65536)
                if not chunk:
                    complete = True
                    break
                received += chunk
                if header_end is None:
                    found = received.find(b"\r\n\r\n")
                    if found >= 0:
                        header_end = found + 4
                        expected = _content_length(bytes(received[:header_end]))
                    elif len(received) > MAX_HEADER_BYTES:
                        error = f"no end of headers in the first {MAX_HEADER_BYTES} bytes"
                        break
                if header_end is not None and len(received) - header_end > max_bytes:
                    break  # the cap is reached: what follows is not kept
                if header_end is not None and expected is not None and len(received) - header_end >= expected:
                    complete = True  # the whole entity, even if the server keeps the connection open
                    break
    except TimeoutError:
        error = f"no complete response within {timeout:g} s"
    except OSError as exc:
        error = f"unreachable: {exc.strerror or exc}"
    return _parse(bytes(received), header_end, complete, error, max_bytes)


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return int(value.strip())
    return None


def _parse(received: bytes, header_end: int | None, complete: bool, error: str | None, max_bytes: int) -> Capture:
    if header_end is None:
        if not received and error is None:
            error = "unreachable: the connection closed without any response"
        elif error is None:
            error = "the response ended inside its headers"
        return Capture(raw=received[:MAX_HEADER_BYTES], error=error)
    lines = received[:header_end - 4].split(b"\r\n")
    matched = _STATUS_LINE.match(lines[0])
    if matched is None:
        return Capture(raw=received[:MAX_HEADER_BYTES], error=f"not an HTTP response: {lines[0][:100]!r}")
    headers: list[list[str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append([name.strip().decode("latin-1"), value.strip().decode("latin-1")])
    body = received[header_end:]
    truncated = len(body) > max_bytes or not complete
    body = body[:max_bytes]
    raw = received[:header_end + max_bytes]
    if not complete and error is not None:
        error = f"{error} (body incomplete)"
    chunked = any(n.lower() == "transfer-encoding" and "chunked" in v.lower() for n, v in headers)
    if chunked:
        body, ended = _dechunk(body)
        truncated = truncated or not ended
    return Capture(raw=raw, status_code=int(matched.group(3)), headers=headers, body=body,
                   truncated=truncated, error=error)


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    """The entity of a chunked body, and whether its last chunk was seen."""
    out = bytearray()
    position = 0
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0:
            return bytes(out), False
        try:
            size = int(data[position:line_end].split(b";")[0], 16)
        except ValueError:
            return bytes(out), False
        if size == 0:
            return bytes(out), True
        start = line_end + 2
        out += data[start:start + size]
        if start + size > len(data):
            return bytes(out), False
        position = start + size + 2
