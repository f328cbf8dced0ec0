"""Subscriptions: the contract of one VPS, from the order to its end.

R3-terms (the term is 1, 3, 6, 12 or 24 months), R3-renewal (tacit renewal for the same length),
R3-notice (non-renewal received at least two months before the end of a term), R8.1-setup-fee and
R8.6-billing (the first invoice is issued at order, with the setup fee), R13-reversibility (a move
to another operator two months after the registered letter, every disk exported beforehand, no
refund). The dates come from orchestrator/contract/terms; this module records them, queues the
deadline job that ends the service and the acknowledgement emails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from orchestrator.contract import billing, terms
from orchestrator.contract.calendar import add_months, paris_midnight, to_paris, to_utc
from orchestrator.contract.deadlines import erasure_not_before, termination_for_nonpayment_at
from orchestrator.core import access
from orchestrator.core.auth import Principal, require_staff
from orchestrator.core.clock import utcnow
from orchestrator.core.db import locked
from orchestrator.core.errors import Conflict, ContractRefusal, InvalidRequest, NotFound
from orchestrator.core.models import Invoice, Subscription, Vps, VpsStatus
from orchestrator.core.settings import Settings
from orchestrator.engine.context import Request
from orchestrator.engine.measures import open_default
from orchestrator.engine.operation import request
from orchestrator.notify import enqueue
from orchestrator.operations.backup import BackupParams, BackupVps
from orchestrator.workflows import incidents, invoicing
from orchestrator.workflows.nonpayment import notice_sent_at
from orchestrator.workflows.termination import schedule_end, subscription_cause

CHANNELS = ("online", "registered_letter")  # R3-notice


@dataclass(frozen=True)
class Order:
    vps_id: str
    term_months: int
    billing_period: str
    rent_ht: Decimal
    setup_fee_ht: Decimal = Decimal("0")
    contract_index: Decimal | None = None
    bank_country: str = "FR"
    currency: str = "EUR"
    started_on: date | None = None


def today() -> date:
    """Contract dates are Paris dates."""
    return to_paris(utcnow()).date()


def period_months(billing_period: str) -> int:
    """R8.6-billing: monthly, quarterly, half-yearly or yearly."""
    try:
        return billing.PERIOD_MONTHS[billing_period]
    except KeyError:
        raise ContractRefusal("R8.6-billing", f"rent is invoiced {', '.join(billing.PERIOD_MONTHS)}, "
                                              f"not {billing_period!r}") from None


def create(session: Session, settings: Settings, principal: Principal, order: Order) -> tuple[Subscription, Invoice]:
    """Record the subscription of a VPS and issue its first invoice at once: the first billing
    period's rent with the setup fee (R8.1-setup-fee, R8.6-billing, R8.2-rent)."""
    terms.check_term(order.term_months)  # R3-terms
    months = period_months(order.billing_period)
    if order.term_months % months:
        raise ContractRefusal("R8.2-rent", f"a {order.billing_period} rent does not divide a term of "
                                           f"{order.term_months} months (rent is never pro rata)")
    billing.allowed_payment_methods(order.bank_country, order.currency)  # valid codes (R8.5-payment-methods)
    if order.rent_ht <= 0:
        raise InvalidRequest("rent_ht must be more than 0")
    if order.contract_index is not None and order.contract_index <= 0:
        raise InvalidRequest("contract_index must be more than 0")
    vps = session.get(Vps, order.vps_id)
    if vps is None or vps.status in (VpsStatus.deleting, VpsStatus.deleted):
        raise NotFound(f"no VPS {order.vps_id[:64]!r}")
    vps = locked(session, vps)  # one running subscription per VPS, even ordered twice at once
    running = session.exec(select(Subscription).where(
        Subscription.vps_id == vps.id, col(Subscription.status).in_(("active", "ending")))).first()
    if running is not None:
        raise Conflict(f"VPS {vps.id} already has subscription {running.id}")
    ordered_on = today()
    started_on = order.started_on or ordered_on
    if started_on < ordered_on:
        raise InvalidRequest("a subscription starts on the order date or later")
    subscription = Subscription(
        customer_id=vps.customer_id, vps_id=vps.id, term_months=order.term_months,
        billing_period=order.billing_period, started_on=started_on, rent_ht=billing.to_cents(order.rent_ht),
        setup_fee_ht=billing.to_cents(order.setup_fee_ht), contract_index=order.contract_index,
        bank_country=order.bank_country.upper(), currency=order.currency.upper(),
    )
    session.add(subscription)
    session.flush()
    first = billing.rent_schedule(ordered_on, started_on, order.billing_period,  # type: ignore[arg-type]
                                  subscription.rent_ht, add_months(started_on, months),
                                  setup_fee=subscription.setup_fee_ht if subscription.setup_fee_ht else None)[0]
    invoice = invoicing.issue(session, customer_id=vps.customer_id, purpose="rent", lines=first.lines,
                              subscription_id=subscription.id, vps_id=vps.id, period=first.period)
    return subscription, invoice


