"""Records -> response bodies."""

from __future__ import annotations

from sqlmodel import Session

from api.schemas.jobs import EventOut, JobOut, ProgressOut
from api.schemas.vps import DiskOut, HostKeyOut, VpsOut
from orchestrator.core.models import Customer, Host, Job, Vps
from orchestrator.engine import jobs


def vps_out(session: Session, vps: Vps) -> VpsOut:
    customer = session.get(Customer, vps.customer_id)
    host = session.get(Host, vps.host_id) if vps.host_id else None
    return VpsOut(
        id=vps.id,
        name=vps.name,
        customer=customer.name if customer else "",
        status=vps.status.value,
        task=vps.task,
        image=vps.image,
        vcpus=vps.vcpus,
        memory_mib=vps.memory_mib,
        disk_gib=vps.disk_gib,
        host=host.name if host else None,
        addresses=vps.addresses,
        ssh_host_keys=[HostKeyOut(**k) for k in vps.ssh_host_keys],
        data_disks=[DiskOut(id=d["id"], size_gib=d["size_gib"], target=d["target"]) for d in vps.data_disks],
        cut_off=vps.cut_off,
        cut_off_reason=vps.cut_off_reason,
        mail_blocked=vps.mail_blocked,
        suspend_reason=vps.suspend_reason,
        error=vps.error,
        created_at=vps.created_at,
        updated_at=vps.updated_at,
    )


def job_out(session: Session, job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        vps_id=job.vps_id,
        kind=job.kind,
        status=job.status.value,
        progress=ProgressOut(done=len(job.steps_done), total=job.steps_total, step=job.step),
        attempts=job.attempts,
        error=job.error,
        requested_by=job.requested_by,
        cause=job.cause,
        created_at=job.created_at,
        scheduled_at=job.scheduled_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        events=[
            EventOut(at=e.at, step=e.step, status=e.status, message=e.message, actor=e.actor)
            for e in jobs.events(session, job.id)
        ],
    )
