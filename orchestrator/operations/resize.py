"""Resize a VPS's vCPUs, memory and root disk.

Live where the hypervisor allows it (vCPUs up to the defined maximum, memory within the defined
maximum by balloon, the disk grown with blockResize), otherwise cold (stop, change, start). The
plan is decided when the request is made, and the answer says whether a reboot will happen; it
is decided again when the job starts (a VPS stopped meanwhile is resized without a reboot).
Disks never shrink. The host must have room for the difference; the image's minimums hold.

R5.1-change-order: a resize runs for an accepted order form — asked by the change-order workflow
(orchestrator/workflows/change_orders.py), which checks again when the job starts that its
order is still accepted and the plan exactly its configuration — or is started by staff under
another rule, named in ``reason`` (recorded in the VPS's events).  A client's own resize is
refused naming the rule.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from orchestrator.compute.designer import live_ceilings
from orchestrator.compute.hosts import candidates, policy
from orchestrator.compute.placement import Resources, fits
from orchestrator.core.errors import ContractRefusal, InsufficientCapacity, InvalidRequest, OperationFailed, StorageFull
from orchestrator.core.models import Image, JobEvent, Vps, VpsStatus
from orchestrator.engine import events
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register, wait_until
from orchestrator.operations.steps.power import power_off, power_on, running_status

GIB = 1 << 30
BALLOON_SLACK_KIB = 1024  # the balloon moves in pages: within a MiB of the target is there
POWERED = (VpsStatus.running, VpsStatus.cut_off)
SIZES = ("vcpus", "memory_mib", "disk_gib")
CHANGE_ORDER = "R5.1-change-order"


class ResizeBody(Params):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"memory_mib": 4096, "reason": "change order CO-2026-0042"}, {"vcpus": 4, "disk_gib": 80}]})
    vcpus: int | None = Field(default=None, ge=1, le=1024)
    memory_mib: int | None = Field(default=None, ge=64, le=16 * 1024 * 1024)
    disk_gib: int | None = Field(default=None, ge=1, le=1024 * 1024)
    reason: str | None = Field(default=None, max_length=500, description="Why staff resize (recorded)")


class ResizePlan(Plan):
    vcpus: int
    memory_mib: int
    disk_gib: int
    mode: Literal["live", "cold"] = Field(description="live: applied to the running guest; cold: stop, change, start")
    reboot: bool = Field(description="whether the VPS will be restarted")


def plan_for(req: Request, params: ResizeBody) -> ResizePlan:
    """The new sizes, checked, and how they will be applied; raises InvalidRequest or
    InsufficientCapacity.  The same check whoever asks (a change order is checked with it too)."""
    vps, settings = req.vps, req.settings
    assert vps is not None
    vcpus = params.vcpus if params.vcpus is not None else vps.vcpus
    memory = params.memory_mib if params.memory_mib is not None else vps.memory_mib
    disk = params.disk_gib if params.disk_gib is not None else vps.disk_gib
    limits = (("vcpus", vcpus, settings.limits.max_vcpus), ("memory_mib", memory, settings.limits.max_memory_mib),
              ("disk_gib", disk, settings.limits.max_disk_gib))
    for key, value, ceiling in limits:
        if value < 1 or value > ceiling:
            raise InvalidRequest(f"{key} must be between 1 and {ceiling}, got {value}")
    if disk < vps.disk_gib:
        raise InvalidRequest(f"disks never shrink: the disk is {vps.disk_gib} GiB, {disk} GiB was asked")
    image = req.session.get(Image, vps.image)
    if image is not None and memory < image.min_memory_mib:
        raise InvalidRequest(f"memory_mib: the image {image.name} needs at least {image.min_memory_mib} MiB")
    if image is not None and disk < image.min_disk_gib:
        raise InvalidRequest(f"disk_gib: the image {image.name} needs at least {image.min_disk_gib} GiB")
    if (vcpus, memory, disk) == (vps.vcpus, vps.memory_mib, vps.disk_gib):
        raise InvalidRequest("nothing to change: give a new vcpus, memory_mib or disk_gib")
    delta = Resources(max(vcpus - vps.vcpus, 0), max(memory - vps.memory_mib, 0), disk - vps.disk_gib)
    own = next(iter(candidates(req.session, host_id=vps.host_id)), None)
    if own is None or not fits(own, delta, policy(settings)):
        raise InsufficientCapacity(
            f"the VPS's host cannot hold {delta.vcpus} more vCPU, {delta.memory_mib} more MiB, "
            f"{delta.disk_gib} more GiB"
        )
    powered = vps.status in POWERED
    live = powered and vps.vcpus <= vcpus <= vps.max_vcpus and memory <= vps.max_memory_mib
    return ResizePlan(vcpus=vcpus, memory_mib=memory, disk_gib=disk, mode="live" if live or not powered else "cold",
                      reboot=powered and not live)


def _plan(ctx: Context) -> ResizePlan:
    return ctx.plan(ResizePlan)


def warm(ctx: Context) -> str | None:
    """Why the steps that stop and start the guest have nothing to do (None: they do)."""
    return None if _plan(ctx).reboot else "no reboot needed"


def stop_if_cold(ctx: Context) -> str:
    return power_off(ctx, force=False)


def same_disk(ctx: Context) -> str | None:
    """The disk keeps its size (the plan's size is the recorded one until ``record_size``)."""
    return "the disk keeps its size" if _plan(ctx).disk_gib == ctx.vps().disk_gib else None


def grow_disk(ctx: Context) -> str:
    p, vps, host = _plan(ctx), ctx.vps(), ctx.host()
    size = p.disk_gib * GIB
    current = ctx.driver.volume_capacity(host.pool_name, vps.root_volume) or 0
    if current >= size:
        return f"disk already {current // GIB} GiB"
    info = ctx.driver.domain(vps.id)
    if info is not None and info.state.value in ("running", "paused"):
        try:
            ctx.driver.block_resize_live(vps.id, "vda", size)  # the guest is told the new size
        except StorageFull as exc:  # QEMU grows the image in place: say which pool has no room
            raise StorageFull(f"growing {vps.root_volume} in storage pool '{host.pool_name}': {exc}") from exc
        return f"disk grown live to {p.disk_gib} GiB"
    ctx.driver.resize_volume(host.pool_name, vps.root_volume, size)
    return f"disk grown to {p.disk_gib} GiB"


def not_live(ctx: Context) -> str | None:
    return "applied by the new definition" if _plan(ctx).reboot or ctx.vps().status not in POWERED else None


def apply_live(ctx: Context) -> str:
    p, vps = _plan(ctx), ctx.vps()
    if p.vcpus != vps.vcpus:
        ctx.driver.set_vcpus_live(vps.id, p.vcpus)
    if p.memory_mib != vps.memory_mib:
        ctx.driver.set_memory_live(vps.id, p.memory_mib)
    return f"live: {p.vcpus} vCPU, {p.memory_mib} MiB"


def no_live_memory_change(ctx: Context) -> str | None:
    return "no live memory change" if not_live(ctx) or _plan(ctx).memory_mib == ctx.vps().memory_mib else None


def memory_settled(ctx: Context) -> str:
    """A live memory change ends when the guest holds the new size: the balloon driver in the guest
    reports what it holds (libvirt's ``actual``), and that moves a while after the target is set.
    Past ``VPSCTL_BALLOON_TIMEOUT_SECONDS`` the step says plainly that the guest has not taken it
    yet (no balloon driver, or a guest too busy to give memory back): the definition has the new
    size, which every boot applies."""
    p, vps = _plan(ctx), ctx.vps()
    target_kib = p.memory_mib * 1024

    def holds() -> str | None:
        actual = ctx.driver.memory_stats(vps.id).get("actual")
        if actual is not None and abs(actual - target_kib) <= BALLOON_SLACK_KIB:
            return f"the guest holds {actual // 1024} MiB"
        return None

    try:
        return wait_until(ctx, ctx.settings.lifecycle.balloon_timeout_seconds,
                          f"the guest taking {p.memory_mib} MiB", holds)
    except OperationFailed:
        actual = ctx.driver.memory_stats(vps.id).get("actual")
        held = f"it holds {actual // 1024} MiB" if actual is not None else "it does not report what it holds"
        return (f"the guest has not taken the new size yet: {held} of the {p.memory_mib} MiB set "
                f"(after {ctx.settings.lifecycle.balloon_timeout_seconds:.0f} s); its next boot will have them")


def record_size(ctx: Context) -> str:
    p, vps = _plan(ctx), ctx.vps()
    if p.mode == "cold":
        # A cold restart is the moment to widen the live ceilings around the new size.
        max_vcpus, max_memory_mib = live_ceilings(p.vcpus, p.memory_mib, ctx.settings)
    else:
        max_vcpus, max_memory_mib = max(vps.max_vcpus, p.vcpus), max(vps.max_memory_mib, p.memory_mib)
    ctx.update_vps(vcpus=p.vcpus, memory_mib=p.memory_mib, disk_gib=p.disk_gib, max_vcpus=max_vcpus,
                   max_memory_mib=max_memory_mib)
    return f"{p.vcpus} vCPU, {p.memory_mib} MiB, {p.disk_gib} GiB"


def redefine(ctx: Context) -> str:
    return ctx.define()


def start_if_cold(ctx: Context) -> str:
    return power_on(ctx)


@register
class ResizeVps(Operation[ResizeBody]):
    """Staff: change vCPUs, memory and/or disk size under a rule other than a change order, named in
    `reason` (recorded in the VPS's events).  R5.1-change-order: a client's resize goes through
    `POST /v1/vps/{id}/change-orders`; asked here it is refused naming the rule.  `plan` in the answer
    says live or cold, and whether the VPS will reboot, before anything runs.  Disks never shrink."""

    kind = "resize"
    route = "/resize"
    params = ResizeBody
    rule = CHANGE_ORDER
    allowed_from = frozenset({VpsStatus.running, VpsStatus.cut_off, VpsStatus.stopped})
    steps = (
        Step("stop_if_cold", stop_if_cold, skip=warm),
        Step("grow_disk", grow_disk, skip=same_disk),
        Step("apply_live", apply_live, skip=not_live),
        Step("memory_settled", memory_settled, skip=no_live_memory_change),
        Step("record_size", record_size),
        Step("redefine", redefine),
        Step("start_if_cold", start_if_cold, skip=warm),
    )

    @classmethod
    def check(cls, req: Request, params: ResizeBody) -> ResizePlan:
        if req.cause is None:  # not for an order form: R5.1-change-order's one exception
            if not req.principal.is_staff:
                raise ContractRefusal(CHANGE_ORDER, "a resize runs only once you accept an order form: ask for a "
                                                    "change order (POST /v1/vps/{id}/change-orders)")
            if not (params.reason or "").strip():
                raise ContractRefusal(CHANGE_ORDER, "a staff resize without an accepted change order needs a "
                                                    "'reason' (the rule or request it is done under)")
        return plan_for(req, params)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        if ctx.vps().status in POWERED:
            ctx.update_vps(status=running_status(ctx))


def configuration(vps: Vps) -> dict[str, int]:
    return {"vcpus": vps.vcpus, "memory_mib": vps.memory_mib, "disk_gib": vps.disk_gib}


@events.on_requested(ResizeVps.kind)
def _record_why(event: events.Requested) -> None:
    """The VPS's events say what a staff resize runs under (a change order says it itself)."""
    if event.request.cause is None:
        reason = (event.params.reason or "").strip()
        event.request.session.add(JobEvent(
            job_id=event.job.id, vps_id=event.job.vps_id, step="queued", status="info",
            actor=str(event.request.principal),
            message=f"{CHANGE_ORDER}: staff resize without a change order: {reason}"[:2000]))