def visible(session: Session, principal: Principal, subscription_id: str) -> Subscription:
    """R7-confidential: another customer's subscription is as absent as a missing one."""
    return access.visible(session, Subscription, subscription_id, principal, "subscription")


def _termination_right(session: Session, settings: Settings, subscription: Subscription) -> Any:
    """R5.4-fix-delay, R5.4-repeat: the client's right to terminate, from the VPS's incidents."""
    return incidents.termination_right_for(session, settings, subscription)


def view(session: Session, settings: Settings, subscription: Subscription) -> dict[str, Any]:
    """What the contract says about a subscription now: the running term, the next tacit renewal
    (R3-renewal), the latest instant a non-renewal stops it (R3-notice), and how it ends."""
    assert subscription.started_on is not None
    now = utcnow()
    start, months = subscription.started_on, subscription.term_months
    term_start, term_end = terms.current_term(start, months, now)
    earliest_end = terms.non_renewal_effective(start, months, now)
    active = subscription.status == "active"
    return {
        "id": subscription.id, "customer_id": subscription.customer_id, "vps_id": subscription.vps_id,
        "term_months": months, "billing_period": subscription.billing_period, "started_on": start,
        "rent_ht": subscription.rent_ht, "setup_fee_ht": subscription.setup_fee_ht,
        "contract_index": subscription.contract_index, "bank_country": subscription.bank_country,
        "currency": subscription.currency, "status": subscription.status,
        "current_term": {"starts_on": term_start, "ends_on": term_end},
        "next_renewal": term_end if active else None,
        "notice_deadline": terms.notice_deadline(term_end) if active else None,
        "non_renewal_effective_if_received_now": earliest_end if active else None,
        "ends_on": subscription.ends_on, "end_reason": subscription.end_reason,
        "non_renewal_received_at": subscription.non_renewal_received_at,
        "non_renewal_channel": subscription.non_renewal_channel,
        "reversibility_received_at": subscription.reversibility_received_at,
        "terminated_at": subscription.terminated_at,
        "termination_right": _termination_right(session, settings, subscription),
        "payment_default": _payment_default(session, subscription),
    }


def _payment_default(session: Session, subscription: Subscription) -> dict[str, Any] | None:
    """R8.7-default, R10-nonpayment: the open payment default of one of the subscription's
    invoices, with its deadlines counted from the formal notice's sending (None until it is sent)."""
    default = open_default(session, subscription)
    if default is None:
        return None
    sent = notice_sent_at(session, default)
    return {"invoice_id": default.invoice_id, "opened_at": default.opened_at, "notice_sent_at": sent,
            "erasure_not_before": erasure_not_before(sent) if sent else None,
            "termination_at": termination_for_nonpayment_at(sent) if sent else None}


