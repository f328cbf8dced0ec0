"""paramiko adapter.  The orchestrator never logs into a customer's VPS (R2-no-guest-management);
it only opens the SSH handshake to check that the guest answers with the host key the
orchestrator generated for it."""

from __future__ import annotations

import shlex
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import paramiko


def proxy_command_line(proxy_command: str, host: str, port: int) -> str:
    """``settings.hosts.guest_proxy_command`` with its %h/%p filled in (the host quoted for the shell)."""
    return proxy_command.replace("%h", shlex.quote(host)).replace("%p", str(port))


def _socket(host: str, port: int, proxy_command: str, timeout: float) -> socket.socket | paramiko.ProxyCommand:
    if proxy_command:
        return paramiko.ProxyCommand(proxy_command_line(proxy_command, host, port))
    return socket.create_connection((host, port), timeout=timeout)


@contextmanager
def guest_connection(host: str, port: int, proxy_command: str, timeout: float) -> Iterator[socket.socket]:
    """A plain socket to a guest's port, reached the way the orchestrator reaches guests: through
    the proxy command when there is one (its stdin/stdout bridged to a socket pair, so reads see
    the end of the stream), else a direct TCP connection.  The proxy process ends on exit."""
    if not proxy_command:
        with socket.create_connection((host, port), timeout=timeout) as direct:
            yield direct
        return
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(shlex.split(proxy_command_line(proxy_command, host, port)),
                                   stdin=theirs.fileno(), stdout=theirs.fileno(), stderr=subprocess.DEVNULL)
    finally:
        theirs.close()
    try:
        ours.settimeout(timeout)
        yield ours
    finally:
        ours.close()
        if process.poll() is None:
            process.kill()
        process.wait()


def server_host_key(host: str, port: int = 22, proxy_command: str = "", timeout: float = 10.0) -> str:
    """The ed25519 host key a server presents, as an OpenSSH public key line (no login)."""
    sock = _socket(host, port, proxy_command, timeout)
    transport = paramiko.Transport(sock)
    try:
        transport.banner_timeout = timeout
        transport.get_security_options().key_types = ["ssh-ed25519"]
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return f"{key.get_name()} {key.get_base64()}"
    finally:
        transport.close()
        sock.close()


def matches_host_key(
    host: str, expected_public: str, port: int = 22, proxy_command: str = "", timeout: float = 10.0
) -> bool:
    presented = server_host_key(host, port, proxy_command, timeout)
    return presented.split()[:2] == expected_public.split()[:2]
