"""``/v1/invoices``: a customer's invoices; staff record payments (R8)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.schemas.billing import InvoiceOut, PaymentBody
from api.scopes import scoped
from orchestrator.core.access import owned, visible_invoice
from orchestrator.core.models import Invoice
from orchestrator.workflows import invoicing

router = APIRouter(prefix="/v1/invoices", tags=["billing"], dependencies=[scoped("billing")])


def invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut.model_validate(invoice, from_attributes=True)


@router.get("", response_model=list[InvoiceOut])
def list_invoices(session: SessionDep, principal: CurrentPrincipal, status: str | None = None) -> list[InvoiceOut]:
    """Your invoices (staff: everyone's), newest first; `?status=open` for unpaid ones."""
    query = owned(select(Invoice), Invoice.customer_id, principal)
    if status:
        query = query.where(Invoice.status == status)
    rows = session.exec(query.order_by(col(Invoice.issued_at).desc())).all()
    return [invoice_out(i) for i in rows]


@router.get("/{invoice_id}", response_model=InvoiceOut)
def get_invoice(invoice_id: str, session: SessionDep, principal: CurrentPrincipal) -> InvoiceOut:
    return invoice_out(visible_invoice(session, principal, invoice_id))


@router.post("/{invoice_id}/payments", response_model=InvoiceOut)
def record_payment(invoice_id: str, body: PaymentBody, session: SessionDep, settings: SettingsDep,
                   staff: StaffPrincipal) -> InvoiceOut:
    """Staff record the payment of an invoice; what waited for it goes on (a paid backup starts,
    R6.2-backup; pending erasure is called off, R8.7-default)."""
    invoice = visible_invoice(session, staff, invoice_id)
    invoicing.record_payment(session, settings, invoice, staff, body.method, body.bank_country, body.currency)
    return invoice_out(invoice)
