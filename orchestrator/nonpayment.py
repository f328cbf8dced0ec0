"""Non-payment, from an overdue invoice to erasure and termination, and back on payment.

R8.7-default: on late or rejected payment the service is interrupted (the VPS suspended by staff,
so the client cannot resume it), a formal notice is emailed, and the server's data may be erased
five days after that notice was sent. R10-nonpayment: the contract ends by right fifteen days
after a formal notice without effect; R10-after: every service stops then.

Both deadlines are durable jobs queued with the default (orchestrator/operations/erase and
terminate). They are scheduled from the queueing time and, when they start, recompute their
deadline from the notice's actual sending time (``Outbox.sent_at``) and wait again if needed.
Payment before a deadline calls off what has not run yet and resumes the VPS; what already ran
(an erasure) is not undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from orchestrator import invoicing, jobs
from orchestrator.auth import Principal
from orchestrator.clock import utcnow
from orchestrator.contract.calendar import to_paris
from orchestrator.contract.deadlines import erasure_not_before, termination_for_nonpayment_at
from orchestrator.errors import Conflict, ContractRefusal
from orchestrator.models import Invoice, Job, JobStatus, Outbox, PaymentDefault, Subscription, Vps, VpsStatus
from orchestrator.notify import enqueue
from orchestrator.operations import erase, resume, suspend, terminate
from orchestrator.operations.base import request
from orchestrator.settings import Settings, get_settings

SUSPEND_REASON = "nonpayment"


@dataclass(frozen=True)
class Declared:
    default: PaymentDefault
    suspended: list[str]
    erasure_jobs: list[str]
    termination_job: str | None
    erasure_not_before: datetime  # from the queueing time; recomputed from the sending by the jobs
    termination_at: datetime


def open_default(session: Session, invoice_id: str) -> PaymentDefault | None:
    return session.exec(select(PaymentDefault).where(PaymentDefault.invoice_id == invoice_id,
                                                     PaymentDefault.status == "open")).first()


def notice_sent_at(session: Session, default: PaymentDefault) -> datetime | None:
    """R8.7-default, R10-nonpayment: the deadlines count from the SMTP server's acceptance."""
    notice = session.get(Outbox, default.notice_outbox_id) if default.notice_outbox_id else None
    return notice.sent_at if notice is not None else None


def affected_vps(session: Session, invoice: Invoice) -> list[Vps]:
    """Every VPS of the invoice's subscription (or the invoice's own VPS)."""
    ids: list[str] = []
    if invoice.subscription_id:
        subscription = session.get(Subscription, invoice.subscription_id)
        if subscription is not None and subscription.vps_id:
            ids.append(subscription.vps_id)
    if invoice.vps_id and invoice.vps_id not in ids:
        ids.append(invoice.vps_id)
    found = [session.get(Vps, vps_id) for vps_id in ids]
    return [v for v in found if v is not None and v.status not in (VpsStatus.deleting, VpsStatus.deleted)]


def _rejected_payment(session: Session, invoice: Invoice) -> bool:
    return session.exec(select(Invoice).where(Invoice.purpose == "payment_incident",
                                              Invoice.purpose_ref == invoice.id)).first() is not None


