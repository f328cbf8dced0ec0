"""``/v1/invoices``: a customer's invoices; staff record payments (R8)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.billing import InvoiceOut, PaymentBody
from api.scopes import scoped
from orchestrator.core.access import listed_customer, visible_invoice
from orchestrator.core.models import Invoice
from orchestrator.workflows import invoicing

router = APIRouter(prefix="/v1/invoices", tags=["billing"], dependencies=[scoped("billing")])


def invoice_out(invoice: Invoice) -> InvoiceOut:
    return InvoiceOut.model_validate(invoice, from_attributes=True)


@router.get("", response_model=Page[InvoiceOut])
def list_invoices(
    session: SessionDep, principal: CurrentPrincipal,
    status: Annotated[Literal["open", "paid", "cancelled"] | None, Query(
        description="open: unpaid")] = None,
    vps_id: Annotated[str | None, Query(max_length=36)] = None,
    subscription_id: Annotated[str | None, Query(max_length=36)] = None,
    purpose: Annotated[str | None, Query(max_length=32, description="e.g. setup, rent, change_order")] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[InvoiceOut]:
    """Your invoices (staff: everyone's), newest issued first, a page at a time; `?status=open`
    for unpaid ones."""
    query = filtered(select(Invoice), ((Invoice.customer_id, listed_customer(principal, customer_id)),
                                       (Invoice.status, status), (Invoice.vps_id, vps_id),
                                       (Invoice.subscription_id, subscription_id), (Invoice.purpose, purpose)),
                     Invoice.issued_at, since, until)
    rows, after = page_of(session, query, (Invoice.issued_at, Invoice.id), cursor, limit, order)
    return Page[InvoiceOut](items=[invoice_out(i) for i in rows], next=after)


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
