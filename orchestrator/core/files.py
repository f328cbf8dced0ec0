"""Files the control plane writes are private from their creation: its state holds emails,
invoices, job history, exported disks and evidence.  Directories are 0700 and files 0600 whatever
the process's umask; the command line also sets the umask to 077 so that what libraries write
(SQLite's journal, Ansible's files) is private too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """``path`` and its missing parents created 0700; ``path`` itself made 0700 if it existed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` made 0600, created empty if missing (before anything is written to it)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)
    return path


def open_private(path: Path) -> BinaryIO:
    """``path`` opened for writing from scratch, 0600 from its creation."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "wb")
