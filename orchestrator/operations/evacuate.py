"""Rebuild a VPS whose host is down on another host, from the latest copy of its backup kept off
that host (R5.2-keep-running: "when a host fails, its VPS are restored on a working host as fast
as possible"; operations/steps/replicas.py keeps those copies).

Asked by staff for every VPS of a host that does not answer (workflows/evacuation.py).  The lost
host is asked again when the job starts: a host that answers keeps its VPS (it is drained, not
evacuated).  Then: the image made sure of on the target, the root disk made from the backup's
copy (streamed from the host that holds it, or copied in place when that is the target), the VPS
recorded on the target with its address pinned there, a new seed (same instance, so the guest
keeps its identity; its SSH host key is the one it presents, checked to be one the orchestrator
generated), data disks made anew and empty (a backup holds the root disk only), defined, started
as it was, its address and SSH checked, and the customer told what was restored and from when
(the data written after that backup is lost with the host).

When the lost host comes back, its copy of the VPS is never started: no domain is started
without a job, the reconciler powers off any domain of a VPS recorded on another host
(workflows/reconciler.py) and keeps its disks for staff.

Plan: check_source_down -> image_on_target -> restore_root -> switch_host -> write_seed ->
data_disks -> define_target -> start_target -> wait_for_address -> verify_ssh -> tell_customer.
Each step looks before it acts; a worker killed midway leaves a job another worker resumes at the
step it was in (a root disk half-copied is copied again, recorded done only once whole)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field
from sqlmodel import col, select

from orchestrator.adapters.ssh import server_host_key
from orchestrator.compute.designer import ipv4_address, mac_of
from orchestrator.compute.hostaccess import fingerprint
from orchestrator.core.db import session_scope
from orchestrator.core.errors import Conflict, HypervisorError, OperationFailed
from orchestrator.core.models import Backup, Host, VpsStatus
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Audience, Operation, Params, Plan, Step, register, wait_until
from orchestrator.hypervisor import VolumeConfig
from orchestrator.operations import migrate
from orchestrator.operations.migrate import WAS_RUNNING
from orchestrator.operations.steps import provision, replicas

RESTORED = "root_restored"  # job parameter: the root disk is whole on the target
NEW_KEY = "new_host_key"  # job parameter: the host key of the seed written on the target
POWERED_ON = (VpsStatus.running, VpsStatus.cut_off)
GIB = 1 << 30


class EvacuateParams(Params):
    to_host: str | None = Field(default=None, max_length=64,
                                description="The target host (name or id); none: the best host of the same site")
    reason: str = Field(default="its host is down", min_length=1, max_length=500)


class EvacuatePlan(Plan):
    from_host_id: int
    from_host: str
    to_host_id: int
    to_host: str
    backup_id: str
    backup_taken_at: datetime
    copy_host_id: int
    mode: str = "rebuild from backup"


def latest_copy(req: Request) -> Backup:
    """The VPS's latest backup with a copy on a host that is not down."""
    vps = req.vps
    assert vps is not None
    rows = req.session.exec(
        select(Backup).join(Host, col(Host.id) == col(Backup.replica_host_id))
        .where(Backup.vps_id == vps.id, Backup.status == "available", Host.state != "unreachable",
               Host.id != vps.host_id)
        .order_by(col(Backup.created_at).desc())).all()
    if not rows:
        raise Conflict(f"VPS {vps.name} ({vps.id}) has no backup copied off its host: it cannot be rebuilt "
                       "elsewhere and comes back with its host")
    return rows[0]


def plan_for(req: Request, params: EvacuateParams) -> EvacuatePlan:
    vps = req.vps
    assert vps is not None and vps.host_id is not None
    source = req.session.get(Host, vps.host_id)
    assert source is not None
    if source.state != "unreachable":
        raise Conflict(f"host {source.name} is {source.state}, not down: its VPS are moved by a drain (R5.4), "
                       "not rebuilt from backup")
    backup = latest_copy(req)
    target = migrate.choose_target(req, vps, params.to_host)
    assert backup.created_at is not None and backup.replica_host_id is not None
    return EvacuatePlan(from_host_id=source.id or 0, from_host=source.name, to_host_id=target.host_id,
                        to_host=target.name, backup_id=backup.id, backup_taken_at=backup.created_at,
                        copy_host_id=backup.replica_host_id)


