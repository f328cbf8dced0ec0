"""How the orchestrator reaches a host's libvirtd, and how it knows it is talking to that host.

``qemu:///system`` and ``qemu+unix:///system?socket=...`` are local sockets: nothing to verify.
``qemu+ssh://USER@HOST[:PORT]/system[?keyfile=...]`` goes through SSH, and the host key is
checked twice, never trusted on first use in silence:

- when the host is added, staff give the key (or its ``SHA256:`` fingerprint, as
  ``ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`` prints it on the host) and the key the host
  presents (paramiko, before any login) must be that one; without it the registration is refused
  with the fingerprint presented, to be checked out of band.  The whole key is recorded.
- every connection then checks, with paramiko, that the host presents the recorded key, and
  libvirt's own SSH transport runs ``ssh`` with a known_hosts file holding only that key and
  ``StrictHostKeyChecking=yes`` (a wrapper named in the URI's ``command=`` parameter, libvirt's
  way to choose the ssh binary), so a key that changes between the two is refused as well.

A host whose key changed is refused with both fingerprints, and nothing is sent to it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import paramiko

from orchestrator.adapters.ssh import server_host_key
from orchestrator.core.errors import HypervisorError, InvalidRequest


class HostKeyMismatch(HypervisorError):
    """The host presented another SSH host key than the one recorded (or given)."""


@dataclass(frozen=True)
class SshEndpoint:
    user: str
    address: str
    port: int
    keyfile: str | None

    @property
    def known_hosts_name(self) -> str:
        """How OpenSSH names the host in known_hosts (``[address]:port`` off port 22)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def ssh_endpoint(uri: str) -> SshEndpoint | None:
    """The SSH end of a ``qemu+ssh://`` URI; None for the other schemes."""
    parts = urlsplit(uri)
    if parts.scheme != "qemu+ssh":
        return None
    if not parts.hostname:
        raise InvalidRequest("uri: a qemu+ssh:// URI names its host (qemu+ssh://root@HOST/system)")
    keyfile = parse_qs(parts.query).get("keyfile", [None])[0]
    return SshEndpoint(parts.username or "root", parts.hostname, parts.port or 22, keyfile)


def fingerprint(public: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line (``ssh-ed25519 AAAA...``)."""
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _presented(endpoint: SshEndpoint) -> str:
    try:
        return server_host_key(endpoint.address, endpoint.port, timeout=10.0)
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise HypervisorError(f"{endpoint} does not answer over SSH: {exc or type(exc).__name__}") from exc


def _same(given: str, presented: str) -> bool:
    given = given.strip()
    if given.startswith("SHA256:"):
        return given == fingerprint(presented)
    return given.split()[:2] == presented.split()[:2]


def _check_recorded(endpoint: SshEndpoint, recorded: str, presented: str) -> None:
    if not _same(recorded, presented):
        raise HostKeyMismatch(f"the SSH host key of {endpoint} changed: it presents {fingerprint(presented)}, "
                              f"the key recorded is {fingerprint(recorded)}; nothing was sent to it")


def accept_host_key(uri: str, given: str | None, recorded: str | None) -> str | None:
    """At registration: the key to record for ``uri`` (None for a local host).  ``given`` (a key
    or a fingerprint) must be what the host presents; without it, the key recorded before (a
    host registered again) must be."""
    endpoint = ssh_endpoint(uri)
    if endpoint is None:
        if given is not None:
            raise InvalidRequest("ssh_host_key: only a qemu+ssh:// host has an SSH host key")
        return None
    presented = _presented(endpoint)
    if given is None and recorded is not None:
        _check_recorded(endpoint, recorded, presented)
        return recorded
    if given is None:
        raise InvalidRequest(
            f"ssh_host_key: {endpoint} presents the host key {presented.split()[0]} {fingerprint(presented)}; "
            "check it on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and register it again "
            "with ssh_host_key set to that fingerprint or key")
    if not _same(given, presented):
        shown = given if given.startswith("SHA256:") else fingerprint(given)
        raise InvalidRequest(f"ssh_host_key: {endpoint} presents {fingerprint(presented)}, not {shown}: "
                             "nothing was recorded")
    return presented


def verify_host_key(uri: str, recorded: str | None) -> None:
    """Before a connection: the host presents the recorded key (paramiko, no login)."""
    endpoint = ssh_endpoint(uri)
    if endpoint is None:
        return
    if recorded is None:
        raise HostKeyMismatch(f"no SSH host key is recorded for {endpoint}: register the host again with its key")
    _check_recorded(endpoint, recorded, _presented(endpoint))


class SshFiles:
    """Per process: for each SSH host, a known_hosts file holding only its recorded key and the
    ``ssh`` wrapper libvirt runs (files in a private folder, removed by ``close``)."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._lock = threading.Lock()

    def connection_uri(self, uri: str, recorded: str | None) -> str:
        """The URI libvirt opens: for qemu+ssh://, the registered one with ``command=`` (the
        wrapper, strict host key checking against the recorded key) and ``no_tty=1``."""
        endpoint = ssh_endpoint(uri)
        if endpoint is None or recorded is None:
            return uri
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="vpsctl-ssh-"))  # 0700
            tag = hashlib.sha256(f"{uri}\n{recorded}".encode()).hexdigest()[:16]
            known_hosts = self._dir / f"known_hosts-{tag}"
            wrapper = self._dir / f"ssh-{tag}"
            if not wrapper.exists():
                known_hosts.write_text(f"{endpoint.known_hosts_name} {' '.join(recorded.split()[:2])}\n")
                options = ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                           "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
                partial = wrapper.with_suffix(".part")
                partial.write_text(f"#!/bin/sh\nexec ssh {shlex.join(options)} \"$@\"\n")
                os.chmod(partial, 0o700)
                partial.replace(wrapper)
        parts = urlsplit(uri)
        query = [(k, v) for k, values in parse_qs(parts.query).items() for v in values
                 if k not in ("command", "no_tty", "no_verify")]
        query += [("command", str(wrapper)), ("no_tty", "1")]
        return urlunsplit(parts._replace(query=urlencode(query, safe="/")))

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None
