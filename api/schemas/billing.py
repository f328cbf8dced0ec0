"""Bodies of /v1 requests and answers: invoices and payments, the billing run, SYNTEC indices,
late fees, payment defaults, blacklisting complaints (R6.4, R8)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas.types import Day, Index


class RunOut(BaseModel):
    issued: list[str] = Field(description="numbers of the rent invoices issued by this run")
    revised: list[str] = Field(description="subscriptions whose rent was revised (R8.4-syntec)")
    defaults: list[str] = Field(description="invoices put in default by policy (R8.7-default)")
    raced: list[str] = Field(description="rent periods (`<subscription id> <period start>`) another run issued "
                             "while this one was issuing them (a worker's periodic run at the same moment): "
                             "left to it, each invoiced once")


class SyntecBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: Day = Field(description="the month the index is published for (any day of it)")
    value: Index


class SyntecOut(BaseModel):
    month: date
    value: Decimal
    recorded_by: str
    recorded_at: datetime | None


class PaymentIncidentBody(BaseModel):
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


class PaymentBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: str = Field(description="R8.5-payment-methods: cheque, card, paypal or transfer")
    bank_country: str = Field(default="FR", min_length=2, max_length=2)
    currency: str = Field(default="EUR", min_length=3, max_length=3)