def declare(session: Session, settings: Settings, principal: Principal, invoice: Invoice) -> Declared:
    """R8.7-default: open a payment default on an unpaid invoice past its due date (or whose
    payment was rejected): suspend its VPS, queue the formal notice, the erasure of each VPS not
    before five days after the notice and the termination fifteen days after it (R10-nonpayment)."""
    # One default per invoice even when staff and the billing run act at once (PostgreSQL locks
    # the row; SQLite's write transactions are serial anyway).
    session.exec(select(Invoice).where(Invoice.id == invoice.id).with_for_update()).first()
    session.refresh(invoice)
    if invoice.status != "open":
        raise Conflict(f"invoice {invoice.number} is {invoice.status}")
    if open_default(session, invoice.id) is not None:
        raise Conflict(f"invoice {invoice.number} is already in default")
    today = to_paris(utcnow()).date()
    rejected = _rejected_payment(session, invoice)
    if invoice.due_on is not None and today <= invoice.due_on and not rejected:
        raise ContractRefusal("R8.7-default", f"invoice {invoice.number} is due on {invoice.due_on.isoformat()} "
                                              "and no payment of it was rejected: it is not late")
    default = PaymentDefault(invoice_id=invoice.id, customer_id=invoice.customer_id, opened_by=str(principal))
    session.add(default)
    session.flush()
    targets = affected_vps(session, invoice)
    suspended: list[str] = []
    for vps in targets:
        if vps.status in suspend.SuspendVps.allowed_from:
            request(session, settings, principal, vps, suspend.SuspendVps,
                    {"reason": SUSPEND_REASON, "default_id": default.id}, commit=False)
            suspended.append(vps.id)
    notice = enqueue(session, invoice.customer_id, "payment_formal_notice",
                     {"invoice_ref": invoice.number, "amount_due_eur": invoice.total_ttc,
                      "due_date": invoice.due_on or today, "vps_names": [v.name for v in targets],
                      "rejected_payment": rejected, "service_interrupted": bool(suspended)},
                     vps_id=targets[0].id if targets else None, settings=settings)
    default.notice_outbox_id = notice.id
    session.add(default)
    now = utcnow()
    erase_at, end_at = erasure_not_before(now), termination_for_nonpayment_at(now)
    erasures = [request(session, settings, principal, vps, erase.EraseVps,
                        {"reason": "nonpayment", "default_id": default.id}, scheduled_at=erase_at, commit=False).id
                for vps in targets]
    termination: str | None = None
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if subscription is not None and targets:
        termination = request(session, settings, principal, targets[0], terminate.TerminateSubscription,
                              {"subscription_id": subscription.id, "reason": "nonpayment",
                               "default_id": default.id}, scheduled_at=end_at, commit=False).id
    session.commit()
    jobs.notify()
    return Declared(default, suspended, erasures, termination, erase_at, end_at)


def _jobs_of(session: Session, default: PaymentDefault) -> list[Job]:
    rows = session.exec(select(Job).where(col(Job.kind).in_(("suspend", "erase", "terminate")),
                                          col(Job.status).in_(jobs.ACTIVE))).all()
    return [job for job in rows if job.params.get("default_id") == default.id]


@invoicing.on_paid("*")
def settle(session: Session, invoice: Invoice, principal: Principal) -> None:
    """R8.7-default: a payment before the deadlines calls off the erasure and the termination not
    yet run and resumes the suspended VPS. After an erasure nothing is undone: the data is gone
    and the termination stays due (the service can no longer be provided)."""
    default = open_default(session, invoice.id)
    if default is None:
        return
    erasures = session.exec(select(Job).where(Job.kind == "erase", col(Job.status).in_(
        (JobStatus.running, JobStatus.succeeded)))).all()
    erased = any(job.params.get("default_id") == default.id for job in erasures)
    cancelled_suspend: set[str] = set()
    for job in _jobs_of(session, default):
        if job.kind == "terminate" and erased:
            continue
        if jobs.cancel(session, job, f"invoice {invoice.number} paid", str(principal)) and job.kind == "suspend":
            cancelled_suspend.add(job.vps_id or "")
    default.status, default.settled_at = "settled", utcnow()
    session.add(default)
    for vps in affected_vps(session, invoice):
        suspending = vps.id not in cancelled_suspend and any(
            j.kind == "suspend" for j in jobs.pending(session, vps.id, {"suspend"}))
        if suspending or (vps.status == VpsStatus.suspended and vps.suspend_reason == SUSPEND_REASON):
            request(session, get_settings(), principal, vps, resume.ResumeVps, {}, commit=False,
                    scheduled_at=utcnow() if suspending else None)
    session.flush()
