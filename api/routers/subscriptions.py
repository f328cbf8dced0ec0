"""``/v1/subscriptions``: the contract of each VPS: order (staff), terms, non-renewal and
reversibility (R3-terms, R3-renewal, R3-notice, R8.1-setup-fee, R8.6-billing, R13-reversibility)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, status
from sqlmodel import select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.routers.invoices import invoice_out
from api.schemas.subscriptions import (
    NonRenewalBody,
    NonRenewalOut,
    ReversibilityBody,
    ReversibilityOut,
    SubscriptionBody,
    SubscriptionCreated,
    SubscriptionOut,
)
from api.scopes import scoped
from orchestrator.core.access import listed_customer
from orchestrator.core.models import Subscription
from orchestrator.workflows import subscriptions

router = APIRouter(prefix="/v1/subscriptions", tags=["billing"], dependencies=[scoped("billing")])


def _out(session: SessionDep, settings: SettingsDep, record: Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscriptions.view(session, settings, record))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SubscriptionCreated,
             responses={201: located("/v1/subscriptions/{subscription.id}")})
def order_subscription(body: SubscriptionBody, session: SessionDep, settings: SettingsDep,
                       staff: StaffPrincipal) -> SubscriptionCreated:
    """Staff record the order of a VPS's subscription; its first invoice (first period's rent and
    the setup fee) is issued at once. A term other than 1, 3, 6, 12 or 24 months is refused naming
    R3-terms; an unknown billing period naming R8.6-billing."""
    record, invoice = subscriptions.create(session, settings, staff, subscriptions.Order(**body.model_dump()))
    return SubscriptionCreated(subscription=_out(session, settings, record), invoice=invoice_out(invoice))


@router.get("", response_model=Page[SubscriptionOut])
def list_subscriptions(
    session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    vps_id: Annotated[str | None, Query(max_length=36)] = None,
    status: Literal["active", "ending", "terminated"] | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[SubscriptionOut]:
    """Your subscriptions (staff: everyone's), newest ordered first, a page at a time."""
    query = filtered(select(Subscription), ((Subscription.customer_id, listed_customer(principal, customer_id)),
                                            (Subscription.vps_id, vps_id), (Subscription.status, status)),
                     Subscription.created_at, since, until)
    rows, after = page_of(session, query, (Subscription.created_at, Subscription.id), cursor, limit, order)
    return Page[SubscriptionOut](items=[_out(session, settings, r) for r in rows], next=after)


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def get_subscription(subscription_id: str, session: SessionDep, settings: SettingsDep,
                     principal: CurrentPrincipal) -> SubscriptionOut:
    return _out(session, settings, subscriptions.visible(session, principal, subscription_id))


@router.post("/{subscription_id}/non-renewal", response_model=NonRenewalOut)
def give_non_renewal_notice(subscription_id: str, body: NonRenewalBody, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal) -> NonRenewalOut:
    """R3-notice: the client online (`channel: online`), or staff recording a registered letter
    (`channel: registered_letter`, `received_at`). Answers the end of term it takes effect at."""
    record = subscriptions.visible(session, principal, subscription_id)
    record, job_id = subscriptions.non_renewal(session, settings, principal, record, body.channel, body.received_at)
    assert record.ends_on is not None
    return NonRenewalOut(effective_on=record.ends_on, termination_job_id=job_id,
                         subscription=_out(session, settings, record))


@router.post("/{subscription_id}/reversibility", response_model=ReversibilityOut)
def exercise_reversibility(subscription_id: str, body: ReversibilityBody, session: SessionDep, settings: SettingsDep,
                  staff: StaffPrincipal) -> ReversibilityOut:
    """R13-reversibility: staff record the client's registered letter; effective two months later,
    no refund; an export of every VPS of the client is queued now (download it from
    `/v1/vps/{id}/backups/{backup_id}/download`)."""
    record = subscriptions.visible(session, staff, subscription_id)
    record, effective, exports = subscriptions.reversibility(session, settings, staff, record, body.received_at)
    return ReversibilityOut(effective_at=effective, export_job_ids=exports,
                            subscription=_out(session, settings, record))
