"""A VPS reported hacked (R6.2-notice, R5.5-cutoff): optional immediate cut-off, the notice to
the client, and the reinstall: a deadline job scheduled at the report, run not before three jours
ouvrés after the notice was actually sent (recomputed from the outbox's ``sent_at`` when it
starts), earlier only once the client's written agreement is recorded.

R6.2-backup, R6.2-transfer: a backup of the hacked system, and the transfer of its data to the new
one, are made only when the client asked and paid for them: each is invoiced, the backup starts
once its invoice is paid, and the reinstall waits for both (it never destroys data the client has
ordered a copy of).  The backup is an export the client downloads; the transfer keeps the old
disk and attaches it to the new system as a data disk.  R6.2-reinstall: the OS of the order,
new host keys, root access for the keys the client gives (or those on record)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from sqlmodel import Session, col, select

from orchestrator.compute.designer import next_disk_target
from orchestrator.contract.billing import Line, to_cents
from orchestrator.contract.calendar import BusinessCalendar, to_paris
from orchestrator.contract.deadlines import check_reinstall, reinstall_not_before
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import locked
from orchestrator.core.errors import Conflict, InvalidRequest, NotFound
from orchestrator.core.models import Backup, Compromise, Image, Invoice, Job, JobStatus, Outbox, Role, Vps
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Deferred, request
from orchestrator.notify import enqueue
from orchestrator.operations.backup import BackupParams, BackupVps
from orchestrator.operations.cutoff import CutOffParams, CutOffVps
from orchestrator.operations.disks import AttachDisk, AttachParams, DataDisk
from orchestrator.operations.reinstall import ReinstallBody, ReinstallVps, RootDiskState, check_keys
from orchestrator.workflows import invoicing

PAYMENT_WAIT = timedelta(hours=1)  # how often a reinstall waiting for a payment looks again
NOTICE_WAIT = timedelta(minutes=5)  # ... for the notice to leave the outbox
BACKUP_WAIT = timedelta(seconds=30)  # ... for the paid backup to finish
TRANSFER = Principal(Role.automation, None, "R6.2-transfer")  # who attaches the old disk to the new system
ServiceKind = Literal["backup", "transfer"]


def calendar(settings: Settings) -> BusinessCalendar:
    return BusinessCalendar(settings.contract.calendar_subdivision or None)


def open_compromise(session: Session, vps: Vps) -> Compromise | None:
    return session.exec(
        select(Compromise).where(Compromise.vps_id == vps.id, col(Compromise.resolved_at).is_(None))
        .order_by(col(Compromise.reported_at).desc())
    ).first()


def notice_time(session: Session, record: Compromise) -> datetime:
    """When the notice was sent; until it is, the deadline counts from now (it can only move later)."""
    outbox = session.get(Outbox, record.notice_outbox_id) if record.notice_outbox_id else None
    return outbox.sent_at if outbox is not None and outbox.sent_at is not None else utcnow()


CAUSE = "compromise"


def cause(record: Compromise) -> str:
    return jobs.cause(CAUSE, record.id)


def report(session: Session, settings: Settings, principal: Principal, vps: Vps, details: str,
           cut_off_now: bool, ssh_keys: list[str] | None = None) -> tuple[Compromise, datetime]:
    """Record the report, cut the network if asked (R5.5-cutoff), queue the notice (R6.2-notice)
    and schedule the reinstall with the OS of the order (R6.2-reinstall), in the caller's
    transaction."""
    if open_compromise(session, vps) is not None:
        raise Conflict("this VPS is already reported as compromised")
    record = Compromise(vps_id=vps.id, reported_by=str(principal), details=details, image=vps.image)
    session.add(record)
    session.flush()
    asked = Request(session, settings, principal, vps, cause=cause(record))
    if cut_off_now and not vps.cut_off:
        request(asked, CutOffVps, CutOffParams(reason="hacked", notice=False))
    image = session.get(Image, vps.image)
    notice = enqueue(session, vps.customer_id, "compromise_notice",
                     {"vps_name": vps.name, "vps_id": vps.id, "os": image.os if image else vps.image,
                      "details": details, "detected_at": utcnow(), "cut_off": cut_off_now or vps.cut_off},
                     vps_id=vps.id, settings=settings)
    not_before = reinstall_not_before(utcnow(), calendar(settings))
    # R6.2-reinstall: the OS of the order, root for the keys given (default: those on record)
    params = ReinstallBody(image=vps.image, ssh_keys=ssh_keys or vps.ssh_authorized_keys, confirm_data_loss=True)
    job = request(asked, ReinstallVps, params, scheduled_at=not_before)
    record.notice_outbox_id = notice.id
    record.reinstall_job_id = job.id
    session.add(record)
    return record, not_before


def record_agreement(session: Session, vps: Vps, note: str) -> Compromise:
    record = open_compromise(session, vps)
    if record is None:
        raise NotFound("no open compromise report for this VPS")
    record.customer_agreement_at = utcnow()
    record.customer_agreement_note = note
    session.add(record)
    _reschedule(session, record, utcnow())  # the reinstall may run now (paid services still waited for)
    return record


def _reinstall_job(session: Session, record: Compromise) -> Job | None:
    job = session.get(Job, record.reinstall_job_id) if record.reinstall_job_id else None
    return job if job is not None and job.status == JobStatus.queued and not job.steps_done else None


def _reschedule(session: Session, record: Compromise, at: datetime) -> None:
    job = _reinstall_job(session, record)
    if job is not None and job.scheduled_at is not None and job.scheduled_at > at:
        jobs.reschedule(session, job, at)


def set_reinstall_keys(session: Session, settings: Settings, vps: Vps, ssh_keys: list[str]) -> Compromise:
    """R6.2-reinstall, R6.1-root: the client gives the public keys of the new system's root (the
    reinstall's check reads them again when it starts)."""
    record = open_compromise(session, vps)
    if record is None:
        raise NotFound("no open compromise report for this VPS")
    job = _reinstall_job(session, record)
    if job is None:
        raise Conflict("the reinstall has already started")
    job.params = {**job.params, "ssh_keys": check_keys(settings, ssh_keys)}
    session.add(job)
    return record


