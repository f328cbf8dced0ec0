"""Billing actions of staff and what a client may look up about late payment.

``POST /v1/billing/run`` (R8.2-rent), ``/v1/billing/syntec`` (R8.4-syntec),
``POST /v1/invoices/{id}/payment-incidents`` (R8.7-default: 35 € per incident),
``GET /v1/invoices/{id}/late-fees`` (R8.6-billing interest, R8.7-default penalty),
``POST /v1/invoices/{id}/default`` (R8.7-default, R10-nonpayment),
``POST /v1/customers/{customer}/blacklist-complaints`` (R6.4-blacklist-fee).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal, get_engine
from api.routers.invoices import InvoiceOut, invoice_out
from orchestrator import billing_run, invoicing, jobs, nonpayment
from orchestrator.access import visible_invoice, visible_vps
from orchestrator.clock import utcnow
from orchestrator.contract import billing
from orchestrator.contract.calendar import to_paris
from orchestrator.errors import Conflict, ContractRefusal, InvalidRequest, NotFound
from orchestrator.models import Customer, SyntecIndex
from orchestrator.operations import suspend
from orchestrator.operations.base import request

router = APIRouter(tags=["billing"])


class RunOut(BaseModel):
    issued: list[str] = Field(description="numbers of the rent invoices issued by this run")
    revised: list[str] = Field(description="subscriptions whose rent was revised (R8.4-syntec)")
    defaults: list[str] = Field(description="invoices put in default by policy (R8.7-default)")


class SyntecBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: date = Field(description="the month the index is published for (any day of it)")
    value: Decimal = Field(gt=0, max_digits=12, decimal_places=4)


class SyntecOut(BaseModel):
    month: date
    value: Decimal
    recorded_by: str
    recorded_at: datetime | None


class IncidentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    incidents: int = Field(1, ge=1, le=100, description="rejected debits or bounced cheques")
    note: Annotated[str, StringConstraints(max_length=500)] = ""


class ComplaintBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    complaints: int = Field(1, ge=1, le=100)
    note: Annotated[str, StringConstraints(max_length=500)] = ""
    suspend_vps_ids: list[Annotated[str, StringConstraints(max_length=36)]] = Field(
        default_factory=list, max_length=1000,
        description="R6.4-blacklist-fee: the client's services named in the complaints, suspended without notice")


class ComplaintOut(BaseModel):
    invoice: InvoiceOut
    suspend_job_ids: list[str]


class LineOut(BaseModel):
    rule: str
    label: str
    amount_ht: Decimal
    taxable: bool


class LateFeesOut(BaseModel):
    invoice_id: str
    amount_due: Decimal = Field(description="the invoice's total, tax included")
    due_on: date | None
    on: date
    days_late: int
    lines: list[LineOut] = Field(description="R8.6-billing interest (1.5 x legal rate), R8.7-default penalty")


class DefaultOut(BaseModel):
    id: str
    invoice_id: str
    status: str
    suspended_vps: list[str]
    erasure_job_ids: list[str]
    termination_job_id: str | None
    erasure_not_before: datetime = Field(description="R8.7-default: counted again from the notice's sending")
    termination_at: datetime = Field(description="R10-nonpayment: counted again from the notice's sending")


@router.post("/v1/billing/run", response_model=RunOut)
def run_billing(settings: SettingsDep, engine: Annotated[Engine, Depends(get_engine)],
                _staff: StaffPrincipal) -> RunOut:
    """Run the billing run now (it also runs periodically in every worker): every rent period
    begun is invoiced once, in full (R8.2-rent)."""
    result = billing_run.run(engine, settings)
    return RunOut(issued=result.issued, revised=result.revised, defaults=result.defaults)


@router.post("/v1/billing/syntec", status_code=status.HTTP_201_CREATED, response_model=SyntecOut)
def record_syntec(body: SyntecBody, session: SessionDep, staff: StaffPrincipal) -> SyntecOut:
    """R8.4-syntec: record a published SYNTEC index; rents are revised with it at their next term."""
    month = body.month.replace(day=1)
    if session.get(SyntecIndex, month) is not None:
        raise Conflict(f"the SYNTEC index of {month:%Y-%m} is already recorded")
    record = SyntecIndex(month=month, value=body.value, recorded_by=str(staff))
    session.add(record)
    session.commit()
    return SyntecOut.model_validate(record, from_attributes=True)


@router.get("/v1/billing/syntec", response_model=list[SyntecOut])
def list_syntec(session: SessionDep, _staff: StaffPrincipal) -> list[SyntecOut]:
    rows = session.exec(select(SyntecIndex).order_by(col(SyntecIndex.month))).all()
    return [SyntecOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/v1/invoices/{invoice_id}/payment-incidents", status_code=status.HTTP_201_CREATED,
             response_model=InvoiceOut)
def payment_incident(invoice_id: str, body: IncidentBody, session: SessionDep, staff: StaffPrincipal) -> InvoiceOut:
    """R8.7-default: a rejected direct debit or a bounced cheque for this invoice: an invoice of
    35 € per incident (the rejected invoice may then be put in default)."""
    invoice = visible_invoice(session, staff, invoice_id)
    fee = billing.payment_incident_fee(body.incidents)
    if body.note:
        fee = billing.Line(fee.rule, f"{fee.label} ({body.note})"[:500], fee.amount, fee.taxable)
    issued = invoicing.issue(session, customer_id=invoice.customer_id, purpose="payment_incident",
                             lines=[fee], purpose_ref=invoice.id, subscription_id=invoice.subscription_id,
                             vps_id=invoice.vps_id)
    session.commit()
    return invoice_out(issued)


@router.get("/v1/invoices/{invoice_id}/late-fees", response_model=LateFeesOut)
def late_fees(invoice_id: str, session: SessionDep, principal: CurrentPrincipal, on: date | None = None) -> LateFeesOut:
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
def blacklist_complaints(customer: str, body: ComplaintBody, session: SessionDep, settings: SettingsDep,
                         staff: StaffPrincipal) -> ComplaintOut:
    """R6.4-blacklist-fee: the client's spam got one of our addresses or domains blacklisted:
    200 € HT per complaint (`customer`: the customer's name or id); the client's VPS named in the
    complaints (`suspend_vps_ids`) are suspended at once, without notice (reason `abuse`)."""
    record = session.exec(select(Customer).where(Customer.name == customer)).first()
    if record is None and customer.isdigit():
        record = session.get(Customer, int(customer))
    if record is None or record.id is None:
        raise NotFound(f"no customer {customer[:100]!r}")
    named = []
    for vps_id in dict.fromkeys(body.suspend_vps_ids):
        vps = visible_vps(session, staff, vps_id)
        if vps.customer_id != record.id:
            raise NotFound(f"customer {record.name} has no VPS {vps_id}")
        named.append(vps)
    fee = billing.blacklist_fee(body.complaints)
    if body.note:
        fee = billing.Line(fee.rule, f"{fee.label} ({body.note})"[:500], fee.amount, fee.taxable)
    issued = invoicing.issue(session, customer_id=record.id, purpose="blacklist", lines=[fee])
    suspended = [request(session, settings, staff, vps, suspend.SuspendVps, {"reason": "abuse"}, commit=False).id
                 for vps in named if vps.status in suspend.SuspendVps.allowed_from]
    session.commit()
    jobs.notify()
    return ComplaintOut(invoice=invoice_out(issued), suspend_job_ids=suspended)
