"""Per-customer quotas: how many VPS, vCPUs, MiB of memory and GiB of disk a customer may hold,
and how many backups and exports they may keep and have made at once (each is a full copy of a
disk, on the backup pool and, for an export, in the control plane's state directory).

Staff set a customer's quota (``Quota``: a field left empty takes the default setting,
``VPSCTL_QUOTA_*``).  Quotas bound what a customer asks for themself: creating a VPS, a change
order (bigger sizes, a data disk), a backup or an export.  Staff acting for a customer, and the
orchestrator's own workflows (a compromise's backup, the exports of a reversibility), are not
held by them: staff set the quotas.

Usage is counted from the records, in the asking transaction, so two requests at once cannot
both take the last unit: on PostgreSQL the customer's quota row is locked first (created when
missing), on SQLite every transaction is serial already."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import Session, col, func, select

from orchestrator.core.auth import Principal
from orchestrator.core.errors import QuotaExceeded
from orchestrator.core.models import Backup, Job, JobStatus, Quota, Vps, VpsStatus
from orchestrator.core.settings import Settings

UNITS = {"memory_mib": " MiB", "disk_gib": " GiB"}
BACKUP_KINDS = ("backup",)  # the job kind that makes backups and exports


@dataclass(frozen=True)
class Amounts:
    """An amount of each quota'd thing (a quota, a usage, or a request's increase)."""

    vps: int = 0
    vcpus: int = 0
    memory_mib: int = 0
    disk_gib: int = 0
    backups: int = 0
    active_backups: int = 0


def limits(session: Session, settings: Settings, customer_id: int) -> Amounts:
    """The customer's quota: what staff set, the default setting elsewhere."""
    row = session.get(Quota, customer_id)
    defaults = settings.quotas
    return Amounts(**{name: (getattr(row, name) if row is not None and getattr(row, name) is not None
                             else getattr(defaults, name)) for name in asdict(Amounts())})


def usage(session: Session, customer_id: int) -> Amounts:
    """What the customer holds now: VPS not deleted (with their data disks), backups kept or being
    made, backup jobs waiting or running."""
    held = session.exec(select(Vps).where(Vps.customer_id == customer_id, Vps.status != VpsStatus.deleted)).all()
    kept = session.exec(select(func.count()).select_from(Backup).join(Vps, col(Vps.id) == col(Backup.vps_id))
                        .where(Vps.customer_id == customer_id, col(Backup.status).in_(("creating", "available")))
                        ).one()
    backup_jobs = session.exec(select(Job).join(Vps, col(Vps.id) == col(Job.vps_id))
                               .where(Vps.customer_id == customer_id, col(Job.kind).in_(BACKUP_KINDS),
                                      col(Job.status).in_((JobStatus.queued, JobStatus.running)))).all()
    waiting = sum(1 for job in backup_jobs if job.status == JobStatus.queued)  # no Backup row yet
    return Amounts(
        vps=len(held),
        vcpus=sum(v.vcpus for v in held),
        memory_mib=sum(v.memory_mib for v in held),
        disk_gib=sum(v.disk_gib + sum(int(d["size_gib"]) for d in v.data_disks) for v in held),
        backups=int(kept) + waiting,
        active_backups=len(backup_jobs),
    )


def _lock(session: Session, customer_id: int) -> None:
    """The customer's quota row, locked until the transaction ends (created empty when missing):
    two requests of one customer count their usage one after the other."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already serialises every writing transaction
    session.execute(pg_insert(Quota).values(customer_id=customer_id, updated_by="").on_conflict_do_nothing())
    session.exec(select(Quota).where(Quota.customer_id == customer_id).with_for_update()).one()


def check(session: Session, settings: Settings, principal: Principal, customer_id: int, more: Amounts) -> None:
    """Raise QuotaExceeded when ``more`` on top of the customer's usage passes their quota (only for
    a customer's own request; growing nothing is never refused)."""
    if principal.is_staff or principal.customer_id is None:
        return
    _lock(session, customer_id)
    quota, used = limits(session, settings, customer_id), usage(session, customer_id)
    for name, extra in asdict(more).items():
        if extra <= 0:
            continue
        limit, wanted = getattr(quota, name), getattr(used, name) + extra
        if wanted > limit:
            raise QuotaExceeded(name, limit, wanted, UNITS.get(name, ""))


def set_quota(session: Session, customer_id: int, values: dict[str, int | None], by: str) -> Quota:
    """Staff: the customer's quota, the fields given replaced (None: back to the default)."""
    row = session.get(Quota, customer_id) or Quota(customer_id=customer_id)
    for name, value in values.items():
        setattr(row, name, value)
    row.updated_by = by
    session.add(row)
    session.flush()
    return row