def order_service(session: Session, principal: Principal, vps: Vps, kind: ServiceKind, price_ht: Decimal,
                  request_note: str) -> Invoice:
    """R6.2-backup, R6.2-transfer: the client asked by email for a backup (or a transfer of their
    data to the new system) and staff acknowledged it: invoice it; it happens once paid."""
    record = open_compromise(session, vps)
    if record is None:
        raise NotFound("no open compromise report for this VPS")
    record = locked(session, record)  # one order of each kind, even asked twice at once
    if _reinstall_job(session, record) is None:
        raise Conflict("the reinstall has already started: nothing left to save")
    field = "backup_invoice_id" if kind == "backup" else "transfer_invoice_id"
    earlier = session.get(Invoice, getattr(record, field)) if getattr(record, field) else None
    if earlier is not None and earlier.status != "cancelled":
        raise Conflict(f"a {kind} is already ordered (invoice {earlier.number})")
    if price_ht <= 0:
        raise InvalidRequest("the price of the service must be more than zero")
    label = ("backup of the hacked system before its reinstall" if kind == "backup"
             else "transfer of data from the hacked system to the new one")
    invoice = invoicing.issue(session, customer_id=vps.customer_id, purpose=f"compromise_{kind}", vps_id=vps.id,
                              purpose_ref=record.id,
                              lines=[Line(f"R6.2-{kind}", f"{label} ({vps.name}; {request_note})", to_cents(price_ht))])
    setattr(record, field, invoice.id)
    session.add(record)
    return invoice


def _backup_note(record: Compromise) -> str:
    return f"R6.2-backup: compromise {record.id}"


@invoicing.on_paid("compromise_backup")
def _backup_paid(session: Session, settings: Settings, invoice: Invoice, principal: Principal) -> None:
    """R6.2-backup: the backup starts once its payment is received."""
    record = session.get(Compromise, invoice.purpose_ref)
    vps = session.get(Vps, record.vps_id) if record else None
    if record is None or vps is None or _reinstall_job(session, record) is None:
        return
    request(Request(session, settings, principal, vps, cause=cause(record)), BackupVps,
            BackupParams(kind="export", note=_backup_note(record)))
    _reschedule(session, record, utcnow() + BACKUP_WAIT)


@invoicing.on_paid("compromise_transfer")
def _transfer_paid(session: Session, settings: Settings, invoice: Invoice, principal: Principal) -> None:
    """R6.2-transfer: paid; the reinstall keeps the old disk for the new system."""
    record = session.get(Compromise, invoice.purpose_ref)
    if record is not None:
        _reschedule(session, record, utcnow())


