"""Subscriptions, invoices, SYNTEC indices and payment defaults (R3, R8, R10)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Date, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from orchestrator.core.models.types import date_field, json_field, money_field, new_id, time_field


class Subscription(SQLModel, table=True):
    """The contract for one VPS (R3-terms): its term, billing period, prices and how it ends."""

    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (Index("ix_subscription_newest", "created_at", "id"),
                      Index("ix_subscription_owner_newest", "customer_id", "created_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    vps_id: str | None = Field(default=None, foreign_key="vps.id", index=True, max_length=36)
    term_months: int  # R3-terms: 1, 3, 6, 12 or 24
    billing_period: str = Field(default="monthly", max_length=16)  # R8.6-billing
    started_on: date | None = date_field()
    rent_ht: Decimal = money_field()  # per billing period (R8.2-rent, R8.3-ht)
    setup_fee_ht: Decimal = money_field()  # R8.1-setup-fee
    contract_index: Decimal | None = money_field(nullable=True)  # R8.4-syntec reference index
    bank_country: str = Field(default="FR", max_length=2)  # R8.5-payment-methods
    currency: str = Field(default="EUR", max_length=3)
    status: str = Field(default="active", index=True, max_length=16)  # active | ending | terminated
    ends_on: date | None = date_field()  # first day no longer covered, once an end is known
    end_reason: str | None = Field(default=None, max_length=32)  # non_renewal | reversibility | nonpayment
    non_renewal_received_at: datetime | None = time_field()
    non_renewal_channel: str | None = Field(default=None, max_length=16)  # online | registered_letter
    reversibility_received_at: datetime | None = time_field()
    terminated_at: datetime | None = time_field()
    created_at: datetime | None = time_field(now=True)


class Invoice(SQLModel, table=True):
    """An invoice (R8): lines before tax, VAT at the rate in force on the issue date."""

    # R8.2-rent: one invoice per subscription, purpose and period, even with several workers.
    # list pages (api/pages.py, migration 0017): the sort key after what the list is narrowed to
    __table_args__ = (UniqueConstraint("subscription_id", "purpose", "period_start"),
                      Index("ix_invoice_newest", "issued_at", "id"),
                      Index("ix_invoice_owner_newest", "customer_id", "issued_at", "id"))

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    number: str = Field(index=True, unique=True, max_length=32)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    subscription_id: str | None = Field(default=None, foreign_key="subscription.id", index=True, max_length=36)
    vps_id: str | None = Field(default=None, index=True, max_length=36)
    # setup | rent | change_order | compromise_backup | compromise_transfer | payment_incident |
    # blacklist | late_payment
    purpose: str = Field(max_length=32)
    purpose_ref: str | None = Field(default=None, index=True, max_length=36)
    period_start: date | None = date_field()
    period_end: date | None = date_field()
    issued_at: datetime | None = time_field(now=True)
    due_on: date | None = date_field(index=True)
    lines: list[dict[str, Any]] = json_field(list)  # [{"label", "amount_ht", "rule", "vat"}] (amounts as text)
    total_ht: Decimal = money_field()
    total_vat: Decimal = money_field()
    total_ttc: Decimal = money_field()
    status: str = Field(default="open", index=True, max_length=16)  # open | paid | cancelled
    paid_at: datetime | None = time_field()
    payment_method: str | None = Field(default=None, max_length=16)


class SyntecIndex(SQLModel, table=True):
    """R8.4-syntec: a published SYNTEC index value, by the month it is published for."""

    month: date | None = Field(default=None, sa_column=Column(Date(), primary_key=True))
    value: Decimal = money_field()
    recorded_by: str = Field(default="", max_length=100)
    recorded_at: datetime | None = time_field(now=True)


class PaymentDefault(SQLModel, table=True):
    """R8.7-default, R10-nonpayment: an unpaid invoice followed up: suspension, formal notice,
    erasure not before five days after it, termination fifteen days after it."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    invoice_id: str = Field(foreign_key="invoice.id", index=True, max_length=36)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    opened_at: datetime | None = time_field(now=True)
    opened_by: str = Field(max_length=100)
    notice_outbox_id: int | None = None
    status: str = Field(default="open", index=True, max_length=16)  # open | settled | terminated
    settled_at: datetime | None = time_field()
    terminated_at: datetime | None = time_field()


class Counter(SQLModel, table=True):
    """The last number given in an unbroken sequence (invoices ``F2026-``, order forms ``BC2026-``):
    taken under a row lock, so that concurrent transactions never give the same number twice nor
    skip one (orchestrator/core/numbering.py)."""

    prefix: str = Field(primary_key=True, max_length=32)
    value: int = 0
