"""``/v1/invoices``: a customer's invoices; staff record payments (R8)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, StaffPrincipal
from orchestrator import invoicing, jobs
from orchestrator.access import visible_invoice
from orchestrator.models import Invoice
from orchestrator.notify import outbox

router = APIRouter(prefix="/v1/invoices", tags=["billing"])


class InvoiceOut(BaseModel):
    id: str
    number: str
    customer_id: int
    subscription_id: str | None
    vps_id: str | None
    purpose: str
    purpose_ref: str | None
    period_start: date | None
    period_end: date | None
    issued_at: datetime | None
    due_on: date | None
    lines: list[dict[str, Any]]
    total_ht: Decimal = Field(description="R8.3-ht: before tax, euros")
    total_vat: Decimal
    total_ttc: Decimal
    status: str
    paid_at: datetime | None
    payment_method: str | None


def invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut.model_validate(invoice, from_attributes=True)


class PaymentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(description="R8.5-payment-methods: cheque, card, paypal or transfer")
    bank_country: str = Field(default="FR", min_length=2, max_length=2)
    currency: str = Field(default="EUR", min_length=3, max_length=3)


@router.get("", response_model=list[InvoiceOut])
def list_invoices(session: SessionDep, principal: CurrentPrincipal, status: str | None = None) -> list[InvoiceOut]:
    """Your invoices (staff: everyone's), newest first; `?status=open` for unpaid ones."""
    query = select(Invoice)
    if not principal.is_staff:
        query = query.where(Invoice.customer_id == principal.customer_id)
    if status:
        query = query.where(Invoice.status == status)
    rows = session.exec(query.order_by(col(Invoice.issued_at).desc())).all()
    return [invoice_out(i) for i in rows]


@router.get("/{invoice_id}", response_model=InvoiceOut)
def get_invoice(invoice_id: str, session: SessionDep, principal: CurrentPrincipal) -> InvoiceOut:
    return invoice_out(visible_invoice(session, principal, invoice_id))


@router.post("/{invoice_id}/payments", response_model=InvoiceOut)
def record_payment(invoice_id: str, body: PaymentBody, session: SessionDep, staff: StaffPrincipal) -> InvoiceOut:
    """Staff record the payment of an invoice; what waited for it goes on (a paid backup starts,
    R6.2-backup; pending erasure is called off, R8.7-default)."""
    invoice = visible_invoice(session, staff, invoice_id)
    invoicing.record_payment(session, invoice, staff, body.method, body.bank_country, body.currency)
    session.commit()
    outbox.notify()
    jobs.notify()  # a paid backup may have been queued
    return invoice_out(invoice)
