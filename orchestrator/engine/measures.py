"""Measures: what the provider imposes on a VPS that its client cannot lift, and what each still
lets the client ask for.  One declared table, read by every request and again by the worker when
a job starts (``Operation.authorize``), so that no sequence of a client's calls gets around a
staff measure (a stop, then a start, of a VPS suspended by staff, say).

    measure            stands while                                   lifted by
    staff_suspension   suspended by staff (billing, abuse, security); staff: resume, or start once
                       it outlives a power-off                         stopped
    nonpayment         suspended for non-payment, or an open payment  the payment of the invoice
                       default on the VPS's subscription (R8.7-default)
    cut_off            the network is cut (R5.5-cutoff)                staff: reconnect, with the
                                                                       corrective measures
    termination        the VPS's subscription is terminated (R10-after) nobody

Staff are never held by a measure (they impose and lift them), nor are the orchestrator's own
system operations (erasure, termination, ...).  Every other operation a client asks is refused
while a measure stands that does not list it in ``client_may``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlmodel import Session, col, select

from orchestrator.core.auth import Principal
from orchestrator.core.errors import ContractRefusal, Forbidden, VpsctlError
from orchestrator.core.models import Invoice, PaymentDefault, Role, Subscription, Vps

STAFF_ROLES = (Role.support.value, Role.automation.value)
NONPAYMENT_REASON = "nonpayment"


class Measure(enum.StrEnum):
    staff_suspension = "staff_suspension"
    nonpayment = "nonpayment"
    cut_off = "cut_off"
    termination = "termination"


@dataclass(frozen=True)
class Declared:
    rule: str  # the contract rule it carries out ("" when it is the provider's own measure)
    what: str
    client_may: frozenset[str] | None  # operation kinds a client may still ask; None: every one


# Renaming changes nothing a measure protects; a client may delete what they no longer have the
# use of once the contract is over.  A cut-off outlives every operation (the record keeps the link
# down in every definition), so it refuses none; reconnecting is staff's anyway.
MEASURES: dict[Measure, Declared] = {
    Measure.staff_suspension: Declared("", "suspended by staff", frozenset({"rename"})),
    Measure.nonpayment: Declared("R8.7-default", "interrupted for non-payment until the overdue invoice is paid",
                                 frozenset({"rename"})),
    Measure.cut_off: Declared("R5.5-cutoff", "cut off from the network until staff reconnect it", None),
    Measure.termination: Declared("R10-after", "the service of a terminated subscription",
                                  frozenset({"rename", "delete"})),
}


def latest_subscription(session: Session, vps: Vps) -> Subscription | None:
    return session.exec(select(Subscription).where(Subscription.vps_id == vps.id)
                        .order_by(col(Subscription.created_at).desc())).first()


def open_default(session: Session, subscription: Subscription) -> PaymentDefault | None:
    """R8.7-default: the open payment default of one of the subscription's invoices."""
    return session.exec(select(PaymentDefault).join(Invoice, col(Invoice.id) == col(PaymentDefault.invoice_id))
                        .where(Invoice.subscription_id == subscription.id, PaymentDefault.status == "open")
                        .order_by(col(PaymentDefault.opened_at).desc())).first()


def standing(session: Session, vps: Vps) -> list[Measure]:
    """The measures that stand on the VPS now."""
    found: list[Measure] = []
    subscription = latest_subscription(session, vps)
    if vps.suspended_by in STAFF_ROLES and vps.suspend_reason != NONPAYMENT_REASON:
        found.append(Measure.staff_suspension)
    if vps.suspend_reason == NONPAYMENT_REASON or (subscription is not None and open_default(session, subscription)):
        found.append(Measure.nonpayment)
    if vps.cut_off:
        found.append(Measure.cut_off)
    if subscription is not None and subscription.status == "terminated":
        found.append(Measure.termination)
    return found


def refusal(measure: Measure, kind: str, vps: Vps) -> VpsctlError:
    declared = MEASURES[measure]
    may = ", ".join(sorted(declared.client_may or ())) or "nothing"
    detail = f"this VPS is {declared.what}"
    if measure is Measure.staff_suspension:
        detail = f"this VPS is suspended by staff ({vps.suspend_reason}): only staff can lift it"
    detail += f"; meanwhile a client may ask for: {may} (not {kind})"
    return ContractRefusal(declared.rule, detail) if declared.rule else Forbidden(detail)


def check(session: Session, principal: Principal, vps: Vps, kind: str) -> None:
    """Raise when a measure standing on ``vps`` forbids a client's ``kind``; staff pass."""
    if principal.is_staff:
        return
    for measure in standing(session, vps):
        allowed = MEASURES[measure].client_may
        if allowed is not None and kind not in allowed:
            raise refusal(measure, kind, vps)
