"""Non-payment, from an overdue invoice to erasure and termination, and back on payment.

R8.7-default: on late or rejected payment the service is interrupted (the VPS suspended by staff,
so the client cannot resume it), a formal notice is emailed, and the server's data may be erased
five days after that notice was sent. R10-nonpayment: the contract ends by right fifteen days
after a formal notice without effect; R10-after: every service stops then.

Both deadlines are durable jobs asked with the default (``erase``, and ``terminate`` of
orchestrator/workflows/termination.py), each with the default as its cause.  They are scheduled
from the queueing time; when one starts, ``_hold_until_due`` recomputes its deadline from the
notice's actual sending time (``Outbox.sent_at``) and makes it wait again if needed, or refuses it
once the default is settled.  Payment before a deadline calls off what has not run yet and
resumes the VPS; what already ran (an erasure) is not undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from orchestrator.contract.calendar import to_paris
from orchestrator.contract.deadlines import check_erasure, erasure_not_before, termination_for_nonpayment_at
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, ContractRefusal, OperationFailed
from orchestrator.core.models import Invoice, Job, JobStatus, Outbox, PaymentDefault, Subscription, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine import events, jobs
from orchestrator.engine.context import Context, Request
from orchestrator.engine.operation import Deferred, NoParams, request
from orchestrator.notify import enqueue
from orchestrator.operations.delete import available_backups
from orchestrator.operations.erase import EraseParams, EraseVps
from orchestrator.operations.resume import ResumeVps
from orchestrator.operations.suspend import SuspendParams, SuspendVps
from orchestrator.workflows import invoicing
from orchestrator.workflows.termination import TerminateParams, TerminateSubscription

SUSPEND_REASON = "nonpayment"
NOTICE_RECHECK = timedelta(minutes=1)  # the formal notice is not sent yet: look again this much later


@dataclass(frozen=True)
class Declared:
    default: PaymentDefault
    suspended: list[str]
    erasure_jobs: list[str]
    termination_job: str | None
    erasure_not_before: datetime  # from the queueing time; recomputed from the sending by the jobs
    termination_at: datetime


CAUSE = "payment_default"


def cause(default: PaymentDefault) -> str:
    return jobs.cause(CAUSE, default.id)


def open_default(session: Session, invoice_id: str) -> PaymentDefault | None:
    return session.exec(select(PaymentDefault).where(PaymentDefault.invoice_id == invoice_id,
                                                     PaymentDefault.status == "open")).first()


def notice_sent_at(session: Session, default: PaymentDefault) -> datetime | None:
    """R8.7-default, R10-nonpayment: the deadlines count from the SMTP server's acceptance."""
    notice = session.get(Outbox, default.notice_outbox_id) if default.notice_outbox_id else None
    return notice.sent_at if notice is not None else None


def affected_vps(session: Session, invoice: Invoice) -> list[Vps]:
    """Every VPS of the invoice's subscription (or the invoice's own VPS) that still holds data."""
    ids: list[str] = []
    if invoice.subscription_id:
        subscription = session.get(Subscription, invoice.subscription_id)
        if subscription is not None and subscription.vps_id:
            ids.append(subscription.vps_id)
    if invoice.vps_id and invoice.vps_id not in ids:
        ids.append(invoice.vps_id)
    found = [session.get(Vps, vps_id) for vps_id in ids]
    return [v for v in found if v is not None and holds_data(session, v)]


def holds_data(session: Session, vps: Vps) -> bool:
    """A deleted VPS still holds data while the backups its client kept are there (R8.7-default)."""
    if vps.status == VpsStatus.deleted:
        return bool(available_backups(session, vps))
    return vps.status != VpsStatus.deleting


def _rejected_payment(session: Session, invoice: Invoice) -> bool:
    return session.exec(select(Invoice).where(Invoice.purpose == "payment_incident",
                                              Invoice.purpose_ref == invoice.id)).first() is not None


