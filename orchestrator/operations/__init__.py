"""One module per operation, named after it: its parameters (the API body and the job's), its
check (which returns the plan), its steps, and how it ends; ``steps`` holds the step code
several operations share.  Importing this package registers every operation
(``orchestrator.engine.operation.OPERATIONS``).

May import ``core``, ``contract``, ``hypervisor``, ``adapters``, ``compute``, ``notify`` and
``engine``; never a workflow: operations publish their lifecycle events, workflows subscribe.
"""

from orchestrator.operations import (
    backup,
    create,
    cutoff,
    delete,
    disks,
    erase,
    evacuate,
    evidence,
    hook,
    mail_block,
    migrate,
    network_sync,
    reboot,
    reconnect,
    recover,
    reinstall,
    rename,
    resize,
    restore,
    resume,
    start,
    stop,
    suspend,
)

__all__ = [
    "backup",
    "create",
    "cutoff",
    "delete",
    "disks",
    "erase",
    "evacuate",
    "evidence",
    "hook",
    "mail_block",
    "migrate",
    "network_sync",
    "reboot",
    "reconnect",
    "recover",
    "reinstall",
    "rename",
    "resize",
    "restore",
    "resume",
    "start",
    "stop",
    "suspend",
]
