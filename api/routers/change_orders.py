"""Change orders (R5.1-change-order): the client asks for new sizes, staff approve with a price
(the order form is emailed) or refuse with a reason, the client accepts the order form and the
resize runs.  Another customer's VPS or change order is a 404 (R7-confidential)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from sqlmodel import select

from api.audiences import CLIENT
from api.deps import CurrentPrincipal, SessionDep, SettingsDep, StaffPrincipal
from api.openapi import located
from api.pages import Cursor, Limit, Order, Page, Since, Until, filtered, page_of
from api.schemas.change_orders import (
    ApproveBody,
    ChangeOrderAccepted,
    ChangeOrderBody,
    ChangeOrderOut,
    RefuseBody,
)
from api.schemas.jobs import ResizePlanOut
from api.scopes import scoped
from api.views import job_out
from orchestrator.core.access import visible_vps
from orchestrator.core.models import ChangeOrder, Job
from orchestrator.workflows import change_orders

router = APIRouter(tags=["change orders"], dependencies=[scoped("billing")])

def order_out(session: SessionDep, order: ChangeOrder) -> ChangeOrderOut:
    values: dict[str, Any] = order.model_dump()
    invoice = change_orders.fee_invoice(session, order)
    return ChangeOrderOut(**values, invoice_id=invoice.id if invoice else None)


@router.post("/v1/vps/{vps_id}/change-orders", status_code=status.HTTP_201_CREATED, response_model=ChangeOrderOut,
             responses={201: located("/v1/change-orders/{id}")})
def ask_change_order(vps_id: str, body: ChangeOrderBody, session: SessionDep, settings: SettingsDep,
        principal: CurrentPrincipal) -> ChangeOrderOut:
    """Ask for more (or other) vCPUs, memory or disk, or for an extra data disk: checked like the
    resize or the attachment (and against the client's quota), nothing runs yet."""
    vps = visible_vps(session, principal, vps_id)
    sizes = body.model_dump(include={"vcpus", "memory_mib", "disk_gib", "add_disk_gib"}, exclude_none=True)
    return order_out(session, change_orders.ask(session, settings, principal, vps, sizes, body.note))


@router.get("/v1/vps/{vps_id}/change-orders", response_model=Page[ChangeOrderOut])
def list_vps_change_orders(
    vps_id: str, session: SessionDep, principal: CurrentPrincipal,
    status: Annotated[str | None, Query(max_length=16, description="e.g. requested, approved, accepted")] = None,
    since: Since = None, until: Until = None, limit: Limit = 50, cursor: Cursor = None, order: Order = "desc",
) -> Page[ChangeOrderOut]:
    """The VPS's change orders, newest asked first, a page at a time."""
    vps = visible_vps(session, principal, vps_id)
    query = filtered(select(ChangeOrder).where(ChangeOrder.vps_id == vps.id), ((ChangeOrder.status, status),),
                     ChangeOrder.requested_at, since, until)
    rows, after = page_of(session, query, (ChangeOrder.requested_at, ChangeOrder.id), cursor, limit, order)
    return Page[ChangeOrderOut](items=[order_out(session, change_orders.settle(session, order)) for order in rows],
                                next=after)


@router.get("/v1/change-orders/{order_id}", response_model=ChangeOrderOut)
def get_change_order(order_id: str, session: SessionDep, principal: CurrentPrincipal) -> ChangeOrderOut:
    return order_out(session, change_orders.visible_order(session, principal, order_id))


@router.post("/v1/change-orders/{order_id}/approve", response_model=ChangeOrderOut)
def approve_change_order(order_id: str, body: ApproveBody, session: SessionDep, settings: SettingsDep,
            staff: StaffPrincipal) -> ChangeOrderOut:
    """Staff: approve at a price; the order form (bon de commande) is numbered and emailed."""
    order = change_orders.visible_order(session, staff, order_id)
    return order_out(session, change_orders.approve(session, settings, staff, order, body.rent_ht, body.fee_ht,
                                                    body.note))


@router.post("/v1/change-orders/{order_id}/refuse", response_model=ChangeOrderOut)
def refuse_change_order(order_id: str, body: RefuseBody, session: SessionDep, settings: SettingsDep,
           staff: StaffPrincipal) -> ChangeOrderOut:
    """Staff: refuse, with the reason emailed to the client."""
    order = change_orders.visible_order(session, staff, order_id)
    return order_out(session, change_orders.refuse(session, settings, staff, order, body.reason))


@router.post("/v1/change-orders/{order_id}/accept", status_code=status.HTTP_202_ACCEPTED, openapi_extra=CLIENT,
             response_model=ChangeOrderAccepted)
def accept_change_order(order_id: str, session: SessionDep, settings: SettingsDep,
           principal: CurrentPrincipal) -> ChangeOrderAccepted:
    """The client accepts the order form: the resize job runs with exactly its configuration (and
    the one-off fee is invoiced).  Staff cannot accept on the client's behalf."""
    order = change_orders.visible_order(session, principal, order_id)
    job: Job = change_orders.accept(session, settings, principal, order)
    return ChangeOrderAccepted(change_order=order_out(session, order), job=job_out(session, job, principal),
                               plan=ResizePlanOut(**job.params["plan"]) if job.kind == "resize" else None)


@router.post("/v1/change-orders/{order_id}/cancel", response_model=ChangeOrderOut, openapi_extra=CLIENT)
def cancel_change_order(order_id: str, session: SessionDep, principal: CurrentPrincipal) -> ChangeOrderOut:
    """The client withdraws a request or an order form not yet accepted."""
    order = change_orders.visible_order(session, principal, order_id)
    return order_out(session, change_orders.cancel(session, principal, order))