def _plan(ctx: Context) -> EvacuatePlan:
    return ctx.plan(EvacuatePlan)


def check_source_down(ctx: Context) -> str:
    """The lost host is asked once more: a host that answers keeps its VPS (never two copies)."""
    p = _plan(ctx)
    if ctx.vps().host_id != p.from_host_id:
        return "recorded on the target already"
    if WAS_RUNNING not in ctx.params:
        ctx.remember(**{WAS_RUNNING: ctx.vps().status in POWERED_ON})
    try:
        migrate.driver_of(ctx, p.from_host_id).host_info()
    except HypervisorError as exc:
        return f"host {p.from_host} does not answer: {exc}"
    raise OperationFailed(f"host {p.from_host} answers again: the VPS stays there (drain the host to move it)")


def image_on_target(ctx: Context) -> str:
    return provision.ensure_image(ctx, ctx.vps().image, host=migrate.host_of(ctx, _plan(ctx).to_host_id))


def restore_root(ctx: Context) -> str:
    p, vps = _plan(ctx), ctx.vps()
    if ctx.params.get(RESTORED):
        return "restored already"
    target = migrate.host_of(ctx, p.to_host_id)
    dst = migrate.driver_of(ctx, p.to_host_id)
    with session_scope(ctx.engine) as session:
        backup = session.get(Backup, p.backup_id)
        if backup is None:
            raise OperationFailed(f"backup {p.backup_id} is no longer recorded")
        pool, copy = backup.pool, replicas.replica_volume(backup.volume)
    dst.delete_volume(target.pool_name, vps.root_volume)  # a copy a crash left half-made
    if p.copy_host_id == p.to_host_id:
        written = dst.copy_volume(pool, copy, target.pool_name, vps.root_volume)
        how = "copied in place"
    else:
        src = migrate.driver_of(ctx, p.copy_host_id)
        config = src.describe_volume(pool, copy)
        if config is None:
            raise OperationFailed(f"the copy of backup {p.backup_id} is gone from its host")
        config = VolumeConfig(name=vps.root_volume, capacity_bytes=max(config.capacity_bytes, vps.disk_gib * GIB))
        written = dst.receive_volume(target.pool_name, config, src.download_volume(pool, copy))
        how = "streamed from the host that kept the copy"
    ctx.remember(**{RESTORED: True})
    return f"root disk from backup {p.backup_id} of {p.backup_taken_at:%Y-%m-%d %H:%M} UTC: {written} bytes, {how}"


def switch_host(ctx: Context) -> str:
    """From here the record says the VPS is on the target; its address is pinned there."""
    p, vps = _plan(ctx), ctx.vps()
    if vps.host_id == p.to_host_id:
        return "recorded on the target already"
    target = migrate.host_of(ctx, p.to_host_id)
    address = ipv4_address(vps)
    if address:
        migrate.driver_of(ctx, p.to_host_id).pin_address(target.network_name, mac_of(vps), address)
    ctx.update_vps(host_id=p.to_host_id)
    ctx.forget_host()
    return f"recorded on {target.name} (was on {p.from_host}, down)" + (f", {address} pinned there" if address else "")


def write_seed(ctx: Context) -> str:
    vps = ctx.vps()
    instance = vps.id if vps.root_generation == 0 else f"{vps.id}-{vps.root_generation}"
    key = provision.write_seed(ctx, vps.seed_volume, instance, vps.ssh_authorized_keys)
    ctx.remember(**{NEW_KEY: key})
    return f"seed written (same instance {instance})"


