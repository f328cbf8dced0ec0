"""SSH keys: the guest host keys the orchestrator generates (so it knows their fingerprints
before the first connection, no trust-on-first-use) and the client keys it accepts."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from orchestrator.core.errors import InvalidRequest

_ALLOWED_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
}
# The comment ends up in YAML and in authorized_keys: keep it to characters that need no quoting.
_COMMENT = re.compile(r"^[A-Za-z0-9@._+=/-]{0,100}$")


@dataclass(frozen=True)
class HostKey:
    """An SSH host key pair; the private half only ever travels in the guest's seed."""

    private_openssh: str
    public_openssh: str

    @property
    def key_type(self) -> str:
        return self.public_openssh.split()[0]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_openssh)


def generate_host_key() -> HostKey:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()
    return HostKey(private, public)


def fingerprint(public_openssh: str) -> str:
    """OpenSSH's ``SHA256:...`` fingerprint of a public key line."""
    blob = base64.b64decode(public_openssh.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def normalise_authorized_key(line: str) -> str:
    """Check a client's public key and return it as ``type base64 [comment]``.

    Refuses private keys, unknown types, bad base64, blobs whose embedded type differs from the
    declared one, and comments with characters that would need quoting.
    """
    text = line.strip()
    if "PRIVATE KEY" in text:
        raise InvalidRequest("ssh_keys must hold public keys; a private key was given")
    parts = text.split()
    if len(parts) < 2 or len(parts) > 3:
        raise InvalidRequest("an SSH public key reads 'type base64 [comment]'")
    key_type, blob_b64 = parts[0], parts[1]
    comment = parts[2] if len(parts) == 3 else ""
    if key_type not in _ALLOWED_TYPES:
        raise InvalidRequest(f"unsupported SSH key type {key_type[:40]!r}")
    try:
        blob = base64.b64decode(blob_b64, validate=True)
        serialization.load_ssh_public_key(f"{key_type} {blob_b64}".encode()) if not key_type.startswith(
            "sk-"
        ) else None
    except Exception as exc:
        raise InvalidRequest("SSH public key is not valid base64 key data") from exc
    embedded_len = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else 0
    if blob[4 : 4 + embedded_len].decode(errors="replace") != key_type:
        raise InvalidRequest("SSH public key data does not match its declared type")
    if not _COMMENT.match(comment):
        raise InvalidRequest("SSH key comment may only hold letters, digits and @._+=/-")
    return " ".join(p for p in (key_type, blob_b64, comment) if p)
