"""Secrets the orchestrator must use again later (a webhook's signing secret: the server signs
with it at every delivery) are kept encrypted, never in clear: Fernet (AES-128-CBC and
HMAC-SHA256, cryptography) under one key.

The key is ``VPSCTL_WEBHOOK_KEY`` when set (processes sharing a database share it), else a file
``<state_dir>/webhook.key`` made once, 0600 from its creation.  Losing the key loses the secrets:
the webhooks must then be made again (their owners get new secrets).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from orchestrator.core.errors import SchemaError
from orchestrator.core.files import private_dir
from orchestrator.core.settings import Settings

KEY_FILE = "webhook.key"


def _key_file(path: Path) -> bytes:
    private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as out:
        out.write(Fernet.generate_key())
    return path.read_bytes().strip()


def _fernet(settings: Settings) -> Fernet:
    given = settings.events.webhook_key
    key = given.get_secret_value().encode() if given is not None else _key_file(settings.state_dir / KEY_FILE)
    try:
        return Fernet(key)
    except ValueError as exc:
        raise SchemaError("VPSCTL_WEBHOOK_KEY (or <state_dir>/webhook.key) is not a Fernet key: "
                          "32 bytes in urlsafe base64") from exc


def seal(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def unseal(settings: Settings, sealed: str) -> str:
    """The secret in clear; SchemaError when it was sealed under another key."""
    try:
        return _fernet(settings).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        raise SchemaError("a webhook secret cannot be decrypted with this key (VPSCTL_WEBHOOK_KEY changed?)") from exc
