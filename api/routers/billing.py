"""Billing actions of staff and what a client may look up about late payment.

``POST /v1/billing/run`` (R8.2-rent), ``/v1/billing/syntec`` (R8.4-syntec),
``POST /v1/invoices/{id}/payment-incidents`` (R8.7-default: 35 € per incident),
``GET /v1/invoices/{id}/late-fees`` (R8.6-billing interest, R8.7-default penalty),
``POST /v1/invoices/{id}/default`` (R8.7-default, R10-nonpayment),
``POST /v1/customers/{customer}/blacklist-complaints`` (R6.4-blacklist-fee).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal, get_engine
from api.pages import Cursor, Limit, Order, Page, page_of
from api.routers.invoices import invoice_out
from api.schemas.billing import (
    ComplaintBody,
    ComplaintOut,
    DefaultOut,
    InvoiceOut,
    LateFeesOut,
    LineOut,
    PaymentIncidentBody,
    RunOut,
    SyntecBody,
    SyntecOut,
)
from api.schemas.types import Day
from api.scopes import scoped
from orchestrator.contract import billing
from orchestrator.contract.calendar import to_paris
from orchestrator.core.access import visible_invoice, visible_vps
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, ContractRefusal, InvalidRequest, NotFound
from orchestrator.core.models import Customer, SyntecIndex
from orchestrator.workflows import abuse, billing_run, invoicing, nonpayment

router = APIRouter(tags=["billing"], dependencies=[scoped("billing")])


@router.post("/v1/billing/run", response_model=RunOut)
def run_billing(settings: SettingsDep, engine: Annotated[Engine, Depends(get_engine)],
                _staff: StaffPrincipal) -> RunOut:
    """Run the billing run now (it also runs periodically in every worker): every rent period
    begun is invoiced once, in full (R8.2-rent)."""
    result = billing_run.run(engine, settings)
    return RunOut(issued=result.issued, revised=result.revised, defaults=result.defaults, raced=result.raced)


@router.post("/v1/billing/syntec", status_code=status.HTTP_201_CREATED, response_model=SyntecOut)
def record_syntec(body: SyntecBody, session: SessionDep, staff: StaffPrincipal) -> SyntecOut:
    """R8.4-syntec: record a published SYNTEC index; rents are revised with it at their next term."""
    month = body.month.replace(day=1)
    if session.get(SyntecIndex, month) is not None:
        raise Conflict(f"the SYNTEC index of {month:%Y-%m} is already recorded")
    record = SyntecIndex(month=month, value=body.value, recorded_by=str(staff))
    session.add(record)
    return SyntecOut.model_validate(record, from_attributes=True)


@router.get("/v1/billing/syntec", response_model=Page[SyntecOut])
def list_syntec(session: SessionDep, _staff: StaffPrincipal, limit: Limit = 50, cursor: Cursor = None,
                order: Order = "desc") -> Page[SyntecOut]:
    """R8.4-syntec: the indexes recorded, the latest month first, a page at a time."""
    rows, after = page_of(session, select(SyntecIndex), (SyntecIndex.month,), cursor, limit, order)
    return Page[SyntecOut](items=[SyntecOut.model_validate(r, from_attributes=True) for r in rows], next=after)


@router.post("/v1/invoices/{invoice_id}/payment-incidents", status_code=status.HTTP_201_CREATED,
             response_model=InvoiceOut)
def record_payment_incident(invoice_id: str, body: PaymentIncidentBody, session: SessionDep,
                     staff: StaffPrincipal) -> InvoiceOut:
    """R8.7-default: a rejected direct debit or a bounced cheque for this invoice: an invoice of
    35 € per incident (the rejected invoice may then be put in default)."""
    invoice = visible_invoice(session, staff, invoice_id)
    fee = billing.payment_incident_fee(body.incidents)
    if body.note:
        fee = billing.Line(fee.rule, f"{fee.label} ({body.note})"[:500], fee.amount, fee.taxable)
    issued = invoicing.issue(session, customer_id=invoice.customer_id, purpose="payment_incident",
                             lines=[fee], purpose_ref=invoice.id, subscription_id=invoice.subscription_id,
                             vps_id=invoice.vps_id)
    return invoice_out(issued)


@router.get("/v1/invoices/{invoice_id}/late-fees", response_model=LateFeesOut)
def get_late_fees(invoice_id: str, session: SessionDep, principal: CurrentPrincipal,
              on: Annotated[Day | None, Query()] = None) -> LateFeesOut:
    """R8.6-billing, R8.7-default: the late-payment interest and penalty of an invoice on a date
    (default: today, or the payment date of a paid invoice). A date with no legal rate on record
    is refused naming R8.6-billing."""
    invoice = visible_invoice(session, principal, invoice_id)
    if on is None:
        on = to_paris(invoice.paid_at if invoice.paid_at else utcnow()).date()
    due_on = invoice.due_on or to_paris(invoice.issued_at or utcnow()).date()
    try:
        lines = billing.late_payment_lines(invoice.total_ttc, due_on, on)
    except InvalidRequest as exc:
        raise ContractRefusal("R8.6-billing", exc.detail) from None
    return LateFeesOut(
        invoice_id=invoice.id, amount_due=invoice.total_ttc, due_on=invoice.due_on, on=on,
        days_late=max(0, (on - due_on).days),
        lines=[LineOut(rule=x.rule, label=x.label, amount_ht=x.amount, taxable=x.taxable) for x in lines])


@router.post("/v1/invoices/{invoice_id}/default", status_code=status.HTTP_201_CREATED, response_model=DefaultOut)
def declare_default(invoice_id: str, session: SessionDep, settings: SettingsDep, staff: StaffPrincipal) -> DefaultOut:
    """R8.7-default: an overdue (or rejected) invoice: its VPS are suspended (only staff can resume
    them), the formal notice is emailed, erasure is scheduled five days and termination
    (R10-nonpayment) fifteen days after the notice is sent. Paying the invoice calls them off."""
    invoice = visible_invoice(session, staff, invoice_id)
    done = nonpayment.declare(session, settings, staff, invoice)
    return DefaultOut(id=done.default.id, invoice_id=invoice.id, status=done.default.status,
                      suspended_vps=done.suspended, erasure_job_ids=done.erasure_jobs,
                      termination_job_id=done.termination_job, erasure_not_before=done.erasure_not_before,
                      termination_at=done.termination_at)


@router.post("/v1/customers/{customer}/blacklist-complaints", status_code=status.HTTP_201_CREATED,
             response_model=ComplaintOut)
def record_blacklist_complaints(customer: str, body: ComplaintBody, session: SessionDep, settings: SettingsDep,
                         staff: StaffPrincipal) -> ComplaintOut:
    """R6.4-blacklist-fee: the client's spam got one of our addresses or domains blacklisted:
    200 € HT per complaint (`customer`: the customer's name or id); the client's VPS named in the
    complaints (`suspend_vps_ids`) are suspended at once, without notice (reason `abuse`)."""
    record = session.exec(select(Customer).where(Customer.name == customer)).first()
    if record is None and customer.isdigit():
        record = session.get(Customer, int(customer))
    if record is None or record.id is None:
        raise NotFound(f"no customer {customer[:100]!r}")
    named = [visible_vps(session, staff, vps_id) for vps_id in dict.fromkeys(body.suspend_vps_ids)]
    done = abuse.blacklisting(session, settings, staff, record, body.complaints, body.note, named)
    return ComplaintOut(invoice=invoice_out(done.invoice), suspend_job_ids=done.suspend_job_ids)