def declare(session: Session, settings: Settings, principal: Principal, invoice: Invoice) -> Declared:
    """R8.7-default: open a payment default on an unpaid invoice past its due date (or whose
    payment was rejected): suspend its VPS, queue the formal notice, the erasure of each VPS not
    before five days after the notice and the termination fifteen days after it (R10-nonpayment).
    In the caller's transaction."""
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

    def asked(vps: Vps) -> Request:
        return Request(session, settings, principal, vps, cause=cause(default))

    suspended: list[str] = []
    for vps in targets:
        if vps.status in SuspendVps.allowed_from:
            request(asked(vps), SuspendVps, SuspendParams(reason=SUSPEND_REASON))
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
    reason = f"nonpayment (R8.7-default, payment default {default.id})"
    erasures = [request(asked(vps), EraseVps, EraseParams(reason=reason), scheduled_at=erase_at).id
                for vps in targets]
    termination: str | None = None
    subscription = session.get(Subscription, invoice.subscription_id) if invoice.subscription_id else None
    if subscription is not None and targets:
        termination = request(asked(targets[0]), TerminateSubscription,
                              TerminateParams(subscription_id=subscription.id, reason="nonpayment"),
                              scheduled_at=end_at).id
    return Declared(default, suspended, erasures, termination, erase_at, end_at)


@invoicing.on_paid("*")
def settle(session: Session, settings: Settings, invoice: Invoice, principal: Principal) -> None:
    """R8.7-default: a payment before the deadlines calls off the erasure and the termination not
    yet run and resumes the suspended VPS. After an erasure nothing is undone: the data is gone
    and the termination stays due (the service can no longer be provided)."""
    default = open_default(session, invoice.id)
    if default is None:
        return
    caused = jobs.caused_by(session, cause(default), {SuspendVps.kind, EraseVps.kind, TerminateSubscription.kind})
    erased = any(job.kind == EraseVps.kind and job.status in (JobStatus.running, JobStatus.succeeded)
                 for job in caused)
    cancelled_suspend: set[str] = set()
    for job in caused:
        if job.status not in jobs.ACTIVE or (job.kind == TerminateSubscription.kind and erased):
            continue
        if jobs.cancel(session, job, f"invoice {invoice.number} paid", str(principal)) and job.kind == SuspendVps.kind:
            cancelled_suspend.add(job.vps_id or "")
    default.status, default.settled_at = "settled", utcnow()
    session.add(default)
    for vps in affected_vps(session, invoice):
        suspending = vps.id not in cancelled_suspend and any(
            j.kind == SuspendVps.kind for j in jobs.pending(session, vps.id, {SuspendVps.kind}))
        if suspending or (vps.status == VpsStatus.suspended and vps.suspend_reason == SUSPEND_REASON):
            request(Request(session, settings, principal, vps, cause=cause(default)), ResumeVps, NoParams(),
                    scheduled_at=utcnow() if suspending else None)
        elif vps.suspend_reason == SUSPEND_REASON:  # stopped meanwhile: the measure ends, the VPS stays off
            vps.suspend_reason = vps.suspended_by = None
            session.add(vps)
    session.flush()





@events.on_started(EraseVps.kind, TerminateSubscription.kind)
def _hold_until_due(ctx: Context) -> None:
    """R8.7-default (erasure: five days) and R10-nonpayment (termination: fifteen days), counted
    from the formal notice's actual sending; nothing once the default is settled."""
    default_id = jobs.cause_id(ctx.job, CAUSE)
    if default_id is None:
        return
    with ctx.transaction() as session:
        default = session.get(PaymentDefault, default_id)
        if default is None:
            raise OperationFailed("the payment default is not recorded")
        if default.status != "open":
            raise OperationFailed("the payment default is settled: "
                                  + ("nothing is erased" if ctx.job.kind == EraseVps.kind else "the contract goes on"))
        sent = notice_sent_at(session, default)
    if sent is None:
        raise Deferred(utcnow() + NOTICE_RECHECK, "the formal notice is not sent yet")
    if ctx.job.kind == EraseVps.kind:
        not_before = erasure_not_before(sent)
        if utcnow() < not_before:
            raise Deferred(not_before, "R8.7-default: five days after the formal notice was sent")
        check_erasure(sent, utcnow())
    else:
        ends = termination_for_nonpayment_at(sent)
        if utcnow() < ends:
            raise Deferred(ends, "R10-nonpayment: fifteen days after the formal notice was sent")


@events.on_succeeded(TerminateSubscription.kind)
def _terminated(ctx: Context) -> None:
    """R10-nonpayment: the default ends with the contract."""
    default_id = jobs.cause_id(ctx.job, CAUSE)
    if default_id is None:
        return
    with ctx.transaction() as session:
        default = session.get(PaymentDefault, default_id)
        if default is not None and default.status == "open":
            default.status, default.terminated_at = "terminated", utcnow()
            session.add(default)


def jobs_of(session: Session, default: PaymentDefault) -> list[Job]:
    """Everything the default asked for, oldest first."""
    return jobs.caused_by(session, cause(default))


