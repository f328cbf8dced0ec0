"""``/v1/subscriptions``: the contract of each VPS: order (staff), terms, non-renewal and
reversibility (R3-terms, R3-renewal, R3-notice, R8.1-setup-fee, R8.6-billing, R13-reversibility)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.routers.invoices import InvoiceOut, invoice_out
from orchestrator import jobs, subscriptions
from orchestrator.models import Subscription

router = APIRouter(prefix="/v1/subscriptions", tags=["billing"])


class SubscriptionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vps_id: str = Field(max_length=36)
    term_months: int = Field(description="R3-terms: 1, 3, 6, 12 or 24")
    billing_period: str = Field("monthly", description="R8.6-billing: monthly, quarterly, half-yearly, yearly")
    rent_ht: Decimal = Field(gt=0, max_digits=12, decimal_places=2, description="per billing period, euros HT")
    setup_fee_ht: Decimal = Field(Decimal("0"), ge=0, max_digits=12, decimal_places=2)
    contract_index: Decimal | None = Field(None, gt=0, max_digits=12, decimal_places=4,
                                           description="R8.4-syntec reference index")
    bank_country: str = Field("FR", min_length=2, max_length=2)
    currency: str = Field("EUR", min_length=3, max_length=3)
    started_on: date | None = Field(None, description="default: today (Europe/Paris)")


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


class OrderOut(BaseModel):
    subscription: SubscriptionOut
    invoice: InvoiceOut = Field(description="R8.1-setup-fee, R8.6-billing: the first invoice, issued at order")


class NonRenewalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["online", "registered_letter"] = "online"
    received_at: AwareDatetime | None = Field(None, description="registered letter only (staff)")


class NonRenewalOut(BaseModel):
    effective_on: date = Field(description="R3-notice: the service stops as this date begins (Paris)")
    termination_job_id: str | None
    subscription: SubscriptionOut


class ReversibilityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    received_at: AwareDatetime = Field(description="when the registered letter was received")


class ReversibilityOut(BaseModel):
    effective_at: datetime = Field(description="R13-reversibility: two months after the letter")
    export_job_ids: list[str]
    refund_eur: Decimal = Field(Decimal("0.00"), description="R13-reversibility: no refund")
    subscription: SubscriptionOut


def _out(session: SessionDep, settings: SettingsDep, record: Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscriptions.view(session, settings, record))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
def order(body: SubscriptionBody, session: SessionDep, settings: SettingsDep, staff: StaffPrincipal) -> OrderOut:
    """Staff record the order of a VPS's subscription; its first invoice (first period's rent and
    the setup fee) is issued at once. A term other than 1, 3, 6, 12 or 24 months is refused naming
    R3-terms; an unknown billing period naming R8.6-billing."""
    record, invoice = subscriptions.create(session, settings, staff, subscriptions.Order(**body.model_dump()))
    return OrderOut(subscription=_out(session, settings, record), invoice=invoice_out(invoice))


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
                       vps_id: str | None = None) -> list[SubscriptionOut]:
    """Your subscriptions (staff: everyone's)."""
    query = select(Subscription)
    if not principal.is_staff:
        query = query.where(Subscription.customer_id == principal.customer_id)
    if vps_id:
        query = query.where(Subscription.vps_id == vps_id)
    rows = session.exec(query.order_by(col(Subscription.created_at))).all()
    return [_out(session, settings, r) for r in rows]


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(subscription_id: str, session: SessionDep, settings: SettingsDep,
                     principal: CurrentPrincipal) -> SubscriptionOut:
    return _out(session, settings, subscriptions.visible(session, principal, subscription_id))


@router.post("/{subscription_id}/non-renewal", response_model=NonRenewalOut)
def non_renewal(subscription_id: str, body: NonRenewalBody, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> NonRenewalOut:
    """R3-notice: the client online (`channel: online`), or staff recording a registered letter
    (`channel: registered_letter`, `received_at`). Answers the end of term it takes effect at."""
    record = subscriptions.visible(session, principal, subscription_id)
    record, job_id = subscriptions.non_renewal(session, settings, principal, record, body.channel, body.received_at)
    jobs.notify()
    assert record.ends_on is not None
    return NonRenewalOut(effective_on=record.ends_on, termination_job_id=job_id,
                         subscription=_out(session, settings, record))


@router.post("/{subscription_id}/reversibility", response_model=ReversibilityOut)
def reversibility(subscription_id: str, body: ReversibilityBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> ReversibilityOut:
    """R13-reversibility: staff record the client's registered letter; effective two months later,
    no refund; an export of every VPS of the client is queued now (download it from
    `/v1/vps/{id}/backups/{backup_id}/download`)."""
    record = subscriptions.visible(session, staff, subscription_id)
    record, effective, exports = subscriptions.reversibility(session, settings, staff, record, body.received_at)
    jobs.notify()
    return ReversibilityOut(effective_at=effective, export_job_ids=exports,
                            subscription=_out(session, settings, record))
