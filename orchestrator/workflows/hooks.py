"""Ansible hooks: a playbook run at a VPS's lifecycle events, for the company's own automation.

When an operation succeeds (``events.on_succeeded``), a durable ``hook`` job is queued for its
event (``EVENTS``) if ``<hooks_dir>/<event>.yml`` exists; the job runs after the operation, in the
VPS's queue, and runs that playbook (orchestrator/operations/hook.py, through
orchestrator/adapters/ansible.py).  A failing hook never fails the operation: it is run again
(``hook_max_attempts`` in all), then recorded failed with the tail of its output in the job's
events, which ``GET /v1/vps/{id}/events`` shows.

R2-no-guest-management, R7-confidential: what the playbooks get is public facts about the event
(``event_facts``): no email address, no secret, no token.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from orchestrator.adapters.ansible import hooks_dir, playbook_for
from orchestrator.core.clock import utcnow
from orchestrator.core.models import Customer, Host, Job, Vps
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context
from orchestrator.operations.hook import HookParams, RunHook

log = logging.getLogger(__name__)

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
HOOK_KIND = RunHook.kind


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
    if event is None or ctx.job.vps_id is None:
        return None
    if playbook_for(ctx.settings, event) is None:  # said, for whoever wonders why no hook ran
        directory = hooks_dir(ctx.settings)
        log.info("job %s (%s) succeeded: event %s, no hook: %s", ctx.job.id, ctx.job.kind, event,
                 f"no playbook {directory / f'{event}.yml'}" if directory else "hooks are off (VPSCTL_HOOKS_DIR "
                 "is empty)")
        return None
    key = f"{HOOK_KIND}:{ctx.job.id}"
    with ctx.transaction() as session:
        if jobs.find_idempotent(session, REQUESTED_BY, key) is not None:
            return None
        vps = session.get(Vps, ctx.job.vps_id)
        if vps is None:
            return None
        params = HookParams(event=event, operation_job_id=ctx.job.id,
                            facts=event_facts(session, vps, event, utcnow()))
        job = jobs.enqueue(session, HOOK_KIND, vps, params.model_dump(mode="json"), REQUESTED_BY,
                           len(RunHook.steps), ctx.settings.hooks.max_attempts, idempotency_key=key,
                           cause=jobs.cause("job", ctx.job.id), created_at=ctx.job.created_at)
        session.flush()
        session.expunge(job)
    return job


@events.on_succeeded()
def _after_success(ctx: Context) -> None:
    """A hook that cannot even be queued is recorded in the job's events; the operation
    succeeded all the same."""
    try:
        queue_after(ctx)
    except Exception as exc:
        log.exception("queueing the hook of job %s failed", ctx.job.id)
        jobs.record_event(ctx.engine, ctx.job, "hook", "failed", f"hook not queued: {exc}", ctx.worker_id)

