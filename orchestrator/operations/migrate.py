"""Move a VPS to another host (staff): cold migration through libvirt volume streams.

The guest is shut down on its host, every volume of the VPS (root disk, seed, data disks, its
backups) is copied to the target host's pools through the two libvirt connections (so it works
between any two hosts the orchestrator reaches, with no storage or network path between them),
the image its root disk is an overlay of is made sure of on the target first (same pool layout
on every host, so the overlay's backing path holds there too), then the VPS is recorded on the
target, defined and started there, and only once it runs there are the source's domain and
volumes removed.  So at every moment the VPS runs on at most one host, and a copy of its data
exists on the source until the target runs it.

Plan: stop_source -> image_on_target -> copy_volumes -> switch_host -> define_target ->
start_target -> wait_for_address -> verify_ssh -> remove_source.  Each step looks before it
acts: a worker killed midway leaves a job another worker takes up at the step it was in; a copy
interrupted is made again from the start (a volume is recorded copied only once complete).
``progress`` events say the bytes copied.  A failure before the switch restarts the VPS on its
host and removes the partial copies; after it, the VPS is on the target and the source copies
go at the end.

Live (``live: true``, both hosts with a ``migration_address``): the guest is not stopped; the
volumes it writes to (root, data disks) are made empty and standalone on the target and mirrored
whole by libvirt's live migration with non-shared storage, the others (seed,
backups) streamed as for a cold move; the migration runs in ``switch_host`` (the record switches
once the guest runs on the target; a worker killed meanwhile leaves it running on the source,
libvirt having called the migration off, and the next attempt moves it again).

R5.4-duration: the interruption is the shutdown, the copy and the boot; a drain (staff) plans
each VPS's move within the maintenance rules."""

from __future__ import annotations

from datetime import UTC

from pydantic import Field
from sqlmodel import col, select

from orchestrator.compute.designer import ipv4_address, mac_of
from orchestrator.compute.hosts import NOT_ALLOCATED, best_host, candidates, find_host, hosts_of_group, policy
from orchestrator.compute.placement import Candidate, Resources, fits
from orchestrator.core.db import session_scope
from orchestrator.core.errors import Conflict, InsufficientCapacity, InvalidRequest, OperationFailed
from orchestrator.core.models import Host, JobEvent, Vps, VpsStatus
from orchestrator.engine.context import PLAN, Context, Request
from orchestrator.engine.operation import Audience, Operation, Params, Plan, Step, register, wait_until
from orchestrator.hypervisor import DomainState, HypervisorDriver, VolumeConfig
from orchestrator.operations.steps import power, provision, replicas

PROGRESS_EVERY = 16 << 20  # a progress event per 16 MiB copied
COPIED = "copied"  # job parameter: the volumes (pool/name) complete on the target
WAS_RUNNING = "was_running"  # job parameter: whether the guest ran before the move


class MigrateParams(Params):
    to_host: str | None = Field(default=None, max_length=64,
                                description="The target host (name or id); none: the best host of the same site")
    live: bool = Field(default=False, description="Live: the guest keeps running while its disks and memory "
                                                  "are copied (both hosts need a migration address)")


class MigratePlan(Plan):
    from_host_id: int
    to_host_id: int
    to_host: str
    to_site: str = ""
    from_site: str = ""
    mode: str = "cold"


def choose_target(req: Request, vps: Vps, to_host: str | None) -> Candidate:
    """Where the VPS may go: ``to_host`` if it takes VPS and has room, else the best host of the
    VPS's site; no VPS there may hold the VPS's address (it keeps it)."""
    assert vps.host_id is not None
    source = req.session.get(Host, vps.host_id)
    assert source is not None
    want = Resources(vps.vcpus, vps.memory_mib, vps.disk_gib + vps.data_disk_gib)
    if to_host is not None:
        pool = [c for c in candidates(req.session) if c.host_id != vps.host_id]
        target = find_host(req.session, to_host)
        if target.id == vps.host_id:
            raise InvalidRequest(f"to_host: the VPS is on {target.name} already")
        chosen = next((c for c in pool if c.host_id == target.id), None)
        if chosen is None:
            raise InsufficientCapacity(f"host {target.name} takes no VPS now (it is {target.state})")
        if not fits(chosen, want, policy(req.settings)):
            raise InsufficientCapacity(f"host {target.name} cannot hold {want.vcpus} vCPU, {want.memory_mib} MiB, "
                                       f"{want.disk_gib} GiB more")
    else:
        # R2-locations: the VPS stays in the site the client ordered it in (staff naming a host
        # of another site move it there on purpose: the events say so).
        avoid = hosts_of_group(req.session, vps.customer_id, vps.placement_group) | {vps.host_id}
        chosen = best_host(req.session, want, policy(req.settings), site=source.site, avoid=avoid)
    address = ipv4_address(vps)
    if address:
        # The guest keeps its address: no VPS on the target may hold it.
        for other in req.session.exec(select(Vps).where(Vps.host_id == chosen.host_id, Vps.id != vps.id,
                                                        col(Vps.status).not_in(NOT_ALLOCATED))).all():
            if ipv4_address(other) == address:
                raise Conflict(f"host {chosen.name} has a VPS at {address} already; choose another host")
    return chosen


