"""Delete a VPS: stop it, remove its domain, and discard or wipe its volumes (R10-after: erasure
is real, not a detach, and is recorded in the job's events).  Needs ``confirm_data_loss``.

Plan: destroy_domain -> undefine_domain -> discard_volumes; each step is a no-op when its object
is already gone, so a delete interrupted at any point converges when run again.  Asking twice is
asking once: the pending delete is the answer.
"""

from __future__ import annotations

from pydantic import Field

from orchestrator.compute.designer import mac_of
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import InvalidRequest, InvalidState
from orchestrator.core.models import Job, VpsStatus
from orchestrator.engine import jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register


class DeleteParams(Params):
    confirm_data_loss: bool = Field(default=False,
                                    description="Must be true: deleting discards the VPS's disks for good")


def destroy_domain(ctx: Context) -> str:
    vps = ctx.vps()
    if vps.host_id is None:
        return "never placed"
    ctx.driver.destroy_domain(vps.id)
    return "powered off"


def undefine_domain(ctx: Context) -> str:
    """The definition goes, and the address pinned for the VPS is free for another."""
    vps = ctx.vps()
    if vps.host_id is None:
        return "never placed"
    ctx.driver.undefine_domain(vps.id)
    released = ctx.driver.unpin_address(ctx.host().network_name, mac_of(vps))
    return "undefined; its address is free again" if released else "undefined"


def discard_vps_volumes(ctx: Context, pool: str) -> list[str]:
    """R10-after: discard (or wipe, then delete) every volume of the VPS in ``pool``; the names of
    those that were there."""
    vps = ctx.vps()
    wipe = ctx.settings.lifecycle.wipe_volumes_on_delete
    return [volume for volume in ctx.driver.list_volumes(pool)
            if volume.startswith(vps.volume_prefix) and ctx.driver.delete_volume(pool, volume, wipe=wipe)]


def discard_volumes(ctx: Context) -> str:
    # R10-after: the data is erased for real; the event below is the record of it.
    vps = ctx.vps()
    if vps.host_id is None:
        return "no volumes"
    how = "wiped and deleted" if ctx.settings.lifecycle.wipe_volumes_on_delete else "discarded"
    # Every volume of the VPS: root disks of every generation, seeds, kept disks, extra disks.
    done = [f"{volume} {how}" for volume in discard_vps_volumes(ctx, ctx.host().pool_name)]
    return "; ".join(done) or "no volumes left"


@register
class DeleteVps(Operation[DeleteParams]):
    """Delete a VPS: its domain is removed and its volumes discarded (or wiped)."""

    kind = "delete"
    params = DeleteParams
    # deleting: a delete whose worker died after ``begin`` starts again
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
    def pending(cls, req: Request) -> Job | None:
        return next(iter(jobs.pending(req.session, req.vps.id, {cls.kind})), None) if req.vps else None

    @classmethod
    def check(cls, req: Request, params: DeleteParams) -> Plan | None:
        assert req.vps is not None
        if not req.at_start and req.vps.status in (VpsStatus.deleting, VpsStatus.deleted):
            raise InvalidState(cls.kind, req.vps.status.value, {s.value for s in cls.allowed_from})
        if not params.confirm_data_loss:
            raise InvalidRequest("deleting a VPS destroys its disks; repeat with ?confirm_data_loss=true")
        return None

    @classmethod
    def begin(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleting)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleted, addresses=[], deleted_at=utcnow())

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        ctx.update_vps(status=VpsStatus.error, error=f"delete failed: {error}"[:2000])