def _received_at(principal: Principal, channel: str, received_at: datetime | None) -> datetime:
    now = utcnow()
    if channel not in CHANNELS:
        raise InvalidRequest(f"channel must be one of {', '.join(CHANNELS)}")
    if channel == "online":
        if received_at is not None:
            raise InvalidRequest("an online notice is received when it is sent: leave received_at out")
        return now
    require_staff(principal, "a registered letter is recorded by staff; customers use the online procedure")
    if received_at is None:
        raise InvalidRequest("a registered letter needs received_at")
    if to_utc(received_at) > now:
        raise InvalidRequest("received_at is in the future")
    return to_utc(received_at)


def _vps_of(session: Session, subscription: Subscription) -> Vps | None:
    return session.get(Vps, subscription.vps_id) if subscription.vps_id else None


def non_renewal(session: Session, settings: Settings, principal: Principal, subscription: Subscription,
                channel: str, received_at: datetime | None) -> tuple[Subscription, str | None]:
    """R3-notice: record a non-renewal and the end of term it takes effect at (the current term's
    end if received two months before it, else the first later term's end at least two months
    away); the service stops as that date begins."""
    subscription = locked(session, subscription)
    if subscription.status != "active":
        raise Conflict(f"this subscription is already {subscription.status}")
    received = _received_at(principal, channel, received_at)
    assert subscription.started_on is not None
    effective = terms.non_renewal_effective(subscription.started_on, subscription.term_months, received)
    subscription.status, subscription.ends_on, subscription.end_reason = "ending", effective, "non_renewal"
    subscription.non_renewal_received_at, subscription.non_renewal_channel = received, channel
    session.add(subscription)
    job_id = schedule_end(Request(session, settings, principal, None), subscription, paris_midnight(effective),
                          "non_renewal")
    vps = _vps_of(session, subscription)
    enqueue(session, subscription.customer_id, "non_renewal_ack",
            {"subscription_id": subscription.id, "vps_name": vps.name if vps else "", "received_at": received,
             "channel": channel, "ends_on": effective}, vps_id=vps.id if vps else None, settings=settings)
    return subscription, job_id


def reversibility(session: Session, settings: Settings, principal: Principal, subscription: Subscription,
                  received_at: datetime) -> tuple[Subscription, datetime, list[str]]:
    """R13-reversibility: the client's registered letter (recorded by staff): the move takes
    effect two months after it is received, no refund; an export of the disk of every VPS of the
    client is queued now, to download before then."""
    subscription = locked(session, subscription)
    if subscription.status == "terminated":
        raise Conflict("this subscription is already terminated")
    received = _received_at(principal, "registered_letter", received_at)
    effective = terms.reversibility_effective(received)
    ends_on = to_paris(effective).date()
    subscription.reversibility_received_at = received
    if subscription.ends_on is None or ends_on < subscription.ends_on:
        subscription.status, subscription.ends_on, subscription.end_reason = "ending", ends_on, "reversibility"
        schedule_end(Request(session, settings, principal, None), subscription, effective, "reversibility")
    session.add(subscription)
    exports: list[str] = []
    names: list[str] = []
    customer_vps = session.exec(select(Vps).where(Vps.customer_id == subscription.customer_id)
                                .order_by(col(Vps.created_at))).all()
    for vps in customer_vps:
        if vps.status in BackupVps.allowed_from:
            job = request(Request(session, settings, principal, vps, cause=subscription_cause(subscription)),
                          BackupVps, BackupParams(kind="export", note="R13-reversibility"))
            exports.append(job.id)
            names.append(vps.name)
    own = _vps_of(session, subscription)
    enqueue(session, subscription.customer_id, "reversibility_ack",
            {"subscription_id": subscription.id, "received_at": received, "effective_at": effective,
             "exported_vps": names}, vps_id=own.id if own else None, settings=settings)
    return subscription, effective, exports
