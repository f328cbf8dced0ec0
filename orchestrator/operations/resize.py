"""Resize a VPS's vCPUs, memory and root disk.

Live where the hypervisor allows it (vCPUs up to the defined maximum, memory within the defined
maximum by balloon, the disk grown with blockResize), otherwise cold (stop, change, start). The
plan is decided when the request is made, and the answer says whether a reboot will happen.
Disks never shrink. The host must have room for the difference; the image's minimums hold.

R5.1-change-order: no resize job runs without an accepted order form (``change_order_id``, run
with exactly the order's configuration, see orchestrator/change_orders.py), except one started by
staff under another rule, with its ``reason`` recorded.  Checked when the job is asked for and
again when it starts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlmodel import Session

from orchestrator import jobs
from orchestrator.auth import Principal
from orchestrator.db import session_scope
from orchestrator.designer import live_ceilings
from orchestrator.errors import ContractRefusal, InsufficientCapacity, InvalidRequest
from orchestrator.hosts import candidates, policy
from orchestrator.models import ChangeOrder, Image, Job, JobEvent, Vps, VpsStatus
from orchestrator.operations.base import Context, Operation, Step, register, request
from orchestrator.operations.power import power_off, power_on, running_status
from orchestrator.placement import Resources, fits
from orchestrator.settings import Settings

GIB = 1 << 30
POWERED = (VpsStatus.running, VpsStatus.cut_off)
SIZES = ("vcpus", "memory_mib", "disk_gib")
CHANGE_ORDER = "R5.1-change-order"


@dataclass(frozen=True)
class ResizePlan:
    vcpus: int
    memory_mib: int
    disk_gib: int
    mode: str  # live | cold
    reboot: bool


def plan(session: Session, settings: Settings, vps: Vps, params: dict[str, Any]) -> ResizePlan:
    """Check a resize and decide how it will run; raises InvalidRequest or InsufficientCapacity."""
    wanted = {k: params.get(k) for k in ("vcpus", "memory_mib", "disk_gib")}
    for key, value in wanted.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise InvalidRequest(f"{key} must be an integer")
    vcpus = wanted["vcpus"] if wanted["vcpus"] is not None else vps.vcpus
    memory = wanted["memory_mib"] if wanted["memory_mib"] is not None else vps.memory_mib
    disk = wanted["disk_gib"] if wanted["disk_gib"] is not None else vps.disk_gib
    limits = (("vcpus", vcpus, settings.max_vcpus), ("memory_mib", memory, settings.max_memory_mib),
              ("disk_gib", disk, settings.max_disk_gib))
    for key, value, ceiling in limits:
        if value < 1 or value > ceiling:
            raise InvalidRequest(f"{key} must be between 1 and {ceiling}, got {value}")
    if disk < vps.disk_gib:
        raise InvalidRequest(f"disks never shrink: the disk is {vps.disk_gib} GiB, {disk} GiB was asked")
    image = session.get(Image, vps.image)
    if image is not None and memory < image.min_memory_mib:
        raise InvalidRequest(f"memory_mib: the image {image.name} needs at least {image.min_memory_mib} MiB")
    if image is not None and disk < image.min_disk_gib:
        raise InvalidRequest(f"disk_gib: the image {image.name} needs at least {image.min_disk_gib} GiB")
    if (vcpus, memory, disk) == (vps.vcpus, vps.memory_mib, vps.disk_gib):
        raise InvalidRequest("nothing to change: give a new vcpus, memory_mib or disk_gib")
    delta = Resources(max(vcpus - vps.vcpus, 0), max(memory - vps.memory_mib, 0), disk - vps.disk_gib)
    own = next((c for c in candidates(session) if c.host_id == vps.host_id), None)
    if own is None or not fits(own, delta, policy(settings)):
        raise InsufficientCapacity(
            f"the VPS's host cannot hold {delta.vcpus} more vCPU, {delta.memory_mib} more MiB, "
            f"{delta.disk_gib} more GiB"
        )
    powered = vps.status in POWERED
    live = powered and vps.vcpus <= vcpus <= vps.max_vcpus and memory <= vps.max_memory_mib
    return ResizePlan(vcpus, memory, disk, "live" if live or not powered else "cold", reboot=powered and not live)


def _plan(ctx: Context) -> ResizePlan:
    return ResizePlan(**ctx.params["plan"])


def stop_if_cold(ctx: Context) -> str:
    p = _plan(ctx)
    if not p.reboot:
        return "skipped: no reboot needed"
    return power_off(ctx, force=False)


def grow_disk(ctx: Context) -> str:
    p, vps, host = _plan(ctx), ctx.vps(), ctx.host()
    size = p.disk_gib * GIB
    current = ctx.driver.volume_capacity(host.pool_name, vps.root_volume) or 0
    if current >= size:
        return f"disk already {current // GIB} GiB"
    info = ctx.driver.domain(vps.id)
    if info is not None and info.state.value in ("running", "paused"):
        ctx.driver.block_resize_live(vps.id, "vda", size)  # the guest is told the new size
        return f"disk grown live to {p.disk_gib} GiB"
    ctx.driver.resize_volume(host.pool_name, vps.root_volume, size)
    return f"disk grown to {p.disk_gib} GiB"


def apply_live(ctx: Context) -> str:
    p, vps = _plan(ctx), ctx.vps()
    if p.reboot or vps.status not in POWERED:
        return "skipped: applied by the new definition"
    if p.vcpus != vps.vcpus:
        ctx.driver.set_vcpus_live(vps.id, p.vcpus)
    if p.memory_mib != vps.memory_mib:
        ctx.driver.set_memory_live(vps.id, p.memory_mib)
    return f"live: {p.vcpus} vCPU, {p.memory_mib} MiB"


def record_size(ctx: Context) -> str:
    p, vps = _plan(ctx), ctx.vps()
    changes: dict[str, Any] = {"vcpus": p.vcpus, "memory_mib": p.memory_mib, "disk_gib": p.disk_gib}
    if p.mode == "cold":
        # A cold restart is the moment to widen the live ceilings around the new size.
        changes["max_vcpus"], changes["max_memory_mib"] = live_ceilings(p.vcpus, p.memory_mib, ctx.settings)
    else:
        changes["max_vcpus"] = max(vps.max_vcpus, p.vcpus)
        changes["max_memory_mib"] = max(vps.max_memory_mib, p.memory_mib)
    ctx.update_vps(**changes)
    return f"{p.vcpus} vCPU, {p.memory_mib} MiB, {p.disk_gib} GiB"


def redefine(ctx: Context) -> str:
    return ctx.define()


def start_if_cold(ctx: Context) -> str:
    if not _plan(ctx).reboot:
        return "skipped: no reboot needed"
    return power_on(ctx)


@register
class ResizeVps(Operation):
    kind = "resize"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.stopped})
    steps = (
        Step("stop_if_cold", stop_if_cold),
        Step("grow_disk", grow_disk),
        Step("apply_live", apply_live),
        Step("record_size", record_size),
        Step("redefine", redefine),
        Step("start_if_cold", start_if_cold),
    )

    @classmethod
    def check_request(cls, principal: Principal, vps: Vps, params: dict[str, Any]) -> None:
        if "plan" not in params:
            raise InvalidRequest("a resize is requested through resize.request (it needs a plan)")
        check_gate(principal, params)

    @classmethod
    def begin(cls, ctx: Context) -> None:
        """R5.1-change-order, again when the job starts: the order form is still the accepted one of
        this job and the plan is exactly its configuration; or staff gave a reason."""
        order_id = ctx.params.get("change_order_id")
        if order_id is None:
            if ctx.params.get("requested_role") in STAFF_ROLES and str(ctx.params.get("reason") or "").strip():
                return
            raise ContractRefusal(CHANGE_ORDER, "no accepted order form and no staff reason for this resize")
        planned = _plan(ctx)
        with session_scope(ctx.engine) as session:
            order = session.get(ChangeOrder, order_id)
            if order is None or order.vps_id != ctx.job.vps_id or order.job_id != ctx.job.id:
                raise ContractRefusal(CHANGE_ORDER, f"change order {order_id} is not the one of this job")
            if order.status not in ("accepted", "done"):
                raise ContractRefusal(CHANGE_ORDER, f"order form {order.number} is {order.status}, not accepted")
            if any(order.requested.get(key) != getattr(planned, key) for key in SIZES):
                raise ContractRefusal(CHANGE_ORDER, f"the plan differs from order form {order.number}")

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        if ctx.vps().status in POWERED:
            ctx.update_vps(status=running_status(ctx))
        if ctx.params.get("change_order_id"):
            # orchestrator.change_orders builds on this module: imported when needed, not at load.
            import orchestrator.change_orders as change_orders

            with session_scope(ctx.engine) as session:
                change_orders.job_finished(session, ctx.params["change_order_id"], ctx.job.id, None)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        if ctx.params.get("change_order_id"):
            import orchestrator.change_orders as change_orders

            with session_scope(ctx.engine) as session:
                change_orders.job_finished(session, ctx.params["change_order_id"], ctx.job.id, str(error))


STAFF_ROLES = ("support", "automation")


def check_gate(principal: Principal, params: dict[str, Any]) -> None:
    """R5.1-change-order: a resize runs for an accepted order form (``change_order_id``, set only
    by orchestrator.change_orders.accept), or is started by staff under another rule, which they
    name in ``reason``.  Raises ContractRefusal naming the rule otherwise."""
    if params.get("change_order_id"):
        return
    if not principal.is_staff:
        raise ContractRefusal(CHANGE_ORDER, "a resize runs only once you accept an order form: ask for a change "
                                            "order (POST /v1/vps/{id}/change-orders)")
    if not str(params.get("reason") or "").strip():
        raise ContractRefusal(CHANGE_ORDER, "a staff resize without an accepted change order needs a 'reason' "
                                            "(the rule or request it is done under)")


def request_params(session: Session, settings: Settings, vps: Vps, params: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters: what was asked plus the plan (so the answer can tell it)."""
    ResizeVps.check_status(vps)
    return {**params, "plan": asdict(plan(session, settings, vps, params))}


def request_resize(session: Session, settings: Settings, principal: Principal, vps: Vps, params: dict[str, Any],
                   *, why: str | None = None, commit: bool = True) -> Job:
    """Check (status, R5.1-change-order gate, plan) and record a resize job; the VPS's events say
    what it runs under: ``why`` (an order form) or the staff ``reason``."""
    ResizeVps.check_status(vps)
    check_gate(principal, params)
    job = request(session, settings, principal, vps, ResizeVps, request_params(session, settings, vps, params),
                  commit=False)
    because = why or f"staff resize without a change order: {str(params.get('reason', '')).strip()}"
    session.add(JobEvent(job_id=job.id, vps_id=vps.id, step="queued", status="info", actor=str(principal),
                         message=f"{CHANGE_ORDER}: {because}"[:2000]))
    if commit:
        session.commit()
        jobs.notify()
    return job
