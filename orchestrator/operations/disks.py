"""Extra data disks: attach a new empty disk (live when the VPS runs, and in the definition), or
detach one — which discards it, so it needs ``confirm_data_loss``.  Disks count against the
host's capacity like the root disk."""

from __future__ import annotations

import secrets
from typing import Any

from sqlmodel import Session

from orchestrator.designer import data_disk_config, next_disk_target
from orchestrator.errors import InsufficientCapacity, InvalidRequest, NotFound, OperationFailed
from orchestrator.hosts import candidates, policy
from orchestrator.hypervisor import DomainState, VolumeConfig
from orchestrator.models import Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register
from orchestrator.placement import Resources, fits
from orchestrator.settings import Settings

GIB = 1 << 30
MAX_DATA_DISKS = 8
ALLOWED = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off})


def attach_params(session: Session, settings: Settings, vps: Vps, size_gib: int) -> dict[str, Any]:
    AttachDisk.check_status(vps)
    if len(vps.data_disks) >= MAX_DATA_DISKS:
        raise InvalidRequest(f"at most {MAX_DATA_DISKS} extra disks")
    if size_gib < 1 or size_gib > settings.max_disk_gib:
        raise InvalidRequest(f"size_gib must be between 1 and {settings.max_disk_gib}")
    own = next((c for c in candidates(session) if c.host_id == vps.host_id), None)
    if own is None or not fits(own, Resources(0, 0, size_gib), policy(settings)):
        raise InsufficientCapacity(f"the VPS's host cannot hold {size_gib} more GiB")
    disk_id = secrets.token_hex(4)
    return {"disk": {"id": disk_id, "volume": f"{vps.volume_prefix}disk-{disk_id}.qcow2", "size_gib": size_gib,
                     "target": next_disk_target(vps)}}


def detach_params(vps: Vps, disk_id: str, confirm_data_loss: bool) -> dict[str, Any]:
    DetachDisk.check_status(vps)
    disk = next((d for d in vps.data_disks if d["id"] == disk_id), None)
    if disk is None:
        raise NotFound("no such disk on this VPS")
    if not confirm_data_loss:
        raise InvalidRequest("detaching a disk discards its data; repeat with ?confirm_data_loss=true")
    return {"disk": disk}


def _powered(ctx: Context) -> bool:
    info = ctx.driver.domain(ctx.vps().id)
    return info is not None and info.state != DomainState.shutoff


def create_volume(ctx: Context) -> str:
    disk, host = ctx.params["disk"], ctx.host()
    if ctx.driver.volume_path(host.pool_name, disk["volume"]):
        return "volume already exists"
    if disk.get("existing"):
        raise OperationFailed(f"the disk to attach, {disk['volume']}, is not in the pool")
    ctx.driver.create_volume(host.pool_name, VolumeConfig(name=disk["volume"], capacity_bytes=disk["size_gib"] * GIB))
    return f"{disk['size_gib']} GiB empty qcow2"


def record_attached(ctx: Context) -> str:
    vps, disk = ctx.vps(), ctx.params["disk"]
    if all(d["id"] != disk["id"] for d in vps.data_disks):
        ctx.update_vps(data_disks=[*vps.data_disks, disk])
    ctx.define()
    return f"{disk['target']} in the definition"


def plug(ctx: Context) -> str:
    if not _powered(ctx):
        return "the VPS is off: the disk appears at the next start"
    vps, host = ctx.vps(), ctx.host()
    ctx.driver.attach_disk_live(vps.id, data_disk_config(vps, host, ctx.params["disk"]))
    return f"hot-plugged as {ctx.params['disk']['target']}"


def unplug(ctx: Context) -> str:
    if not _powered(ctx):
        return "the VPS is off"
    vps, host = ctx.vps(), ctx.host()
    ctx.driver.detach_disk_live(vps.id, data_disk_config(vps, host, ctx.params["disk"]))
    return f"{ctx.params['disk']['target']} unplugged"


def record_detached(ctx: Context) -> str:
    vps = ctx.vps()
    ctx.update_vps(data_disks=[d for d in vps.data_disks if d["id"] != ctx.params["disk"]["id"]])
    ctx.define()
    return "removed from the definition"


def discard_volume(ctx: Context) -> str:
    host, disk = ctx.host(), ctx.params["disk"]
    ctx.driver.delete_volume(host.pool_name, disk["volume"], wipe=ctx.settings.wipe_volumes_on_delete)
    return f"{disk['volume']} discarded"


@register
class AttachDisk(Operation):
    kind = "attach-disk"
    allowed_from = ALLOWED
    steps = (Step("create_volume", create_volume), Step("record_attached", record_attached), Step("plug", plug))

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        vps, host, disk = ctx.vps(), ctx.host(), ctx.params["disk"]
        if _powered(ctx):
            ctx.driver.detach_disk_live(vps.id, data_disk_config(vps, host, disk))
        ctx.update_vps(data_disks=[d for d in vps.data_disks if d["id"] != disk["id"]])
        ctx.define()
        if not disk.get("existing"):  # a disk brought from elsewhere (R6.2-transfer) is never discarded here
            ctx.driver.delete_volume(host.pool_name, disk["volume"])


@register
class DetachDisk(Operation):
    kind = "detach-disk"
    allowed_from = ALLOWED
    steps = (Step("unplug", unplug), Step("record_detached", record_detached),
             Step("discard_volume", discard_volume))
