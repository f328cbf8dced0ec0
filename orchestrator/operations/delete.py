"""Delete a VPS: stop it, remove its domain, and discard or wipe its volumes, its backups and its
exports (R10-after: erasure is real, not a detach, and is recorded in the job's events).  Needs
``confirm_data_loss``.  Backups the client names in ``keep_backups`` stay: listed with the
client's other backups, theirs, and erased with the rest of their data under R8.7-default
(non-payment) and R10-after (the end of the contract).

Plan: destroy_domain -> undefine_domain -> discard_volumes -> discard_backups; each step is a
no-op when its object is already gone, so a delete interrupted at any point converges when run
again.  Asking twice is asking once: the pending delete is the answer.
"""

from __future__ import annotations

from pydantic import Field
from sqlmodel import Session, col, select

from orchestrator.compute.designer import mac_of
from orchestrator.core import faults
from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.errors import ContractRefusal, InvalidRequest, InvalidState
from orchestrator.core.models import Backup, Job, Vps, VpsStatus
from orchestrator.engine import jobs, measures
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Operation, Params, Plan, Step, register
from orchestrator.operations.backup import backup_volume, export_path
from orchestrator.operations.steps import replicas


class DeleteParams(Params):
    confirm_data_loss: bool = Field(default=False,
                                    description="Must be true: deleting discards the VPS's disks for good")
    keep_backups: list[str] = Field(
        default=[], max_length=50,
        description="Backups of the VPS to keep (their ids); every other backup and export is discarded. Kept "
                    "ones stay listed (GET /v1/backups) and are erased with the rest of the client's data "
                    "(R8.7-default, R10-after)")


def available_backups(session: Session, vps: Vps) -> list[Backup]:
    """The VPS's backups that hold data (the ones kept after a delete, once it is gone)."""
    return list(session.exec(select(Backup).where(Backup.vps_id == vps.id, Backup.status == "available")
                             .order_by(col(Backup.created_at))).all())


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


def discard_vps_volumes(ctx: Context, pool: str, keep: frozenset[str] = frozenset()) -> list[str]:
    """R10-after: discard (or wipe, then delete) every volume of the VPS in ``pool`` but those
    named in ``keep``; the names of those that were there."""
    vps = ctx.vps()
    wipe = ctx.settings.lifecycle.wipe_volumes_on_delete
    discarded = []
    for volume in ctx.driver.list_volumes(pool):
        # A replica of a backup (held here after the VPS moved to its host) goes with its backup.
        if volume.startswith(vps.volume_prefix) and volume not in keep and not replicas.is_replica(volume):
            if ctx.driver.delete_volume(pool, volume, wipe=wipe):
                discarded.append(volume)
            faults.during()  # a crash test's point: some volumes gone, maybe not all
    return discarded


def forget_backups(ctx: Context, keep: frozenset[str] = frozenset()) -> list[str]:
    """The VPS's backups but those in ``keep`` (ids) recorded deleted, their export files and
    their copies on other hosts removed; what was removed."""
    with session_scope(ctx.engine) as session:
        records = [r for r in session.exec(select(Backup).where(Backup.vps_id == ctx.job.vps_id,
                                                                  Backup.status != "deleted")).all()
                   if r.id not in keep]
        for record in records:
            session.expunge(record)
    removed = []
    for record in records:
        copy = replicas.drop(ctx, record)  # before the record says deleted: a retry finds it
        if copy:
            removed.append(f"copy {copy}")
        path = export_path(ctx.settings, record.id)
        if path.exists():
            path.unlink()
            removed.append(f"export file {path.name}")
    with session_scope(ctx.engine) as session:
        for record in records:
            row = session.get(Backup, record.id)
            if row is not None:
                row.status = "deleted"
                session.add(row)
    return removed


def discard_volumes(ctx: Context) -> str:
    # R10-after: the data is erased for real; the event below is the record of it.
    vps = ctx.vps()
    if vps.host_id is None:
        return "no volumes"
    how = "wiped and deleted" if ctx.settings.lifecycle.wipe_volumes_on_delete else "discarded"
    # Every volume of the VPS: root disks of every generation, seeds, kept disks, extra disks.
    done = [f"{volume} {how}" for volume in discard_vps_volumes(ctx, ctx.host().pool_name)]
    return "; ".join(done) or "no volumes left"


def discard_backups(ctx: Context) -> str:
    """R10-after: the VPS's backups and exports are its data too; the client's ``keep_backups``
    stay (volume, export file and record)."""
    vps, keep = ctx.vps(), frozenset(ctx.args(DeleteParams).keep_backups)
    pool = ctx.settings.hosts.backup_pool
    volumes = (discard_vps_volumes(ctx, pool, frozenset(backup_volume(vps, b) for b in keep))
               if vps.host_id is not None else [])
    files = forget_backups(ctx, keep)
    kept = [f"kept {backup_id}" for backup_id in sorted(keep)]
    return "; ".join(volumes + files + kept) or "no backups"


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
        Step("discard_backups", discard_backups),
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
        if params.keep_backups and measures.Measure.termination in measures.standing(req.session, req.vps):
            raise ContractRefusal("R10-after", "the contract has ended: no backup is kept past the VPS")
        available = {backup.id for backup in available_backups(req.session, req.vps)}
        unknown = [backup_id for backup_id in params.keep_backups if backup_id not in available]
        # At the job's start a kept backup discarded meanwhile is simply not there to keep.
        if unknown and not req.at_start:
            raise InvalidRequest(f"keep_backups: no available backup {unknown[0][:64]!r} of this VPS")
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
