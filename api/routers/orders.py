"""``/v1/orders``: a customer orders a VPS from a plan; one call records the VPS and its create job,
the subscription and its first invoice with the setup fee (R8.1-setup-fee, R8.6-billing, R3-terms,
R2-locations)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sqlmodel import Session, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.openapi import located
from api.pages import Cursor, Limit, Page, Since, Until, filtered, page_of
from api.pages import Order as SortOrder
from api.routers.invoices import invoice_out
from api.routers.subscriptions import _out as subscription_out
from api.schemas.plans import OrderBody, OrderOut, OrderPlaced
from api.scopes import scoped
from api.views import job_out, vps_out
from orchestrator.core.access import listed_customer
from orchestrator.core.models import Invoice, Order, Plan
from orchestrator.workflows import orders

router = APIRouter(prefix="/v1/orders", tags=["orders"], dependencies=[scoped("orders")])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="idempotency-key", max_length=200,
           description="Repeat a POST with the same key to get the same order back (nothing recorded twice)"),
]


def order_out(session: Session, order: Order) -> OrderOut:
    plan, invoice = session.get(Plan, order.plan_id), session.get(Invoice, order.invoice_id)
    assert plan is not None and invoice is not None
    return OrderOut(id=order.id, customer_id=order.customer_id, plan_id=order.plan_id, plan_code=plan.code,
                    subscription_id=order.subscription_id, invoice_id=order.invoice_id,
                    invoice_number=invoice.number, vps_id=order.vps_id, job_id=order.job_id,
                    term_months=order.term_months, billing_period=order.billing_period, site=order.site,
                    image=order.image, created_at=order.created_at)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=OrderPlaced,
             responses={202: located("/v1/vps/{vps.id}", "Accepted: the VPS is being made")})
def place_order(body: OrderBody, response: Response, session: SessionDep, settings: SettingsDep,
                principal: CurrentPrincipal, _idempotency_key: IdempotencyKey = None) -> OrderPlaced:
    """Order a VPS from a plan. In one transaction: the VPS (`building`) and its create job (quotas
    and placement as for any VPS), the subscription for the term, and its first invoice (the first
    billing period's rent and the plan's setup fee: R8.1-setup-fee, R8.6-billing). A plan unknown or
    retired, a term, site or image the plan does not offer are refused (4xx) and nothing is recorded.
    `Location` is the VPS; follow the job at `/v1/jobs/{id}`."""
    placed = orders.place(session, settings, principal, orders.OrderRequest(**body.model_dump()))
    response.headers["Location"] = f"/v1/vps/{placed.vps.id}"
    return OrderPlaced(order=order_out(session, placed.order),
                       subscription=subscription_out(session, settings, placed.subscription),
                       invoice=invoice_out(placed.invoice), vps=vps_out(session, placed.vps, principal),
                       job=job_out(session, placed.job, principal))


@router.get("", response_model=Page[OrderOut], operation_id="list_orders")
def list_orders(
    session: SessionDep, principal: CurrentPrincipal,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: SortOrder = "desc",
) -> Page[OrderOut]:
    """Your orders (staff: everyone's), newest first, a page at a time."""
    query = filtered(select(Order), ((Order.customer_id, listed_customer(principal, customer_id)),),
                     Order.created_at, since, until)
    rows, after = page_of(session, query, (Order.created_at, Order.id), cursor, limit, order)
    return Page[OrderOut](items=[order_out(session, r) for r in rows], next=after)


@router.get("/{order_id}", response_model=OrderOut)
def get_order(order_id: str, session: SessionDep, principal: CurrentPrincipal) -> OrderOut:
    return order_out(session, orders.visible_order(session, principal, order_id))
