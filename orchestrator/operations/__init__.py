"""One module per operation; importing this package registers them all."""

from orchestrator.operations import (
    create,
    cutoff,
    delete,
    reboot,
    reconnect,
    reinstall,
    resize,
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
    "create",
    "cutoff",
    "delete",
    "reboot",
    "reconnect",
    "reinstall",
    "resize",
    "resume",
    "start",
    "stop",
    "suspend",
]