def plan_for(req: Request, params: MigrateParams) -> MigratePlan:
    vps = req.vps
    assert vps is not None
    if vps.host_id is None:
        raise InvalidRequest("the VPS is on no host")
    source = req.session.get(Host, vps.host_id)
    assert source is not None
    chosen = choose_target(req, vps, params.to_host)
    if params.live:
        target = req.session.get(Host, chosen.host_id)
        assert target is not None
        if vps.status not in (VpsStatus.running, VpsStatus.cut_off):
            raise InvalidRequest(f"live: the VPS is {vps.status.value}; a live migration moves a running guest")
        unreachable = [h.name for h in (source, target) if not h.migration_address]
        if unreachable:
            raise InvalidRequest(f"live: host {', '.join(unreachable)} has no migration address (where the other "
                                 "host's QEMU reaches it); ask with live=false to move it cold")
    return MigratePlan(from_host_id=vps.host_id, to_host_id=chosen.host_id, to_host=chosen.name,
                       to_site=chosen.site, from_site=source.site, mode="live" if params.live else "cold")


def _plan(ctx: Context) -> MigratePlan:
    return ctx.plan(MigratePlan)


def _live(ctx: Context) -> bool:
    """A live move (read from the raw plan: evacuate shares steps with its own plan)."""
    return (ctx.params.get(PLAN) or {}).get("mode") == "live"


def _in_use(ctx: Context) -> set[str]:
    """The volumes a running guest writes to (root and data disks): a live migration mirrors them."""
    vps = ctx.vps()
    return {vps.root_volume, *(d["volume"] for d in vps.data_disks)}


def host_of(ctx: Context, host_id: int) -> Host:
    with session_scope(ctx.engine) as session:
        host = session.get(Host, host_id)
        if host is None:
            raise OperationFailed(f"host {host_id} is no longer registered")
        session.expunge(host)
        return host


def _driver(ctx: Context, host: Host) -> HypervisorDriver:
    return ctx.drivers.for_host(host)


def driver_of(ctx: Context, host_id: int) -> HypervisorDriver:
    return _driver(ctx, host_of(ctx, host_id))


def _volumes(ctx: Context, driver: HypervisorDriver, host: Host) -> list[tuple[str, str]]:
    """Every volume of the VPS on ``host``: (pool, name), in its storage and backup pools (not
    the replicas of its backups a host may hold for it: they stay where they are)."""
    prefix = ctx.vps().volume_prefix
    return [(pool, name) for pool in (host.pool_name, ctx.settings.hosts.backup_pool)
            for name in driver.list_volumes(pool) if name.startswith(prefix) and not replicas.is_replica(name)]


def address_free_on_target(ctx: Context) -> None:
    """The target's DHCP server must be able to give the guest its address: one it still leases
    to another MAC (a guest that left that host, or was deleted, within the lease time) it gives to
    no other until the lease ends, the pinned entry notwithstanding.  Checked before the guest is
    stopped and again before the switch, so the move fails with nothing moved rather than with
    the guest on the target without its address."""
    vps = ctx.vps()
    address = ipv4_address(vps)
    if address is None or vps.host_id != _plan(ctx).from_host_id:
        return
    target = host_of(ctx, _plan(ctx).to_host_id)
    lease = _driver(ctx, target).lease_of(target.network_name, address)
    if lease is not None and lease.mac != mac_of(vps).lower():
        until = lease.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise OperationFailed(f"{address} is leased on {target.name} to {lease.mac} until {until}: its DHCP server "
                              f"would not give the guest its address there; nothing was moved, move it after that")


