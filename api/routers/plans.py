"""``/v1/plans``: what may be ordered (sizes, images, terms, sites, prices); staff publish, change
and retire plans (R2-locations, R3-terms, R8.1-setup-fee, R8.2-rent, R8.3-ht)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.pages import Cursor, Limit, Page, page_of
from api.schemas.plans import PlanBody, PlanOut, PlanPatch
from api.scopes import scoped
from orchestrator.core.models import Plan
from orchestrator.workflows import orders

router = APIRouter(prefix="/v1/plans", tags=["plans"], dependencies=[scoped("plans")])


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut.model_validate(plan, from_attributes=True)


@router.get("", response_model=Page[PlanOut])
def list_plans(
    session: SessionDep, principal: CurrentPrincipal,
    include_retired: Annotated[bool, Query(description="staff only: also retired plans")] = False,
    limit: Limit = 50, cursor: Cursor = None,
    order: Annotated[Literal["asc", "desc"], Query(description="by code: asc (the default) or desc")] = "asc",
) -> Page[PlanOut]:
    """The plans on offer, by code, a page at a time (staff may ask for retired plans too;
    customers see only those they may order)."""
    query = select(Plan)
    if not (principal.is_staff and include_retired):
        query = query.where(col(Plan.active).is_(True))
    rows, after = page_of(session, query, (Plan.code,), cursor, limit, order)
    return Page[PlanOut](items=[plan_out(p) for p in rows], next=after)


@router.get("/{plan_id}", response_model=PlanOut)
def get_plan(plan_id: str, session: SessionDep, principal: CurrentPrincipal) -> PlanOut:
    """A plan by id or code (a retired plan: staff only)."""
    return plan_out(orders.visible_plan(session, principal, plan_id))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PlanOut)
def publish_plan(body: PlanBody, response: Response, session: SessionDep, settings: SettingsDep,
                 staff: StaffPrincipal) -> PlanOut:
    """Staff publish a plan. Terms outside 1, 3, 6, 12, 24 months are refused naming R3-terms, sites
    outside the contract's naming R2-locations; unknown images are refused."""
    plan = orders.publish(session, settings, staff, body.code, body.model_dump(exclude={"code"}))
    response.headers["Location"] = f"/v1/plans/{plan.id}"
    return plan_out(plan)


@router.patch("/{plan_id}", response_model=PlanOut)
def change_plan(plan_id: str, body: PlanPatch, session: SessionDep, settings: SettingsDep,
                staff: StaffPrincipal) -> PlanOut:
    """Staff change a plan; `{"active": false}` retires it: it cannot be ordered any more, what was
    ordered from it stays as it was ordered (sizes and prices are kept by each VPS and subscription)."""
    plan = orders.visible_plan(session, staff, plan_id)
    return plan_out(orders.change(session, settings, plan, body.model_dump(exclude_unset=True)))
