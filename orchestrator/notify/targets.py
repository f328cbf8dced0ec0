"""Where webhooks may be POSTed: public addresses only, unless ``VPSCTL_WEBHOOK_PRIVATE_TARGETS``.

A webhook's URL is given by a client, and the orchestrator runs beside its hosts, its database and
the providers' metadata services: a URL naming ``127.0.0.1:5432``, ``169.254.169.254`` or a
private address would make it a proxy into the control plane's networks (SSRF).  Two checks:

- when a webhook is made (``check_host``): an address given in the URL, or every address its name
  resolves to now, must be public (422 otherwise); a name that does not resolve yet is taken, the
  second check decides;
- at every connection (``PublicOnlyBackend``, the network backend of the sender's HTTP client):
  the name is resolved, every address is checked, and the connection goes to an address that was
  checked.  A name that resolved to a public address when the webhook was made and to a private one
  later (DNS rebinding) is refused there, before any byte is sent.  TLS still verifies the
  certificate against the URL's name.

"Public" is Python's ``ipaddress`` ``is_global`` (not loopback, private, link-local, shared
address space, documentation, reserved...), and not multicast.  Why not a library: the check is
these few lines over the standard ``ipaddress``; the pinning is httpcore's own extension point.
"""

from __future__ import annotations

import ipaddress
import socket
import typing

import httpcore
import httpx
from httpcore._backends.sync import SyncBackend  # the default backend, its connect step replaced

from orchestrator.core.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` names (itself, when it is one)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]


def refusal(host: str, addresses: list[Address]) -> str | None:
    """Why ``host`` may not receive webhooks, or None."""
    private = sorted({str(a) for a in addresses if not is_public(a)})
    if not private:
        return None
    named = host if _literal(host) is not None else f"{host} resolves to {', '.join(private)}"
    return (f"{named}: not a public address (webhooks go to public addresses only; "
            "VPSCTL_WEBHOOK_PRIVATE_TARGETS allows others)")


def check_host(host: str, port: int) -> None:
    """At creation: 422 when ``host`` is, or resolves now to, a non-public address."""
    try:
        addresses = resolve(host, port)
    except OSError:
        return  # not resolvable yet: each connection checks again
    why = refusal(host, addresses)
    if why is not None:
        raise InvalidRequest(f"url: {why}")


class PublicOnlyBackend(SyncBackend):
    """Connects only to public addresses, to one of those just checked."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: typing.Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        why = refusal(host, addresses)
        if why is not None or not addresses:
            raise httpcore.ConnectError(f"refused: {why or host + ' resolves to no address'}")
        return super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)


def client(timeout: float, private_targets: bool) -> httpx.Client:
    """The webhook sender's HTTP client: no redirects, no proxy from the environment, and (unless
    ``private_targets``) connections to public addresses only."""
    transport = httpx.HTTPTransport(trust_env=False)
    if not private_targets:
        # httpx builds its connection pool without a way to name the network backend: the pool's
        # backend is replaced (tests/api/test_webhooks.py fails if a new httpx ignores it).
        pool = transport._pool
        if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
            raise RuntimeError("httpx's connection pool changed: webhook targets cannot be checked")
        pool._network_backend = PublicOnlyBackend()
    return httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False, transport=transport)
