"""One module per operation; importing this package registers them all."""

from orchestrator.operations import (
    backup,
    create,
    cutoff,
    delete,
    disks,
    mail_block,
    reboot,
    reconnect,
    reinstall,
    resize,
    restore,
    resume,
    start,
    stop,
    suspend,
)
from orchestrator.operations.base import OPERATIONS, Context, Operation

__all__ = [
    "OPERATIONS",
    "Context",
    "Operation",
    "backup",
    "create",
    "cutoff",
    "delete",
    "disks",
    "mail_block",
    "reboot",
    "reconnect",
    "reinstall",
    "resize",
    "restore",
    "resume",
    "start",
    "stop",
    "suspend",
]