def data_disks(ctx: Context) -> str:
    vps, host = ctx.vps(), ctx.host()
    made = []
    for disk in vps.data_disks:
        if not ctx.driver.volume_path(host.pool_name, disk["volume"]):
            ctx.driver.create_volume(host.pool_name, VolumeConfig(name=disk["volume"],
                                                                  capacity_bytes=int(disk["size_gib"]) * GIB))
            made.append(f"{disk['target']} ({disk['size_gib']} GiB)")
    return ("made anew, empty: " + ", ".join(made)) if made else "no data disk"


def define_target(ctx: Context) -> str:
    return ctx.define()


def verify_ssh(ctx: Context) -> str:
    """The guest answers SSH with a host key the orchestrator generated for it: the one it had
    (an image that keeps its keys for the same instance) or the new seed's (one that takes them
    from the seed at every boot), which is then recorded."""
    vps = ctx.vps()
    if not ctx.params.get(WAS_RUNNING) or vps.cut_off or not ctx.settings.lifecycle.verify_guest_ssh:
        return "skipped: not running, cut off, or not checked (VPSCTL_VERIFY_GUEST_SSH)"
    address = next((a for a in vps.addresses if ":" not in a), None)
    if address is None:
        raise OperationFailed("the VPS has no address to check")
    known = [k["public_key"] for k in vps.ssh_host_keys] + [ctx.params[NEW_KEY]["public_key"]]

    def answer() -> str | None:
        try:
            presented = server_host_key(address, proxy_command=ctx.guest_proxy_command, timeout=5.0)
        except Exception:  # not up yet: refused, reset, timed out
            return None
        if presented.split()[:2] == known[-1].split()[:2]:
            ctx.update_vps(ssh_host_keys=[ctx.params[NEW_KEY]])
            return f"{address}:22 presents the new seed's key {fingerprint(presented)} (recorded)"
        if any(presented.split()[:2] == k.split()[:2] for k in known):
            return f"{address}:22 presents its own key {fingerprint(presented)}"
        raise OperationFailed(f"{address}:22 presents a host key the orchestrator did not generate for it")

    return wait_until(ctx, ctx.settings.lifecycle.ssh_ready_timeout_seconds, "SSH answering", answer)


def tell_customer(ctx: Context) -> str:
    p, vps = _plan(ctx), ctx.vps()
    provision.notify_once(ctx, "restored_elsewhere", {
        "vps_name": vps.name, "vps_id": vps.id, "backup_taken_at": p.backup_taken_at,
        "site": ctx.host().site, "data_disks": [d["target"] for d in vps.data_disks],
        "host_key_fingerprints": [k["fingerprint"] for k in vps.ssh_host_keys]})
    return f"customer told: restored from the backup of {p.backup_taken_at:%Y-%m-%d %H:%M} UTC"


@register
class EvacuateVps(Operation[EvacuateParams]):
    """Staff: rebuild the VPS on another host from the latest copy of its backup, its host being
    down (R5.2-keep-running); the customer is told what was restored and from when."""

    kind = "evacuate"
    params = EvacuateParams
    audience = Audience.staff
    rule = "R5.2-keep-running"
    details_for_staff = True  # its events name hosts
    needs_host_up = False  # its host is down: that is the point
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off, VpsStatus.suspended})
    steps = (
        Step("check_source_down", check_source_down),
        Step("image_on_target", image_on_target),
        Step("restore_root", restore_root),
        Step("switch_host", switch_host),
        Step("write_seed", write_seed),
        Step("data_disks", data_disks),
        Step("define_target", define_target),
        Step("start_target", migrate.start_target),
        Step("wait_for_address", migrate.wait_for_address),
        Step("verify_ssh", verify_ssh),
        Step("tell_customer", tell_customer),
    )

    @classmethod
    def check(cls, req: Request, params: EvacuateParams) -> EvacuatePlan:
        return plan_for(req, params)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Before the switch, the target's partial copy goes; after it, the VPS is the target's."""
        if not ctx.planned:
            return
        p, vps = _plan(ctx), ctx.vps()
        if vps.host_id == p.to_host_id:
            return
        target = migrate.host_of(ctx, p.to_host_id)
        migrate.driver_of(ctx, p.to_host_id).delete_volume(target.pool_name, vps.root_volume)
