"""Plans staff publish, and the orders customers make from them.

A plan fixes the sizes of a VPS, the images, initial terms (R3-terms) and sites (R2-locations) it
is offered with, and its prices before tax (R8.3-ht): the rent per month (R8.2-rent) and the
setup fee (R8.1-setup-fee).  Retiring a plan (``active`` false) keeps what was ordered from it;
it just cannot be ordered any more.

An order (``POST /v1/orders``) records, in the caller's one transaction, the VPS and its create
job (the same ``create`` operation as ``POST /v1/vps``, asked with the order as its ``cause``, so
quotas and placement apply as before), the subscription, and its first invoice: the first billing
period's rent with the setup fee (R8.1-setup-fee, R8.6-billing: the first invoice is issued at
order).  Every check of the plan comes first; any refusal, there or later, rolls the whole
transaction back: no VPS, subscription, invoice or order is left of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlmodel import Session, select

from orchestrator.contract import billing, terms
from orchestrator.contract.sites import check_site
from orchestrator.core import access
from orchestrator.core.auth import Principal
from orchestrator.core.clock import utcnow
from orchestrator.core.errors import Conflict, InvalidRequest, NotFound
from orchestrator.core.models import Image, Invoice, Job, Order, Plan, Subscription, Vps
from orchestrator.core.models.types import new_id
from orchestrator.core.settings import Settings
from orchestrator.engine import jobs
from orchestrator.engine.context import Request
from orchestrator.engine.operation import request
from orchestrator.operations.create import CreateVps, VpsCreate
from orchestrator.workflows import subscriptions

PLAN_FIELDS = ("name", "vcpus", "memory_mib", "disk_gib", "images", "sites", "terms", "monthly_price_ht",
               "setup_fee_ht", "active")


# --- plans -----------------------------------------------------------------------------------

def _check_plan(session: Session, settings: Settings, values: dict[str, Any]) -> dict[str, Any]:
    """A plan's values as stored: sizes within the limits, registered images, the contract's sites
    (R2-locations) and terms (R3-terms), prices as exact cents (R8.3-ht)."""
    limits = (("vcpus", settings.limits.max_vcpus), ("memory_mib", settings.limits.max_memory_mib),
              ("disk_gib", settings.limits.max_disk_gib))
    for name, ceiling in limits:
        if name in values and not 1 <= values[name] <= ceiling:
            raise InvalidRequest(f"{name} must be between 1 and {ceiling}, got {values[name]}")
    if "images" in values:
        for image in values["images"]:
            if session.get(Image, image) is None:
                raise InvalidRequest(f"unknown image {image[:64]!r} (GET /v1/images)")
        values["images"] = sorted(set(values["images"]))
    if "sites" in values:
        values["sites"] = sorted({check_site(site) for site in values["sites"]})  # R2-locations
    if "terms" in values:
        if not values["terms"]:
            raise InvalidRequest("a plan offers at least one term")
        values["terms"] = sorted({terms.check_term(months) for months in values["terms"]})  # R3-terms
    if "monthly_price_ht" in values:
        if values["monthly_price_ht"] <= 0:
            raise InvalidRequest("monthly_price_ht must be more than 0")
        values["monthly_price_ht"] = billing.to_cents(values["monthly_price_ht"])
    if "setup_fee_ht" in values:
        if values["setup_fee_ht"] < 0:
            raise InvalidRequest("setup_fee_ht must be 0 or more")
        values["setup_fee_ht"] = billing.to_cents(values["setup_fee_ht"])  # R8.1-setup-fee
    return values


def publish(session: Session, settings: Settings, staff: Principal, code: str, values: dict[str, Any]) -> Plan:
    """Staff publish a plan under a new ``code``."""
    if session.exec(select(Plan).where(Plan.code == code)).first() is not None:
        raise Conflict(f"a plan {code!r} exists already: change it (PATCH /v1/plans/{{id}}) or use another code")
    plan = Plan(code=code, created_by=str(staff)[:100], **_check_plan(session, settings, dict(values)))
    if not plan.active:
        plan.retired_at = utcnow()
    session.add(plan)
    session.flush()
    return plan


def change(session: Session, settings: Settings, plan: Plan, values: dict[str, Any]) -> Plan:
    """Staff change a plan (what is given) or retire it (``active`` false).  What was ordered
    keeps the sizes and prices it was ordered at (its VPS and subscription hold them)."""
    unknown = set(values) - set(PLAN_FIELDS)
    if unknown:
        raise InvalidRequest(f"a plan's {', '.join(sorted(unknown))} cannot be changed")
    for name, value in _check_plan(session, settings, dict(values)).items():
        setattr(plan, name, value)
    if "active" in values:
        plan.retired_at = None if plan.active else (plan.retired_at or utcnow())
    plan.updated_at = utcnow()
    session.add(plan)
    session.flush()
    return plan


def visible_plan(session: Session, principal: Principal, plan_ref: str) -> Plan:
    """A plan by id or code; a customer sees only plans on offer (a retired one is absent)."""
    plan = session.exec(select(Plan).where((Plan.id == plan_ref) | (Plan.code == plan_ref))).first()
    if plan is None or not (principal.is_staff or plan.active):
        raise NotFound(f"no plan {plan_ref[:64]!r}")
    return plan


# --- orders ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OrderRequest:
    plan: str
    term_months: int
    name: str
    image: str
    ssh_keys: list[str]
    billing_period: str = "monthly"
    site: str | None = None
    placement_group: str | None = None
    customer: str | None = None  # staff ordering on a customer's behalf
    bank_country: str = "FR"
    currency: str = "EUR"


@dataclass(frozen=True)
class Placed:
    order: Order
    subscription: Subscription
    invoice: Invoice
    vps: Vps
    job: Job


def _orderable(session: Session, wanted: OrderRequest) -> tuple[Plan, str | None]:
    """The plan ordered, and the site, once the order fits what it offers (before anything is
    recorded)."""
    plan = session.exec(select(Plan).where((Plan.id == wanted.plan) | (Plan.code == wanted.plan))).first()
    if plan is None:
        raise InvalidRequest(f"no plan {wanted.plan[:64]!r} (GET /v1/plans lists those on offer)")
    if not plan.active:
        raise InvalidRequest(f"plan {plan.code!r} is retired: it can no longer be ordered (GET /v1/plans)")
    terms.check_term(wanted.term_months)  # R3-terms
    if wanted.term_months not in plan.terms:
        raise InvalidRequest(f"plan {plan.code!r} is offered for terms of {', '.join(map(str, plan.terms))} "
                             f"months, not {wanted.term_months} (R3-terms)")
    subscriptions.period_months(wanted.billing_period)  # R8.6-billing
    site = check_site(wanted.site) if wanted.site else None  # R2-locations
    if plan.sites:
        if site is None:
            raise InvalidRequest(f"plan {plan.code!r} is offered in {', '.join(plan.sites)}: choose the 'site'")
        if site not in plan.sites:
            raise InvalidRequest(f"plan {plan.code!r} is not offered in {site} (only in {', '.join(plan.sites)}; "
                                 "R2-locations)")
    if plan.images and wanted.image not in plan.images:
        raise InvalidRequest(f"plan {plan.code!r} comes with the images {', '.join(plan.images)}, "
                             f"not {wanted.image[:64]!r}")
    return plan, site


def rent_per_period(plan: Plan, billing_period: str) -> Decimal:
    """R8.2-rent, R8.6-billing: the plan's monthly rent times the months of the billing period."""
    return billing.to_cents(plan.monthly_price_ht * subscriptions.period_months(billing_period))


