"""paramiko adapter.  The orchestrator never logs into a customer's VPS (R2-no-guest-management);
it only opens the SSH handshake to check that the guest answers with the host key the
orchestrator generated for it."""

from __future__ import annotations

import shlex
import socket

import paramiko


def _socket(host: str, port: int, proxy_command: str, timeout: float) -> socket.socket | paramiko.ProxyCommand:
    if proxy_command:
        command = proxy_command.replace("%h", shlex.quote(host)).replace("%p", str(port))
        return paramiko.ProxyCommand(command)
    return socket.create_connection((host, port), timeout=timeout)


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
