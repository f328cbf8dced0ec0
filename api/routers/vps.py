from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from sqlmodel import col, select

from api.deps import CurrentPrincipal, SessionDep, SettingsDep
from api.operations import accepted, ask
from api.pages import Cursor, Limit, Order, Page, filtered, page_of
from api.schemas.jobs import JobAccepted
from api.schemas.vps import VpsJobOut, VpsOut
from api.scopes import scoped
from api.views import job_out, vps_list, vps_out
from orchestrator.core.access import listed_customer, visible_vps
from orchestrator.core.models import Host, Vps, VpsStatus
from orchestrator.engine.context import Request
from orchestrator.engine.operation import request
from orchestrator.operations.create import CreateVps, VpsCreate
from orchestrator.operations.delete import DeleteParams, DeleteVps

router = APIRouter(prefix="/v1/vps", tags=["vps"], dependencies=[scoped("vps")])

IdempotencyKey = Annotated[
    str | None,
    Header(alias="idempotency-key", max_length=200,
           description="Repeat a POST with the same key to get the same VPS and job back"),
]

@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=VpsJobOut)
def create_vps(
    body: VpsCreate, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    _idempotency_key: IdempotencyKey = None,
) -> VpsJobOut:
    """Staff: make a VPS without an order (not billed): `customer` and a non-empty `reason` (recorded
    in the VPS's events) are required.  Answers at once with the VPS (``building``) and its create
    job.  R8.1-setup-fee: a customer's VPS comes with its subscription and first invoice: customers
    order through `POST /v1/orders`; asked here they are refused (403)."""
    job = request(Request(session, settings, principal, None), CreateVps, body)
    vps = session.get(Vps, job.vps_id)
    assert vps is not None
    return VpsJobOut(vps=vps_out(session, vps, principal), job=job_out(session, job, principal))


@router.get("", response_model=Page[VpsOut], operation_id="list_vps")
def list_vps(
    session: SessionDep, principal: CurrentPrincipal,
    include_deleted: Annotated[bool, Query(description="Also list deleted VPS")] = False,
    status: VpsStatus | None = None,
    site: Annotated[str | None, Query(max_length=64, description="The data-centre site (R2-locations)")] = None,
    name: Annotated[str | None, Query(max_length=63)] = None,
    customer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="staff only")] = None,
    since: Annotated[datetime | None, Query(description="ordered from this instant on (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="ordered before this instant")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    order: Order = "desc",
) -> Page[VpsOut]:
    """Your VPS (staff: everyone's), newest first, a page at a time."""
    query = select(Vps)
    if not include_deleted and status is None:
        query = query.where(Vps.status != VpsStatus.deleted)
    if site is not None:
        query = query.where(col(Vps.host_id).in_(select(Host.id).where(Host.site == site)))
    query = filtered(query, ((Vps.customer_id, listed_customer(principal, customer_id)), (Vps.status, status),
                             (Vps.name, name)),
                     Vps.created_at, since, until)
    rows, after = page_of(session, query, (Vps.created_at, Vps.id), cursor, limit, order)
    return Page[VpsOut](items=vps_list(session, rows, principal), next=after)


@router.get("/{vps_id}", response_model=VpsOut)
def get_vps(vps_id: str, session: SessionDep, principal: CurrentPrincipal) -> VpsOut:
    return vps_out(session, visible_vps(session, principal, vps_id), principal)


@router.delete("/{vps_id}", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted,
               responses={409: {"description": "The VPS's status does not allow it now"}})
def delete_vps(
    vps_id: str, session: SessionDep, settings: SettingsDep, principal: CurrentPrincipal,
    confirm_data_loss: Annotated[
        bool, Query(description="Must be true: deleting discards the VPS's disks for good")
    ] = False,
    keep_backups: Annotated[list[str], Query(
        max_length=50, description="A backup to keep after the VPS is gone (repeat for several); every "
                                   "other backup and export is discarded")] = [],  # noqa: B006 (FastAPI copies it)
) -> JobAccepted:
    """Delete a VPS: its domain is removed, its volumes discarded (or wiped), and its backups and
    exports too, but those named in `keep_backups` (listed at `GET /v1/backups`)."""
    params = DeleteParams(confirm_data_loss=confirm_data_loss, keep_backups=keep_backups)
    job = ask(session, settings, principal, vps_id, DeleteVps, params)
    return accepted(session, job, principal)
