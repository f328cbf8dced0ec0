"""Records -> response bodies, as the one asking may see them.

Staff see everything.  A client sees their own VPS and jobs in client terms: not the host a VPS
is on; not what the jobs that are staff's own work say (``Operation.details_for_staff``: that an
evidence check or a hook ran, not what it found or printed); who acted as "staff" or
"orchestrator" rather than a token's label or a worker's host and pid; each step's outcome but
not the errors as they came (a failure reads as ``Job.public_error``).  Step messages are
written for both: they never name a host."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from api.schemas.jobs import EventOut, JobOut, JobSummaryOut, ProgressOut
from api.schemas.vps import BackupOut, DiskOut, HostKeyOut, VpsOut
from orchestrator.core.auth import Principal
from orchestrator.core.models import Backup, Customer, Host, Job, JobEvent, Role, Vps, VpsStatus
from orchestrator.engine import jobs
from orchestrator.engine.operation import OPERATIONS
from orchestrator.engine.worker import NOT_COMPLETED

# What a client does not read of a job's events: errors as they came (the end shows the public
# error instead), undoing, the hooks' runs.
HIDDEN_STATUSES = frozenset({"failed", "retry"})
HIDDEN_STEPS = frozenset({"rollback", "hook"})


def details_shown(principal: Principal, job: Job) -> bool:
    operation = OPERATIONS.get(job.kind)
    return principal.is_staff or (operation is not None and not operation.details_for_staff)


def actor_as_seen_by(principal: Principal, actor: str) -> str:
    """Who did it, for a client: their own tokens by name, staff as "staff", anything else (a
    worker, the reconciler, a workflow) as "orchestrator"."""
    if principal.is_staff:
        return actor
    role, _, _label = actor.partition(":")
    if role == Role.customer.value:
        return actor
    return "staff" if role in (Role.support.value, Role.automation.value) and _label else "orchestrator"


def event_out(principal: Principal, job: Job, event: JobEvent) -> EventOut:
    message = event.message
    if not principal.is_staff:
        if event.step == "finished":
            message = (job.public_error or "") if event.status == "failed" else ""
        elif event.status in HIDDEN_STATUSES or event.step in HIDDEN_STEPS or not details_shown(principal, job):
            message = ""
    return EventOut(at=event.at, step=event.step, status=event.status, message=message,
                    actor=actor_as_seen_by(principal, event.actor))


def backup_out(vps: Vps, backup: Backup) -> BackupOut:
    exported = backup.kind == "export" and backup.status == "available"
    return BackupOut(id=backup.id, vps_id=vps.id, vps_name=vps.name, vps_deleted=vps.status == VpsStatus.deleted,
                     kind=backup.kind, status=backup.status, size_bytes=backup.size_bytes,
                     created_at=backup.created_at, note=backup.note, consistency=backup.consistency,
                     quiesced=backup.consistency == "quiesced",
                     download=f"/v1/vps/{vps.id}/backups/{backup.id}/download" if exported else None)


def vps_list(session: Session, rows: Sequence[Vps], principal: Principal) -> list[VpsOut]:
    """Many VPS at once (a page): their customers and hosts read in two queries and held while
    the VPS are rendered, so each ``session.get`` of ``vps_out`` finds them in the session (its
    identity map holds objects only while something refers to them: without this, two queries
    per VPS)."""
    customers = session.exec(select(Customer).where(col(Customer.id).in_({v.customer_id for v in rows}))).all()
    hosts = session.exec(select(Host).where(col(Host.id).in_({v.host_id for v in rows if v.host_id}))).all()
    rendered = [vps_out(session, vps, principal) for vps in rows]
    del customers, hosts
    return rendered


def vps_out(session: Session, vps: Vps, principal: Principal | None = None) -> VpsOut:
    customer = session.get(Customer, vps.customer_id)
    host = session.get(Host, vps.host_id) if vps.host_id else None
    return VpsOut(
        id=vps.id,
        name=vps.name,
        customer=customer.name if customer else "",
        # R5.2-keep-running: while its host does not answer, nobody knows what the VPS is doing
        status="unknown" if host is not None and host.state == "unreachable" and vps.status != VpsStatus.deleted
        else vps.status.value,
        last_known_status=vps.status.value if host is not None and host.state == "unreachable" else None,
        task=vps.task,
        image=vps.image,
        vcpus=vps.vcpus,
        memory_mib=vps.memory_mib,
        disk_gib=vps.disk_gib,
        host=host.name if host and (principal is None or principal.is_staff) else None,
        site=host.site if host else None,
        placement_group=vps.placement_group,
        addresses=vps.addresses,
        ssh_host_keys=[HostKeyOut(**k) for k in vps.ssh_host_keys],
        data_disks=[DiskOut(id=d["id"], size_gib=d["size_gib"], target=d["target"]) for d in vps.data_disks],
        cut_off=vps.cut_off,
        cut_off_reason=vps.cut_off_reason,
        mail_blocked=vps.mail_blocked,
        suspend_reason=vps.suspend_reason,
        # The failure as it came names hosts, pools and paths: staff's (the job says it in client terms).
        error=vps.error if principal is None or principal.is_staff else (NOT_COMPLETED if vps.error else None),
        created_at=vps.created_at,
        updated_at=vps.updated_at,
    )


def job_out(session: Session, job: Job, principal: Principal) -> JobOut:
    return JobOut(**job_summary(job, principal).model_dump(),
                  events=[event_out(principal, job, e) for e in jobs.events(session, job.id)])


def job_summary(job: Job, principal: Principal) -> JobSummaryOut:
    """A job without its events (lists: ``GET /v1/jobs``)."""
    staff = principal.is_staff
    return JobSummaryOut(
        id=job.id,
        vps_id=job.vps_id,
        kind=job.kind,
        status=job.status.value,
        progress=ProgressOut(done=len(job.steps_done), total=job.steps_total, step=job.step),
        attempts=job.attempts,
        error=job.error if staff else job.public_error,
        requested_by=actor_as_seen_by(principal, job.requested_by),
        cause=job.cause,
        created_at=job.created_at,
        scheduled_at=job.scheduled_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