def place(session: Session, settings: Settings, principal: Principal, wanted: OrderRequest) -> Placed:
    """Record an order: the VPS and its create job, its subscription and first invoice (rent of the
    first billing period and the setup fee: R8.1-setup-fee, R8.6-billing), in the caller's
    transaction; any refusal leaves none of them (the caller rolls back)."""
    plan, site = _orderable(session, wanted)
    order_id = new_id()
    spec = VpsCreate(name=wanted.name, image=wanted.image, vcpus=plan.vcpus, memory_mib=plan.memory_mib,
                     disk_gib=plan.disk_gib, ssh_keys=wanted.ssh_keys, customer=wanted.customer, site=site,
                     placement_group=wanted.placement_group)
    job = request(Request(session, settings, principal, None, cause=jobs.cause("order", order_id)), CreateVps, spec)
    vps = session.get(Vps, job.vps_id)
    assert vps is not None
    subscription, invoice = subscriptions.create(session, settings, principal, subscriptions.Order(
        vps_id=vps.id, term_months=wanted.term_months, billing_period=wanted.billing_period,
        rent_ht=rent_per_period(plan, wanted.billing_period), setup_fee_ht=plan.setup_fee_ht,
        bank_country=wanted.bank_country, currency=wanted.currency))
    order = Order(id=order_id, customer_id=vps.customer_id, plan_id=plan.id, subscription_id=subscription.id,
                  invoice_id=invoice.id, vps_id=vps.id, job_id=job.id, term_months=wanted.term_months,
                  billing_period=wanted.billing_period, site=site, image=vps.image, ordered_by=str(principal)[:100])
    session.add(order)
    session.flush()
    return Placed(order, subscription, invoice, vps, job)


def visible_order(session: Session, principal: Principal, order_id: str) -> Order:
    """R7-confidential: another customer's order is as absent as a missing one."""
    return access.visible(session, Order, order_id, principal, "order")
