"""Extra data disks: attach a new empty disk (live when the VPS runs, and in the definition), or
detach one — which discards it, so it needs ``confirm_data_loss``.  Disks count against the
host's capacity like the root disk.  A new disk is named after its job (a job resumed after a
crash finds the volume it started)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.compute.designer import data_disk_config, next_disk_target
from orchestrator.compute.hosts import candidates, policy
from orchestrator.compute.placement import Resources, fits
from orchestrator.core.errors import ContractRefusal, InsufficientCapacity, InvalidRequest, NotFound, OperationFailed
from orchestrator.core.models import JobEvent, VpsStatus
from orchestrator.engine import events
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register
from orchestrator.hypervisor import DomainState, VolumeConfig
from orchestrator.operations.resize import CHANGE_ORDER

GIB = 1 << 30
MAX_DATA_DISKS = 8
ALLOWED = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off})


class DataDisk(BaseModel):
    """A data disk as the VPS records it (``Vps.data_disks``).  ``existing``: a volume brought from
    elsewhere (R6.2-transfer), never created nor discarded here."""

    id: str
    volume: str
    size_gib: int
    target: str
    existing: bool = False

    def record(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True) | {"size_gib": self.size_gib}


class DiskBody(Params):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"size_gib": 50, "reason": "change order CO-2026-0042"}]})
    size_gib: int = Field(ge=1, le=1024 * 1024)
    reason: str | None = Field(default=None, max_length=500,
                               description="Staff: the rule or request the disk is added under (R5.1-change-order)")


class AttachParams(Params):
    """What a workflow may give as well: a disk that already exists (R6.2-transfer)."""

    size_gib: int = Field(default=1, ge=1, le=1024 * 1024)
    reason: str | None = Field(default=None, max_length=500)
    existing: DataDisk | None = None


class AttachPlan(Plan):
    size_gib: int
    target: str
    existing: DataDisk | None = None


class DetachParams(Params):
    disk_id: str
    confirm_data_loss: bool = False


class DetachPlan(Plan):
    disk: DataDisk


def attached_disk(ctx: Context) -> DataDisk:
    plan = ctx.plan(AttachPlan)
    if plan.existing is not None:
        return plan.existing
    disk_id = ctx.job.id[:8]
    return DataDisk(id=disk_id, volume=f"{ctx.vps().volume_prefix}disk-{disk_id}.qcow2", size_gib=plan.size_gib,
                    target=plan.target)


def _powered(ctx: Context) -> bool:
    info = ctx.driver.domain(ctx.vps().id)
    return info is not None and info.state != DomainState.shutoff


def create_volume(ctx: Context) -> str:
    disk, host = attached_disk(ctx), ctx.host()
    if ctx.driver.volume_path(host.pool_name, disk.volume):
        return "volume already exists"
    if disk.existing:
        raise OperationFailed(f"the disk to attach, {disk.volume}, is not in the pool")
    ctx.driver.create_volume(host.pool_name, VolumeConfig(name=disk.volume, capacity_bytes=disk.size_gib * GIB))
    return f"{disk.size_gib} GiB empty qcow2"


def record_attached(ctx: Context) -> str:
    vps, disk = ctx.vps(), attached_disk(ctx)
    if all(d["id"] != disk.id for d in vps.data_disks):
        ctx.update_vps(data_disks=[*vps.data_disks, disk.record()])
    ctx.define()
    return f"{disk.target} in the definition"


def plug(ctx: Context) -> str:
    if not _powered(ctx):
        return "the VPS is off: the disk appears at the next start"
    vps, host, disk = ctx.vps(), ctx.host(), attached_disk(ctx)
    ctx.driver.attach_disk_live(vps.id, data_disk_config(vps, host, disk.record()))
    return f"hot-plugged as {disk.target}"


def _detached(ctx: Context) -> DataDisk:
    return ctx.plan(DetachPlan).disk


def unplug(ctx: Context) -> str:
    if not _powered(ctx):
        return "the VPS is off"
    vps, host, disk = ctx.vps(), ctx.host(), _detached(ctx)
    ctx.driver.detach_disk_live(vps.id, data_disk_config(vps, host, disk.record()))
    return f"{disk.target} unplugged"


def record_detached(ctx: Context) -> str:
    vps = ctx.vps()
    ctx.update_vps(data_disks=[d for d in vps.data_disks if d["id"] != _detached(ctx).id])
    ctx.define()
    return "removed from the definition"


def discard_volume(ctx: Context) -> str:
    host, disk = ctx.host(), _detached(ctx)
    ctx.driver.delete_volume(host.pool_name, disk.volume, wipe=ctx.settings.lifecycle.wipe_volumes_on_delete)
    return f"{disk.volume} discarded"


@register
class AttachDisk(Operation[AttachParams]):
    """Staff: attach a new empty data disk (hot-plugged when the VPS runs) under a rule other than a
    change order, named in `reason`.  R5.1-change-order: a client's extra disk goes through
    `POST /v1/vps/{id}/change-orders` (`add_disk_gib`); asked here it is refused naming the rule."""

    kind = "attach-disk"
    params = DiskBody
    job_params = AttachParams
    rule = CHANGE_ORDER
    allowed_from = ALLOWED
    steps = (Step("create_volume", create_volume), Step("record_attached", record_attached), Step("plug", plug))

    @classmethod
    def check(cls, req: Request, params: AttachParams) -> AttachPlan:
        vps, settings = req.vps, req.settings
        assert vps is not None
        if params.existing is not None:  # brought by a workflow: it holds no new room
            return AttachPlan(size_gib=params.existing.size_gib, target=params.existing.target,
                              existing=params.existing)
        if req.cause is None:  # not for an order form: R5.1-change-order's one exception
            if not req.principal.is_staff:
                raise ContractRefusal(CHANGE_ORDER, "a data disk is added only once you accept an order form: ask "
                                                    "for a change order (POST /v1/vps/{id}/change-orders, "
                                                    "add_disk_gib)")
            if not (params.reason or "").strip():
                raise ContractRefusal(CHANGE_ORDER, "a staff disk without an accepted change order needs a "
                                                    "'reason' (the rule or request it is added under)")
        if len(vps.data_disks) >= MAX_DATA_DISKS:
            raise InvalidRequest(f"at most {MAX_DATA_DISKS} extra disks")
        if params.size_gib > settings.limits.max_disk_gib:
            raise InvalidRequest(f"size_gib must be between 1 and {settings.limits.max_disk_gib}")
        own = next(iter(candidates(req.session, host_id=vps.host_id)), None)
        if own is None or not fits(own, Resources(0, 0, params.size_gib), policy(settings)):
            raise InsufficientCapacity(f"the VPS's host cannot hold {params.size_gib} more GiB")
        return AttachPlan(size_gib=params.size_gib, target=next_disk_target(vps))

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        if not ctx.planned:
            return
        vps, host, disk = ctx.vps(), ctx.host(), attached_disk(ctx)
        if _powered(ctx):
            ctx.driver.detach_disk_live(vps.id, data_disk_config(vps, host, disk.record()))
        ctx.update_vps(data_disks=[d for d in vps.data_disks if d["id"] != disk.id])
        ctx.define()
        if not disk.existing:  # a disk brought from elsewhere (R6.2-transfer) is never discarded here
            ctx.driver.delete_volume(host.pool_name, disk.volume)


@events.on_requested(AttachDisk.kind)
def _record_why(event: events.Requested) -> None:
    """The VPS's events say what a staff disk is added under (a change order says it itself)."""
    if event.request.cause is None and isinstance(event.params, AttachParams) and event.params.reason:
        event.request.session.add(JobEvent(
            job_id=event.job.id, vps_id=event.job.vps_id, step="queued", status="info",
            actor=str(event.request.principal),
            message=f"{CHANGE_ORDER}: staff disk without a change order: {event.params.reason.strip()}"[:2000]))


@register
class DetachDisk(Operation[DetachParams]):
    """Detach a data disk and discard it: needs `?confirm_data_loss=true`."""

    kind = "detach-disk"
    params = DetachParams
    allowed_from = ALLOWED
    steps = (Step("unplug", unplug), Step("record_detached", record_detached),
             Step("discard_volume", discard_volume))

    @classmethod
    def check(cls, req: Request, params: DetachParams) -> DetachPlan:
        assert req.vps is not None
        disk = next((d for d in req.vps.data_disks if d["id"] == params.disk_id), None)
        if disk is None:
            raise NotFound("no such disk on this VPS")
        if not params.confirm_data_loss:
            raise InvalidRequest("detaching a disk discards its data; repeat with ?confirm_data_loss=true")
        return DetachPlan(disk=DataDisk.model_validate(disk))