def stop_source(ctx: Context) -> str:
    address_free_on_target(ctx)
    vps = ctx.vps()
    if WAS_RUNNING not in ctx.params:
        info = _driver(ctx, host_of(ctx, _plan(ctx).from_host_id)).domain(vps.id)
        ctx.remember(**{WAS_RUNNING: info is not None and info.state != DomainState.shutoff})
    if vps.host_id != _plan(ctx).from_host_id:
        return "already on the target"
    if _live(ctx):
        return "live: the guest keeps running"
    return power.power_off(ctx, force=False)


def image_on_target(ctx: Context) -> str:
    return provision.ensure_image(ctx, ctx.vps().image, host=host_of(ctx, _plan(ctx).to_host_id))


def copy_volumes(ctx: Context) -> str:
    p = _plan(ctx)
    source, target = host_of(ctx, p.from_host_id), host_of(ctx, p.to_host_id)
    src, dst = _driver(ctx, source), _driver(ctx, target)
    copied = list(ctx.params.get(COPIED) or [])
    done = []
    for pool, name in _volumes(ctx, src, source):
        key = f"{pool}/{name}"
        if key in copied:
            continue
        config = src.describe_volume(pool, name)
        if config is None:
            continue
        dst.delete_volume(pool, name)  # a copy a crash left half-made
        if _live(ctx) and name in _in_use(ctx):
            # Written to while it runs: made empty here, standalone (no backing file: the live
            # migration mirrors the whole chain into it, and a block the guest zeroed over the
            # image must not show the image's again).
            dst.create_volume(pool, VolumeConfig(name=name, capacity_bytes=config.capacity_bytes, format=config.format))
            copied.append(key)
            ctx.remember(**{COPIED: copied})
            done.append(f"{name} (made for the mirror)")
            continue
        reported = [0]

        def progress(written: int, name: str = name, reported: list[int] = reported) -> None:
            if written - reported[0] >= PROGRESS_EVERY:
                reported[0] = written
                ctx.check_lease()
                with session_scope(ctx.engine) as session:
                    session.add(JobEvent(job_id=ctx.job.id, vps_id=ctx.job.vps_id, step="copy_volumes",
                                         status="progress", actor=ctx.worker_id,
                                         message=f"{name}: {written} bytes copied"))

        written = dst.receive_volume(pool, config, src.download_volume(pool, name), progress)
        copied.append(key)
        ctx.remember(**{COPIED: copied})
        done.append(f"{name} ({written} bytes)")
    root = ctx.vps().root_volume
    if dst.describe_volume(target.pool_name, root) is None:
        # Neither copied now nor by an earlier attempt: the source lost it (removed behind the
        # orchestrator's back).  Recording the VPS on the target would leave it without a disk.
        raise OperationFailed(f"the root disk {root} is neither on {source.name} nor on {target.name}: "
                              "nothing to move; the VPS stays recorded where it was")
    return f"copied to {target.name}: " + (", ".join(done) or "nothing left to copy")


def switch_host(ctx: Context) -> str:
    """From here the record says the VPS is on the target; its address is pinned there."""
    p = _plan(ctx)
    target, vps = host_of(ctx, p.to_host_id), ctx.vps()
    address_free_on_target(ctx)
    address = ipv4_address(vps)
    if address:  # first: a target that cannot give the guest its address refuses before the switch
        _driver(ctx, target).pin_address(target.network_name, mac_of(vps), address)
    if _live(ctx) and vps.host_id == p.from_host_id:
        _move_live(ctx, target)
    ctx.update_vps(host_id=p.to_host_id)
    ctx.forget_host()
    moved = f" (site {p.from_site} -> {p.to_site}, R2-locations)" if p.to_site != p.from_site else ""
    return f"recorded on {target.name}{moved}" + (f", {address} pinned there" if address else "")


def _move_live(ctx: Context, target: Host) -> None:
    """The guest goes on running on the target (libvirt live migration, disks mirrored).  Run
    again after a crash: a guest found running on the target already is not moved twice."""
    p, vps = _plan(ctx), ctx.vps()
    dst = _driver(ctx, target)
    source = host_of(ctx, p.from_host_id)
    src = _driver(ctx, source)
    there = dst.domain(vps.id)
    if there is not None and there.state == DomainState.running:
        return  # it ran to the end; the source's copy goes in remove_source, never resumed
    if there is not None:
        # What an interrupted migration left on the target (an incoming domain, paused): the
        # guest is the source's; the leftover goes, and it moves again.
        dst.destroy_domain(vps.id)
        dst.undefine_domain(vps.id)
    src.resume_domain(vps.id)  # an interrupted migration may leave it paused on the source
    reported = [0]

    def progress(done: int, total: int) -> None:
        if done - reported[0] >= PROGRESS_EVERY:
            reported[0] = done
            ctx.check_lease()
            with session_scope(ctx.engine) as session:
                session.add(JobEvent(job_id=ctx.job.id, vps_id=ctx.job.vps_id, step="switch_host", status="progress",
                                     actor=ctx.worker_id, message=f"live: {done} of {total} bytes copied"))

    disks = ["vda", *(d["target"] for d in vps.data_disks)]
    src.migrate_live(vps.id, dst, f"tcp://{target.migration_address}", disks, progress,
                     timeout=ctx.settings.lifecycle.migration_timeout_seconds,
                     bandwidth_mib=ctx.settings.lifecycle.migration_bandwidth_mib)


