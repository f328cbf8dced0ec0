"""Ansible hooks: a playbook run at a VPS's lifecycle events, for the company's own automation.

When an operation succeeds, the worker queues a durable ``hook`` job for its event (``EVENTS``)
if ``<hooks_dir>/<event>.yml`` exists; the job runs after the operation, in the VPS's queue, and
runs that playbook through ansible-runner.  A failing hook never fails the operation: it is run
again (``hook_max_attempts`` in all), then recorded failed with the tail of its output in the
job's events, which ``GET /v1/vps/{id}/events`` shows.

R2-no-guest-management: the playbooks run on the control plane only (inventory
``localhost ansible_connection=local``); a hook never logs into a client's VPS.  What they get is
public facts about the event (``event_facts``): no email address, no secret, no token, and the
orchestrator's own ``VPSCTL_*`` environment is blanked in the playbook's environment.

The runner is injected: ``run_hook`` calls the module's current ``Runner`` (ansible-runner by
default); ``use_runner`` swaps it, e.g. in a test that must not depend on Ansible.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session

from orchestrator import jobs
from orchestrator.clock import utcnow
from orchestrator.db import session_scope
from orchestrator.models import Customer, Host, Job, Vps
from orchestrator.settings import Settings

if TYPE_CHECKING:
    from orchestrator.operations.base import Context

log = logging.getLogger(__name__)

HOOK_KIND = "hook"
REQUESTED_BY = "hooks"
# The job kind whose success is the event -> the event's name (and its playbook's file name).
EVENTS: dict[str, str] = {
    "create": "vps_created",
    "delete": "vps_deleted",
    "erase": "vps_erased",
    "reinstall": "vps_reinstalled",
    "resize": "vps_resized",
    "cutoff": "vps_cut_off",
    "reconnect": "vps_reconnected",
    "suspend": "vps_suspended",
    "resume": "vps_resumed",
}
INVENTORY = "localhost ansible_connection=local"  # R2-no-guest-management: the control plane only
OUTPUT_TAIL_CHARS = 1500  # fits in a job event's message with the line that introduces it


@dataclass(frozen=True)
class HookResult:
    """How a playbook run ended: ansible-runner's status (``successful``, ``failed``,
    ``timeout``, ``canceled``), the return code, and the last part of its output."""

    status: str
    rc: int
    output_tail: str

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0


class Runner(Protocol):
    def __call__(self, playbook: Path, extravars: dict[str, Any], *, work_dir: Path,
                 timeout: float) -> HookResult: ...


def _tail(text: str, limit: int = OUTPUT_TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _ansible_playbook_path() -> str:
    """PATH for ansible-playbook: the process's own, then the system's (a worker started from the
    virtualenv, or by a service manager with a bare PATH, still finds /usr/bin/ansible-playbook)."""
    parts = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    for extra in ("/usr/local/bin", "/usr/bin", "/bin"):
        if extra not in parts:
            parts.append(extra)
    return os.pathsep.join(parts)


def ansible_available() -> bool:
    return shutil.which("ansible-playbook", path=_ansible_playbook_path()) is not None


def ansible_runner_run(playbook: Path, extravars: dict[str, Any], *, work_dir: Path, timeout: float) -> HookResult:
    """Run ``playbook`` with ansible-runner in a fresh private data directory under ``work_dir``
    (removed afterwards: it holds the extravars file and the run's artifacts), quietly, killed
    after ``timeout`` seconds."""
    import ansible_runner

    work_dir.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="hook-", dir=work_dir))
    env = {name: "" for name in os.environ if name.startswith("VPSCTL_")}  # never the orchestrator's secrets
    env.update({
        "PATH": _ansible_playbook_path(),
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(private / "tmp"),
    })
    try:
        result = ansible_runner.run(
            private_data_dir=str(private), playbook=str(playbook), inventory=INVENTORY,
            extravars=extravars, envvars=env, quiet=True, timeout=max(1, math.ceil(timeout)),
        )
        output = result.stdout.read() if result.stdout is not None else ""
        rc = result.rc if isinstance(result.rc, int) else -1
        return HookResult(str(result.status), rc, _tail(output))
    finally:
        shutil.rmtree(private, ignore_errors=True)


_runner: Runner = ansible_runner_run


def use_runner(runner: Runner) -> Runner:
    """Swap the runner every later hook uses; returns the previous one (to put it back)."""
    global _runner
    previous, _runner = _runner, runner
    return previous


def hooks_dir(settings: Settings) -> Path | None:
    return Path(settings.hooks_dir) if settings.hooks_dir.strip() else None


def playbook_for(settings: Settings, event: str) -> Path | None:
    """``<hooks_dir>/<event>.yml`` when it exists; None when hooks are off or none is written."""
    directory = hooks_dir(settings)
    if directory is None:
        return None
    playbook = directory / f"{event}.yml"
    return playbook if playbook.is_file() else None


def event_facts(session: Session, vps: Vps, event: str, occurred_at: datetime) -> dict[str, Any]:
    """The public facts of an event, as the playbook's extravars get them.  An allow-list: a new
    column of the VPS reaches no playbook until it is named here (R7-confidential: no email, no
    authorized keys, no secret)."""
    customer = session.get(Customer, vps.customer_id)
    host = session.get(Host, vps.host_id) if vps.host_id is not None else None
    return {
        "event": event,
        "occurred_at": occurred_at.isoformat(),
        "vps": {
            "id": vps.id,
            "name": vps.name,
            "inventory_name": vps.domain_name,
            "status": vps.status.value,
            "image": vps.image,
            "vcpus": vps.vcpus,
            "memory_mib": vps.memory_mib,
            "disk_gib": vps.disk_gib,
            "addresses": list(vps.addresses),
            "ssh_host_key_fingerprints": [key["fingerprint"] for key in vps.ssh_host_keys if key.get("fingerprint")],
            "cut_off": vps.cut_off,
            "cut_off_reason": vps.cut_off_reason,
            "suspend_reason": vps.suspend_reason,
        },
        "customer_name": customer.name if customer else "",
        "hypervisor": {"name": host.name if host else "", "site": host.site if host else ""},
    }


def queue_after(ctx: Context) -> Job | None:
    """After ``ctx.job`` succeeded: queue the hook job of its event, once (a job resumed after a
    crash queues nothing twice), only when the event has a playbook.  The hook job takes its
    operation's place in the VPS's queue (same ``created_at``), so the playbooks see the events in
    the order they happened, before any job asked while the operation ran (a delete asked during a
    create runs after the ``vps_created`` hook)."""
    event = EVENTS.get(ctx.job.kind)
    if event is None or ctx.job.vps_id is None or playbook_for(ctx.settings, event) is None:
        return None
    key = f"{HOOK_KIND}:{ctx.job.id}"
    with session_scope(ctx.engine) as session:
        if jobs.find_idempotent(session, REQUESTED_BY, key) is not None:
            return None
        vps = session.get(Vps, ctx.job.vps_id)
        if vps is None:
            return None
        params = {"event": event, "operation_job_id": ctx.job.id,
                  "facts": event_facts(session, vps, event, utcnow())}
        job = jobs.enqueue(session, HOOK_KIND, vps, params, REQUESTED_BY, 1, ctx.settings.hook_max_attempts,
                           idempotency_key=key)
        if ctx.job.created_at is not None:
            job.created_at = ctx.job.created_at
        session.add(job)
        session.flush()
        session.expunge(job)
    jobs.notify()
    return job


def extravars(settings: Settings, facts: dict[str, Any]) -> dict[str, Any]:
    """The event's facts plus where the hooks keep their files (settings, read when it runs)."""
    data = settings.hooks_data
    return {**facts, "hooks_data_dir": str(data), "inventory_path": str(data / "inventory.ini"),
            "audit_log_path": str(data / "audit.log")}


def run_hook(settings: Settings, playbook: Path, facts: dict[str, Any]) -> HookResult:
    """Run one hook's playbook with the current runner (ansible-runner unless swapped)."""
    return _runner(playbook, extravars(settings, facts), work_dir=settings.state_dir / "hook-runs",
                   timeout=settings.hook_timeout_seconds)
