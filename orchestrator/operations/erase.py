"""Erase a VPS's data for good (R10-after, R8.7-default): power off, undefine, discard every
volume of the VPS (root disks of every generation, seeds, data disks) and its backups in the
backup pool, remove its exported files, and record the erasure (which volumes, why, which job).

A deadline job: queued with a payment default five days ahead, it recomputes its deadline from the
formal notice's actual sending time when it starts (R8.7-default: not before five days after the
notice was sent) and waits again if that is later. It refuses to run once the default is settled.

Plan: destroy_domain -> undefine_domain -> discard_volumes -> discard_backups -> record_erasure;
every step is a no-op on what is already gone, so an erasure interrupted anywhere converges.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from orchestrator.clock import utcnow
from orchestrator.contract.deadlines import check_erasure, erasure_not_before
from orchestrator.db import session_scope
from orchestrator.errors import OperationFailed
from orchestrator.models import Backup, Erasure, PaymentDefault, VpsStatus
from orchestrator.operations.backup import export_path
from orchestrator.operations.base import Context, Deferred, Operation, Step, register
from orchestrator.operations.delete import destroy_domain, discard_vps_volumes, undefine_domain

NOTICE_RECHECK = timedelta(minutes=1)  # the formal notice is not sent yet: look again this much later


def _remember(ctx: Context, volumes: list[str]) -> None:
    erased = list(ctx.params.get("erased_volumes", []))
    ctx.update_params(erased_volumes=erased + [v for v in volumes if v not in erased])


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
    """R10-after: the VPS's backups and exports are its data too."""
    vps = ctx.vps()
    volumes = _discard(ctx, ctx.settings.backup_pool) if vps.host_id is not None else []
    files = []
    with session_scope(ctx.engine) as session:
        for record in session.exec(select(Backup).where(Backup.vps_id == vps.id)).all():
            path = export_path(ctx.settings, record.id)
            if path.exists():
                path.unlink()
                files.append(path.name)
            record.status = "deleted"
            session.add(record)
    return "; ".join(volumes + [f"export file {f}" for f in files]) or "no backups"


def record_erasure(ctx: Context) -> str:
    vps = ctx.vps()
    with session_scope(ctx.engine) as session:
        existing = session.exec(select(Erasure).where(Erasure.job_id == ctx.job.id)).first()
        if existing is None:
            reason = ctx.params.get("reason", "erasure")
            if ctx.params.get("default_id"):
                reason = f"{reason} (R8.7-default, payment default {ctx.params['default_id']})"
            session.add(Erasure(vps_id=vps.id, customer_id=vps.customer_id, reason=reason[:64],
                                volumes=list(ctx.params.get("erased_volumes", [])), job_id=ctx.job.id))
    return f"erasure recorded: {len(ctx.params.get('erased_volumes', []))} volume(s)"


@register
class EraseVps(Operation):
    kind = "erase"
    allowed_from = frozenset({VpsStatus.running, VpsStatus.stopped, VpsStatus.suspended, VpsStatus.cut_off,
                              VpsStatus.error, VpsStatus.deleting})
    steps = (
        Step("destroy_domain", destroy_domain),
        Step("undefine_domain", undefine_domain),
        Step("discard_volumes", discard_volumes),
        Step("discard_backups", discard_backups),
        Step("record_erasure", record_erasure),
    )

    @classmethod
    def begin(cls, ctx: Context) -> None:
        default_id = ctx.params.get("default_id")
        if default_id and not ctx.job.steps_done:
            from orchestrator.nonpayment import notice_sent_at

            with session_scope(ctx.engine) as session:
                default = session.get(PaymentDefault, default_id)
                if default is None or default.status != "open":
                    raise OperationFailed("the payment default is settled: nothing is erased")
                sent = notice_sent_at(session, default)
            if sent is None:
                raise Deferred(utcnow() + NOTICE_RECHECK, "the formal notice is not sent yet")
            not_before = erasure_not_before(sent)
            if utcnow() < not_before:
                raise Deferred(not_before, "R8.7-default: five days after the formal notice was sent")
            check_erasure(sent, utcnow())
        ctx.update_vps(status=VpsStatus.deleting)

    @classmethod
    def succeed(cls, ctx: Context) -> None:
        ctx.update_vps(status=VpsStatus.deleted, addresses=[], deleted_at=utcnow(), suspend_reason=None,
                       suspended_by=None)

    @classmethod
    def rollback(cls, ctx: Context, error: Exception) -> None:
        if ctx.vps().status == VpsStatus.deleting:  # begun: the data may be partly gone
            ctx.update_vps(status=VpsStatus.error, error=f"erase failed: {error}"[:2000])
