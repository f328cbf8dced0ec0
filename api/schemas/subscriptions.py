"""Bodies of /v1 requests and answers: subscriptions: order, terms, non-renewal, reversibility (R3, R8, R13)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.billing import InvoiceOut
from api.schemas.types import Day, Fee, Index, Instant, Price


class SubscriptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vps_id: str = Field(max_length=36)
    term_months: int = Field(description="R3-terms: 1, 3, 6, 12 or 24")
    billing_period: str = Field("monthly", description="R8.6-billing: monthly, quarterly, half-yearly, yearly")
    rent_ht: Price = Field(description="per billing period, euros HT")
    setup_fee_ht: Fee = Decimal("0")
    contract_index: Index | None = Field(None,
                                           description="R8.4-syntec reference index")
    bank_country: str = Field("FR", min_length=2, max_length=2)
    currency: str = Field("EUR", min_length=3, max_length=3)
    started_on: Day | None = Field(None, description="default: today (Europe/Paris)")


class TermOut(BaseModel):
    starts_on: date
    ends_on: date


class PaymentDefaultOut(BaseModel):
    invoice_id: str
    opened_at: datetime | None
    notice_sent_at: datetime | None
    erasure_not_before: datetime | None = Field(description="five days after the formal notice was sent")
    termination_at: datetime | None = Field(description="fifteen days after the formal notice was sent")


class SubscriptionOut(BaseModel):
    id: str
    customer_id: int
    vps_id: str | None
    term_months: int
    billing_period: str
    started_on: date
    rent_ht: Decimal
    setup_fee_ht: Decimal
    contract_index: Decimal | None
    bank_country: str
    currency: str
    status: str = Field(description="active | ending | terminated")
    current_term: TermOut
    next_renewal: date | None = Field(description="R3-renewal: the running term renews tacitly on this date")
    notice_deadline: datetime | None = Field(
        description="R3-notice: a non-renewal received by then ends the subscription at next_renewal")
    non_renewal_effective_if_received_now: date | None
    ends_on: date | None = Field(description="the first day no longer covered, once an end is known")
    end_reason: str | None
    non_renewal_received_at: datetime | None
    non_renewal_channel: str | None
    reversibility_received_at: datetime | None
    terminated_at: datetime | None
    termination_right: Any = Field(description="R5.4-fix-delay, R5.4-repeat: the client's right to terminate")
    payment_default: PaymentDefaultOut | None = Field(
        description="R8.7-default, R10-nonpayment: an open payment default and its deadlines")


class SubscriptionCreated(BaseModel):
    subscription: SubscriptionOut
    invoice: InvoiceOut = Field(description="R8.1-setup-fee, R8.6-billing: the first invoice, issued at order")


class NonRenewalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["online", "registered_letter"] = "online"
    received_at: Instant | None = Field(None, description="registered letter only (staff)")


class NonRenewalOut(BaseModel):
    effective_on: date = Field(description="R3-notice: the service stops as this date begins (Paris)")
    termination_job_id: str | None
    subscription: SubscriptionOut


class ReversibilityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    received_at: Instant = Field(description="when the registered letter was received")


class ReversibilityOut(BaseModel):
    effective_at: datetime = Field(description="R13-reversibility: two months after the letter")
    export_job_ids: list[str]
    refund_eur: Decimal = Field(Decimal("0.00"), description="R13-reversibility: no refund")
    subscription: SubscriptionOut