@events.on_requested(ReinstallVps.kind)
def _not_before_the_notice(event: events.Requested) -> None:
    """R6.2-notice: a reinstall of a VPS reported hacked waits three jours ouvrés after the notice,
    or the client's written agreement (the compromise's own reinstall waits in ``_reinstall_gate``)."""
    req = event.request
    if req.vps is not None and (req.cause or "").partition(":")[0] != CAUSE:
        check_reinstall_allowed(req.session, req.settings, req.vps)


@events.on_started(ReinstallVps.kind)
def _reinstall_gate(ctx: Context) -> None:
    """The compromise's reinstall, when its job starts: it waits (Deferred) for the notice's
    deadline (R6.2-notice) and for the paid services the client ordered (R6.2-backup,
    R6.2-transfer); a paid transfer keeps the old disk for the new system."""
    record_id = jobs.cause_id(ctx.job, CAUSE)
    if record_id is None:
        return
    now = utcnow()
    with ctx.transaction() as session:
        record = session.get(Compromise, record_id)
        if record is None:
            raise NotFound("the compromise report is gone")
        if record.customer_agreement_at is None:
            outbox = session.get(Outbox, record.notice_outbox_id) if record.notice_outbox_id else None
            if outbox is None or outbox.sent_at is None:
                raise Deferred(now + NOTICE_WAIT, "R6.2-notice: the notice has not been sent yet")
            not_before = reinstall_not_before(outbox.sent_at, calendar(ctx.settings))
            if now < not_before:
                raise Deferred(not_before, f"R6.2-notice: three jours ouvrés after the notice sent "
                                           f"{to_paris(outbox.sent_at).isoformat()}")
        paid: dict[str, bool] = {}
        for kind, invoice_id in (("backup", record.backup_invoice_id), ("transfer", record.transfer_invoice_id)):
            invoice = session.get(Invoice, invoice_id) if invoice_id else None
            if invoice is None or invoice.status == "cancelled":
                continue
            if invoice.status != "paid":
                raise Deferred(now + PAYMENT_WAIT, f"R6.2-{kind}: the client ordered a {kind}; waiting for the "
                                                   f"payment of invoice {invoice.number}")
            paid[kind] = True
        if paid.get("backup"):
            done = session.exec(select(Backup).where(
                Backup.vps_id == record.vps_id, Backup.status == "available",
                col(Backup.note) == _backup_note(record))).first()
            if done is None:
                raise Deferred(now + BACKUP_WAIT, "R6.2-backup: the paid backup has not finished")
    if paid.get("transfer"):
        ctx.remember(keep_old_disk=True, transfer=True)


@events.on_succeeded(ReinstallVps.kind)
def _after_reinstall(ctx: Context) -> None:
    """The compromise is resolved; with a paid transfer, the old disk joins the new system."""
    record_id = jobs.cause_id(ctx.job, CAUSE)
    if record_id is None:
        return
    vps = ctx.vps()
    with ctx.transaction() as session:
        record = session.get(Compromise, record_id)
        if record is None:
            return
        if record.resolved_at is None:
            record.resolved_at = utcnow()
            session.add(record)
        kept = session.get(Backup, ctx.job.id)  # the old root disk kept by retire_old_disk
        if ctx.args(RootDiskState).transfer and kept is not None and kept.status == "available":
            disk_id = kept.id[:8]
            disk = DataDisk(id=disk_id, volume=kept.volume, size_gib=vps.disk_gib, target=next_disk_target(vps),
                            existing=True)
            kept.status, kept.note = "transferred", f"attached to the new system as disk {disk_id}"
            session.add(kept)
            # The old disk carries the old system's filesystems, labels and UUIDs: it appears only
            # once the new system has mounted its own (a cut-off VPS cannot be asked over SSH
            # whether it has booted, so this waits a boot's time).
            delay = timedelta(seconds=ctx.settings.lifecycle.transfer_attach_delay_seconds)
            request(Request(session, ctx.settings, TRANSFER, session.get(Vps, vps.id), cause=cause(record)),
                    AttachDisk, AttachParams(existing=disk), scheduled_at=utcnow() + delay)


def check_reinstall_allowed(session: Session, settings: Settings, vps: Vps) -> Compromise | None:
    """R6.2-notice: raises ContractRefusal before the deadline without the client's agreement."""
    record = open_compromise(session, vps)
    if record is not None:
        check_reinstall(notice_time(session, record), utcnow(), calendar(settings),
                        client_agreed_in_writing=record.customer_agreement_at is not None)
    return record
