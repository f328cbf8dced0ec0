"""Quotas: a customer reads theirs (``GET /v1/quota``: limits and usage); staff read and set any
customer's (``/v1/customers/{id}/quota``).  What they bound: orchestrator/compute/quotas.py."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Path
from sqlmodel import Session

from api.audiences import CLIENT
from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.schemas.quotas import Amounts, QuotaBody, QuotaOut
from api.scopes import scoped
from orchestrator.compute import quotas
from orchestrator.core.errors import Forbidden, NotFound
from orchestrator.core.models import Customer, Quota
from orchestrator.core.settings import Settings

router = APIRouter(tags=["quotas"], dependencies=[scoped("customers")])
CustomerId = Path(ge=1, le=2**63 - 1)


def quota_out(session: Session, settings: Settings, customer_id: int) -> QuotaOut:
    row = session.get(Quota, customer_id)
    custom = [name for name in Amounts.model_fields if row is not None and getattr(row, name) is not None]
    return QuotaOut(customer_id=customer_id,
                    limits=Amounts(**asdict(quotas.limits(session, settings, customer_id))),
                    usage=Amounts(**asdict(quotas.usage(session, customer_id))), custom=custom)


@router.get("/v1/quota", response_model=QuotaOut, openapi_extra=CLIENT)
def get_own_quota(session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal) -> QuotaOut:
    """The caller's quota and what they use of it (customers)."""
    if principal.customer_id is None:
        raise Forbidden("staff have no quota: read a customer's at /v1/customers/{id}/quota")
    return quota_out(session, settings, principal.customer_id)


@router.get("/v1/customers/{customer_id}/quota", response_model=QuotaOut)
def get_customer_quota(session: SessionDep, settings: SettingsDep, staff: StaffPrincipal,
        customer_id: int = CustomerId) -> QuotaOut:
    """Staff: a customer's quota and usage."""
    if session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    return quota_out(session, settings, customer_id)


@router.put("/v1/customers/{customer_id}/quota", response_model=QuotaOut)
def set_customer_quota(body: QuotaBody, session: SessionDep, settings: SettingsDep, staff: StaffPrincipal,
        customer_id: int = CustomerId) -> QuotaOut:
    """Staff: set a customer's quota (the fields given; null: back to the default).  What they
    hold already stays: a lower quota refuses only what they ask next."""
    if session.get(Customer, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    quotas.set_quota(session, customer_id, body.model_dump(exclude_unset=True), str(staff))
    return quota_out(session, settings, customer_id)
