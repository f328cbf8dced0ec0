"""Delete a VPS: stop it, remove its domain, and discard or wipe its volumes (R10-after: erasure
is real, not a detach, and is recorded in the job's events).

Plan: destroy_domain -> undefine_domain -> discard_volumes; each step is a no-op when its object
is already gone, so a delete interrupted at any point converges when run again.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from orchestrator import jobs
from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.errors import InvalidState
from orchestrator.models import Job, Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.settings import Settings


def request(session: Session, settings: Settings, principal: Principal, vps: Vps) -> Job:
    pending = session.exec(
        select(Job).where(Job.vps_id == vps.id, Job.kind == DeleteVps.kind, col(Job.status).in_(jobs.ACTIVE))
    ).first()
    if pending is not None:
        return pending  # asking twice is asking once
    if vps.status in (VpsStatus.deleting, VpsStatus.deleted):
        raise InvalidState(DeleteVps.kind, vps.status.value, {s.value for s in DeleteVps.allowed_from})
    DeleteVps.check_status(vps)
    job = jobs.enqueue(session, DeleteVps.kind, vps, {}, str(principal), len(DeleteVps.steps),
                       settings.job_max_attempts)
    session.commit()
    jobs.notify()
    return job


def destroy_domain(ctx: Context) -> str:
    vps = ctx.vps()
    if vps.host_id is None:
        return "never placed"
    ctx.driver.destroy_domain(vps.id)
    return "powered off"


def undefine_domain(ctx: Context) -> str:
    vps = ctx.vps()
    if vps.host_id is None:
        return "never placed"
    ctx.driver.undefine_domain(vps.id)
    return "undefined"


def discard_vps_volumes(ctx: Context, pool: str) -> list[str]:
    """R10-after: discard (or wipe, then delete) every volume of the VPS in ``pool``; the names of
    those that were there."""
    vps = ctx.vps()
    wipe = ctx.settings.wipe_volumes_on_delete
    return [volume for volume in ctx.driver.list_volumes(pool)
            if volume.startswith(vps.volume_prefix) and ctx.driver.delete_volume(pool, volume, wipe=wipe)]


def discard_volumes(ctx: Context) -> str:
    # R10-after: the data is erased for real; the event below is the record of it.
    vps = ctx.vps()
    if vps.host_id is None:
        return "no volumes"
    how = "wiped and deleted" if ctx.settings.wipe_volumes_on_delete else "discarded"
    # Every volume of the VPS: root disks of every generation, seeds, kept disks, extra disks.
    done = [f"{volume} {how}" for volume in discard_vps_volumes(ctx, ctx.host().pool_name)]
    return "; ".join(done) or "no volumes left"


@register
class DeleteVps(Operation):
    kind = "delete"
    allowed_from = frozenset(
        {VpsStatus.building, VpsStatus.running, VpsStatus.stopped, VpsStatus.suspended,
         VpsStatus.cut_off, VpsStatus.error, VpsStatus.deleting}
    )
    steps = (
        Step("destroy_domain", destroy_domain),
        Step("undefine_domain", undefine_domain),
        Step("discard_volumes", discard_volumes),
    )

    @classmethod
    def begin(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleting)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleted, addresses=[], deleted_at=utcnow())

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        ctx.update_vps(status=VpsStatus.error, error=f"delete failed: {error}"[:2000])