def define_target(ctx: Context) -> str:
    return ctx.define()


def start_target(ctx: Context) -> str:
    if not ctx.params.get(WAS_RUNNING):
        return "left stopped, as it was"
    info = ctx.driver.domain(ctx.vps().id)
    if info is not None and info.state == DomainState.running:
        return "running"
    ctx.driver.start_domain(ctx.vps().id)
    return "running"


def wait_for_address(ctx: Context) -> str:
    """The guest takes its own address again on the target (pinned there by switch_host)."""
    vps = ctx.vps()
    if not ctx.params.get(WAS_RUNNING) or vps.cut_off:
        return "skipped: not running" if not ctx.params.get(WAS_RUNNING) else "skipped: network cut off"
    if _live(ctx):
        return "live: the guest kept its address and its lease (pinned on the target)"
    expected = ipv4_address(vps)
    seen: list[str] = []

    def lease() -> str | None:
        seen[:] = ctx.driver.interface_addresses(vps.id)
        if expected is None and seen:
            ctx.update_vps(addresses=seen)
            return ", ".join(seen)
        return f"{expected} again" if expected in seen else None

    try:
        return wait_until(ctx, ctx.settings.lifecycle.address_timeout_seconds, f"the guest taking {expected}", lease)
    except OperationFailed:
        if seen:
            raise OperationFailed(f"the guest took {', '.join(seen)} on {ctx.host().name} instead of its address "
                                  f"{expected}: that host's DHCP server has it leased to another") from None
        raise


def verify_ssh(ctx: Context) -> str:
    if not ctx.params.get(WAS_RUNNING):
        return "skipped: not running"
    return provision.verify_ssh(ctx)


def remove_source(ctx: Context) -> str:
    """Only now, with the VPS running (or defined) on the target: the source's copy goes."""
    p = _plan(ctx)
    source = host_of(ctx, p.from_host_id)
    src, vps = _driver(ctx, source), ctx.vps()
    info = src.domain(vps.id)
    if info is not None:
        if info.state != DomainState.shutoff:
            src.destroy_domain(vps.id)
        src.undefine_domain(vps.id)
    src.unpin_address(source.network_name, mac_of(vps))
    removed = [name for pool, name in _volumes(ctx, src, source) if src.delete_volume(pool, name)]
    return f"removed from {source.name}: domain, " + (", ".join(removed) or "no volumes")


@register
class MigrateVps(Operation[MigrateParams]):
    """Staff: move the VPS to another host (``to_host``, or the best one of its site).  Cold: the
    guest is shut down, its disks copied, and it boots on the target with the same address and
    host keys; its data stays on the source until it runs on the target."""

    kind = "migrate"
    route = "/migrate"
    params = MigrateParams
    audience = Audience.staff
    details_for_staff = True  # its events name hosts: a client sees the steps, not the messages
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.cut_off})
    steps = (
        Step("stop_source", stop_source),
        Step("image_on_target", image_on_target),
        Step("copy_volumes", copy_volumes),
        Step("switch_host", switch_host),
        Step("define_target", define_target),
        Step("start_target", start_target),
        Step("wait_for_address", wait_for_address),
        Step("verify_ssh", verify_ssh),
        Step("remove_source", remove_source),
    )

    @classmethod
    def check(cls, req: Request, params: MigrateParams) -> MigratePlan:
        return plan_for(req, params)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        """Before the switch: the VPS runs again where it was, the partial copies go.  After it,
        the VPS is the target's (its data is there whole); the source keeps its copy for staff."""
        if not ctx.planned:
            return
        p = _plan(ctx)
        vps = ctx.vps()
        if vps.host_id == p.to_host_id:
            return
        target = host_of(ctx, p.to_host_id)
        dst = _driver(ctx, target)
        for pool, name in _volumes(ctx, dst, target):
            dst.delete_volume(pool, name)
        if ctx.params.get(WAS_RUNNING):
            power.power_on(ctx)

