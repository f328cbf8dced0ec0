"""Erase a VPS's data for good (R10-after, R8.7-default): power off, undefine, discard every
volume of the VPS (root disks of every generation, seeds, data disks) and its backups in the
backup pool, remove its exported files, and record the erasure (which volumes, why, which job).

Asked by the non-payment workflow as a deadline job five days ahead (orchestrator/workflows/
nonpayment.py): when it starts, that workflow recomputes the deadline from the formal notice's
actual sending time (R8.7-default: not before five days after it) and makes it wait again if that
is later, or refuses it once the default is settled.

Plan: destroy_domain -> undefine_domain -> discard_volumes -> discard_backups -> record_erasure;
every step is a no-op on what is already gone, so an erasure interrupted anywhere converges.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlmodel import select

from orchestrator.core.clock import utcnow
from orchestrator.core.db import session_scope
from orchestrator.core.models import Erasure, VpsStatus
from orchestrator.engine.context import Context
from orchestrator.engine.operation import Audience, Operation, Params, Step, register
from orchestrator.operations.delete import destroy_domain, discard_vps_volumes, forget_backups, undefine_domain


class EraseParams(Params):
    reason: str = Field(default="erasure", max_length=200, description="Why, as the Erasure record says it")


class Erased(BaseModel):
    """The volumes named in the job before they go (a worker killed halfway leaves a complete record)."""

    erased_volumes: list[str] = []


def _remember(ctx: Context, volumes: list[str]) -> None:
    erased = ctx.args(Erased).erased_volumes
    ctx.remember(erased_volumes=erased + [v for v in volumes if v not in erased])


def _discard(ctx: Context, pool: str) -> list[str]:
    # Named in the job before they go, so a worker killed halfway leaves a complete record.
    prefix = ctx.vps().volume_prefix
    _remember(ctx, [v for v in ctx.driver.list_volumes(pool) if v.startswith(prefix)])
    return discard_vps_volumes(ctx, pool)


def discard_volumes(ctx: Context) -> str:
    """R10-after: every disk of the VPS, discarded (or wiped, ``wipe_volumes_on_delete``)."""
    if ctx.vps().host_id is None:
        return "never placed: no volumes"
    return "; ".join(_discard(ctx, ctx.host().pool_name)) or "no volumes left"


def discard_backups(ctx: Context) -> str:
    """R10-after: the VPS's backups and exports are its data too (those kept after a delete
    included)."""
    vps = ctx.vps()
    volumes = _discard(ctx, ctx.settings.hosts.backup_pool) if vps.host_id is not None else []
    files = forget_backups(ctx)
    return "; ".join(volumes + files) or "no backups"


def record_erasure(ctx: Context) -> str:
    vps = ctx.vps()
    with session_scope(ctx.engine) as session:
        existing = session.exec(select(Erasure).where(Erasure.job_id == ctx.job.id)).first()
        if existing is None:
            reason = ctx.args(EraseParams).reason
            session.add(Erasure(vps_id=vps.id, customer_id=vps.customer_id, reason=reason[:64],
                                volumes=ctx.args(Erased).erased_volumes, job_id=ctx.job.id))
    return f"erasure recorded: {len(ctx.args(Erased).erased_volumes)} volume(s)"


@register
class EraseVps(Operation[EraseParams]):
    kind = "erase"
    params = EraseParams
    audience = Audience.system
    rule = "R10-after"
    # deleted: a VPS gone but for the backups its client kept (R10-after: they go with the rest)
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.suspended, VpsStatus.cut_off,
                              VpsStatus.error, VpsStatus.deleting, VpsStatus.deleted})
    steps = (
        Step("destroy_domain", destroy_domain),
        Step("undefine_domain", undefine_domain),
        Step("discard_volumes", discard_volumes),
        Step("discard_backups", discard_backups),
        Step("record_erasure", record_erasure),
    )

    @classmethod
    def begin(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleting)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleted, addresses=[], deleted_at=ctx.vps().deleted_at or utcnow(),
                       suspend_reason=None, suspended_by=None)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        if ctx.vps().status == VpsStatus.deleting:  # begun: the data may be partly gone
            ctx.update_vps(status=VpsStatus.error, error=f"erase failed: {error}"[:2000])
