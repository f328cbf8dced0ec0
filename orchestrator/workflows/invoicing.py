"""Invoices as records: issue one from contract lines, record its payment, and let the workflow
that ordered it go on once it is paid (R6.2-backup: a paid backup starts only once its payment is
received; R8.7-default: a payment cancels what non-payment set in motion).

The amounts come from orchestrator/contract/billing (pure, Decimal); this module only stores them
and dispatches ``on_paid`` hooks registered by purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlmodel import Session

from orchestrator.contract import billing
from orchestrator.contract.calendar import to_paris
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.db import locked
from orchestrator.core.errors import Conflict, InvalidRequest
from orchestrator.core.models import Invoice
from orchestrator.core.numbering import next_number
from orchestrator.core.settings import Settings

PaidHook = Callable[[Session, Settings, Invoice, Principal], None]
_ON_PAID: dict[str, list[PaidHook]] = {}

DEFAULT_PAYMENT_DAYS = 0  # R8.1-setup-fee, R8.6-billing: payable at issue unless said otherwise


def on_paid(purpose: str) -> Callable[[PaidHook], PaidHook]:
    """Register a hook run in the payment's transaction when an invoice of ``purpose`` is paid."""

    def register(fn: PaidHook) -> PaidHook:
        _ON_PAID.setdefault(purpose, []).append(fn)
        return fn

    return register


def line_json(line: billing.Line) -> dict[str, object]:
    return {"rule": line.rule, "label": line.label, "amount_ht": str(line.amount), "taxable": line.taxable}


def _next_number(session: Session, issued: datetime) -> str:
    """Invoices are numbered in one unbroken sequence per year (F2026-000001, ...)."""
    return next_number(session, f"F{to_paris(issued).year}-", Invoice.number)


def issue(
    session: Session, *, customer_id: int, purpose: str, lines: Sequence[billing.Line],
    purpose_ref: str | None = None, subscription_id: str | None = None, vps_id: str | None = None,
    period: tuple[date, date] | None = None, issued_at: datetime | None = None,
    payment_days: int = DEFAULT_PAYMENT_DAYS,
) -> Invoice:
    """Record an invoice (R8.3-ht: lines HT, VAT at the rate in force on the issue date)."""
    if not lines:
        raise InvalidRequest("an invoice needs at least one line")
    issued_at = issued_at or utcnow()
    issued_on = to_paris(issued_at).date()
    total_ht, total_vat, total_ttc = billing.invoice_totals(billing.Invoice(issued_on, tuple(lines), period))
    invoice = Invoice(
        number=_next_number(session, issued_at), customer_id=customer_id, subscription_id=subscription_id,
        vps_id=vps_id, purpose=purpose, purpose_ref=purpose_ref,
        period_start=period[0] if period else None, period_end=period[1] if period else None,
        issued_at=issued_at, due_on=issued_on + timedelta(days=payment_days),
        lines=[line_json(line) for line in lines], total_ht=total_ht, total_vat=total_vat, total_ttc=total_ttc,
    )
    session.add(invoice)
    session.flush()
    return invoice


def record_payment(session: Session, settings: Settings, invoice: Invoice, principal: Principal, method: str,
                   bank_country: str = "FR", currency: str = "EUR", paid_at: datetime | None = None) -> Invoice:
    """Mark ``invoice`` paid (R8.5-payment-methods checked) and run its purpose's hooks, all in the
    caller's transaction.  The invoice is locked first: of two payments recorded at once, one
    pays and runs the hooks, the other finds it paid (409)."""
    invoice = locked(session, invoice)
    if invoice.status == "paid":
        raise Conflict(f"invoice {invoice.number} is already paid")
    if invoice.status != "open":
        raise Conflict(f"invoice {invoice.number} is {invoice.status}")
    billing.check_payment_method(method, bank_country, currency)
    invoice.status = "paid"
    invoice.paid_at = paid_at or utcnow()
    invoice.payment_method = method
    session.add(invoice)
    session.flush()
    for hook in _ON_PAID.get(invoice.purpose, []) + _ON_PAID.get("*", []):
        hook(session, settings, invoice, principal)
    return invoice


def total(invoice: Invoice) -> Decimal:
    return invoice.total_ttc
